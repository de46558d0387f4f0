"""Write an English two-voice sample clip (espeak-ng, offline) under the storage root.

    python scripts/make_sample.py [PATH]    (default: run/share/inputs/english_dialogue.wav)

For trying the speech nodes without a clip of your own (README walk-through).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nodes.espeak import write_speech

TURNS = [
    ("en-us", "Hello and welcome. Today we are testing a speech pipeline."),
    ("en-us+f2", "Thanks. I will read a few sentences so that we have two voices."),
    ("en-us", "The quick brown fox jumps over the lazy dog."),
    ("en-us+f2", "Six spoons of fresh snow peas and five thick slabs of blue cheese."),
]

if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "run/share/inputs/english_dialogue.wav")
    for start, end, voice in write_speech(path, TURNS):
        print(f"{start:6.2f} {end:6.2f} {voice}")
    print(path.resolve())
