"""Generated conversations with known turns (espeak-ng voices), for diarization tests and
the long-media bench. Each (voice, sentence) is synthesised once and reused, and the file
is written turn by turn, so an hour costs little time and flat memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from nodes.espeak import synthesize

SR = 16000
# (espeak voice, pitch 0-100): distinct speakers, as a listener would hear them
VOICES = (("en-us", 50), ("en-gb-x-rp", 20), ("en-us+f2", 60), ("en-gb-scotland+m3", 35))
# Harvard sentences (IEEE 1969, public domain)
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
)

Reference = list[tuple[float, float, str]]


class Voices:
    """Synthesised sentences at SR, cached per (voice, pitch, sentence)."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, int, str], np.ndarray] = {}

    def say(self, voice: tuple[str, int], text: str) -> np.ndarray:
        key = (*voice, text)
        if key not in self.cache:
            import librosa

            audio, sr = synthesize(text, voice=voice[0], pitch=voice[1])
            self.cache[key] = librosa.resample(audio, orig_sr=sr, target_sr=SR)
        return self.cache[key]


def write_conversation(path: Path, speakers: int, seconds: float, seed: int = 0,
                       gap_s: tuple[float, float] = (0.3, 0.8),
                       sentences_per_turn: tuple[int, int] = (1, 3)) -> Reference:
    """A 16 kHz mono WAV of `speakers` voices taking turns (random order, never the same
    voice twice in a row) for about `seconds`; returns the turns as (start, end, voice)."""
    rng = np.random.default_rng(seed)
    voices, cast = Voices(), VOICES[:speakers]
    reference: Reference = []
    t, last = 0, -1
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as out:
        while t < seconds * SR:
            who = int(rng.integers(len(cast)))
            if who == last and len(cast) > 1:
                who = (who + 1) % len(cast)
            last = who
            count = int(rng.integers(sentences_per_turn[0], sentences_per_turn[1] + 1))
            lines = [SENTENCES[int(i)] for i in rng.integers(len(SENTENCES), size=count)]
            speech = np.concatenate([voices.say(cast[who], line) for line in lines])
            gap = np.zeros(int(rng.uniform(*gap_s) * SR), dtype=np.float32)
            reference.append((t / SR, (t + len(speech)) / SR, cast[who][0]))
            out.write(np.concatenate([speech, gap]))
            t += len(speech) + len(gap)
    return reference
