"""Reuse over HTTP on a real Ray Serve: pending, concurrency, failures, leases, bad input."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from reuse import keys
from reuse.outbox import Outbox
from reuse.redis_store import ClaimRequest, RedisStageStore
from reuse.settings import Settings
from reuse.status import ReuseMode
from tests.conftest import make_settings, unique, wait_stage, wait_until
from tests.loopback import LoopbackServer
from tests.media import make_silent_video

EXTRACT = "ffmpeg.extract_audio"


def submit(client: httpx.Client, task_id: str, video: str, callback: str | None = None,
           name: str = EXTRACT, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"task_name": name, "task_id": task_id,
                            "input_data": {"video_path": video}, **extra}
    if callback:
        body["callback"] = callback
    return client.post("/v1/tasks", json=body)


def test_repeat_while_running_is_pending_with_one_run_and_one_callback_per_url(
    client: httpx.Client, video: Path, loopback: LoopbackServer
) -> None:
    task_id = unique("pending")
    gate = unique("gate")
    url = loopback.serve_file(gate, video, gated=True)  # the node blocks downloading this
    cb_a, cb_b = unique("cb-a"), unique("cb-b")
    first = submit(client, task_id, url, loopback.url(cb_a))
    assert first.status_code == 202 and first.json()["reuse_info"]["reuse_hit"] is False
    repeats = [submit(client, task_id, url, loopback.url(cb)) for cb in (cb_b, cb_a, cb_b)]
    for r in repeats:
        assert r.status_code == 202, r.text
        info = r.json()["reuse_info"]
        assert r.json()["status"] == "pending"
        assert info["reuse_hit"] is True and info["state"] == "pending"
        assert info["stage_status"] in ("PENDING", "RUNNING") and info["attempt"] == 1
    status = client.get(f"/v1/tasks/{task_id}/status").json()
    assert list(status["stages"]) == [EXTRACT] and status["stages"][EXTRACT]["attempt"] == 1
    loopback.open_gate(gate)
    a = loopback.wait_for(cb_a, 1)
    b = loopback.wait_for(cb_b, 1)
    stage = wait_stage(client, task_id, EXTRACT)
    assert stage["status"] == "SUCCESS" and stage["attempt"] == 1
    # a callback on a later hit would be a new event; here nothing else may arrive
    # the receiver has them; the sender records the delivery right after
    final = wait_until(lambda: (s := client.get(f"/v1/tasks/{task_id}/status").json())
                       and all(c["state"] == "delivered" for c in s["callbacks"]) and s)
    # /status shows receivers by host only: their paths may carry tokens
    assert [c["url"] for c in final["callbacks"]] == [f"{loopback.base}/…"] * 2
    assert len(loopback.calls(cb_a)) == 1 and len(loopback.calls(cb_b)) == 1
    assert a[0].json["status"] == b[0].json["status"] == "completed"
    # one message id per receiver: a receiver deduplicating by id never drops another's
    assert a[0].headers["webhook-id"] != b[0].headers["webhook-id"]


async def test_fifty_concurrent_identical_submits_run_once(
    api: str, video: Path, loopback: LoopbackServer
) -> None:
    task_id = unique("fifty")
    cb = unique("cb-fifty")
    body = {"task_name": EXTRACT, "task_id": task_id, "callback": loopback.url(cb),
            "input_data": {"video_path": str(video)}}
    async with httpx.AsyncClient(base_url=api, timeout=60) as ac:
        responses = await asyncio.gather(*(ac.post("/v1/tasks", json=body) for _ in range(50)))
    infos = [r.json()["reuse_info"] for r in responses]
    assert all(r.status_code in (200, 202) for r in responses)
    assert sum(1 for i in infos if i["reuse_hit"] is False) == 1
    hits = sum(1 for r in responses if r.status_code == 200)
    # one final callback for the run (the waiting requests share it), one per hit request
    calls = loopback.wait_for(cb, 1 + hits)
    with httpx.Client(base_url=api) as c:
        stage = wait_stage(c, task_id, EXTRACT)
        callbacks = c.get(f"/v1/tasks/{task_id}/status").json()["callbacks"]
    assert stage["attempt"] == 1
    assert sorted(c["kind"] for c in callbacks) == ["hit"] * hits + ["run"]
    assert len(calls) == 1 + hits


async def test_concurrent_different_nodes_on_one_task_keep_every_stage(
    api: str, video: Path
) -> None:
    task_id = unique("mixed")
    bodies = [
        {"task_name": EXTRACT, "input_data": {"video_path": str(video)}},
        {"task_name": "ffmpeg.extract_keyframes",
         "input_data": {"video_path": str(video), "keyframe_sample_count": 5}},
        {"task_name": "ffmpeg.crop_subtitle_images",
         "input_data": {"video_path": str(video), "subtitle_area": [0, 180, 320, 240]}},
        {"task_name": "audio_separator.separate_vocals",
         "input_data": {"video_path": str(video), "quality_mode": "fast"}},
    ]
    async with httpx.AsyncClient(base_url=api, timeout=60) as ac:
        rs = await asyncio.gather(*(ac.post("/v1/tasks", json={**b, "task_id": task_id})
                                    for b in bodies))
    assert [r.status_code for r in rs] == [202] * 4
    with httpx.Client(base_url=api) as c:
        for b in bodies:
            assert wait_stage(c, task_id, b["task_name"])["status"] == "SUCCESS"
        stages = c.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    assert set(stages) == {b["task_name"] for b in bodies}


def test_failed_stage_is_a_miss_and_other_stages_stay(
    client: httpx.Client, video: Path, storage_root: Path, loopback: LoopbackServer
) -> None:
    task_id = unique("failed")
    silent = make_silent_video(storage_root / "inputs" / f"{task_id}.mp4")
    assert submit(client, task_id, str(video), name="ffmpeg.extract_keyframes").status_code == 202
    keyframes = wait_stage(client, task_id, "ffmpeg.extract_keyframes")
    cb = unique("cb-failed")
    assert submit(client, task_id, str(silent), loopback.url(cb)).status_code == 202
    failed = wait_stage(client, task_id, EXTRACT)
    assert failed["status"] == "FAILED" and "no audio stream" in failed["error"]
    told = loopback.wait_for(cb)[0].json  # the callback reports the stage, not the job
    assert told["status"] == "failed"
    assert told["result"]["stages"][EXTRACT]["error"] == failed["error"]
    status = client.get(f"/v1/tasks/{task_id}/status").json()
    assert status["status"] == "failed"
    assert status["stages"]["ffmpeg.extract_keyframes"] == keyframes
    again = submit(client, task_id, str(video))
    assert again.status_code == 202
    assert again.json()["reuse_info"]["reason"] == "failed"
    assert again.json()["reuse_info"]["attempt"] == 2
    fixed = wait_stage(client, task_id, EXTRACT)
    assert fixed["status"] == "SUCCESS" and fixed["attempt"] == 2 and fixed["error"] is None
    after = client.get(f"/v1/tasks/{task_id}/status").json()
    assert after["stages"]["ffmpeg.extract_keyframes"] == keyframes
    assert after["status"] == "completed"


def test_hit_with_new_callback_calls_it_and_keeps_the_stage(
    client: httpx.Client, video: Path, loopback: LoopbackServer
) -> None:
    task_id = unique("newcb")
    assert submit(client, task_id, str(video)).status_code == 202  # no callback at all
    stage = wait_stage(client, task_id, EXTRACT)
    hit = submit(client, task_id, str(video))  # no callback: reuse still works
    assert hit.status_code == 200 and hit.json()["result"]["stages"][EXTRACT] == stage
    cb = unique("cb-new")
    hit = submit(client, task_id, str(video), loopback.url(cb))
    assert hit.status_code == 200
    got = loopback.wait_for(cb)[0].json
    assert got["reuse_info"]["reuse_hit"] is True
    assert got["reuse_info"]["cached_at"] == stage["finished_at"]
    assert got["result"]["stages"][EXTRACT] == stage
    assert client.get(f"/v1/tasks/{task_id}/status").json()["stages"][EXTRACT] == stage


def test_missing_artifact_is_a_miss(client: httpx.Client, video: Path) -> None:
    task_id = unique("gone")
    submit(client, task_id, str(video))
    stage = wait_stage(client, task_id, EXTRACT)
    Path(stage["output"]["audio_path"]).unlink()
    r = submit(client, task_id, str(video))
    assert r.status_code == 202 and r.json()["reuse_info"]["reason"] == "artifact_missing"
    again = wait_stage(client, task_id, EXTRACT)
    assert again["attempt"] == 2 and Path(again["output"]["audio_path"]).is_file()


def test_reuse_off_and_strict(client: httpx.Client, video: Path, storage_root: Path) -> None:
    task_id = unique("modes")
    submit(client, task_id, str(video), name="ffmpeg.extract_keyframes")
    first = wait_stage(client, task_id, "ffmpeg.extract_keyframes")
    forced = client.post("/v1/tasks", json={
        "task_name": "ffmpeg.extract_keyframes", "task_id": task_id, "reuse": "off",
        "input_data": {"video_path": str(video)}})
    assert forced.json()["reuse_info"]["reason"] == "forced"
    assert wait_stage(client, task_id, "ffmpeg.extract_keyframes")["attempt"] == 2
    changed = {"task_name": "ffmpeg.extract_keyframes", "task_id": task_id,
               "input_data": {"video_path": str(video), "keyframe_sample_count": 3}}
    assert client.post("/v1/tasks", json=changed).status_code == 200  # auto: a hit
    strict = client.post("/v1/tasks", json={**changed, "reuse": "strict"})
    assert strict.json()["reuse_info"]["reason"] == "input_changed"
    done = wait_stage(client, task_id, "ffmpeg.extract_keyframes")
    assert done["output"]["keyframe_files_count"] == 3 and first["attempt"] == 1


def test_client_disconnect_after_submit_still_runs_and_calls_back(
    api: str, video: Path, loopback: LoopbackServer
) -> None:
    task_id = unique("disconnect")
    cb = unique("cb-disc")
    body = json.dumps({"task_name": EXTRACT, "task_id": task_id, "callback": loopback.url(cb),
                       "input_data": {"video_path": str(video)}}).encode()
    host = urlsplit(api)
    with socket.create_connection((host.hostname, host.port)) as sock:
        sock.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        sock.shutdown(socket.SHUT_RDWR)  # gone before any answer
    got = loopback.wait_for(cb, 1)[0].json
    assert got["status"] == "completed" and got["task_id"] == task_id


async def test_claim_that_never_started_is_recovered_by_its_lease(
    client: httpx.Client, video: Path, settings: Settings, loopback: LoopbackServer
) -> None:
    task_id = unique("dead")
    # A claim whose hand-off never happened (a crash between claim and submit):
    # written by the real store code with a lease that is already over.
    dead = RedisStageStore(make_settings(settings.redis_url, settings.storage_root,
                                         claim_lease_s=0.0))
    await dead.claim(ClaimRequest(task_id=task_id, task_name=EXTRACT, reuse_keys=["audio_path"],
                                  mode=ReuseMode.AUTO, input_params={"video_path": str(video)},
                                  fingerprint="x", request_params={}))
    waiter = unique("cb-waiter")  # a caller that got `pending` from the dead attempt
    await Outbox(dead).subscribe(task_id, EXTRACT, 1, loopback.url(waiter))
    await dead.close()
    cb = unique("cb-dead")
    r = submit(client, task_id, str(video), loopback.url(cb))
    assert r.status_code == 202
    assert r.json()["reuse_info"]["reason"] == "lease_expired"
    assert r.json()["reuse_info"]["attempt"] == 2
    assert loopback.wait_for(cb)[0].json["status"] == "completed"
    assert wait_stage(client, task_id, EXTRACT)["attempt"] == 2
    moved = loopback.wait_for(waiter)[0].json  # the waiter is told about the re-run
    assert moved["status"] == "completed"
    assert moved["reuse_info"]["attempt"] == 2


BAD = [
    ({"task_name": "ffmpeg.no_such_node", "input_data": {}}, 422, "unknown task_name"),
    ({"task_name": EXTRACT, "task_id": "../etc", "input_data": {"video_path": "x"}}, 422,
     "task_id"),
    ({"task_name": EXTRACT, "input_data": {}}, 422, "input_data.video_path: Field required"),
    ({"task_name": EXTRACT, "input_data": {"video_path": "/etc/passwd"}}, 422,
     "outside the storage root"),
    ({"task_name": EXTRACT, "input_data": {"video_path": "nope/missing.mp4"}}, 422,
     "does not exist"),
    ({"task_name": EXTRACT, "input_data": {"video_path": "x", "typo": 1}}, 422, "typo"),
    ({"task_name": EXTRACT, "callback": "ftp://example.org/cb",
      "input_data": {"video_path": "x"}}, 422, "callback"),
    ({"task_name": EXTRACT, "callback": "not a url", "input_data": {"video_path": "x"}}, 422,
     "callback"),
    ({"task_name": EXTRACT, "reuse": "sometimes", "input_data": {"video_path": "x"}}, 422,
     "reuse"),
    ({"task_name": "audio_separator.separate_vocals", "input_data": {}}, 422,
     "'audio_path' or 'video_path' is required"),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    client: httpx.Client, settings: Settings, body: dict, code: int, message: str
) -> None:
    task_id = unique("bad")
    r = client.post("/v1/tasks", json={"task_id": task_id, **body})
    assert r.status_code == code, r.text
    assert message in r.json()["error"]
    assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404
    with redis.Redis.from_url(settings.redis_url) as rc:
        assert rc.exists(*keys.job_keys(task_id)) == 0


def test_malformed_json_is_400(client: httpx.Client) -> None:
    r = client.post("/v1/tasks", content=b"{not json", headers={"content-type":
                                                                  "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]


def test_job_input_params_is_the_request_that_started_the_latest_run(
    client: httpx.Client, video: Path
) -> None:
    task_id = unique("params")
    submit(client, task_id, str(video))
    wait_stage(client, task_id, EXTRACT)
    submit(client, task_id, str(video), name="ffmpeg.extract_keyframes")
    wait_stage(client, task_id, "ffmpeg.extract_keyframes")
    assert submit(client, task_id, str(video)).status_code == 200  # a hit writes nothing
    job = client.get(f"/v1/tasks/{task_id}/status").json()
    assert job["input_params"]["task_name"] == "ffmpeg.extract_keyframes"
    assert job["stages"][EXTRACT]["input_params"] == {"video_path": str(video.resolve())}
