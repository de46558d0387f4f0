"""The S3 artifact store at two media lengths: what a node moves per minute of media.

    python bench/bench_artifacts.py [--minutes 1 15] [--rounds 3]

Starts SeaweedFS on loopback (tests/s3_server.py) and, per length, makes what a node of
that length writes: the 16 kHz mono WAV of extract_audio (1.92 MB a minute) and the
keyframes of extract_keyframes at one frame a second (60 JPEG-sized files of 30 kB a
minute). Each round, in a fresh process (so peak RSS is its own):
- `publish`: a node folder with both, published (`S3Artifacts.publish`);
- `fetch`: the same folder fetched into an empty storage root (another machine);
- `copy`, the baseline: `shutil.copytree` of the folder on the local disk.
Prints medians of wall time and peak RSS per length, the ratio to the baseline, and
the ratio of cost per minute at the longest length to the shortest (1.0: linear).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reuse.artifacts import artifact_store  # noqa: E402
from reuse.settings import Settings  # noqa: E402
from tests.s3_server import S3Server  # noqa: E402

WAV_PER_MIN = 16000 * 2 * 60
FRAME_BYTES = 30_000


def make_node(folder: Path, minutes: float) -> None:
    folder.mkdir(parents=True)
    with open(folder / "audio.wav", "wb") as fh:
        for _ in range(int(minutes * 60)):  # a second at a time: flat memory
            fh.write(os.urandom(WAV_PER_MIN // 60))
    frames = folder / "keyframes"
    frames.mkdir()
    for i in range(int(minutes * 60)):
        (frames / f"frame_{i:06d}.jpg").write_bytes(os.urandom(FRAME_BYTES))


def step(kind: str, endpoint_settings: str, src_root: str, dst_root: str, rel: str) -> None:
    """In a fresh process: one step; prints its wall time and peak RSS as JSON."""
    fields = json.loads(endpoint_settings)
    started = time.perf_counter()
    if kind == "copy":
        shutil.copytree(Path(src_root) / rel, Path(dst_root) / rel)
    elif kind == "publish":
        artifact_store(Settings(storage_root=Path(src_root), **fields)).publish(
            Path(src_root) / rel)
    else:
        store = artifact_store(Settings(storage_root=Path(dst_root), **fields))
        assert store.fetch(Path(dst_root) / rel, folder=True)
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb}))


def measure(kind: str, fields: dict[str, object], src: Path, dst: Path, rel: str
            ) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--step", kind, json.dumps(fields),
                          str(src), str(dst), rel], check=True, capture_output=True,
                         text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 15])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = S3Server().start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for minutes in args.minutes:
                rel = f"jobs/bench-{minutes:g}/ffmpeg.extract_keyframes/1"
                src = Path(tmp) / f"src-{minutes:g}"
                make_node(src / rel, minutes)
                times: dict[str, list[float]] = {"copy": [], "publish": [], "fetch": []}
                rss: dict[str, list[float]] = {k: [] for k in times}
                for r in range(args.rounds):
                    fields = {**server.settings(), "s3_prefix": f"bench/{minutes:g}/{r}"}
                    for kind in ("copy", "publish", "fetch"):
                        dst = Path(tmp) / f"dst-{minutes:g}-{r}-{kind}"
                        got = measure(kind, fields, src, dst, rel)
                        times[kind].append(got["seconds"])
                        rss[kind].append(got["rss_mb"])
                        shutil.rmtree(dst, ignore_errors=True)
                row = {"minutes": minutes, "files": int(minutes * 60) + 1,
                       **{f"{k}_s": statistics.median(v) for k, v in times.items()},
                       **{f"{k}_rss_mb": statistics.median(v) for k, v in rss.items()}}
                rows.append(row)
                shutil.rmtree(src)
    finally:
        server.stop()
    print(f"{'min':>5} {'files':>6} {'copy s':>8} {'publish s':>10} {'fetch s':>8} "
          f"{'pub/copy':>9} {'fetch/copy':>10} {'pub RSS MB':>10} {'fetch RSS MB':>12}")
    for row in rows:
        print(f"{row['minutes']:>5g} {row['files']:>6} {row['copy_s']:>8.2f} "
              f"{row['publish_s']:>10.2f} {row['fetch_s']:>8.2f} "
              f"{row['publish_s'] / row['copy_s']:>9.1f} {row['fetch_s'] / row['copy_s']:>10.1f} "
              f"{row['publish_rss_mb']:>10.0f} {row['fetch_rss_mb']:>12.0f}")
    first, last = rows[0], rows[-1]
    scale = last["minutes"] / first["minutes"]
    for kind in ("publish", "fetch", "copy"):
        per_min = (last[f"{kind}_s"] / last["minutes"]) / (first[f"{kind}_s"] / first["minutes"])
        grew = last[f"{kind}_rss_mb"] / first[f"{kind}_rss_mb"]
        print(f"{kind}: cost per minute at {last['minutes']:g} min / at {first['minutes']:g} "
              f"min = {per_min:.2f}; peak RSS x{grew:.2f} for x{scale:g} the media")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        step(*sys.argv[2:7])
    else:
        main()
