"""Cost per second of media at two lengths, for the code paths issue 7/8 changed.

    python bench/bench_length.py [--minutes 1 15]

Makes a stereo 44.1 kHz mix (a repeating chord pattern plus a non-repeating "voice",
written block by block so the generator's memory stays flat), then, each in a fresh
process so peak RSS is its own, times:
- `decode`: `nodes.media.decode_to_wav` to a 16 kHz mono file (what transcription and
  diarization do before reading it a piece at a time);
- `separate`: `separation.repet_sim_file` in `default` mode (the node's REPET-SIM path);
- `split`: `ffmpeg.split_audio_segments` on a subtitle with one 4 s segment every 5 s.
Prints wall time, real-time factor and peak RSS per length, and the ratio of the longest
length's RTF to the shortest one's (1.0 = cost per second does not grow).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SR = 44100


def make_mix(path: Path, seconds: float) -> None:
    rng = np.random.default_rng(0)
    pattern_t = np.arange(int(0.5 * SR)) / SR
    pattern = sum(np.sin(2 * np.pi * f * pattern_t) for f in (110.0, 165.0, 220.0, 330.0))
    pattern = (pattern * np.exp(-6 * pattern_t) * 0.2).astype(np.float32)
    with sf.SoundFile(path, "w", SR, 2, subtype="FLOAT") as out:
        for start in range(0, int(seconds * SR), 10 * SR):  # 10 s at a time
            n = min(10 * SR, int(seconds * SR) - start)
            accomp = np.tile(pattern, n // len(pattern) + 1)[:n]
            t = np.arange(n) / SR
            f0 = np.repeat(rng.uniform(180, 700, n // SR + 1), SR)[:n]
            voice = 0.2 * np.sin(2 * np.pi * f0 * t) * (np.sin(np.pi * 3 * t) ** 2)
            mix = (accomp + voice).astype(np.float32)
            out.write(np.stack([mix, mix], axis=1))


def run_step(step: str, mix: Path, workdir: Path) -> None:
    """In a fresh process: one step, then its wall time and peak RSS as JSON."""
    seconds = sf.info(str(mix)).duration
    started = time.perf_counter()
    if step == "decode":
        from nodes.media import decode_to_wav, ffmpeg_binary

        decode_to_wav(ffmpeg_binary(), str(mix), workdir / "16k.wav", 16000)
    elif step == "separate":
        from nodes.families.separation import repet_sim_file

        repet_sim_file(mix, workdir / "v.flac", workdir / "a.flac", "default", lambda f: None)
    else:
        from nodes.families.ffmpeg_split import SplitAudioParams, split_audio_segments
        from nodes.spec import RunContext
        from reuse.settings import Settings

        subs = workdir / "subs.json"
        subs.write_text(json.dumps({"segments": [
            {"start": s, "end": s + 4.0, "speaker": f"S{int(s) % 3}"}
            for s in np.arange(0.0, seconds - 5.0, 5.0)]}))
        settings = Settings(storage_root=mix.parent)
        ctx = RunContext(task_id="bench", task_name="split", attempt=1,
                         workdir=workdir / "job", settings=settings)
        ctx.workdir.mkdir()
        split_audio_segments(SplitAudioParams(audio_path=str(mix), subtitle_path=str(subs),
                                              group_by_speaker=True), ctx)
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "rss_mb": rss, "seconds": seconds}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 15.0])
    ap.add_argument("--steps", nargs="+", default=["decode", "separate", "split"])
    ap.add_argument("--run-step", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_step:
        step, mix, workdir = args.run_step
        run_step(step, Path(mix), Path(workdir))
        return
    rows: dict[str, list[dict[str, float]]] = {s: [] for s in args.steps}
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory(dir=None) as tmp:
            mix = Path(tmp) / "mix.wav"
            make_mix(mix, minutes * 60)
            for step in args.steps:
                work = Path(tmp) / step
                work.mkdir()
                out = subprocess.run([sys.executable, __file__, "--run-step", step, str(mix),
                                      str(work)], capture_output=True, text=True, check=True)
                rows[step].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'step':10} {'media':>8} {'wall s':>8} {'RTF':>7} {'peak RSS MB':>12}")
    for step, results in rows.items():
        for r in results:
            print(f"{step:10} {r['seconds'] / 60:7.1f}m {r['wall']:8.1f} "
                  f"{r['wall'] / r['seconds']:7.4f} {r['rss_mb']:12.0f}")
        first, last = results[0], results[-1]
        ratio = (last["wall"] / last["seconds"]) / (first["wall"] / first["seconds"])
        growth = last["rss_mb"] - first["rss_mb"]
        print(f"{step:10} RTF ratio longest/shortest {ratio:.2f}, peak RSS growth {growth:+.0f} MB")


if __name__ == "__main__":
    main()
