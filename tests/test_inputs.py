"""Input rules: storage-root confinement and upstream sources (pure + temp files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes import registry
from nodes.inputs import check_file_params, fetch_input, resolve_upstream
from reuse.errors import InputError, TooLarge
from reuse.models import Stage
from reuse.settings import Settings
from reuse.status import StageStatus
from reuse.storage import check_local_file, confine
from tests.loopback import LoopbackServer


def test_confine_refuses_traversal_and_outside_paths(tmp_path: Path) -> None:
    root = tmp_path / "share"
    (root / "a").mkdir(parents=True)
    assert confine("a/x.mp4", root) == (root / "a" / "x.mp4").resolve()
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../x", str(tmp_path)):
        with pytest.raises(InputError):
            confine(bad, root)


def test_symlink_out_of_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "share"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InputError):
        check_local_file("link.txt", root)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        check_local_file("nope.mp4", tmp_path)


def ok(output: dict[str, str]) -> Stage:
    return Stage(status=StageStatus.SUCCESS, output=output)


def test_upstream_order_and_explicit_param_wins() -> None:
    spec = registry.get("ffmpeg.split_audio_segments")
    assert spec is not None
    stages = {
        "ffmpeg.extract_audio": ok({"audio_path": "/r/a.wav"}),
        "audio_separator.separate_vocals": ok({"vocal_audio": "/r/v.flac"}),
    }
    got = resolve_upstream(spec, {"audio_path": None, "subtitle_path": "/r/s.srt"}, stages)
    assert got["audio_path"] == "/r/v.flac"  # separate_vocals comes first
    got = resolve_upstream(spec, {"audio_path": "/mine.wav", "subtitle_path": "/r/s.srt"}, stages)
    assert got["audio_path"] == "/mine.wav"


def test_failed_or_empty_upstream_stage_is_skipped() -> None:
    spec = registry.get("ffmpeg.split_audio_segments")
    assert spec is not None
    stages = {
        "audio_separator.separate_vocals": Stage(status=StageStatus.FAILED, error="x"),
        "ffmpeg.extract_audio": ok({"audio_path": "/r/a.wav"}),
    }
    got = resolve_upstream(spec, {"subtitle_path": "/s.srt"}, stages)
    assert got["audio_path"] == "/r/a.wav"


def test_missing_required_param_names_its_sources() -> None:
    spec = registry.get("audio_separator.separate_vocals")
    assert spec is not None
    with pytest.raises(InputError) as err:
        resolve_upstream(spec, {}, {})
    assert "'audio_path' or 'video_path' is required" in str(err.value)
    assert "ffmpeg.extract_audio.audio_path" in str(err.value)


def test_a_download_over_its_limit_stops_and_leaves_nothing(
        tmp_path: Path, loopback: LoopbackServer) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (3 << 20))
    url = loopback.serve_file("big-limit.json", big)
    settings = Settings(storage_root=tmp_path, callback_allow_cidrs=["127.0.0.0/8"])
    workdir = tmp_path / "jobs" / "t" / "node"
    with pytest.raises(TooLarge, match="1048576-byte limit"):
        fetch_input(url, workdir, settings, max_bytes=1 << 20)
    assert list((workdir / "inputs").iterdir()) == []  # the partial file is gone
    assert Path(fetch_input(url, workdir, settings)).stat().st_size == 3 << 20


def test_a_folder_input_under_jobs_must_be_inside_one_attempts_folder(tmp_path: Path) -> None:
    spec = registry.get("paddleocr.detect_subtitle_area")
    assert spec is not None and spec.dir_params == ("keyframe_dir",)
    settings = Settings(storage_root=tmp_path)
    frames = tmp_path / "jobs" / "t" / "ffmpeg.extract_keyframes" / "1" / "keyframes"
    frames.mkdir(parents=True)
    for whole in ("jobs", "jobs/t", "jobs/t/ffmpeg.extract_keyframes"):
        with pytest.raises(InputError, match="inside one attempt's folder"):
            check_file_params(spec, {"keyframe_dir": whole}, settings)
    for root in (".", str(tmp_path), "jobs/.."):
        with pytest.raises(InputError, match="storage root itself"):
            check_file_params(spec, {"keyframe_dir": root}, settings)
    params = {"keyframe_dir": str(frames)}
    check_file_params(spec, params, settings)
    assert params["keyframe_dir"] == str(frames.resolve())
