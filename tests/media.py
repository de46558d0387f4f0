"""Real media made by ffmpeg for the tests (no binary fixtures in the repo)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nodes.media import ffmpeg_binary


def make_video(path: Path, seconds: float = 4.0, size: str = "320x240", fps: int = 25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([
        ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    ], check=True)
    return path


def make_silent_video(path: Path, seconds: float = 2.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([
        ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc=size=160x120:rate=10:duration={seconds}",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path),
    ], check=True)
    return path


def make_speech_video(path: Path, wav: Path, size: str = "320x240", fps: int = 10) -> Path:
    """A video whose audio track is the given speech (AAC), for the speech chain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([
        ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}", "-i", str(wav),
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    ], check=True)
    return path
