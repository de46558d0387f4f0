"""Burned-in subtitles to SRT at real lengths, through the service, and what stitching saves.

    python bench/bench_ocr.py [--minutes 1 15] [--engine rapidocr] [--json out.json]

For each length, burns cues into a 640x360, 25 fps video (`tests/burned_subtitles.py`:
the five test cues, Chinese and English, one and two lines, repeated every 12 s over a
moving background with a logo), then runs the six-node chain on one task_id per length
through `POST /v1/tasks` on a local graph (`bench/local_graph.py`, only these nodes) and
prints per node: the stage's duration, frames per second through it, the replica's peak
RSS; per length: frames per second through the whole chain, the character error rate and
the worst cue timing error (frames) against the burned truth; and the linearity ratio of
the chain's time per frame between the longest and the shortest length.

Stitching against one OCR call per cropped frame, in the same run: on the shortest video,
the same cropped frames go through create_stitched_images with `concat_batch_size: 1`
and perform_ocr (one band per image, one call each) on another task_id; the calls, the
time and the text are compared.

Targets (issue 10): CER <= 3 %, timing within 2 frames, >= 3x fewer OCR calls, the
chain linear in length (ratio <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import jiwer
import pysubs2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_long import replica_hwm_mb, run_node  # noqa: E402
from bench.local_graph import LocalGraph  # noqa: E402
from nodes.registry import BY_NAME  # noqa: E402
from tests.burned_subtitles import CUES, Cue, make_subtitled_video  # noqa: E402

FPS = 25
CHAIN = ("ffmpeg.extract_keyframes", "paddleocr.detect_subtitle_area",
         "ffmpeg.crop_subtitle_images", "paddleocr.create_stitched_images",
         "paddleocr.perform_ocr", "paddleocr.postprocess_and_finalize")
VIDEO_NODES = ("ffmpeg.extract_keyframes", "ffmpeg.crop_subtitle_images",
               "paddleocr.postprocess_and_finalize")
OCR_NODES = ("paddleocr.detect_subtitle_area", "paddleocr.perform_ocr")


def cues_for(seconds: float) -> tuple[Cue, ...]:
    """The test cues, again every 12 s."""
    out = []
    for k in range(int(seconds // 12)):
        out += [Cue(c.text, c.start + 12 * k, c.end + 12 * k) for c in CUES]
    return tuple(out)


def score(srt: str, truth: tuple[Cue, ...]) -> dict[str, Any]:
    """CER over all cues (spaces and line breaks ignored) and the worst timing error of
    the cues matched to the truth in order."""
    events = [e for e in pysubs2.load(srt, format_="srt") if not e.is_comment]
    squeeze = "".join
    cer = jiwer.cer(squeeze("".join(c.text.split()) for c in truth),
                    squeeze("".join(e.plaintext.split()) for e in events))
    worst = None
    if len(events) == len(truth):
        worst = max(max(abs(e.start / 1000 * FPS - c.frames(FPS)[0]),
                        abs(e.end / 1000 * FPS - (c.frames(FPS)[1] + 1)))
                    for e, c in zip(events, truth, strict=True))
    return {"cues": len(events), "truth_cues": len(truth), "cer": cer,
            "worst_timing_frames": worst}


def chain(client: httpx.Client, task_id: str, video: Path, engine: str,
          minutes: float) -> dict[str, dict[str, Any]]:
    stages = {}
    for name in CHAIN:
        data: dict[str, Any] = {"video_path": str(video)} if name in VIDEO_NODES else {}
        if name in OCR_NODES:
            data["engine"] = engine
        stage = run_node(client, task_id, name, data, timeout=minutes * 60 * 4 + 300)
        stages[name] = {"duration": stage["duration"], "output": stage["output"],
                        "rss_mb": replica_hwm_mb(BY_NAME[name].deployment_name)}
    return stages


def one_by_one(client: httpx.Client, task_id: str, cropped: str, engine: str,
               minutes: float) -> dict[str, Any]:
    """The same bands, one per image: one OCR call per frame."""
    stitch = run_node(client, task_id, "paddleocr.create_stitched_images",
                      {"cropped_images_path": cropped, "concat_batch_size": 1}, timeout=3600)
    ocr = run_node(client, task_id, "paddleocr.perform_ocr", {"engine": engine},
                   timeout=minutes * 60 * 40 + 300)
    return {"stitch_s": stitch["duration"], "ocr_s": ocr["duration"],
            "ocr_calls": ocr["output"]["ocr_calls"],
            "ocr_results_path": ocr["output"]["ocr_results_path"]}


def texts_of(results_path: str) -> dict[str, str]:
    frames = json.loads(Path(results_path).read_text())["frames"]
    return {f: "".join(b["text"] for b in boxes).replace(" ", "") for f, boxes in frames.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 15])
    parser.add_argument("--engine", default="rapidocr", choices=["rapidocr", "paddleocr"])
    parser.add_argument("--paddleocr-model-dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    lengths = sorted(args.minutes)
    report: dict[str, Any] = {"engine": args.engine, "lengths": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos = {}
        for m in lengths:
            t0 = time.monotonic()
            truth = cues_for(m * 60)
            videos[m] = (make_subtitled_video(root / "inputs" / f"burned_{m:g}.mp4", truth,
                                              seconds=m * 60, fps=FPS)[0], truth)
            print(f"{m:g} min video made in {time.monotonic() - t0:.0f} s "
                  f"({len(truth)} cues)", flush=True)
        extra = {"paddleocr_model_dir": args.paddleocr_model_dir} \
            if args.paddleocr_model_dir else {}
        graph = LocalGraph(root, nodes=list(CHAIN), max_media_duration_s=4 * 3600, **extra)
        base = graph.start()
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                warm, _ = make_subtitled_video(root / "inputs" / "warm.mp4", seconds=12)
                chain(client, "warmup", warm, args.engine, 0.2)  # first calls: not measured
                outputs: dict[float, dict[str, dict[str, Any]]] = {}
                for m in lengths:
                    video, truth = videos[m]
                    stages = chain(client, f"ocr-{m:g}", video, args.engine, m)
                    outputs[m] = {n: s["output"] for n, s in stages.items()}
                    frames = m * 60 * FPS
                    total = sum(s["duration"] for s in stages.values())
                    final = stages["paddleocr.postprocess_and_finalize"]["output"]
                    quality = score(final["srt_file"], truth)
                    report["lengths"][str(m)] = {
                        "frames": frames, "chain_s": total, "chain_fps": frames / total,
                        **quality,
                        "ocr_calls": stages["paddleocr.perform_ocr"]["output"]["ocr_calls"],
                        "nodes": {n: {"duration": s["duration"], "rss_mb": s["rss_mb"]}
                                  for n, s in stages.items()}}
                    for name, s in stages.items():
                        print(f"{m:5g} min  {name:36s} {s['duration']:8.1f} s  "
                              f"{frames / s['duration']:8.1f} frames/s  "
                              f"replica RSS {s['rss_mb'] or 0:6.0f} MB", flush=True)
                    print(f"{m:5g} min  chain: {total:.1f} s, {frames / total:.1f} frames/s; "
                          f"{quality['cues']}/{quality['truth_cues']} cues, CER "
                          f"{quality['cer']:.4f}, worst timing "
                          f"{quality['worst_timing_frames']} frames", flush=True)
                short = lengths[0]
                stages_short = report["lengths"][str(short)]
                first = outputs[short]
                single = one_by_one(client, f"ocr-single-{short:g}",
                                    first["ffmpeg.crop_subtitle_images"]["cropped_images_path"],
                                    args.engine, short)
                stitched_ocr = stages_short["nodes"]["paddleocr.perform_ocr"]["duration"]
                a = texts_of(first["paddleocr.perform_ocr"]["ocr_results_path"])
                b = texts_of(single["ocr_results_path"])
                same = sum(a[f] == b.get(f) for f in a) / len(a)
                report["stitching"] = {
                    "minutes": short, "frames": stages_short["frames"],
                    "calls_stitched": stages_short["ocr_calls"],
                    "calls_one_by_one": single["ocr_calls"],
                    "calls_ratio": single["ocr_calls"] / stages_short["ocr_calls"],
                    "ocr_s_stitched": stitched_ocr, "ocr_s_one_by_one": single["ocr_s"],
                    "time_ratio": single["ocr_s"] / stitched_ocr,
                    "frames_read_alike": same}
        finally:
            graph.stop()
    print_summary(report, lengths)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def print_summary(report: dict[str, Any], lengths: list[float]) -> None:
    per = report["lengths"]
    short, long = str(lengths[0]), str(lengths[-1])
    print(f"\nengine {report['engine']}")
    for m in lengths:
        r = per[str(m)]
        print(f"{m:5g} min: {r['frames']} frames, chain {r['chain_s']:.1f} s = "
              f"{r['chain_fps']:.1f} frames/s; CER {r['cer']:.4f}; worst timing "
              f"{r['worst_timing_frames']} frames; {r['ocr_calls']} OCR calls")
    if short != long:
        ratio = (per[long]["chain_s"] / per[long]["frames"]) / \
            (per[short]["chain_s"] / per[short]["frames"])
        print(f"linearity (time per frame, {long}/{short} min): {ratio:.2f}")
        for name in CHAIN:
            a, b = per[short]["nodes"][name], per[long]["nodes"][name]
            node_ratio = (b["duration"] / per[long]["frames"]) / \
                (a["duration"] / per[short]["frames"])
            print(f"  {name:36s} {node_ratio:6.2f}   RSS {a['rss_mb'] or 0:.0f} -> "
                  f"{b['rss_mb'] or 0:.0f} MB")
    s = report["stitching"]
    print(f"stitching on {s['minutes']:g} min ({s['frames']} frames): "
          f"{s['calls_one_by_one']} calls one by one vs {s['calls_stitched']} stitched = "
          f"{s['calls_ratio']:.0f}x fewer; OCR time {s['ocr_s_one_by_one']:.1f} s vs "
          f"{s['ocr_s_stitched']:.1f} s = {s['time_ratio']:.1f}x; frames read the same "
          f"{s['frames_read_alike']:.3f}")


if __name__ == "__main__":
    main()
