"""How well the embedded diarization counts and follows speakers, on generated
conversations (tests/conversations.py: 1-4 espeak-ng voices taking turns at random).

    python bench/bench_diarization.py [--seeds 6]

For each voice count (1..4) and seed, a conversation of 30 s, 1, 2, 4, 8, 15 min (one
length per seed, cycling) is diarized with the count estimated; prints per conversation
the speakers found and the DER (pyannote-metrics, no collar), then how many counts were
exact and the median DER per voice count. The engine's real-time factor is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nodes.families import diarize_embedded
from tests.conversations import write_conversation
from tests.test_speech_engines import der_of

LENGTHS = (30, 60, 120, 240, 480, 900)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    rows: list[tuple[int, float, int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for voices in (1, 2, 3, 4):
            for seed in range(args.seeds):
                seconds = LENGTHS[seed % len(LENGTHS)]
                wav = Path(tmp) / f"c{voices}_{seed}.wav"
                said = write_conversation(wav, voices, seconds, seed=100 + seed)
                duration = sf.info(wav).duration
                started = time.perf_counter()
                turns = diarize_embedded.diarize(wav)
                rtf = (time.perf_counter() - started) / duration
                found = len({t[2] for t in turns})
                der = der_of(said, turns, duration)
                rows.append((voices, duration, found, der, rtf))
                print(f"{voices} voices {duration:6.0f} s: {found} found, DER {der:.3f}, "
                      f"RTF {rtf:.4f}", flush=True)
    exact = sum(found == voices for voices, _, found, _, _ in rows)
    print(f"\nexact counts: {exact} of {len(rows)}")
    for voices in (1, 2, 3, 4):
        ders = [der for v, _, _, der, _ in rows if v == voices]
        print(f"{voices} voices: median DER {statistics.median(ders):.3f}, worst {max(ders):.3f}")
    print(f"median RTF {statistics.median(r[4] for r in rows):.4f}")


if __name__ == "__main__":
    main()
