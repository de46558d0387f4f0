"""Every node at real lengths, through the service (the dubbing chain included).

    python bench/bench_long.py [--minutes 1 5 15 60] [--json out.json]

For each length, makes a video (320x180, 25 fps, H.264) whose stereo 44.1 kHz soundtrack is
a conversation of three espeak-ng voices at known times (`tests/conversations.py`) over a
repeating chord pattern and noise, then runs every node on one task_id per length through
`POST /v1/tasks` on a local graph (`bench/local_graph.py`), one node at a time (after one
unmeasured warm-up run of every node on 20 s), and prints
per node and length: the run's duration (the stage's own `duration`), the real-time
factor (duration / media length), the peak RSS of the node's replica process (its VmHWM,
read after the run: lengths run shortest first, so it is that run's peak unless a shorter
one peaked higher; ffmpeg child processes are not included), and the linearity ratio
`(t_long / long) / (t_short / short)` between the longest and the shortest length.

Targets (issue 8, 2-core CPU): linearity <= 1.3 for every node; separation RTF <= 0.15;
diarization RTF <= 0.05; extract_audio >= 100x real time; replica RSS growth < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.local_graph import LocalGraph  # noqa: E402
from nodes.registry import BY_NAME  # noqa: E402
from tests.chat_server import ChatServer  # noqa: E402
from tests.conversations import make_talk_video  # noqa: E402

# (node, params) in chain order; absent inputs come from the upstream stages
NODES: list[tuple[str, dict[str, Any]]] = [
    ("ffmpeg.extract_audio", {"video_path": "{video}"}),
    ("ffmpeg.extract_keyframes", {"video_path": "{video}", "keyframe_sample_count": 100}),
    ("ffmpeg.crop_subtitle_images", {"video_path": "{video}",
                                     "subtitle_area": [0, 135, 320, 180]}),
    ("audio_separator.separate_vocals", {"audio_path": "{video}"}),
    ("faster_whisper.transcribe_audio", {"language": "en"}),
    ("pyannote_audio.diarize_speakers", {}),
    ("pyannote_audio.get_speaker_segments", {}),
    ("pyannote_audio.validate_diarization", {}),
    ("wservice.merge_speaker_segments", {}),
    ("wservice.merge_with_word_timestamps", {}),
    ("wservice.ai_optimize_subtitles", {}),
    ("wservice.generate_subtitle_files", {}),
    ("wservice.correct_subtitles", {}),
    ("ffmpeg.split_audio_segments", {}),
    ("wservice.prepare_tts_segments", {}),
    ("indextts.generate_speech", {}),
]
# the LLM nodes talk to tests/chat_server.py (a scripted provider on loopback): their
# figures are reelserve's own cost (batching, requests, files), not a model's


def replica_hwm_mb(deployment: str) -> float | None:
    """Peak RSS (VmHWM) of the deployment's replica process, in MB."""
    pattern = re.compile(rf"ServeReplica:reelserve:{re.escape(deployment)}\b")
    for proc in psutil.process_iter(["cmdline"]):
        if pattern.search(" ".join(proc.info["cmdline"] or [])):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return None


def run_node(client: httpx.Client, task_id: str, name: str, data: dict[str, Any],
             timeout: float) -> dict[str, Any]:
    response = client.post("/v1/tasks", json={"task_name": name, "task_id": task_id,
                                              "input_data": data})
    response.raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stage = client.get(f"/v1/tasks/{task_id}/status").json()["stages"].get(name)
        if stage and stage["status"] in ("SUCCESS", "FAILED"):
            if stage["status"] == "FAILED":
                raise RuntimeError(f"{name} failed: {stage['error']}")
            return dict(stage)
        time.sleep(0.5)  # a bench polls; the tests wait on callbacks
    raise TimeoutError(f"{name} did not finish in {timeout} s")


def quality(name: str, output: dict[str, Any], turns_file: Path, seconds: float) -> str:
    """WER of the transcript and DER of the diarization against what was said."""
    from tests.test_speech_engines import der_of, wer

    said = json.loads(turns_file.read_text())["segments"]
    if name == "faster_whisper.transcribe_audio":
        heard = json.loads(Path(output["segments_file"]).read_text())["segments"]
        score = wer(" ".join(t["text"] for t in said), " ".join(h["text"] for h in heard))
        return f"WER {score:.3f}"
    if name == "pyannote_audio.diarize_speakers":
        found = json.loads(Path(output["diarization_file"]).read_text())["segments"]
        der = der_of([(t["start"], t["end"], t["speaker"]) for t in said],
                     [(t["start"], t["end"], t["speaker"]) for t in found], seconds)
        return f"{output['total_speakers']} of 3 speakers, DER {der:.3f}"
    if name == "indextts.generate_speech":
        return f"track {output['duration']:.1f} s, {output['fit_summary']}"
    if name == "wservice.generate_subtitle_files":
        return f"{output['subtitles_count']} cues"
    return ""


def fill(template: dict[str, Any], video: Path, turns: Path) -> dict[str, Any]:
    return {k: (v.format(video=video, turns=turns) if isinstance(v, str) else v)
            for k, v in template.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 15])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--nodes", nargs="+", help="only these (list what they read too)")
    args = parser.parse_args()
    lengths = sorted(args.minutes)
    nodes = [(n, t) for n, t in NODES if not args.nodes or n in args.nodes]
    results: dict[str, dict[float, dict[str, float | None]]] = {n: {} for n, _ in nodes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = {m: make_talk_video(root / "inputs", m * 60, seed=int(m)) for m in lengths}
        warmup = make_talk_video(root / "inputs", 20, seed=99)
        print(f"inputs made: {', '.join(f'{m:g} min' for m in lengths)}", flush=True)
        chat = ChatServer().start()
        graph = LocalGraph(root, max_media_duration_s=4 * 3600, llm_base_url=chat.base_url,
                           llm_model="editor")
        base = graph.start()
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                # every replica's first run pays one-off costs (numba compiling librosa's
                # kernels, first model calls): paid here, on 20 s, not measured
                for name, template in nodes:
                    run_node(client, "warmup", name, fill(template, *warmup), timeout=600)
                for minutes in lengths:
                    video, subs = inputs[minutes]
                    for name, template in nodes:
                        stage = run_node(client, f"long-{minutes:g}", name,
                                         fill(template, video, subs),
                                         timeout=minutes * 60 * 3 + 120)
                        rss = replica_hwm_mb(BY_NAME[name].deployment_name)
                        results[name][minutes] = {"duration": stage["duration"], "rss_mb": rss}
                        print(f"{minutes:5g} min  {name:38s} {stage['duration']:8.1f} s  "
                              f"RTF {stage['duration'] / (minutes * 60):.4f}  "
                              f"replica RSS {rss or 0:7.0f} MB  "
                              f"{quality(name, stage['output'], subs, minutes * 60)}",
                              flush=True)
        finally:
            graph.stop()
            chat.stop()
    report(results, lengths)
    if args.json:
        args.json.write_text(json.dumps({n: {str(m): r for m, r in v.items()}
                                         for n, v in results.items()}, indent=2))


def report(results: dict[str, dict[float, dict[str, float | None]]],
           lengths: list[float]) -> None:
    short, long = lengths[0], lengths[-1]
    print("\nnode                                   " +
          "".join(f"RTF@{m:g}min  " for m in lengths) + f"linearity({long:g}/{short:g})  "
          "RSS growth")
    for name, per in results.items():
        rtf = [per[m]["duration"] / (m * 60) for m in lengths]  # type: ignore[operator]
        ratio = rtf[-1] / rtf[0] if rtf[0] else float("nan")
        rss = [per[m]["rss_mb"] for m in lengths]
        growth = (rss[-1] - rss[0]) if None not in rss else float("nan")  # type: ignore[operator]
        print(f"{name:38s} " + "".join(f"{r:9.4f}  " for r in rtf) +
              f"{ratio:15.2f}  {growth:8.0f} MB")


if __name__ == "__main__":
    main()
