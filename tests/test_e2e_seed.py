"""The seed's scenario end to end over HTTP (shared/seed: stages kept, reuse hits)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import unique, wait_stage
from tests.loopback import LoopbackServer


def test_seed_scenario(client: httpx.Client, video: Path, loopback: LoopbackServer) -> None:
    task_id = unique("seed")
    cb = unique("seed-cb")
    extract = {"task_name": "ffmpeg.extract_audio", "task_id": task_id,
               "callback": loopback.url(cb), "input_data": {"video_path": str(video)}}

    # 1) extract_audio runs
    r = client.post("/v1/tasks", json=extract)
    assert r.status_code == 202, r.text
    assert r.json()["reuse_info"] == {"reuse_hit": False, "task_name": "ffmpeg.extract_audio",
                                      "reason": "not_found", "attempt": 1}
    first = loopback.wait_for(cb, 1)[0].json
    assert first["status"] == "completed"
    audio = first["result"]["stages"]["ffmpeg.extract_audio"]["output"]["audio_path"]
    assert Path(audio).is_file()

    # 2) the same call is a hit
    r = client.post("/v1/tasks", json=extract)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    assert body["reuse_info"]["reuse_hit"] is True
    assert body["reuse_info"]["source"] == "redis"
    stage_after_1 = body["result"]["stages"]["ffmpeg.extract_audio"]
    assert body["reuse_info"]["cached_at"] == stage_after_1["finished_at"]

    # 3) separate_vocals runs (audio from the extract_audio stage)
    r = client.post("/v1/tasks", json={"task_name": "audio_separator.separate_vocals",
                                       "task_id": task_id, "input_data": {}})
    assert r.status_code == 202, r.text
    sep = wait_stage(client, task_id, "audio_separator.separate_vocals")
    assert sep["status"] == "SUCCESS", sep
    assert sep["input_params"]["audio_path"] == audio

    # 4) extract_audio again: still a hit, and both stages are there, the first unchanged
    r = client.post("/v1/tasks", json=extract)
    assert r.status_code == 200, r.text
    assert r.json()["reuse_info"]["reuse_hit"] is True
    status = client.get(f"/v1/tasks/{task_id}/status").json()
    assert set(status["stages"]) == {"ffmpeg.extract_audio", "audio_separator.separate_vocals"}
    assert status["stages"]["ffmpeg.extract_audio"] == stage_after_1
    assert status["status"] == "completed"
    # each request with a callback URL called it: the run's end, then one per hit
    calls = loopback.wait_for(cb, 3)
    assert [c.json["reuse_info"]["reuse_hit"] for c in calls] == [False, True, True]
    assert [c.json["result"]["stages"]["ffmpeg.extract_audio"] for c in calls[1:]] == \
        [stage_after_1] * 2
