"""Every long node reports its progress while it runs (what `/status` shows as
`progress`): several reports strictly between 0 and 1, in order, the last near the end.
The node functions run as their replicas run them, without Ray, on a 40 s talk video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nodes.media import ffmpeg_binary, input_args, run_ffmpeg
from reuse.settings import Settings
from tests.conftest import make_settings
from tests.conversations import make_talk_video
from tests.test_speech_engines import run_node


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, Path]:
    root = tmp_path_factory.mktemp("share")
    video, turns = make_talk_video(root / "inputs", 40, speakers=2, seed=1, size="160x90",
                                   fps=10)
    return make_settings("redis://unused", root), video, turns


def params_for(name: str, video: Path, turns: Path) -> dict[str, Any]:
    if name == "ffmpeg.crop_subtitle_images":
        return {"video_path": str(video), "subtitle_area": [0, 60, 160, 90],
                "decode_processes": 1}
    if name == "ffmpeg.split_audio_segments":
        return {"audio_path": str(video), "subtitle_path": str(turns)}
    if name.startswith("ffmpeg."):
        return {"video_path": str(video)}
    return {"audio_path": str(video)} | ({"language": "en"} if "whisper" in name else {})


# these run ffmpeg alone and finish a short clip before its first report (see below)
FFMPEG_ONLY = ("ffmpeg.extract_audio", "ffmpeg.extract_keyframes", "ffmpeg.crop_subtitle_images")


@pytest.mark.parametrize("name", [
    "ffmpeg.extract_audio", "ffmpeg.extract_keyframes", "ffmpeg.crop_subtitle_images",
    "ffmpeg.split_audio_segments", "audio_separator.separate_vocals",
    "faster_whisper.transcribe_audio", "pyannote_audio.diarize_speakers"])
def test_long_nodes_report_progress_as_they_go(talk: tuple[Settings, Path, Path],
                                               name: str) -> None:
    settings, video, turns = talk
    _, reports = run_node(name, settings, params_for(name, video, turns), tag=name)
    inside = [r for r in reports if 0 < r < 1]
    print(f"\n{name}: {len(reports)} reports, {json.dumps([round(r, 2) for r in reports[:8]])}")
    assert inside == sorted(inside) and max(reports) >= 0.9
    if name not in FFMPEG_ONLY:
        assert len(set(inside)) >= 3


def test_ffmpeg_progress_is_reported_while_it_runs(tmp_path: Path) -> None:
    """The ffmpeg-only nodes finish a 40 s clip before ffmpeg's first progress report;
    here ffmpeg reads its input at its own speed (-re: 3 s of media take 3 s), so its
    reports (every 0.2 s) are seen as they come."""
    audio = tmp_path / "tone.wav"
    run_ffmpeg(ffmpeg_binary(), ["-f", "lavfi", "-i", "sine=duration=3", str(audio)])
    reports: list[float] = []
    run_ffmpeg(ffmpeg_binary(), ["-re", *input_args(str(audio)), str(tmp_path / "out.wav")],
               duration=3.0, progress=reports.append)
    inside = [r for r in reports if 0 < r < 1]
    assert len(set(inside)) >= 5 and inside == sorted(inside)
