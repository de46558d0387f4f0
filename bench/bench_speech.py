"""Speech bench, side by side in one run on this machine.

    python bench/bench_speech.py [--seconds 60] [--rounds 5]

Prints:
1. transcription of the same clip with the same model and options, through the service
   (POST /v1/tasks -> SUCCESS seen in /status, a fresh task_id each round) vs faster-whisper
   called directly in this process; rounds alternate so both share the machine's noise;
   the figure is the median of the per-round ratios (target <= 1.15 for a 60 s clip);
2. what keeping the model loaded buys: a cold run in a fresh process (import + load +
   transcribe, what a per-task subprocess costs) vs the warm in-process transcription;
3. diarization real-time factor (processing time / audio duration) of each engine on the
   same clip: embedded, and pyannote with a random pipeline at community-1's architecture
   sizes (compute of the real models; its output is meaningless).
The clip is English speech from espeak-ng, two voices taking turns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_graph import LocalGraph

LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas and five thick slabs of blue cheese.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will go meet her on Wednesday.",
]
OPTIONS: dict[str, Any] = {"language": "en", "beam_size": 3, "word_timestamps": True}


def make_clip(path: Path, seconds: float, gap_s: float = 0.4) -> float:
    """Turns of two voices until the last one ends at `seconds` or later; written once."""
    import soundfile as sf

    from nodes.espeak import synthesize, write_speech

    lengths: dict[tuple[str, str], float] = {}
    turns: list[tuple[str, str]] = []
    end = 0.0
    while end < seconds:
        i = len(turns)
        turn = ("en-us" if i % 2 == 0 else "en-us+f2", LINES[i % len(LINES)])
        if turn not in lengths:
            audio, sr = synthesize(turn[1], voice=turn[0])
            lengths[turn] = len(audio) / sr
        start = end + gap_s if turns else 0.0
        end = start + lengths[turn]
        turns.append(turn)
    write_speech(path, turns, gap_s=gap_s)
    return float(sf.info(path).duration)


COLD = """
import json, sys, time
t0 = time.perf_counter()
from faster_whisper import WhisperModel
m = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", local_files_only=True)
segs, _ = m.transcribe(sys.argv[2], **json.loads(sys.argv[3]))
list(segs)
print(time.perf_counter() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from faster_whisper import WhisperModel, decode_audio

    from nodes.families import diarize_embedded
    from nodes.families.diarize_pyannote import PyannoteDiarizer
    from nodes.families.whisper import bundled_model_dir

    root = Path(tempfile.mkdtemp(prefix="rs-speech-"))
    clip = root / "inputs" / "clip.wav"
    duration = make_clip(clip, args.seconds)
    model_dir = str(bundled_model_dir())

    # --- 1. service vs direct -------------------------------------------------------------
    graph = LocalGraph(root, nodes=["faster_whisper.transcribe_audio"])
    base = graph.start()
    settings = graph.settings
    direct_model = WhisperModel(model_dir, device="cpu", compute_type="int8",
                                local_files_only=True)

    def direct() -> float:
        t0 = time.perf_counter()
        segs, _ = direct_model.transcribe(str(clip), **OPTIONS)
        list(segs)
        return time.perf_counter() - t0

    def service(c: httpx.Client, task_id: str) -> float:
        body = {"task_name": "faster_whisper.transcribe_audio", "task_id": task_id,
                "input_data": {"audio_path": str(clip), **OPTIONS}}
        t0 = time.perf_counter()
        assert c.post("/v1/tasks", json=body).status_code == 202
        while True:
            stage = c.get(f"/v1/tasks/{task_id}/status").json()["stages"][
                "faster_whisper.transcribe_audio"]
            if stage["status"] in ("SUCCESS", "FAILED"):
                assert stage["status"] == "SUCCESS", stage
                return time.perf_counter() - t0
            time.sleep(0.01)

    with httpx.Client(base_url=base, timeout=60) as c:
        service(c, "warmup")
        direct()
        pairs = []
        for i in range(args.rounds):
            d = direct()
            s = service(c, f"bench-{i}")
            pairs.append((s, d))
    graph.stop()

    # --- 2. cold process vs model kept loaded ---------------------------------------------
    cold = [float(subprocess.run([sys.executable, "-c", COLD, model_dir, str(clip),
                                  json.dumps(OPTIONS)],
                                 check=True, capture_output=True, text=True).stdout)
            for _ in range(3)]
    warm = [direct() for _ in range(3)]

    # --- 3. diarization real-time factor --------------------------------------------------
    models = root / "models"
    subprocess.run([sys.executable, "scripts/make_test_models.py", str(models),
                    "pyannote-full"], check=True, capture_output=True,
                   cwd=Path(__file__).resolve().parent.parent)
    wav16k = root / "clip16k.wav"  # what the node hands its engine
    sf.write(wav16k, decode_audio(str(clip), sampling_rate=16000), 16000, subtype="FLOAT")
    pyannote = PyannoteDiarizer(settings.model_copy(update={
        "pyannote_pipeline": str(models / "pyannote-random-full")}), "cpu")
    rtf: dict[str, list[float]] = {"embedded": [], "pyannote": []}
    for _ in range(3):
        for name, engine in (("embedded", diarize_embedded), ("pyannote", pyannote)):
            t0 = time.perf_counter()
            engine.diarize(wav16k)
            rtf[name].append((time.perf_counter() - t0) / duration)

    m = statistics.median
    ratios = [s / d for s, d in pairs]
    print(f"\nreelserve speech bench ({os.cpu_count()} CPUs; clip {duration:.1f} s of espeak "
          f"speech; tiny.en int8 on CPU; medians)")
    print(f"transcription   service {m(s for s, _ in pairs):6.2f} s   direct "
          f"{m(d for _, d in pairs):6.2f} s   ratio {m(ratios):.3f} "
          f"(per round: {', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"model loaded    cold process {m(cold):6.2f} s   warm {m(warm):6.2f} s   "
          f"speed-up x{m(cold) / m(warm):.2f}")
    for name, values in rtf.items():
        print(f"diarization     {name:9} RTF {m(values):.3f}  "
              f"({m(values) * duration:.2f} s for {duration:.1f} s)")


if __name__ == "__main__":
    main()
