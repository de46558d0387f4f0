"""The speech engines' real code paths, without Ray: the node run functions with the
engines their replicas load (`spec.load`), on speech made by espeak-ng and on pyannote's
two-speaker sample with its reference RTTM.

WER and DER are printed (`pytest -s`) and bounded; the bounds sit above the figures
measured on this kind of machine (README "Engines"), so a regression fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pytest
import soundfile as sf

from nodes import registry
from nodes.espeak import write_speech
from nodes.spec import RunContext
from reuse.settings import Settings
from tests.conftest import make_settings
from tests.conversations import Said

SENTENCES = [
    ("en-us", "The quick brown fox jumps over the lazy dog."),
    ("en-us+f2", "Please call Stella and ask her to bring these things with her from "
                   "the store."),
    ("en-us", "Six spoons of fresh snow peas and five thick slabs of blue cheese."),
    ("en-us+f2", "We also need a small plastic snake and a big toy frog for the kids."),
]


@pytest.fixture(scope="module")
def engine_settings(tmp_path_factory: pytest.TempPathFactory, test_models: Path) -> Settings:
    return make_settings("redis://unused", tmp_path_factory.mktemp("share"),
                         pyannote_pipeline=str(test_models / "pyannote-random"),
                         demucs_repo=test_models / "demucs-random",
                         demucs_model="htdemucs_random")


@pytest.fixture(scope="module")
def dialogue(engine_settings: Settings) -> tuple[Path, list[tuple[float, float, str]]]:
    path = engine_settings.storage_root / "dialogue.wav"
    return path, write_speech(path, SENTENCES)


class RecordingContext(RunContext):
    """A RunContext that keeps every progress report (what the heartbeat would send)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.reports: list[float] = []

    def report_progress(self, fraction: float) -> None:
        self.reports.append(fraction)
        super().report_progress(fraction)


def run_node(name: str, settings: Settings, params: dict[str, Any], engine: Any = None,
             tag: str = "t") -> tuple[dict[str, Any], list[float]]:
    """Run a node's function as its replica would; its output and progress reports."""
    spec = registry.BY_NAME[name]
    workdir = settings.storage_root / "jobs" / tag / name
    workdir.mkdir(parents=True, exist_ok=True)
    if engine is None and spec.load:
        engine = spec.load(settings, "cpu")
    ctx = RecordingContext(task_id=tag, task_name=name, attempt=1, workdir=workdir,
                           settings=settings, engine=engine)
    out = spec.run(spec.params.model_validate(params), ctx)
    assert set(out) == set(spec.outputs)
    assert ctx.progress > 0.5  # progress was reported while it ran
    return out, ctx.reports


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after Whisper's English normalizer (whisper-normalizer): case,
    punctuation, numbers ("six" = "6"), contractions, British/American spellings and
    fillers do not count as errors."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalize = EnglishTextNormalizer()
    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


def test_random_whisper_model_loads_and_decodes(engine_settings: Settings, test_models: Path,
                                                dialogue: tuple[Path, Any]) -> None:
    settings = engine_settings.model_copy(
        update={"whisper_model": str(test_models / "whisper-random")})
    out, _ = run_node("faster_whisper.transcribe_audio", settings,
                   {"audio_path": str(dialogue[0]), "beam_size": 1, "temperature": 0.0})
    data = json.loads(Path(out["segments_file"]).read_text())
    assert out["model_name"] == "whisper-random" and out["device"] == "cpu"
    assert data["metadata"]["model_name"] == "whisper-random"
    assert out["audio_duration"] == pytest.approx(sf.info(dialogue[0]).duration, abs=0.05)
    assert out["segments_count"] == len(data["segments"]) > 0  # random text, but decoded
    assert any(s["words"] for s in data["segments"])  # word timestamps ran


def test_real_tiny_model_transcribes_speech_with_bounded_wer(
        engine_settings: Settings, dialogue: tuple[Path, Any]) -> None:
    out, reports = run_node("faster_whisper.transcribe_audio", engine_settings,
                            {"audio_path": str(dialogue[0]), "language": "en",
                             "vad_filter": True})
    data = json.loads(Path(out["segments_file"]).read_text())
    said = " ".join(text for _, text in SENTENCES)
    heard = " ".join(s["text"] for s in data["segments"])
    score = wer(said, heard)
    print(f"\nWER {score:.3f} (tiny.en int8, espeak-ng speech, {out['audio_duration']} s)\n"
          f"  said:  {said}\n  heard: {heard}")
    assert out["language"] == "en" and out["model_name"] == "tiny.en"
    assert score <= 0.4  # measured 0.27 here
    # progress is the share of audio done, reported segment by segment
    inside = [p for p in reports if 0 < p < 1]
    assert len(inside) >= len(SENTENCES) - 1 and inside == sorted(inside)
    words = [w for s in data["segments"] for w in s["words"]]
    assert all(0 <= w["start"] <= w["end"] <= out["audio_duration"] + 0.5 for w in words)
    assert data["statistics"]["total_words"] == len(words)


def test_real_tiny_model_on_real_human_speech(engine_settings: Settings) -> None:
    """pyannote's sample: 30 s of a real two-person telephone call, with the timed
    transcript pyannote ships next to it (`sample.stm`)."""
    import pyannote.audio

    wav, _ = sample_clip(engine_settings.storage_root)
    stm = Path(os.path.dirname(pyannote.audio.__file__)) / "sample" / "sample.stm"
    said = " ".join(line.split(maxsplit=5)[5] for line in stm.read_text().splitlines()
                    if line.strip())
    out, _ = run_node("faster_whisper.transcribe_audio", engine_settings,
                      {"audio_path": str(wav), "language": "en"}, tag="human")
    heard = " ".join(s["text"] for s in
                     json.loads(Path(out["segments_file"]).read_text())["segments"])
    score = wer(said, heard)
    print(f"\nWER {score:.3f} (tiny.en int8, real telephone speech, 30 s)\n"
          f"  said:  {said}\n  heard: {heard}")
    assert score <= 0.25  # measured 0.115 here


def sample_clip(root: Path) -> tuple[Path, Any]:
    """pyannote's two-speaker sample (30 s) copied under the storage root, and its RTTM."""
    import pyannote.audio
    from pyannote.database.util import load_rttm

    folder = Path(os.path.dirname(pyannote.audio.__file__)) / "sample"
    wav = root / "sample.wav"
    shutil.copy(folder / "sample.wav", wav)
    return wav, load_rttm(str(folder / "sample.rttm"))["sample"]


def der(reference: Any, turns: list[dict[str, Any]], duration: float) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    hypothesis = Annotation()
    for t in turns:
        hypothesis[Segment(t["start"], t["end"])] = t["speaker"]
    return float(DiarizationErrorRate()(reference, hypothesis, uem=Segment(0, duration)))


def test_embedded_diarization_on_a_real_two_speaker_clip(engine_settings: Settings) -> None:
    wav, reference = sample_clip(engine_settings.storage_root)
    duration = sf.info(wav).duration
    out, _ = run_node("pyannote_audio.diarize_speakers", engine_settings,
                   {"audio_path": str(wav), "num_speakers": 2})
    data = json.loads(Path(out["diarization_file"]).read_text())
    score = der(reference, data["segments"], duration)
    speech = [{"start": s.start, "end": s.end, "speaker": "one"}
              for s in reference.get_timeline().support()]
    baseline = der(reference, speech, duration)  # every reference speech second, one label
    print(f"\nDER embedded {score:.3f} vs one-speaker-over-true-speech {baseline:.3f}")
    assert out["detected_speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert out["total_speakers"] == 2 and data["total_speakers"] == 2
    assert score <= 0.30 and score < baseline - 0.1
    unaided, _ = run_node("pyannote_audio.diarize_speakers", engine_settings,
                       {"audio_path": str(wav)}, tag="unaided")
    turns = json.loads(Path(unaided["diarization_file"]).read_text())["segments"]
    score = der(reference, turns, duration)
    print(f"DER embedded, speaker count estimated: {score:.3f} "
          f"({unaided['total_speakers']} speakers)")
    # the two callers share a pitch register and their timbres do not clearly split by
    # MFCCs: the estimate keeps them together (README "Engines"); never more than two
    assert unaided["total_speakers"] in (1, 2) and score <= 0.5


def test_embedded_diarization_counts_one_clean_voice(engine_settings: Settings) -> None:
    path = engine_settings.storage_root / "monologue.wav"
    write_speech(path, [("en-us", text) for _, text in SENTENCES[:3]])
    out, _ = run_node("pyannote_audio.diarize_speakers", engine_settings,
                   {"audio_path": str(path)}, tag="mono")
    assert out["detected_speakers"] == ["SPEAKER_00"]


def test_embedded_diarization_finds_two_voices_unaided(
        engine_settings: Settings, dialogue: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    path, turns = dialogue
    out, _ = run_node("pyannote_audio.diarize_speakers", engine_settings,
                   {"audio_path": str(path)}, tag="auto")
    data = json.loads(Path(out["diarization_file"]).read_text())
    assert out["total_speakers"] == 2
    # each reference turn is mostly one label, and the two voices get different labels
    def label_of(start: float, end: float) -> str:
        overlap: dict[str, float] = {}
        for t in data["segments"]:
            o = min(end, t["end"]) - max(start, t["start"])
            if o > 0:
                overlap[t["speaker"]] = overlap.get(t["speaker"], 0.0) + o
        return max(overlap, key=lambda k: overlap[k])

    labels = {voice: {label_of(s, e) for s, e, v in turns if v == voice} for voice in
              ("en-us", "en-us+f2")}
    assert all(len(v) == 1 for v in labels.values()) and labels["en-us"] != labels["en-us+f2"]


def test_pyannote_pipeline_from_random_local_checkpoints(engine_settings: Settings) -> None:
    wav, _ = sample_clip(engine_settings.storage_root)
    out, _ = run_node("pyannote_audio.diarize_speakers", engine_settings,
                   {"audio_path": str(wav), "engine": "pyannote"}, tag="pya")
    data = json.loads(Path(out["diarization_file"]).read_text())
    assert out["engine"] == "pyannote"
    assert data["metadata"]["model"] == "pyannote:pyannote-random"
    # labels are what the pipeline's annotation carried, not made up from a count
    assert all(s["speaker"].startswith("SPEAKER_") for s in data["segments"])
    assert out["detected_speakers"] == sorted({s["speaker"] for s in data["segments"]})
    assert out["total_segments"] == len(data["segments"])


def test_demucs_engine_from_a_local_repo(engine_settings: Settings) -> None:
    path = engine_settings.storage_root / "mix.wav"  # mono 22.05 kHz: the engine converts
    t = np.arange(3 * 22050) / 22050
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 330 * t),
             22050)
    out, _ = run_node("audio_separator.separate_vocals", engine_settings,
                   {"audio_path": str(path), "model_type": "demucs"}, tag="dmx")
    assert out["engine"] == "demucs" and out["model_used"] == "htdemucs_random"
    vocals, sr = sf.read(out["vocal_audio"], always_2d=True)
    rest, _ = sf.read(out["instrumental_audio"], always_2d=True)
    # the model's rate and channels (random weights: the stems themselves are noise)
    assert sr == 44100 and vocals.shape == rest.shape == (3 * 44100, 2)
    assert np.isfinite(vocals).all() and np.abs(vocals).max() > 0


def test_demucs_runs_long_audio_a_minute_at_a_time(engine_settings: Settings) -> None:
    """150 s go through demucs in blocks (its input and four stems never held whole):
    every sample comes out, once, and progress follows the blocks."""
    from nodes.families.blocks import block_bounds
    from nodes.families.separation import DEMUCS_BLOCK_S

    path = engine_settings.storage_root / "long_mix.wav"
    t = np.arange(150 * 44100) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
    sf.write(path, np.stack([tone, np.roll(tone, 100)], axis=1), 44100)
    out, reports = run_node("audio_separator.separate_vocals", engine_settings,
                            {"audio_path": str(path), "model_type": "demucs"}, tag="dmx-long")
    vocals, sr = sf.read(out["vocal_audio"], always_2d=True)
    rest, _ = sf.read(out["instrumental_audio"], always_2d=True)
    assert sr == 44100 and vocals.shape == rest.shape == (150 * 44100, 2)
    assert np.isfinite(vocals).all() and np.isfinite(rest).all()
    blocks = len(block_bounds(150 * 44100, int(DEMUCS_BLOCK_S * 44100))) - 1
    assert blocks >= 2 and len([r for r in reports if 0.2 < r < 0.96]) >= blocks


def test_embedded_diarization_survives_digital_silence_inside_speech(tmp_path: Path) -> None:
    """Exact-zero runs inside speech regions (synthetic or gated audio) give frames of zero
    variance; the speaker models must still fit (regression: a CI run failed here)."""
    from nodes.espeak import synthesize
    from nodes.families import diarize_embedded

    pieces = []
    for voice, text in (("en-us", "Good morning, this is the first speaker talking."),
                        ("en-us+f2", "And this is the second speaker, answering back."),
                        ("en-us", "Thank you, that is all for today.")):
        audio, sr = synthesize(text, voice=voice)
        audio = librosa.resample(audio, orig_sr=sr, target_sr=16000)
        for i in range(0, len(audio), 8000):  # 0.5 s of speech, then 0.15 s of exact zeros
            pieces += [audio[i:i + 8000], np.zeros(2400, dtype=np.float32)]
    sf.write(tmp_path / "gated.wav", np.concatenate(pieces), 16000, subtype="FLOAT")
    turns = diarize_embedded.diarize(tmp_path / "gated.wav", num_speakers=2)
    assert {t[2] for t in turns} == {"SPEAKER_00", "SPEAKER_01"}


def test_embedded_diarization_finds_two_voices_in_a_short_clip(engine_settings: Settings) -> None:
    """Five seconds, few analysis windows (a CI run once counted one speaker here)."""
    path = engine_settings.storage_root / "short.wav"
    write_speech(path, [("en-us", "Hello, this is the reelserve speech example."),
                        ("en-us+f2", "And here a second voice answers.")])
    out, _ = run_node("pyannote_audio.diarize_speakers", engine_settings,
                      {"audio_path": str(path)}, tag="short")
    assert out["detected_speakers"] == ["SPEAKER_00", "SPEAKER_01"]


def der_of(reference: list[tuple[float, float, str]] | list[Said],
           turns: list[tuple[float, float, str]], duration: float) -> float:
    from pyannote.core import Annotation, Segment

    truth = Annotation()
    for start, end, voice, *_ in reference:
        truth[Segment(start, end)] = voice
    return der(truth, [{"start": s, "end": e, "speaker": v} for s, e, v in turns], duration)


@pytest.mark.parametrize(("speakers", "seconds", "seed"), [
    (1, 90, 8), (2, 30, 0), (2, 120, 2), (3, 60, 3), (3, 120, 4), (4, 120, 5), (4, 300, 6)])
def test_embedded_diarization_counts_and_follows_generated_conversations(
        tmp_path: Path, speakers: int, seconds: int, seed: int) -> None:
    """Conversations of 1-4 espeak-ng voices taking turns in random order (known turns).
    One or two voices are counted exactly; with three or four the estimate is less sure
    (voices of one pitch register are told apart by timbre only when it clearly differs:
    README "Engines", bench/bench_diarization.py). With the count given, the turns follow
    the voices closely."""
    from nodes.families import diarize_embedded
    from tests.conversations import write_conversation

    wav = tmp_path / "conversation.wav"
    reference = write_conversation(wav, speakers, seconds, seed)
    duration = sf.info(wav).duration
    turns = diarize_embedded.diarize(wav)
    found, score = len({t[2] for t in turns}), der_of(reference, turns, duration)
    given = der_of(reference, diarize_embedded.diarize(wav, num_speakers=speakers), duration)
    print(f"\n{speakers} voices, {seconds} s: {found} found, DER {score:.3f}; "
          f"count given: DER {given:.3f}")
    assert given <= 0.15
    if speakers <= 2:
        assert found == speakers and score <= 0.15
    else:  # never collapsed to one voice, at most one invented
        assert 2 <= found <= speakers + 1 and score <= 0.45


def test_embedded_diarization_tells_two_voices_of_different_pitch_apart(tmp_path: Path) -> None:
    """The reported case: en-us and en-gb-x-rp at pitch 20 taking turns for 30 s came back as
    one speaker (their timbre is alike; their pitch is not)."""
    from nodes.espeak import synthesize
    from nodes.families import diarize_embedded

    lines = ["The quick brown fox jumps over the lazy dog.",
             "Please call Stella and ask her to bring these things with her from the store.",
             "Six spoons of fresh snow peas and five thick slabs of blue cheese.",
             "We also need a small plastic snake and a big toy frog for the kids."]
    pieces, reference, t = [], [], 0.0
    for i in range(8):
        voice, pitch = (("en-us", 50), ("en-gb-x-rp", 20))[i % 2]
        audio, sr = synthesize(lines[i % 4], voice=voice, pitch=pitch)
        audio = librosa.resample(audio, orig_sr=sr, target_sr=16000)
        reference.append((t, t + len(audio) / 16000, voice))
        pieces += [audio, np.zeros(6400, dtype=np.float32)]
        t += (len(audio) + 6400) / 16000
    wav = tmp_path / "pair.wav"
    sf.write(wav, np.concatenate(pieces), 16000)
    turns = diarize_embedded.diarize(wav)
    score = der_of(reference, turns, t)
    print(f"\nen-us / en-gb-x-rp@20: DER {score:.3f}")
    assert {v for _, _, v in turns} == {"SPEAKER_00", "SPEAKER_01"} and score <= 0.1
