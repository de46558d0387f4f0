"""Speech synthesis speed per engine: real-time factor (synthesis time / speech length).

    python bench/bench_tts.py [--sentences 40] [--rounds 3]

Speaks the Harvard sentences of tests/conversations.py with each engine available here,
in-process (the engine objects the node uses, without the service), and prints per
engine: median RTF over rounds, seconds of speech made, and the RTF of the node's other
per-segment work (fitting each sentence into a window 20 % shorter: librosa's time
stretch). Engines:
- espeak-ng `en-us` and `cmn` (Chinese characters);
- piper with the random test voice of scripts/piper_voice.py (a tiny ONNX graph, not a
  VITS: this is piper's runtime overhead — phonemes, ONNX Runtime session — not a real
  voice's speed; a real medium voice is a ~60 MB VITS), when the piper extra is installed;
- IndexTTS2 when REELSERVE_INDEXTTS_MODEL_DIR is set (it needs its weights and a GPU to be
  practical).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from nodes.families.tts import fit  # noqa: E402
from nodes.families.tts_engines import SpeechEngine, SpeechRequest, load_engine  # noqa: E402
from reuse.settings import Settings  # noqa: E402
from tests.conversations import SENTENCES  # noqa: E402

CHINESE = ["今天天气很好\uff0c我们去公园散步吧。", "这个视频的字幕需要重新翻译。",
           "请把音量调低一点\uff0c谢谢。", "会议将在下午三点准时开始。"]


def engines(tmp: Path) -> list[tuple[str, SpeechEngine, str | None, list[str]]]:
    found: list[tuple[str, SpeechEngine, str | None, list[str]]] = []
    espeak = load_engine("espeak", Settings(), "cpu")
    found += [("espeak en-us", espeak, "en-us", list(SENTENCES)),
              ("espeak cmn", espeak, "cmn", CHINESE * 10)]
    try:
        from piper_voice import make_random_voice

        voice = make_random_voice(tmp)
        found.append(("piper (random voice)",
                      load_engine("piper", Settings(piper_voice=voice), "cpu"), None,
                      list(SENTENCES)))
    except ImportError as exc:
        print(f"piper: not installed ({exc}); `pip install -e .[piper]`")
    settings = Settings()
    if settings.indextts_model_dir:
        found.append(("indextts2", load_engine("indextts2", settings, "cpu"), None,
                      list(SENTENCES)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'engine':24s} {'RTF (median)':>12s} {'speech s':>9s} {'fit RTF':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, engine, voice, texts in engines(Path(tmp)):
            texts = list(texts)[:args.sentences]
            request = SpeechRequest(voice=voice)
            engine.synthesize(texts[0], request)  # first call: library/session start-up
            rtfs, fits, speech = [], [], 0.0
            for _ in range(args.rounds):
                took, made, fitting = 0.0, 0.0, 0.0
                for text in texts:
                    t0 = time.perf_counter()
                    audio, sr = engine.synthesize(text, request)
                    took += time.perf_counter() - t0
                    made += len(audio) / sr
                    t0 = time.perf_counter()
                    fit(audio, sr, 0.8 * len(audio) / sr, max_speed=1.5)
                    fitting += time.perf_counter() - t0
                rtfs.append(took / made)
                fits.append(fitting / made)
                speech = made
            print(f"{label:24s} {statistics.median(rtfs):12.4f} {speech:9.1f} "
                  f"{statistics.median(fits):8.4f}", flush=True)


if __name__ == "__main__":
    main()
