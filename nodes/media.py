"""ffmpeg and media probing shared by the node families.

Every media input is opened through this module, by ffmpeg (`input_args`) or PyAV
(`probe`), with two allow-lists: the demuxers in INPUT_FORMATS and the `file` protocol
only. A container that refers to other files or URLs (HLS/m3u8 playlists, concat and
ffconcat lists, DASH manifests, `subfile:`/`tee:` URLs, image sequences) is refused, so
a file in the storage root cannot make a node read a file outside it. MOV/MP4 external
data references stay off (the demuxer's default).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av

from reuse.errors import InputError, TooLarge

if TYPE_CHECKING:
    from nodes.spec import RunContext

# libavformat demuxer names (one name matches a demuxer listed as "mov,mp4,m4a,...")
INPUT_FORMATS = (
    "mov", "matroska", "avi", "flv", "mpegts", "mpeg", "asf",  # video containers
    "wav", "w64", "mp3", "flac", "ogg", "aac", "aiff", "caf", "amr", "wv", "ac3", "eac3",
)
INPUT_OPTIONS = {"format_whitelist": ",".join(INPUT_FORMATS), "protocol_whitelist": "file"}


def input_args(path: str) -> list[str]:
    """ffmpeg's options for one media input: allow-listed demuxers, local file only."""
    return ["-protocol_whitelist", "file", "-format_whitelist", INPUT_OPTIONS["format_whitelist"],
            "-i", "file:" + path]


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


def probe(path: str, max_duration: float | None = None) -> MediaInfo:
    """Read a media file's streams (allow-listed formats only) and check its length."""
    info = _probe(path)
    if max_duration is not None and info.duration > max_duration:
        raise TooLarge(f"the media is {info.duration:.0f} s long; the limit is "
                       f"{max_duration:.0f} s (REELSERVE_MAX_MEDIA_DURATION_S)")
    return info


def _probe(path: str) -> MediaInfo:
    try:
        with av.open(path, options=INPUT_OPTIONS) as container:
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
    except av.error.ArgumentError as exc:  # what libavformat says for a refused format
        raise InputError(f"{path} is not a media file of an accepted format "
                         f"({', '.join(INPUT_FORMATS)})") from exc
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
        cmd += ["-progress", "pipe:1", "-nostats", "-stats_period", "0.2"]
    cmd += list(args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if progress is not None and line.startswith("out_time_us=") and duration > 0:
            value = line.split("=", 1)[1].strip()
            if value.isdigit():
                progress(min(1.0, int(value) / 1e6 / duration))
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        tail = (stderr or "").strip().splitlines()[-3:]
        raise MediaError(f"ffmpeg exited {proc.returncode}: {' | '.join(tail)}")


def decode_to_wav(binary: str, path: str, out: Path, sample_rate: int, *,
                  duration: float = 0.0, progress: Callable[[float], None] | None = None) -> None:
    """Decode a media file's first audio stream to a mono float WAV at `sample_rate`,
    streamed (flat memory), for engines that read long audio a chunk at a time."""
    run_ffmpeg(binary, [*input_args(path), "-vn", "-ac", "1", "-ar", str(sample_rate),
                        "-c:a", "pcm_f32le", str(out)], duration=duration, progress=progress)


def open_input(value: str, ctx: RunContext) -> tuple[str, MediaInfo]:
    """A node's media input: the local file (a URL is downloaded first), probed, and its
    length checked against `max_media_duration_s`."""
    from nodes.inputs import fetch_input

    src = fetch_input(value, ctx.workdir, ctx.settings)
    return src, probe(src, ctx.settings.max_media_duration_s)
