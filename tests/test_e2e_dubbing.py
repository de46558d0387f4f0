"""The dubbing chain over HTTP on one task_id, every input after the first from a stage:
extract_audio -> separate_vocals -> transcribe -> diarize -> merge_with_word_timestamps ->
generate_subtitle_files -> split_audio_segments -> prepare_tts_segments -> generate_speech;
then every node repeated is a hit and every stage is intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf

from nodes.espeak import write_speech
from tests.conftest import post_task, run_task, unique
from tests.media import make_speech_video

CHAIN: list[tuple[str, dict[str, Any]]] = [
    ("ffmpeg.extract_audio", {}),  # video_path added below
    ("audio_separator.separate_vocals", {"quality_mode": "fast"}),
    ("faster_whisper.transcribe_audio", {"language": "en"}),
    ("pyannote_audio.diarize_speakers", {"num_speakers": 2}),
    ("wservice.merge_with_word_timestamps", {}),
    ("wservice.generate_subtitle_files", {}),
    ("ffmpeg.split_audio_segments", {"group_by_speaker": True, "min_segment_duration": 0.2}),
    ("wservice.prepare_tts_segments", {"min_duration": 1.0}),
    ("indextts.generate_speech", {}),
]


@pytest.fixture(scope="module")
def talk(storage_root: Path) -> Path:
    wav = storage_root / "inputs" / "dub.wav"
    write_speech(wav, [("en-us", "Good morning, and welcome to the show."),
                       ("en-gb-x-rp+f2", "Thank you, it is lovely to be here."),
                       ("en-us", "Shall we begin with the first question?"),
                       ("en-gb-x-rp+f2", "Yes, let us start right away.")], gap_s=0.6)
    return make_speech_video(storage_root / "inputs" / "dub.mp4", wav)


def test_dubbing_chain_on_one_task_then_every_repeat_is_a_hit(client: httpx.Client,
                                                              talk: Path) -> None:
    task_id = unique("dub")
    out: dict[str, dict[str, Any]] = {}
    for name, data in CHAIN:
        params = {"video_path": str(talk)} if name == "ffmpeg.extract_audio" else data
        out[name] = run_task(client, task_id, name, params, timeout=180)

    subs = out["wservice.generate_subtitle_files"]
    split = out["ffmpeg.split_audio_segments"]
    info = json.loads(Path(split["split_info_file"]).read_text())
    assert info["subtitle_path"] == subs["json_path"]  # the subtitle stage fed the split
    assert set(split["speaker_summary"]) <= set(subs["speakers"])
    assert split["successful_segments"] == subs["subtitles_count"] >= 2
    assert set(subs["speakers"]) == \
        set(out["pyannote_audio.diarize_speakers"]["detected_speakers"])
    prepared = out["wservice.prepare_tts_segments"]
    assert prepared["source_stage"] == "wservice.merge_with_word_timestamps"
    speech = out["indextts.generate_speech"]
    track, sr = sf.read(speech["audio_path"])
    duration = out["faster_whisper.transcribe_audio"]["audio_duration"]
    assert abs(len(track) / sr - duration) < 0.05  # the dubbed track lines up with the video
    assert speech["segments_count"] == prepared["total_segments"]
    assert len(speech["voices"]) == len(subs["speakers"])  # a voice per speaker

    first = client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    for name, _ in CHAIN:
        data = {"video_path": str(talk)} if name == "ffmpeg.extract_audio" else {}
        r = post_task(client, task_id, name, data)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["reuse_info"]["reuse_hit"] is True
    after = client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    assert set(after) == {name for name, _ in CHAIN}
    for name, stage in first.items():
        assert after[name]["output"] == stage["output"]
        assert after[name]["attempt"] == stage["attempt"] == 1
