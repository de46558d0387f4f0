"""pyannote_audio.*: who spoke when, and two nodes that read the diarization file.

`diarize_speakers` runs one of two engines, each loaded once per replica: `embedded`
(classical VAD + MFCC + clustering, no weights; `diarize_embedded.py`) or `pyannote`
(pyannote.audio's pipeline; `diarize_pyannote.py`). The default comes from
REELSERVE_DIARIZATION_ENGINE; a request may pick the other (loaded on first use).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any, Literal

import soundfile as sf
from pydantic import BaseModel, Field, model_validator

from nodes.engines import EngineCache
from nodes.families import diarize_embedded
from nodes.inputs import fetch_input
from nodes.media import decode_to_wav, ffmpeg_binary, open_input
from nodes.spec import NodeParams, NodeSpec, RunContext, Source
from reuse.errors import InputError
from reuse.settings import Settings

Engine = Literal["embedded", "pyannote"]


class Turn(BaseModel):
    start: float
    end: float
    speaker: str
    duration: float


class DiarizationFile(BaseModel):
    audio_path: str
    total_speakers: int
    segments: list[Turn]
    metadata: dict[str, Any] = Field(default_factory=dict)


class DiarizationEngines:
    """The engines of one replica; the configured default is loaded at start."""

    def __init__(self, settings: Settings, device: str) -> None:
        self.settings, self.device = settings, device
        self.engines = EngineCache(self._load)
        self.engines.get(settings.diarization_engine)

    def describe(self) -> dict[str, Any]:
        return self.engines.describe()

    def _load(self, name: str) -> Any:
        if name == "pyannote":
            from nodes.families.diarize_pyannote import PyannoteDiarizer

            return PyannoteDiarizer(self.settings, self.device)
        return diarize_embedded


def load(settings: Settings, device: str) -> DiarizationEngines:
    return DiarizationEngines(settings, device)


def statistics(turns: list[Turn]) -> dict[str, dict[str, float]]:
    stats: dict[str, dict[str, float]] = defaultdict(lambda: {"segments": 0, "duration": 0.0})
    for t in turns:
        stats[t.speaker]["segments"] += 1
        stats[t.speaker]["duration"] = round(stats[t.speaker]["duration"] + t.duration, 3)
    return dict(stats)


class DiarizeParams(NodeParams):
    audio_path: str | None = Field(default=None, description="Audio or video: path or URL.")
    num_speakers: int | None = Field(default=None, ge=1, le=20, description="When known.")
    min_speakers: int | None = Field(default=None, ge=1, le=20)
    max_speakers: int | None = Field(default=None, ge=1, le=20)
    engine: Engine | None = Field(default=None, description="`embedded` or `pyannote`; "
                                  "default: REELSERVE_DIARIZATION_ENGINE.")

    @model_validator(mode="after")
    def _bounds(self) -> DiarizeParams:
        lo, hi = self.min_speakers, self.max_speakers
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_speakers must not exceed max_speakers")
        return self


def diarize_speakers(params: DiarizeParams, ctx: RunContext) -> dict[str, Any]:
    engines: DiarizationEngines = ctx.engine
    name = params.engine or ctx.settings.diarization_engine
    engine = engines.engines.get(name)
    assert params.audio_path
    src, info = open_input(params.audio_path, ctx)
    started = time.monotonic()
    wav = ctx.workdir / "audio16k.wav"  # streamed to disk: engines read it in chunks
    decode_to_wav(ffmpeg_binary(ctx.settings.ffmpeg_binary), src, wav, diarize_embedded.SR,
                  duration=info.duration, progress=lambda f: ctx.report_progress(0.05 * f))
    duration = sf.info(str(wav)).duration
    found = engine.diarize(wav, num_speakers=params.num_speakers,
                           min_speakers=params.min_speakers, max_speakers=params.max_speakers,
                           progress=lambda f: ctx.report_progress(0.05 + 0.9 * f))
    wav.unlink()
    ctx.report_progress(0.95)
    turns = [Turn(start=round(s, 3), end=round(e, 3), speaker=spk, duration=round(e - s, 3))
             for s, e, spk in found]
    speakers = sorted({t.speaker for t in turns})
    elapsed = round(time.monotonic() - started, 3)
    data = DiarizationFile(audio_path=src, total_speakers=len(speakers), segments=turns,
                           metadata={"model": engine.label, "engine": name,
                                     "device": engines.device, "processing_time": elapsed,
                                     "audio_duration": round(duration, 3)})
    out = ctx.workdir / "diarization.json"
    out.write_text(data.model_dump_json(indent=2))
    return {
        "diarization_file": str(out), "detected_speakers": speakers,
        "speaker_statistics": statistics(turns), "total_speakers": len(speakers),
        "total_segments": len(turns), "engine": name, "processing_time": elapsed,
    }


def read_diarization(value: str, ctx: RunContext) -> DiarizationFile:
    path = fetch_input(value, ctx.workdir, ctx.settings)
    try:
        with open(path, encoding="utf-8") as f:
            return DiarizationFile.model_validate_json(f.read())
    except ValueError as exc:
        raise InputError(f"{value!r} is not a diarization file: {exc}") from exc


class SpeakerSegmentsParams(NodeParams):
    diarization_file: str | None = Field(default=None, description="From diarize_speakers.")
    speaker: str | None = Field(default=None, description="Keep only this speaker's turns.")


def get_speaker_segments(params: SpeakerSegmentsParams, ctx: RunContext) -> dict[str, Any]:
    assert params.diarization_file
    data = read_diarization(params.diarization_file, ctx)
    turns = data.segments
    if params.speaker is not None:
        known = sorted({t.speaker for t in turns})
        if params.speaker not in known:
            raise InputError(f"speaker {params.speaker!r} is not in the diarization {known}")
        turns = [t for t in turns if t.speaker == params.speaker]
    summary = {"speaker": params.speaker, "total_segments": len(turns),
               "total_duration": round(sum(t.duration for t in turns), 3),
               "speakers": statistics(turns)}
    segments = [t.model_dump() for t in turns]
    out = ctx.workdir / "speaker_segments.json"
    out.write_text(json.dumps({"summary": summary, "segments": segments}, indent=2))
    return {"segments": segments, "summary": summary, "speaker_segments_file": str(out)}


class ValidateParams(NodeParams):
    diarization_file: str | None = Field(default=None, description="From diarize_speakers.")
    min_segment_duration: float = Field(default=0.5, ge=0)
    max_segment_duration: float = Field(default=30.0, gt=0)
    max_speakers: int = Field(default=10, ge=1)


def validate_diarization(params: ValidateParams, ctx: RunContext) -> dict[str, Any]:
    assert params.diarization_file
    data = read_diarization(params.diarization_file, ctx)
    turns = data.segments
    speakers = {t.speaker for t in turns}
    issues: list[str] = []
    if not turns:
        issues.append("no speech segments")
    short = [t for t in turns if t.duration < params.min_segment_duration]
    long = [t for t in turns if t.duration > params.max_segment_duration]
    if short:
        issues.append(f"{len(short)} segments shorter than {params.min_segment_duration} s")
    if long:
        issues.append(f"{len(long)} segments longer than {params.max_segment_duration} s")
    if len(speakers) > params.max_speakers:
        issues.append(f"{len(speakers)} speakers, more than {params.max_speakers}")
    if any(t.end < t.start for t in turns):
        issues.append("segments that end before they start")
    total = round(sum(t.duration for t in turns), 3)
    validation = {
        "valid": not issues, "total_segments": len(turns), "total_speakers": len(speakers),
        "total_duration": total,
        "avg_segment_duration": round(total / len(turns), 3) if turns else 0.0,
        "issues": issues,
    }
    out = ctx.workdir / "validation.json"
    out.write_text(json.dumps(validation, indent=2))
    return {"validation": validation, "validation_file": str(out)}


_DIARIZATION: dict[str, tuple[Source, ...]] = {
    "diarization_file": (("pyannote_audio.diarize_speakers", "diarization_file"),)}

SPECS = (
    NodeSpec(
        name="pyannote_audio.diarize_speakers", family="pyannote_audio",
        summary="Who spoke when (embedded engine or pyannote.audio).",
        params=DiarizeParams, run=diarize_speakers, load=load,
        reuse_keys=("diarization_file",),
        outputs=("diarization_file", "detected_speakers", "speaker_statistics",
                 "total_speakers", "total_segments", "engine", "processing_time"),
        upstream={"audio_path": (("ffmpeg.extract_audio", "audio_path"),
                                 ("audio_separator.separate_vocals", "vocal_audio"))},
        required=("audio_path",), file_params=("audio_path",),
        num_cpus=0.1, num_gpus=0.1, max_concurrent_runs=1,
    ),
    NodeSpec(
        name="pyannote_audio.get_speaker_segments", family="pyannote_audio",
        summary="One speaker's turns, or a summary of all, from a diarization file.",
        params=SpeakerSegmentsParams, run=get_speaker_segments,
        reuse_keys=("speaker_segments_file",),
        outputs=("segments", "summary", "speaker_segments_file"),
        upstream=_DIARIZATION, required=("diarization_file",),
        file_params=("diarization_file",),
    ),
    NodeSpec(
        name="pyannote_audio.validate_diarization", family="pyannote_audio",
        summary="Sanity report of a diarization file.",
        params=ValidateParams, run=validate_diarization,
        reuse_keys=("validation_file",),
        outputs=("validation", "validation_file"),
        upstream=_DIARIZATION, required=("diarization_file",),
        file_params=("diarization_file",),
    ),
)
