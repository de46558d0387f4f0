"""Generated conversations with known turns (espeak-ng voices) and videos of them, for
the diarization tests, the long-input tests and the long-media bench. Each (voice,
sentence) is synthesised once and reused, and files are written a block at a time, so an
hour costs little time and flat memory.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import NamedTuple

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
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
    "A king ruled the state in the early days.",
    "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.",
    "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.",
    "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.",
    "Hop over the fence and plunge in.",
    "The friendly gang left the drug store.",
    "Mesh wire keeps chicks inside.",
    "The frosty air passed through the coat.",
    "The crooked maze failed to fool the mouse.",
    "Adding fast leads to wrong sums.",
    "The show was a flop from the very start.",
    "A saw is a tool used for making boards.",
    "The wagon moved on well oiled wheels.",
    "March the soldiers past the next hill.",
    "A cup of sugar makes sweet fudge.",
    "Place a rosebush near the porch steps.",
    "Both lost their lives in the raging storm.",
)

class Said(NamedTuple):
    """One turn of a generated conversation."""

    start: float
    end: float
    voice: str
    text: str


Reference = list[Said]


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
    voice twice in a row) for about `seconds`; returns what was said, when, by whom."""
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
            reference.append(Said(t / SR, (t + len(speech)) / SR, cast[who][0], " ".join(lines)))
            out.write(np.concatenate([speech, gap]))
            t += len(speech) + len(gap)
    return reference


def make_talk_video(folder: Path, seconds: float, speakers: int = 3, seed: int = 0,
                    size: str = "320x180", fps: int = 25) -> tuple[Path, Path]:
    """A video (H.264 + AAC stereo 44.1 kHz) of a conversation over a repeating chord
    pattern and noise, and a JSON of its speech turns (`segments` with start, end,
    speaker: what split_audio_segments reads). Written in 10 s blocks: flat memory."""
    from nodes.media import ffmpeg_binary

    rate = 44100
    folder.mkdir(parents=True, exist_ok=True)
    speech, soundtrack = folder / "speech.wav", folder / "soundtrack.wav"
    turns = write_conversation(speech, speakers, seconds, seed=seed)
    rng = np.random.default_rng(seed)
    beat = np.arange(rate // 2) / rate
    chord = sum(np.sin(2 * np.pi * f * beat) for f in (110.0, 165.0, 220.0, 330.0))
    chord = (chord * np.exp(-6 * beat) * 0.05).astype(np.float32)
    with sf.SoundFile(speech) as voice, sf.SoundFile(soundtrack, "w", rate, 2) as out:
        for block in voice.blocks(blocksize=SR * 10, dtype="float32"):
            up = np.interp(np.arange(len(block) * rate // SR) * SR / rate,
                           np.arange(len(block)), block).astype(np.float32)
            music = np.tile(chord, len(up) // len(chord) + 1)[:len(up)]
            mix = 0.8 * up + music + rng.normal(0, 0.005, len(up)).astype(np.float32)
            out.write(np.stack([mix + 0.3 * music, mix - 0.3 * music], axis=1))
    name = f"talk_{seconds:g}s"
    video = folder / f"{name}.mkv"
    subprocess.run([
        ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
        "-i", str(soundtrack), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
        "yuv420p", "-c:a", "aac", "-b:a", "128k", "-shortest", str(video)], check=True)
    speech.unlink()
    soundtrack.unlink()
    subs = folder / f"{name}_turns.json"
    subs.write_text(json.dumps({"segments": [  # the video stops at `seconds`
        {"start": t.start, "end": min(t.end, seconds), "speaker": t.voice, "text": t.text}
        for t in turns if t.start < seconds]}))
    return video, subs
