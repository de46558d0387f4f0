"""audio_separator.separate_vocals: two engines, picked by `model_type` (default:
REELSERVE_SEPARATION_ENGINE).

- `repet_sim`, embedded (librosa), described below; needs no weights.
- `demucs`: demucs models from a local repo folder (REELSERVE_DEMUCS_REPO, `<name>.th`
  files or bags as `<name>.yaml`), loaded once per replica (`SeparationEngines`), run on the
  replica's device, a minute at a time (`demucs_file`). Install `reelserve[demucs]`.

REPET-SIM (Rafii & Pardo 2012) models the accompaniment as what repeats: each spectrogram
frame is compared with its nearest neighbours (cosine), their median is the repeating
part, and soft masks split the mix. It needs no weights, so it runs offline anywhere.
A file is separated in 20 s blocks, each with 5 s of context on both sides, cross-faded
at the boundaries (`blocks.stream_blocks`): neighbours are searched within 30 s, so the
time is linear in the length and the memory does not grow with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nodes.engines import MODEL_NAME_PATTERN, EngineCache
from nodes.families.blocks import stream_blocks
from nodes.media import MediaError, ffmpeg_binary, input_args, open_input, run_ffmpeg
from nodes.spec import NodeParams, NodeSpec, RunContext
from reuse.settings import Settings

# REPET-SIM looks for repetitions within a block and its context (30 s in all), so the
# work per second of audio is the same for a clip and for a film
BLOCK_S, CONTEXT_S, FADE_S = 20.0, 5.0, 0.25
DEMUCS_BLOCK_S = 60.0  # demucs: blocks of a minute, the same context and fades

QualityMode = Literal["default", "fast", "high_quality"]
# quality mode -> (sample rate, n_fft, neighbour window in seconds, vocal mask margin)
# (tuned on the synthetic mix in tests/test_separation_engine.py; larger margins keep
# less accompaniment in the vocals but also cut the vocals)
PROFILES: dict[str, tuple[int, int, float, float]] = {
    "fast": (22050, 2048, 1.0, 2.0),
    "default": (44100, 4096, 1.5, 2.0),
    "high_quality": (44100, 4096, 2.0, 3.0),
}


class SeparatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_name: str | None = Field(default=None, pattern=MODEL_NAME_PATTERN)
    model_type: Literal["repet_sim", "demucs"] | None = None
    quality_mode: QualityMode | None = None
    output_format: Literal["flac", "wav"] | None = None


class SeparateVocalsParams(NodeParams):
    audio_path: str | None = Field(default=None, description="Mix to separate: path or URL.")
    video_path: str | None = Field(default=None, description="Used when audio_path is absent.")
    model_name: str | None = Field(
        default=None, pattern=MODEL_NAME_PATTERN,
        description="demucs model in the repo (default REELSERVE_DEMUCS_MODEL); "
        "repet_sim: ignored.")
    model_type: Literal["repet_sim", "demucs"] | None = Field(
        default=None, description="Engine; default REELSERVE_SEPARATION_ENGINE (repet_sim).")
    quality_mode: QualityMode = "default"
    output_format: Literal["flac", "wav"] = "flac"
    audio_separator_config: SeparatorConfig | None = Field(
        default=None, description="The same keys, nested (reference-compatible).")

    @model_validator(mode="after")
    def _merge_nested(self) -> SeparateVocalsParams:
        nested = self.audio_separator_config
        if nested is not None:
            for key, value in nested.model_dump(exclude_none=True).items():
                if key not in self.model_fields_set:
                    setattr(self, key, value)
        return self


def repeating_spectrum(mag: np.ndarray, width: int) -> np.ndarray:
    """The repeating part of a magnitude spectrogram (bins, frames): per frame, the median
    of its nearest neighbours by cosine similarity that lie at least `width` frames away.

    The neighbours are the ones `librosa.decompose.nn_filter(mag, aggregate=np.median,
    metric="cosine", width=width)` picks (of the k + 2 * width nearest, those outside the
    band, the first k in time; k = 2 * ceil(sqrt(frames - 2 * width + 1))), found from one
    dense similarity product and gathered into a batched median: the same output (tested)
    at a fraction of librosa's time, which goes to building a sparse matrix link by link.
    """
    t = mag.shape[1]
    k = min(int(2 * np.ceil(np.sqrt(t - 2 * width + 1))), t - 2 * width)  # >= k lie outside
    pool_size = min(t - 1, k + 2 * width)
    unit = mag / np.maximum(np.linalg.norm(mag, axis=0, keepdims=True), 1e-30)
    distance = 1.0 - unit.T @ unit
    np.fill_diagonal(distance, np.inf)
    pool = np.sort(np.argpartition(distance, pool_size - 1, axis=1)[:, :pool_size], axis=1)
    outside = np.abs(pool - np.arange(t)[:, None]) >= width
    first = np.argsort(~outside, axis=1, kind="stable")[:, :k]  # first k outside, by time
    neighbours = np.take_along_axis(pool, first, axis=1)
    frames = np.ascontiguousarray(mag.T)
    out = np.empty_like(frames)
    for lo in range(0, t, 64):  # 64 frames at a time: (64, k, bins) in memory
        out[lo:lo + 64] = np.median(frames[neighbours[lo:lo + 64]], axis=1)
    return out.T


def repet_sim(mix: np.ndarray, sr: int, quality: str) -> tuple[np.ndarray, np.ndarray]:
    """Split a (channels, samples) mix into (vocals, accompaniment) of the same shape."""
    import librosa

    _, n_fft, window_s, margin_v = PROFILES[quality]
    stfts = [librosa.stft(ch, n_fft=n_fft) for ch in mix]
    mag = np.mean([np.abs(s) for s in stfts], axis=0)
    width = max(3, int(librosa.time_to_frames(window_s, sr=sr, hop_length=n_fft // 4)))
    width = min(width, max(1, (mag.shape[1] - 1) // 2))
    repeating = repeating_spectrum(mag, width) if mag.shape[1] > 2 * width else mag
    repeating = np.minimum(mag, repeating)
    mask_v = librosa.util.softmask(mag - repeating, margin_v * repeating, power=2)
    mask_a = librosa.util.softmask(repeating, 2.0 * (mag - repeating), power=2)
    n = mix.shape[1]
    vocals = np.stack([librosa.istft(mask_v * s, n_fft=n_fft, length=n) for s in stfts])
    accomp = np.stack([librosa.istft(mask_a * s, n_fft=n_fft, length=n) for s in stfts])
    return vocals, accomp


def separate_file(src: Path, vocal_path: Path, accomp_path: Path,
                  split: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
                  block_s: float, progress: Callable[[float], None]) -> None:
    """Run `split` ((channels, samples), rate -> vocals, accompaniment) over a decoded
    file in `block_s` blocks with CONTEXT_S of context each side, cross-faded, reading
    and writing as it goes: linear time and flat memory however long the file is."""
    with sf.SoundFile(src) as mix:
        sr, channels, n = mix.samplerate, mix.channels, mix.frames

        def read(lo: int, hi: int) -> np.ndarray:
            mix.seek(lo)
            return mix.read(hi - lo, dtype="float32", always_2d=True)

        def separate(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            vocals, accomp = split(segment.T, sr)
            return vocals.T, accomp.T

        with sf.SoundFile(vocal_path, "w", sr, channels) as v, \
                sf.SoundFile(accomp_path, "w", sr, channels) as a:
            stream_blocks(read, n, separate, [v, a], block=int(block_s * sr),
                          context=int(CONTEXT_S * sr), fade=int(FADE_S * sr),
                          progress=progress)


def repet_sim_file(src: Path, vocal_path: Path, accomp_path: Path, quality: str,
                   progress: Callable[[float], None]) -> None:
    """REPET-SIM over a decoded file in BLOCK_S blocks (`separate_file`)."""
    separate_file(src, vocal_path, accomp_path,
                  lambda segment, sr: repet_sim(segment, sr, quality), BLOCK_S, progress)


class SeparationEngines:
    """demucs models of one replica (the default is loaded at start when it is the
    configured engine); repet_sim needs no loading."""

    def __init__(self, settings: Settings, device: str) -> None:
        self.settings, self.device = settings, device
        self.demucs = EngineCache(self._load_demucs)
        if settings.separation_engine == "demucs":
            self.demucs.get(settings.demucs_model)

    def describe(self) -> dict[str, Any]:
        return self.demucs.describe()

    def _load_demucs(self, name: str) -> Any:
        if self.settings.demucs_repo is None:
            raise RuntimeError("the demucs engine needs REELSERVE_DEMUCS_REPO (a local folder "
                               "of demucs models); none is downloaded at run time")
        from demucs.pretrained import get_model

        model = get_model(name, repo=self.settings.demucs_repo)
        return model.to(self.device).eval()

    def run_demucs(self, model: Any, mix: np.ndarray, mean: float,
                   std: float) -> tuple[np.ndarray, np.ndarray]:
        """(channels, samples) at the model's rate -> (vocals, everything else); `mean`
        and `std` are the whole file's (the model's input normalisation)."""
        import torch
        from demucs.apply import apply_model

        x = (torch.from_numpy(np.ascontiguousarray(mix)) - mean) / (std + 1e-8)
        with torch.no_grad():
            out = apply_model(model, x[None], device=self.device, split=True, overlap=0.25,
                              progress=False)[0]
        out = out * (std + 1e-8) + mean
        vocals = out[model.sources.index("vocals")]
        rest = out.sum(0) - vocals
        return vocals.cpu().numpy(), rest.cpu().numpy()

    def demucs_file(self, model: Any, src: Path, vocal_path: Path, accomp_path: Path,
                    progress: Callable[[float], None]) -> None:
        """demucs over a decoded file in DEMUCS_BLOCK_S blocks with context, cross-faded
        (demucs splits its input into short segments itself, but holds the whole input and
        four whole stems: gigabytes for an hour)."""
        with sf.SoundFile(src) as mix:
            mean, std = mono_stats(mix)
        separate_file(src, vocal_path, accomp_path,
                      lambda segment, _sr: self.run_demucs(model, segment, mean, std),
                      DEMUCS_BLOCK_S, progress)


def mono_stats(audio: sf.SoundFile) -> tuple[float, float]:
    """Mean and standard deviation of a file's mono mix, read a minute at a time."""
    total = square = 0.0
    for block in audio.blocks(blocksize=60 * audio.samplerate, dtype="float64",
                              always_2d=True):
        mono = block.mean(axis=1)
        total, square = total + mono.sum(), square + (mono ** 2).sum()
    count = max(1, audio.frames)
    mean = total / count
    return float(mean), float(np.sqrt(max(0.0, square / count - mean ** 2)))


def load(settings: Settings, device: str) -> SeparationEngines:
    return SeparationEngines(settings, device)


def separate_vocals(params: SeparateVocalsParams, ctx: RunContext) -> dict[str, Any]:
    engines: SeparationEngines = ctx.engine
    engine = params.model_type or ctx.settings.separation_engine
    model_name = params.model_name or ctx.settings.demucs_model
    source = params.audio_path or params.video_path
    assert source
    src, info = open_input(source, ctx)
    if not info.has_audio:
        raise MediaError(f"{source} has no audio stream")
    if engine == "demucs":
        model = engines.demucs.get(model_name)
        sr, channels = int(model.samplerate), int(model.audio_channels)
    else:
        sr, channels = PROFILES[params.quality_mode][0], 0  # 0: keep the input's channels
    decoded = ctx.workdir / "mix.wav"
    args = [*input_args(src), "-vn", "-ar", str(sr), "-c:a", "pcm_f32le"]
    args += ["-ac", str(channels)] if channels else []
    run_ffmpeg(ffmpeg_binary(ctx.settings.ffmpeg_binary), [*args, str(decoded)],
               duration=info.duration, progress=lambda f: ctx.report_progress(0.2 * f))
    ctx.report_progress(0.2)
    ext = params.output_format
    vocal_path = ctx.workdir / f"vocals.{ext}"
    accomp_path = ctx.workdir / f"instrumental.{ext}"
    if engine == "demucs":
        engines.demucs_file(model, decoded, vocal_path, accomp_path,
                            lambda f: ctx.report_progress(0.2 + 0.75 * f))
        used, device = model_name, engines.device
    else:
        repet_sim_file(decoded, vocal_path, accomp_path, params.quality_mode,
                       lambda f: ctx.report_progress(0.2 + 0.75 * f))
        used, device = "repet_sim", "cpu"  # numpy/librosa: CPU whatever the replica has
    decoded.unlink()
    return {
        "vocal_audio": str(vocal_path),
        "instrumental_audio": str(accomp_path),
        "all_audio_files": [str(vocal_path), str(accomp_path)],
        "model_used": used,
        "engine": engine,
        "device": device,
        "quality_mode": params.quality_mode,
    }


SPECS = (
    NodeSpec(
        name="audio_separator.separate_vocals", family="audio_separator",
        summary="Split a mix into vocals and accompaniment.",
        params=SeparateVocalsParams, run=separate_vocals, load=load,
        reuse_keys=("vocal_audio",),
        outputs=("vocal_audio", "instrumental_audio", "all_audio_files", "model_used",
                 "engine", "device", "quality_mode"),
        upstream={"audio_path": (("ffmpeg.extract_audio", "audio_path"),)},
        required=("audio_path|video_path",), file_params=("audio_path", "video_path"),
        num_cpus=0.1, num_gpus=0.15, max_concurrent_runs=2,
    ),
)
