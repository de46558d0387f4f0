"""Every node on a five-minute video, over HTTP on the session's graph (issues 8, 9): a
conversation of three espeak-ng voices with music and noise underneath, the whole chain
on one task_id. Checks that each node covers the whole length (no truncation, nothing
dropped at piece or block boundaries) and that the speech results stay accurate over
minutes, not seconds. Times per length are the bench's business (bench/bench_long.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf

from tests.conftest import run_task, unique
from tests.conversations import Said, make_talk_video
from tests.test_speech_engines import der_of, wer

pytestmark = pytest.mark.slow
SECONDS, FPS = 300, 10


@pytest.fixture(scope="module")
def talk(storage_root: Path) -> tuple[Path, Path, list[Said]]:
    video, turns_file = make_talk_video(storage_root / "inputs" / "long", SECONDS, speakers=3,
                                        seed=5, size="160x90", fps=FPS)
    turns = [Said(t["start"], t["end"], t["speaker"], t["text"])
             for t in json.loads(turns_file.read_text())["segments"]]
    return video, turns_file, turns


def test_every_node_on_a_five_minute_video(client: httpx.Client,
                                           talk: tuple[Path, Path, list[Said]]) -> None:
    video, turns_file, said = talk
    task = unique("long")

    def run(name: str, data: dict[str, Any]) -> dict[str, Any]:
        return run_task(client, task, name, data, timeout=900)

    audio = run("ffmpeg.extract_audio", {"video_path": str(video)})
    assert abs(sf.info(audio["audio_path"]).duration - SECONDS) < 0.1
    keyframes = run("ffmpeg.extract_keyframes", {"video_path": str(video),
                                                  "keyframe_sample_count": 50})
    assert keyframes["keyframe_files_count"] == 50
    crops = run("ffmpeg.crop_subtitle_images", {"video_path": str(video),
                                                "subtitle_area": [0, 60, 160, 90]})
    assert crops["cropped_images_files_count"] == SECONDS * FPS  # every frame, once
    stems = run("audio_separator.separate_vocals", {"audio_path": str(video)})
    for stem in (stems["vocal_audio"], stems["instrumental_audio"]):
        assert abs(sf.info(stem).duration - SECONDS) < 0.1
    text = run("faster_whisper.transcribe_audio", {"language": "en"})
    segments = json.loads(Path(text["segments_file"]).read_text())["segments"]
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and segments[-1]["end"] > SECONDS - 15
    score = wer(" ".join(t.text for t in said), " ".join(s["text"] for s in segments))
    print(f"\n5 min through separation: WER {score:.3f} ({len(segments)} segments)")
    # measured 0.46 here: tiny.en gets 0.25 on the clean voices, 0.33 on the mix; REPET-SIM's
    # vocals keep chord residue and lose some speech (README "Engines")
    assert score <= 0.55
    turns = run("pyannote_audio.diarize_speakers", {})
    found = json.loads(Path(turns["diarization_file"]).read_text())["segments"]
    der = der_of(said, [(t["start"], t["end"], t["speaker"]) for t in found], SECONDS)
    print(f"5 min, 3 voices: {turns['total_speakers']} found, DER {der:.3f}")
    # the count of three voices over music is not sure (2-4 seen); who spoke when is
    assert 2 <= turns["total_speakers"] <= 4 and der <= 0.3
    pieces = run("ffmpeg.split_audio_segments", {"subtitle_path": str(turns_file)})
    assert pieces["total_segments"] + pieces["skipped_segments"] == len(said)
    assert pieces["failed_segments"] == 0 and pieces["skipped_segments"] <= 1  # the last one
    info = json.loads(Path(pieces["split_info_file"]).read_text())
    assert all(abs(sf.info(p["file"]).duration - p["duration"]) < 0.01 for p in info["segments"])
    run("pyannote_audio.get_speaker_segments", {})
    run("pyannote_audio.validate_diarization", {})
    # subtitles and dubbing over the whole length
    words = sum(len(s["words"]) for s in segments)
    by_segment = run("wservice.merge_speaker_segments", {})
    assert len(by_segment["merged_segments"]) == len(segments)
    by_word = run("wservice.merge_with_word_timestamps", {})
    merged = json.loads(Path(by_word["merged_segments_file"]).read_text())["segments"]
    assert sum(len(s["words"]) for s in merged) == words  # every word once
    fixed = run("wservice.ai_optimize_subtitles", {"batch_size": 20, "overlap_size": 5})
    assert fixed["subtitles_count"] == len(segments)
    subs = run("wservice.generate_subtitle_files", {})
    cues = json.loads(Path(subs["json_path"]).read_text())["segments"]
    assert cues[-1]["end"] >= merged[-1]["end"] - 0.01 and len(cues) >= len(merged)
    corrected = run("wservice.correct_subtitles", {"batch_size": 25})
    assert corrected["statistics"]["lines"] == len(cues)
    groups = run("wservice.prepare_tts_segments", {})
    speech = run("indextts.generate_speech", {})
    assert abs(sf.info(speech["audio_path"]).duration - SECONDS) < 0.1  # on the video's time
    assert speech["segments_count"] == groups["total_segments"]
    stages = client.get(f"/v1/tasks/{task}/status").json()["stages"]
    assert len(stages) == 16
    assert all(s["status"] == "SUCCESS" and s["progress"] == 1.0 for s in stages.values())
