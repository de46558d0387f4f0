"""ffmpeg and media probing shared by the node families."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av


class MediaError(RuntimeError):
    """ffmpeg failed or the media could not be read; the message says why."""


def ffmpeg_binary(configured: str | None = None) -> str:
    """The configured ffmpeg, else ffmpeg on PATH, else the one imageio-ffmpeg ships."""
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass(frozen=True)
class MediaInfo:
    duration: float  # seconds (0 if unknown)
    has_audio: bool
    has_video: bool
    fps: float | None
    width: int | None
    height: int | None
    frame_count: int | None


def probe(path: str) -> MediaInfo:
    try:
        with av.open(path) as container:
            duration = float(container.duration / av.time_base) if container.duration else 0.0
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            fps = None
            frames = None
            if video is not None:
                rate: Fraction | None = video.average_rate or video.guessed_rate
                fps = float(rate) if rate else None
                frames = video.frames or (round(duration * fps) if fps and duration else None)
            return MediaInfo(
                duration=duration,
                has_audio=audio is not None,
                has_video=video is not None,
                fps=fps,
                width=video.codec_context.width if video is not None else None,
                height=video.codec_context.height if video is not None else None,
                frame_count=frames,
            )
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot read media {path}: {exc}") from exc


def run_ffmpeg(
    binary: str,
    args: Sequence[str],
    *,
    duration: float = 0.0,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Run ffmpeg; report progress from `-progress` (share of `duration` done)."""
    cmd = [binary, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if progress is not None and duration > 0:
        cmd += ["-progress", "pipe:1", "-nostats"]
    cmd += list(args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if progress is not None and line.startswith("out_time_us=") and duration > 0:
            value = line.split("=", 1)[1].strip()
            if value.isdigit():
                progress(int(value) / 1e6 / duration)
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        tail = (stderr or "").strip().splitlines()[-3:]
        raise MediaError(f"ffmpeg exited {proc.returncode}: {' | '.join(tail)}")
