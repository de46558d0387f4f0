"""The speech nodes over HTTP on the session's Ray + Serve graph: the chain of the seed
scenario on one task_id, the other engines picked per request, and their GPU packing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import yaml
from ray import serve

from nodes import registry
from nodes.espeak import write_speech
from reuse.settings import Settings
from tests.conftest import ROOT, post_task, run_task, unique, wait_stage, wait_until
from tests.media import make_speech_video

SPEECH_NODES = ("audio_separator.separate_vocals", "faster_whisper.transcribe_audio",
                "pyannote_audio.diarize_speakers")


@pytest.fixture(scope="module")
def speech_video(storage_root: Path) -> Path:
    wav = storage_root / "inputs" / "dialogue.wav"
    write_speech(wav, [("en-us", "Good morning, this is the first speaker talking."),
                       ("en-us+f2", "And this is the second speaker, answering back."),
                       ("en-us", "Thank you, that is all for today.")])
    return make_speech_video(storage_root / "inputs" / "dialogue.mp4", wav)


def run(client: httpx.Client, task_id: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    return run_task(client, task_id, name, data, timeout=180)


def test_speech_chain_on_one_task_then_every_repeat_is_a_hit(
        client: httpx.Client, speech_video: Path) -> None:
    task_id = unique("chain")
    audio = run(client, task_id, "ffmpeg.extract_audio", {"video_path": str(speech_video)})
    vocals = run(client, task_id, "audio_separator.separate_vocals", {"quality_mode": "fast"})
    text = run(client, task_id, "faster_whisper.transcribe_audio", {"language": "en"})
    turns = run(client, task_id, "pyannote_audio.diarize_speakers", {})
    # upstream sources: transcription took the separated vocals, diarization the extracted
    # audio (the catalogue's orders)
    assert text["audio_path"] == vocals["vocal_audio"]
    assert json.loads(Path(turns["diarization_file"]).read_text())["audio_path"] == \
        audio["audio_path"]
    words = " ".join(s["text"] for s in
                     json.loads(Path(text["segments_file"]).read_text())["segments"]).lower()
    assert "speaker" in words and text["segments_count"] > 0
    assert turns["total_speakers"] >= 1 and turns["total_segments"] >= 1
    first = client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    for name in ("ffmpeg.extract_audio", *SPEECH_NODES):
        r = post_task(client, task_id, name, {})
        if name == "ffmpeg.extract_audio":
            r = post_task(client, task_id, name, {"video_path": str(speech_video)})
        assert r.status_code == 200, r.text
        assert r.json()["reuse_info"]["reuse_hit"] is True
    after = client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    assert set(after) == {"ffmpeg.extract_audio", *SPEECH_NODES}
    for name, stage in first.items():  # every stage intact: same attempt, same output
        assert after[name]["status"] == "SUCCESS"
        assert after[name]["output"] == stage["output"]
        assert after[name]["attempt"] == stage["attempt"]


def test_speaker_segments_and_validation_read_the_upstream_diarization(
        client: httpx.Client, speech_video: Path) -> None:
    task_id = unique("turns")
    turns = run(client, task_id, "pyannote_audio.diarize_speakers",
                {"audio_path": str(speech_video), "num_speakers": 2})
    assert turns["detected_speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    one = run(client, task_id, "pyannote_audio.get_speaker_segments", {"speaker": "SPEAKER_01"})
    assert one["segments"] and {s["speaker"] for s in one["segments"]} == {"SPEAKER_01"}
    assert one["summary"]["total_segments"] == len(one["segments"])
    report = run(client, task_id, "pyannote_audio.validate_diarization",
                 {"max_speakers": 1})
    assert report["validation"]["valid"] is False
    assert report["validation"]["total_speakers"] == 2
    assert any("more than 1" in issue for issue in report["validation"]["issues"])
    assert json.loads(Path(report["validation_file"]).read_text()) == report["validation"]


def test_unknown_speaker_fails_that_stage_only(client: httpx.Client,
                                               speech_video: Path) -> None:
    task_id = unique("nospk")
    run(client, task_id, "pyannote_audio.diarize_speakers", {"audio_path": str(speech_video)})
    assert post_task(client, task_id, "pyannote_audio.get_speaker_segments",
                {"speaker": "SPEAKER_09"}).status_code == 202
    stage = wait_stage(client, task_id, "pyannote_audio.get_speaker_segments")
    assert stage["status"] == "FAILED" and "SPEAKER_09" in stage["error"]
    stages = client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    assert stages["pyannote_audio.diarize_speakers"]["status"] == "SUCCESS"


def test_bad_speaker_bounds_are_refused_and_nothing_is_written(client: httpx.Client,
                                                               speech_video: Path) -> None:
    task_id = unique("bounds")
    r = post_task(client, task_id, "pyannote_audio.diarize_speakers",
             {"audio_path": str(speech_video), "min_speakers": 3, "max_speakers": 2})
    assert r.status_code == 422 and "min_speakers" in r.text
    assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404


def test_pyannote_engine_through_the_api(client: httpx.Client, speech_video: Path) -> None:
    """The random local pipeline of the session's settings, picked by the request."""
    out = run(client, unique("pya"), "pyannote_audio.diarize_speakers",
              {"audio_path": str(speech_video), "engine": "pyannote"})
    data = json.loads(Path(out["diarization_file"]).read_text())
    assert out["engine"] == "pyannote" and data["metadata"]["model"].startswith("pyannote:")
    assert out["detected_speakers"] == sorted({s["speaker"] for s in data["segments"]})


def test_demucs_engine_through_the_api(client: httpx.Client, speech_video: Path) -> None:
    out = run(client, unique("dmx"), "audio_separator.separate_vocals",
              {"video_path": str(speech_video), "model_type": "demucs"})
    assert out["engine"] == "demucs" and out["model_used"] == "htdemucs_random"
    assert all(Path(p).is_file() for p in out["all_audio_files"])


def test_speech_deployments_pack_on_one_logical_gpu(api: str, settings: Settings) -> None:
    """serve_config.yaml's fractions for the speech nodes fit one GPU together, and the
    running replicas all hold that one GPU (they compute on the CPU here)."""
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    resources = config["applications"][0]["args"]["resources"]
    fractions = {n: resources[n]["num_gpus"] for n in SPEECH_NODES}
    assert all(0 < f < 1 for f in fractions.values()) and sum(fractions.values()) <= 1
    assert ray.cluster_resources()["GPU"] == 1
    for name in SPEECH_NODES:
        handle = serve.get_deployment_handle(registry.BY_NAME[name].deployment_name,
                                             app_name="reelserve")
        got = handle.describe.remote().result()
        assert (got["device"], got["gpu_ids"]) == ("cpu", ["0"])
    used = wait_until(lambda: 1 - ray.available_resources().get("GPU", 0))
    assert used >= sum(fractions.values()) - 1e-9


def test_the_whisper_model_is_loaded_once_per_replica(client: httpx.Client,
                                                      speech_video: Path) -> None:
    """Lesson 19: the reference reloaded the model for every task."""
    for _ in range(2):
        run(client, unique("once"), "faster_whisper.transcribe_audio",
            {"audio_path": str(speech_video), "language": "en"})
    handle = serve.get_deployment_handle(
        registry.BY_NAME["faster_whisper.transcribe_audio"].deployment_name, app_name="reelserve")
    engine = handle.describe.remote().result()["engine"]
    assert engine["loads"] == 1 and len(engine["loaded"]) == 1
    assert engine["compute_type"] == "int8"  # the CPU default
