"""indextts.generate_speech: text, or timed segments, to speech.

With `text`, that text is spoken into one file. Otherwise each segment of `segments_file`
(prepare_tts_segments' groups by default) is spoken into its own file, and one track is
laid out on the segments' timeline: speech shorter than its segment is padded with
silence; longer speech is time-stretched (up to `max_speed` times faster) and what still
does not fit is cut with a short fade. The track is written as it goes, a segment at a
time, so memory does not grow with the input's length.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from typing import Annotated, Any, Literal

import librosa
import numpy as np
import soundfile as sf
from pydantic import Field

from nodes.engines import EngineCache
from nodes.families.segments import Segment, read_segments, source_of
from nodes.families.tts_engines import (
    SpeechEngine,
    SpeechRequest,
    default_engine,
    load_engine,
)
from nodes.inputs import fetch_input
from nodes.spec import NodeParams, NodeSpec, RunContext
from reuse.errors import InputError, TooLarge
from reuse.settings import Settings
from reuse.storage import safe_name

Engine = Literal["espeak", "piper", "indextts2"]
# an espeak-ng voice (`en-us+f2`) or a piper voice's file stem: a name, never a path
Voice = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")]
MAX_SEGMENTS = 20_000
MAX_SEGMENT_CHARS = 2000  # ~2 minutes of speech: longer text belongs in several segments
CHARS_PER_SECOND = 40  # more text than this per second of track could never be heard
FADE_S = 0.02
ESPEAK_VARIANTS = ("", "+f2", "+m3", "+f4", "+m5", "+f3", "+m2", "+f1")  # one per speaker


def load(settings: Settings, device: str) -> EngineCache:
    """The replica's engines: the default loaded at start, others on first use."""
    engines = EngineCache(lambda name: load_engine(name, settings, device))
    engines.get(default_engine(settings))
    return engines


class SpeechParams(NodeParams):
    text: str | None = Field(default=None, min_length=1, description="Text to speak; when "
                             "given, segments are not read.")
    segments_file: str | None = Field(default=None, description="Timed segments to speak, "
                                      "one file each plus an aligned track.")
    engine: Engine | None = Field(default=None, description="`espeak`, `piper` or "
                                  "`indextts2`; default: REELSERVE_TTS_ENGINE.")
    voice: Voice | None = Field(default=None, description="espeak-ng voice (`en-us`, `cmn`, "
                                "`en-us+f2`) or piper voice name; default: by the text's "
                                "language.")
    voice_map: dict[str, Voice] = Field(
        default_factory=dict, max_length=64, description="Speaker label -> voice. Without it, "
        "espeak gives each speaker its own variant of the voice.")
    spk_audio_prompt: str | None = Field(default=None, description="Voice to clone "
                                         "(indextts2).")
    reference_audio: str | None = Field(default=None, description="Alias of spk_audio_prompt.")
    speaker_audio: str | None = Field(default=None, description="Alias of spk_audio_prompt.")
    emotion_reference: str | None = Field(default=None, description="Audio whose emotion "
                                          "to use (indextts2).")
    emotion_alpha: float = Field(default=0.65, ge=0.0, le=1.0, description="How strongly the "
                                 "emotion reference or text applies (indextts2).")
    emotion_vector: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = Field(
        default=None, min_length=8, max_length=8, description="8 weights in [0, 1]: happy, "
        "angry, sad, afraid, disgusted, melancholic, surprised, calm.")
    emotion_text: str | None = Field(default=None, description="Describe the emotion in words.")
    use_random: bool = Field(default=False, description="Sample the emotion (indextts2).")
    max_text_tokens_per_segment: int = Field(default=120, ge=20, le=600, description="Longer "
                                             "text is spoken in pieces of this many tokens "
                                             "(indextts2).")
    max_speed: float = Field(default=1.5, ge=1.0, le=4.0, description="Most a segment's "
                             "speech is sped up to fit its time.")
    output_filename: str = Field(default="speech", max_length=100, description="Base name of "
                                 "the audio file (reduced to [A-Za-z0-9._-]).")


def fit(audio: np.ndarray, sr: int, target: float, max_speed: float
        ) -> tuple[np.ndarray, str, float]:
    """Speech fitted to `target` seconds: (audio, how, speed-up)."""
    n = len(audio)
    want = max(1, round(target * sr))
    if n <= want:
        return np.concatenate([audio, np.zeros(want - n, np.float32)]), "padded", 1.0
    rate = min(n / want, max_speed)
    out = librosa.effects.time_stretch(audio, rate=rate).astype(np.float32)
    if len(out) <= want:
        return np.concatenate([out, np.zeros(want - len(out), np.float32)]), "stretched", rate
    fade = min(want, int(FADE_S * sr))
    out = out[:want].copy()
    out[want - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out, "truncated", rate


def voice_for(params: SpeechParams, engine: SpeechEngine, speaker: str | None,
              speakers: list[str], text: str) -> str:
    if speaker is not None and speaker in params.voice_map:
        return params.voice_map[speaker]
    voice = params.voice or engine.default_voice(text)
    if engine.name == "espeak" and speaker in speakers and "+" not in voice:
        voice += ESPEAK_VARIANTS[speakers.index(speaker) % len(ESPEAK_VARIANTS)]
    return voice


def request_for(params: SpeechParams, engine: SpeechEngine, ctx: RunContext) -> SpeechRequest:
    """What the engine needs besides text; reference audio is read only by engines that
    clone (so an upstream vocals path costs the others nothing)."""
    prompt = params.spk_audio_prompt or params.reference_audio or params.speaker_audio
    emotion: dict[str, Any] = {"emo_alpha": params.emotion_alpha, "use_random": params.use_random}
    if params.emotion_vector is not None:
        emotion["emo_vector"] = params.emotion_vector
    if params.emotion_text:
        emotion.update(use_emo_text=True, emo_text=params.emotion_text)
    if engine.clones_voice and params.emotion_reference:
        emotion["emo_audio_prompt"] = fetch_input(params.emotion_reference, ctx.workdir,
                                                  ctx.settings)
    cloned = fetch_input(prompt, ctx.workdir, ctx.settings) \
        if engine.clones_voice and prompt else None
    return SpeechRequest(voice=params.voice, spk_audio_prompt=cloned, emotion=emotion,
                         max_text_tokens_per_segment=params.max_text_tokens_per_segment)


def write_silence(track: sf.SoundFile, samples: int, sr: int) -> None:
    """Silence a minute at a time (a long gap is not held in memory at once)."""
    for lo in range(0, samples, sr * 60):
        track.write(np.zeros(min(sr * 60, samples - lo), np.float32))


def speak_segments(segments: list[Segment], params: SpeechParams, engine: SpeechEngine,
                   request: SpeechRequest, total: float, ctx: RunContext
                   ) -> tuple[str, float, int, list[dict[str, Any]]]:
    folder = ctx.workdir / "segments"
    folder.mkdir()
    speakers = sorted({s.speaker for s in segments if s.speaker})
    track_path = ctx.workdir / f"{safe_name(params.output_filename, 'speech')}.wav"
    report: list[dict[str, Any]] = []
    track: sf.SoundFile | None = None
    cursor, sr = 0, 0
    for i, seg in enumerate(segments):
        voice = voice_for(params, engine, seg.speaker, speakers, seg.text)
        audio, rate = engine.synthesize(seg.text, replace(request, voice=voice))
        if track is None:
            sr = rate
            track = sf.SoundFile(track_path, "w", samplerate=sr, channels=1,
                                 subtype="PCM_16")
        file = folder / f"segment_{i:04d}.wav"
        sf.write(file, audio, rate)
        if rate != sr:  # voices of one engine may differ in rate: the track keeps the first
            audio = librosa.resample(audio, orig_sr=rate, target_sr=sr)
        start = max(round(seg.start * sr), cursor)
        following = segments[i + 1].start if i + 1 < len(segments) else seg.end
        window = max(0.0, min(seg.end, following) - start / sr)
        fitted, how, speed = fit(audio, sr, window, params.max_speed)
        write_silence(track, start - cursor, sr)
        track.write(fitted)
        cursor = start + len(fitted)
        report.append({**seg.record(i, words=False), "voice": voice, "file": str(file),
                       "speech_duration": round(len(audio) / rate, 3), "fit": how,
                       "speed": round(speed, 3)})
        ctx.report_progress((i + 1) / len(segments))
    if track is None:  # nothing to say: a silent track of the input's length
        sr = 16000
        track = sf.SoundFile(track_path, "w", samplerate=sr, channels=1, subtype="PCM_16")
    end = max(cursor, round(total * sr))
    write_silence(track, end - cursor, sr)
    track.close()
    return str(track_path), end / sr, sr, report


def audio_length(value: Any) -> float:
    """The source's length from a segments file's metadata (0 when absent or unusable)."""
    try:
        total = float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0
    return total if math.isfinite(total) and total > 0 else 0.0


def check_text_budget(segments: list[Segment], total: float, max_track_s: float) -> None:
    """Bound the work before any of it: the track's length, each segment's text, and all
    the text against the time there is to say it (fast speech is 15-20 characters a
    second), so a small file cannot ask for hours of synthesis."""
    longest = max([total, *(s.end for s in segments)])
    if longest > max_track_s:  # the track is written to its end
        raise TooLarge(f"the segments reach {longest:.0f} s; the track may last at most "
                       f"{max_track_s:.0f} s")
    for i, seg in enumerate(segments):
        if len(seg.text) > MAX_SEGMENT_CHARS:
            raise InputError(f"segment {i} has {len(seg.text)} characters; at most "
                             f"{MAX_SEGMENT_CHARS} (regroup with wservice.prepare_tts_segments)")
    chars = sum(len(s.text) for s in segments)
    if chars > CHARS_PER_SECOND * longest + MAX_SEGMENT_CHARS:
        raise InputError(f"{chars} characters for a {longest:.0f} s track: more than "
                         f"{CHARS_PER_SECOND} a second cannot be spoken in that time")


def generate_speech(params: SpeechParams, ctx: RunContext) -> dict[str, Any]:
    engines: EngineCache = ctx.engine
    name = params.engine or default_engine(ctx.settings)
    engine: SpeechEngine = engines.get(name)
    request = request_for(params, engine, ctx)
    started = time.monotonic()
    common = {"engine": name, "voice_cloning": request.spk_audio_prompt is not None}
    if params.text is not None:
        audio, sr = engine.synthesize(params.text, request)
        out = ctx.workdir / f"{safe_name(params.output_filename, 'speech')}.wav"
        sf.write(out, audio, sr)
        return {**common, "audio_path": str(out), "duration": round(len(audio) / sr, 3),
                "sample_rate": sr, "text_length": len(params.text),
                "voices": [request.voice or engine.default_voice(params.text)],
                "segments_dir": None, "segments_count": 0, "alignment_file": None,
                "fit_summary": {}, "processing_time": round(time.monotonic() - started, 3)}
    assert params.segments_file
    segments, meta = read_segments(params.segments_file, ctx)
    segments = [s for s in segments if s.text.strip()]
    if len(segments) > MAX_SEGMENTS:
        raise TooLarge(f"{len(segments)} segments; at most {MAX_SEGMENTS} per run")
    total = audio_length(meta.get("total_duration"))
    check_text_budget(segments, total, ctx.settings.max_media_duration_s)
    track, duration, sr, report = speak_segments(segments, params, engine, request, total, ctx)
    alignment = ctx.workdir / "alignment.json"
    alignment.write_text(json.dumps({"source": source_of(meta["path"], ctx),
                                     "sample_rate": sr, "segments": report},
                                    ensure_ascii=False, indent=2))
    fits = [r["fit"] for r in report]
    return {**common, "audio_path": track, "duration": round(duration, 3), "sample_rate": sr,
            "text_length": sum(len(s.text) for s in segments),
            "voices": sorted({r["voice"] for r in report}),
            "segments_dir": str(ctx.workdir / "segments"), "segments_count": len(report),
            "alignment_file": str(alignment),
            "fit_summary": {k: fits.count(k) for k in ("padded", "stretched", "truncated")},
            "processing_time": round(time.monotonic() - started, 3)}


SPECS = (
    NodeSpec(
        name="indextts.generate_speech", family="indextts",
        summary="Text or timed segments to speech (espeak-ng, piper or IndexTTS2).",
        params=SpeechParams, run=generate_speech, load=load,
        reuse_keys=("audio_path",),
        outputs=("audio_path", "duration", "sample_rate", "text_length", "engine", "voices",
                 "voice_cloning", "segments_dir", "segments_count", "alignment_file",
                 "fit_summary", "processing_time"),
        upstream={
            "segments_file": (("wservice.prepare_tts_segments", "tts_segments_file"),),
            "spk_audio_prompt": (("audio_separator.separate_vocals", "vocal_audio"),
                                 ("ffmpeg.extract_audio", "audio_path")),
        },
        required=("text|segments_file",),
        file_params=("segments_file", "spk_audio_prompt", "reference_audio", "speaker_audio",
                     "emotion_reference"),
        num_cpus=0.1, num_gpus=0.15, max_concurrent_runs=1,
    ),
)
