"""Speech engines of indextts.generate_speech: one interface, three engines.

- `espeak` (embedded, no weights): espeak-ng from the espeakng-loader wheel. Voices are
  espeak-ng names (`en-us`, `en-gb-x-rp`, `cmn` for Chinese characters, `cmn-latn-pinyin`
  for pinyin with tone digits), with an optional variant (`en-us+f2`).
- `piper` (neural, offline): a piper voice file (`<name>.onnx` + `<name>.onnx.json`) set by
  REELSERVE_PIPER_VOICE; a request's `voice` names another `.onnx` in the same folder.
  Needs the `piper` extra (piper-tts, GPL-3.0).
- `indextts2` (neural, voice cloning): an IndexTTS2 checkpoint folder set by
  REELSERVE_INDEXTTS_MODEL_DIR (`config.yaml` + weights) and the `indextts` package.
  Clones `spk_audio_prompt`; the emotion parameters are passed through.

Each engine is loaded once per replica (`EngineCache`); `synthesize` returns mono float32
samples and their sample rate.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf

from nodes import espeak
from nodes.families.segments import is_cjk
from reuse.errors import InputError, brief
from reuse.settings import Settings


@dataclass(frozen=True)
class SpeechRequest:
    """What one synthesis needs besides the text."""

    voice: str | None = None
    spk_audio_prompt: str | None = None  # a confined local path
    emotion: dict[str, Any] = field(default_factory=dict)  # IndexTTS2's emo_* arguments
    max_text_tokens_per_segment: int = 120


class SpeechEngine(Protocol):
    name: str
    clones_voice: bool

    def default_voice(self, text: str) -> str: ...

    def synthesize(self, text: str, request: SpeechRequest) -> tuple[np.ndarray, int]: ...


class EspeakEngine:
    name = "espeak"
    clones_voice = False

    def default_voice(self, text: str) -> str:
        return "cmn" if is_cjk(text) else "en-us"

    def synthesize(self, text: str, request: SpeechRequest) -> tuple[np.ndarray, int]:
        voice = request.voice or self.default_voice(text)
        try:
            return espeak.synthesize(text, voice=voice)
        except ValueError as exc:
            raise InputError(f"espeak-ng has no voice {brief(voice)} (e.g. en-us, "
                             "en-gb-x-rp, cmn, cmn-latn-pinyin; variants: en-us+f2)") from exc


class PiperEngine:
    name = "piper"
    clones_voice = False

    def __init__(self, voice_file: Path) -> None:
        self.default = voice_file
        self.voices: dict[str, Any] = {}
        self._load(voice_file.stem)

    def default_voice(self, text: str) -> str:
        return self.default.stem

    def _load(self, name: str) -> Any:
        if name not in self.voices:
            from piper import PiperVoice

            path = self.default.parent / f"{name}.onnx"
            if not path.is_file():
                known = sorted(p.stem for p in self.default.parent.glob("*.onnx"))
                raise InputError(f"no piper voice {brief(name)}; available: {known}")
            self.voices[name] = PiperVoice.load(path)
        return self.voices[name]

    def synthesize(self, text: str, request: SpeechRequest) -> tuple[np.ndarray, int]:
        voice = self._load(request.voice or self.default.stem)
        chunks = [c.audio_float_array for c in voice.synthesize(text)]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        return audio.astype(np.float32), int(voice.config.sample_rate)


class IndexTTS2Engine:
    name = "indextts2"
    clones_voice = True

    def __init__(self, model_dir: Path, device: str) -> None:
        try:
            from indextts.infer_v2 import IndexTTS2
        except ImportError as exc:
            raise RuntimeError("REELSERVE_INDEXTTS_MODEL_DIR is set but the `indextts` "
                               "package is not installed (IndexTTS2's repository: "
                               "pip install -e <index-tts checkout>)") from exc
        self.model = IndexTTS2(cfg_path=str(model_dir / "config.yaml"),
                               model_dir=str(model_dir), device=device,
                               use_fp16=device.startswith("cuda"))

    def default_voice(self, text: str) -> str:
        return "spk_audio_prompt"

    def synthesize(self, text: str, request: SpeechRequest) -> tuple[np.ndarray, int]:
        if not request.spk_audio_prompt:
            raise InputError("indextts2 clones a voice: give spk_audio_prompt (or a "
                             "separate_vocals / extract_audio stage in this task)")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "speech.wav"
            self.model.infer(spk_audio_prompt=request.spk_audio_prompt, text=text,
                             output_path=str(out),
                             max_text_tokens_per_segment=request.max_text_tokens_per_segment,
                             **request.emotion)
            audio, sr = sf.read(out, dtype="float32", always_2d=True)
        return audio.mean(axis=1), int(sr)


def default_engine(settings: Settings) -> str:
    if settings.tts_engine:
        return settings.tts_engine
    if settings.indextts_model_dir:
        return "indextts2"
    return "piper" if settings.piper_voice else "espeak"


def load_engine(name: str, settings: Settings, device: str) -> SpeechEngine:
    if name == "piper":
        if settings.piper_voice is None:
            raise InputError("the piper engine needs REELSERVE_PIPER_VOICE (a voice .onnx)")
        return PiperEngine(settings.piper_voice)
    if name == "indextts2":
        if settings.indextts_model_dir is None:
            raise InputError("the indextts2 engine needs REELSERVE_INDEXTTS_MODEL_DIR")
        return IndexTTS2Engine(settings.indextts_model_dir, device)
    return EspeakEngine()
