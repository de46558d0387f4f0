"""ffmpeg family: audio extraction, keyframes, subtitle-band crops (CPU)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field, field_validator

from nodes.media import MediaError, ffmpeg_binary, input_args, open_input, run_ffmpeg
from nodes.spec import NodeParams, NodeSpec, RunContext


class ExtractAudioParams(NodeParams):
    video_path: str = Field(description="Video (or audio) file: a path under the storage root "
                            "or an http(s) URL.")


def extract_audio(params: ExtractAudioParams, ctx: RunContext) -> dict[str, Any]:
    src, info = open_input(params.video_path, ctx)
    if not info.has_audio:
        raise MediaError(f"{params.video_path} has no audio stream")
    out = ctx.workdir / "audio.wav"
    run_ffmpeg(
        ffmpeg_binary(ctx.settings.ffmpeg_binary),
        [*input_args(src), "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out)],
        duration=info.duration, progress=ctx.report_progress,
    )
    return {"audio_path": str(out)}


class ExtractKeyframesParams(NodeParams):
    video_path: str = Field(description="Video file: storage-root path or http(s) URL.")
    keyframe_sample_count: int = Field(default=100, ge=1, le=10000,
                                       description="How many evenly spaced frames.")


def extract_keyframes(params: ExtractKeyframesParams, ctx: RunContext) -> dict[str, Any]:
    src, info = open_input(params.video_path, ctx)
    if not info.has_video or info.duration <= 0:
        raise MediaError(f"{params.video_path} has no video stream with a known duration")
    n = params.keyframe_sample_count
    out_dir = ctx.workdir / "keyframes"
    out_dir.mkdir()
    # n frames, one at the start of each of n equal slices of the video
    run_ffmpeg(
        ffmpeg_binary(ctx.settings.ffmpeg_binary),
        [*input_args(src), "-vf", f"fps={n}/{info.duration:.6f}",
         "-frames:v", str(n), "-q:v", "2", str(out_dir / "frame_%04d.jpg")],
        duration=info.duration, progress=ctx.report_progress,
    )
    count = len(list(out_dir.glob("frame_*.jpg")))
    if count == 0:
        raise MediaError("ffmpeg wrote no keyframes")
    return {"keyframe_dir": str(out_dir), "keyframe_files_count": count}


MAX_COORDINATE = 100_000  # pixels (a 16K frame is 15360 wide)


def check_area(v: list[int] | None) -> list[int] | None:
    """A subtitle area: [x1, y1, x2, y2] in pixels (crop_subtitle_images, the stitching)."""
    bad = v is not None and (len(v) != 4 or min(v[:2]) < 0 or v[2] <= v[0] or v[3] <= v[1]
                             or max(v) > MAX_COORDINATE)
    if bad:
        raise ValueError("subtitle_area must be [x1, y1, x2, y2], x2 > x1 >= 0, y2 > y1 >= 0, "
                         f"at most {MAX_COORDINATE}")
    return v


class CropSubtitleImagesParams(NodeParams):
    video_path: str = Field(description="Video file: storage-root path or http(s) URL.")
    subtitle_area: list[int] | None = Field(
        default=None, description="[x1, y1, x2, y2] of the subtitle band in pixels.")
    decode_processes: int = Field(default=4, ge=1, le=10,
                                  description="Parallel ffmpeg processes (time segments).")

    _area = field_validator("subtitle_area")(check_area)


def crop_subtitle_images(params: CropSubtitleImagesParams, ctx: RunContext) -> dict[str, Any]:
    src, info = open_input(params.video_path, ctx)
    if not info.has_video or not info.fps or not info.frame_count:
        raise MediaError(f"{params.video_path}: cannot read the frame rate or frame count")
    assert params.subtitle_area is not None
    x1, y1, x2, y2 = params.subtitle_area
    if info.width and info.height and (x2 > info.width or y2 > info.height):
        raise MediaError(f"subtitle_area {params.subtitle_area} is outside the "
                         f"{info.width}x{info.height} frame")
    out_dir = ctx.workdir / "cropped_images"
    out_dir.mkdir()
    total, fps = info.frame_count, info.fps
    parts = min(params.decode_processes, total)
    bounds = [round(total * i / parts) for i in range(parts + 1)]
    done = [0.0] * parts
    binary = ffmpeg_binary(ctx.settings.ffmpeg_binary)

    def segment(i: int) -> None:
        first, last = bounds[i], bounds[i + 1]
        if last <= first:
            return

        def report(f: float, i: int = i) -> None:
            done[i] = f
            ctx.report_progress(sum(done) / parts)

        # accurate seek to the segment's first frame; files are named by frame index
        run_ffmpeg(binary, [
            "-ss", f"{first / fps:.6f}", *input_args(src), "-frames:v", str(last - first),
            "-vf", f"crop={x2 - x1}:{y2 - y1}:{x1}:{y1}", "-q:v", "2", "-fps_mode", "passthrough",
            "-start_number", str(first), str(out_dir / "%06d.jpg"),
        ], duration=(last - first) / fps, progress=report)

    with ThreadPoolExecutor(max_workers=parts) as pool:
        list(pool.map(segment, range(parts)))
    count = len(list(out_dir.glob("*.jpg")))
    return {"cropped_images_path": str(out_dir), "cropped_images_files_count": count}


SPECS = (
    NodeSpec(
        name="ffmpeg.extract_audio", family="ffmpeg",
        summary="Audio track to 16 kHz mono PCM s16le WAV.",
        params=ExtractAudioParams, run=extract_audio,
        reuse_keys=("audio_path",), outputs=("audio_path",),
        required=("video_path",), file_params=("video_path",),
    ),
    NodeSpec(
        name="ffmpeg.extract_keyframes", family="ffmpeg",
        summary="N evenly spaced frames as JPEG.",
        params=ExtractKeyframesParams, run=extract_keyframes,
        reuse_keys=("keyframe_dir",), outputs=("keyframe_dir", "keyframe_files_count"),
        required=("video_path",), file_params=("video_path",),
    ),
    NodeSpec(
        name="ffmpeg.crop_subtitle_images", family="ffmpeg",
        summary="Decode every frame, crop it to the subtitle band; JPEGs named by frame index.",
        params=CropSubtitleImagesParams, run=crop_subtitle_images,
        reuse_keys=("cropped_images_path",),
        outputs=("cropped_images_path", "cropped_images_files_count"),
        upstream={"subtitle_area": (("paddleocr.detect_subtitle_area", "subtitle_area"),)},
        required=("video_path", "subtitle_area"), file_params=("video_path",),
    ),
)
