"""Every registered node through POST /v1/tasks with real media (lesson 18)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import soundfile as sf

from tests.conftest import post_task, run_task, unique, wait_stage
from tests.loopback import LoopbackServer

SRT = """1
00:00:00,200 --> 00:00:01,400
first line

2
00:00:01,500 --> 00:00:01,700
too short

3
00:00:02,000 --> 00:00:03,800
third line
"""


def run(client: httpx.Client, task_id: str, name: str, data: dict) -> dict:
    """Run to SUCCESS, then the same request must be a hit."""
    output = run_task(client, task_id, name, data)
    again = post_task(client, task_id, name, data)
    assert again.status_code == 200 and again.json()["reuse_info"]["reuse_hit"] is True
    return output


def test_extract_audio_from_url(client: httpx.Client, video: Path, loopback: LoopbackServer,
                                storage_root: Path) -> None:
    task_id = unique("url")
    url = loopback.serve_file(unique("v.mp4"), video)
    out = run(client, task_id, "ffmpeg.extract_audio", {"video_path": url})
    info = sf.info(out["audio_path"])
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert abs(info.duration - 4.0) < 0.2
    assert Path(out["audio_path"]).is_relative_to(storage_root / "jobs" / task_id)


def test_extract_keyframes(client: httpx.Client, video: Path) -> None:
    out = run(client, unique("kf"), "ffmpeg.extract_keyframes",
              {"video_path": str(video), "keyframe_sample_count": 8})
    files = sorted(Path(out["keyframe_dir"]).glob("*.jpg"))
    assert out["keyframe_files_count"] == len(files) == 8


def test_crop_subtitle_images(client: httpx.Client, video: Path) -> None:
    out = run(client, unique("crop"), "ffmpeg.crop_subtitle_images",
              {"video_path": str(video), "subtitle_area": [0, 200, 320, 240],
               "decode_processes": 3})
    files = sorted(Path(out["cropped_images_path"]).glob("*.jpg"))
    assert out["cropped_images_files_count"] == len(files) == 100  # 4 s x 25 fps
    assert files[0].name == "000000.jpg" and files[-1].name == "000099.jpg"
    import av

    with av.open(str(files[0])) as img:
        frame = next(img.decode(video=0))
        assert (frame.width, frame.height) == (320, 40)


def test_crop_outside_the_frame_fails_clearly(client: httpx.Client, video: Path) -> None:
    task_id = unique("crop-bad")
    client.post("/v1/tasks", json={"task_name": "ffmpeg.crop_subtitle_images", "task_id": task_id,
                                   "input_data": {"video_path": str(video),
                                                  "subtitle_area": [0, 0, 999, 999]}})
    stage = wait_stage(client, task_id, "ffmpeg.crop_subtitle_images")
    assert stage["status"] == "FAILED" and "outside the 320x240 frame" in stage["error"]


def test_split_audio_segments_honours_its_options(client: httpx.Client, video: Path,
                                                  storage_root: Path) -> None:
    task_id = unique("split")
    run(client, task_id, "ffmpeg.extract_audio", {"video_path": str(video)})
    srt = storage_root / "inputs" / f"{task_id}.srt"
    srt.write_text(SRT)
    out = run(client, task_id, "ffmpeg.split_audio_segments",
              {"subtitle_path": str(srt), "output_format": "flac", "sample_rate": 8000,
               "min_segment_duration": 0.5})
    assert out["total_segments"] == out["successful_segments"] == 2
    assert out["skipped_segments"] == 1 and out["failed_segments"] == 0
    files = sorted(Path(out["audio_segments_dir"]).glob("*.flac"))
    assert len(files) == 2
    assert sf.info(files[0]).samplerate == 8000
    assert abs(out["total_duration"] - (1.2 + 1.8)) < 0.01
    info = json.loads(Path(out["split_info_file"]).read_text())
    assert info["audio_path"].endswith("ffmpeg.extract_audio/1/audio.wav")  # from upstream


def test_split_by_speaker_from_json(client: httpx.Client, video: Path, storage_root: Path) -> None:
    task_id = unique("split-spk")
    segs = {"segments": [{"start": 0.0, "end": 1.5, "speaker": "SPEAKER_00", "text": "a"},
                         {"start": 1.5, "end": 2.5, "speaker": "SPEAKER_01", "text": "b"},
                         {"start": 2.5, "end": 3.9, "speaker": "SPEAKER_00", "text": "c"}]}
    path = storage_root / "inputs" / f"{task_id}.json"
    path.write_text(json.dumps(segs))
    out = run(client, task_id, "ffmpeg.split_audio_segments",
              {"audio_path": str(video), "subtitle_path": str(path), "group_by_speaker": True,
               "channels": 2, "max_segment_duration": 1.0})
    root = Path(out["audio_segments_dir"])
    assert {p.name for p in root.iterdir()} == {"SPEAKER_00", "SPEAKER_01"}
    assert out["speaker_summary"]["SPEAKER_00"]["count"] == 4  # 1.5 s -> 2 pieces, 1.4 s -> 2
    assert out["speaker_summary"]["SPEAKER_01"] == {"count": 1, "duration": 1.0}
    assert sf.info(next((root / "SPEAKER_01").iterdir())).channels == 2


def test_separate_vocals_from_video_writes_both_stems(client: httpx.Client, video: Path) -> None:
    out = run(client, unique("sep"), "audio_separator.separate_vocals",
              {"video_path": str(video), "quality_mode": "fast", "output_format": "wav"})
    assert out["model_used"] == "repet_sim" and out["engine"] == "repet_sim"
    vocals, instrumental = (sf.info(p) for p in out["all_audio_files"])
    assert out["vocal_audio"].endswith("vocals.wav")
    assert vocals.samplerate == instrumental.samplerate == 22050
    assert abs(vocals.duration - 4.0) < 0.2
