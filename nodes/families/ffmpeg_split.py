"""ffmpeg.split_audio_segments: one audio file per subtitle segment."""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import soundfile as sf
from pydantic import Field, model_validator

from nodes.families.segments import Segment, read_segments
from nodes.media import ffmpeg_binary, input_args, open_input, run_ffmpeg
from nodes.spec import NodeParams, NodeSpec, RunContext
from reuse.errors import InputError
from reuse.storage import safe_name

MAX_PIECES = 20_000  # files one run may write (a 6 h input cut every second: 21,600)


class SplitAudioParams(NodeParams):
    audio_path: str | None = Field(default=None, description="Audio file, path or URL.")
    subtitle_path: str | None = Field(
        default=None, description="Subtitles (SRT, WebVTT, ASS) or JSON segments "
        "({segments: [...]} or a list) with start/end in seconds and an optional speaker.")
    output_format: Literal["wav", "flac", "ogg", "mp3"] = "wav"
    sample_rate: int = Field(default=16000, ge=8000, le=192000)
    channels: int = Field(default=1, ge=1, le=2)
    min_segment_duration: float = Field(default=1.0, ge=0)
    max_segment_duration: float = Field(
        default=30.0, ge=0.1, description="Longer segments are cut in equal pieces no longer "
        f"than this; a run cuts at most {MAX_PIECES} pieces.")
    group_by_speaker: bool = Field(
        default=False, description="One folder per speaker, named after the label reduced to "
        "[A-Za-z0-9._-] (`unknown` when empty).")
    include_silence: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> SplitAudioParams:
        if self.max_segment_duration < self.min_segment_duration:
            raise ValueError("max_segment_duration must be >= min_segment_duration")
        return self


def plan_segments(
    segments: list[Segment], total: float, p: SplitAudioParams
) -> tuple[list[Segment], int]:
    """Apply the duration rules. Returns (pieces to cut, number skipped as too short).

    Shorter than min: skipped. Longer than max: cut into equal pieces no longer than max.
    include_silence adds the gaps between segments (speaker "silence").
    """
    ordered = sorted(segments, key=lambda s: s.start)
    if p.include_silence:
        gaps, cursor = [], 0.0
        for seg in ordered:
            if seg.start > cursor:
                gaps.append(Segment(start=cursor, end=seg.start, speaker="silence"))
            cursor = max(cursor, seg.end)
        if total > cursor:
            gaps.append(Segment(start=cursor, end=total, speaker="silence"))
        ordered = sorted(ordered + gaps, key=lambda s: s.start)
    clipped = [Segment(start=min(s.start, total), end=min(s.end, total), text=s.text,
                       speaker=s.speaker) for s in ordered]
    kept = [s for s in clipped if s.duration > 0 and s.duration >= p.min_segment_duration]
    counts = [max(1, int(np.ceil(s.duration / p.max_segment_duration - 1e-9))) for s in kept]
    if sum(counts) > MAX_PIECES:
        raise InputError(f"these segments would be cut into {sum(counts)} pieces; at most "
                         f"{MAX_PIECES} per run: raise max_segment_duration")
    pieces: list[Segment] = []
    for seg, n in zip(kept, counts, strict=True):
        step = seg.duration / n
        pieces += [Segment(start=seg.start + i * step, end=seg.start + (i + 1) * step,
                           text=seg.text, speaker=seg.speaker) for i in range(n)]
    return pieces, len(clipped) - len(kept)


def split_audio_segments(params: SplitAudioParams, ctx: RunContext) -> dict[str, Any]:
    assert params.audio_path and params.subtitle_path
    audio, media = open_input(params.audio_path, ctx)
    segments, meta = read_segments(params.subtitle_path, ctx)
    subs = meta["path"]
    # decode once to PCM at the requested rate/channels, then read each piece from it
    pcm = ctx.workdir / "decoded.wav"
    run_ffmpeg(ffmpeg_binary(ctx.settings.ffmpeg_binary),
               [*input_args(audio), "-vn", "-ac", str(params.channels),
                "-ar", str(params.sample_rate), "-c:a", "pcm_f32le", str(pcm)],
               duration=media.duration, progress=lambda f: ctx.report_progress(0.3 * f))
    out_dir = ctx.workdir / "segments"
    out_dir.mkdir()
    files: list[dict[str, Any]] = []
    failed = 0
    summary: dict[str, dict[str, Any]] = {}
    with sf.SoundFile(pcm) as decoded:
        sr = decoded.samplerate
        pieces, skipped = plan_segments(segments, decoded.frames / sr, params)
        for i, seg in enumerate(pieces):
            # a speaker label comes from the caller's file: one safe folder name, never a path
            folder = out_dir / safe_name(seg.speaker or "", "unknown") \
                if params.group_by_speaker else out_dir
            folder.mkdir(exist_ok=True)
            name = f"segment_{i:04d}_{seg.start:.2f}-{seg.end:.2f}.{params.output_format}"
            decoded.seek(int(seg.start * sr))
            samples = decoded.read(int(seg.end * sr) - int(seg.start * sr), dtype="float32",
                                   always_2d=True)
            try:
                sf.write(folder / name, samples, sr)
            except (sf.LibsndfileError, RuntimeError) as exc:
                failed += 1
                files.append({"index": i, "error": str(exc)})
                continue
            files.append({"index": i, "file": str(folder / name), "start": round(seg.start, 3),
                          "end": round(seg.end, 3), "duration": round(seg.duration, 3),
                          "text": seg.text, "speaker": seg.speaker})
            spk = summary.setdefault(seg.speaker or "unknown", {"count": 0, "duration": 0.0})
            spk["count"] += 1
            spk["duration"] = round(spk["duration"] + seg.duration, 3)
            ctx.report_progress(0.3 + 0.7 * (i + 1) / len(pieces))
    pcm.unlink()
    ok = len(pieces) - failed
    info_file = ctx.workdir / "split_info.json"
    info = {"audio_path": audio, "subtitle_path": subs, "params": params.model_dump(),
            "segments": files, "skipped_segments": skipped}
    info_file.write_text(json.dumps(info, ensure_ascii=False, indent=2))
    return {
        "audio_segments_dir": str(out_dir), "split_info_file": str(info_file),
        "total_segments": len(pieces), "successful_segments": ok, "failed_segments": failed,
        "skipped_segments": skipped,
        "total_duration": round(sum(p.duration for p in pieces), 3),
        "segments_count": ok, "speaker_summary": summary,
    }


SPECS = (
    NodeSpec(
        name="ffmpeg.split_audio_segments", family="ffmpeg",
        summary="Cut audio into one file per subtitle segment (optionally per speaker).",
        params=SplitAudioParams, run=split_audio_segments,
        reuse_keys=("audio_segments_dir",),
        outputs=("audio_segments_dir", "split_info_file", "total_segments",
                 "successful_segments", "failed_segments", "skipped_segments",
                 "total_duration", "segments_count", "speaker_summary"),
        upstream={
            "audio_path": (("audio_separator.separate_vocals", "vocal_audio"),
                           ("ffmpeg.extract_audio", "audio_path")),
            # the JSON first: it keeps each cue's speaker (for group_by_speaker)
            "subtitle_path": (("wservice.generate_subtitle_files", "json_path"),
                              ("wservice.generate_subtitle_files", "subtitle_path")),
        },
        required=("audio_path", "subtitle_path"), file_params=("audio_path", "subtitle_path"),
    ),
)
