"""Callback delivery through the running graph: retries, restarts, signatures."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import ray
from standardwebhooks import Webhook

from reuse.settings import Settings
from tests.conftest import unique, wait_until
from tests.loopback import LoopbackServer


def submit(client: httpx.Client, video: Path, callback: str) -> str:
    task_id = unique("cbjob")
    r = client.post("/v1/tasks", json={"task_name": "ffmpeg.extract_audio", "task_id": task_id,
                                       "callback": callback,
                                       "input_data": {"video_path": str(video)}})
    assert r.status_code == 202, r.text
    return task_id


def delivery(client: httpx.Client, task_id: str) -> dict:
    return client.get(f"/v1/tasks/{task_id}/status").json()["callbacks"][0]


def test_retried_after_5xx_and_signed(client: httpx.Client, video: Path,
                                      loopback: LoopbackServer, settings: Settings) -> None:
    cb = unique("flaky")
    loopback.fail_first[f"/cb/{cb}"] = 2
    task_id = submit(client, video, loopback.url(cb))
    got = loopback.wait_for(cb)[0]
    assert loopback.hits[f"/cb/{cb}"] == 3
    assert settings.callback_secret
    assert Webhook(settings.callback_secret).verify(got.body, got.headers)["task_id"] == task_id
    state = wait_until(lambda: (d := delivery(client, task_id))["state"] == "delivered" and d)
    assert state["attempts"] == 3 and state["last_error"] is None


def test_failed_delivery_is_shown_in_status(client: httpx.Client, video: Path,
                                            loopback: LoopbackServer) -> None:
    cb = unique("down")
    loopback.status_for[f"/cb/{cb}"] = 500
    task_id = submit(client, video, loopback.url(cb))
    state = wait_until(lambda: (d := delivery(client, task_id))["state"] == "failed" and d)
    assert state["attempts"] == 5 and "HTTP 500" in state["last_error"]


def test_a_slow_receiver_does_not_hold_up_others(client: httpx.Client, video: Path,
                                                  loopback: LoopbackServer) -> None:
    slow, fast = unique("slow"), unique("fast")
    slow_job = submit(client, video, loopback.slow_callback(slow))
    loopback.wait_for_hit(f"/cb/{slow}")  # the sender is now stuck in that request
    submit(client, video, loopback.url(fast))
    assert loopback.wait_for(fast)[0].json["status"] == "completed"
    # the slow one is still in its first try: it did not have to time out to free the sender
    assert loopback.calls(slow) == [] and delivery(client, slow_job)["attempts"] == 0
    loopback.open_gate(f"/cb/{slow}")
    assert loopback.wait_for(slow)[0].json["status"] == "completed"


@pytest.mark.slow
def test_delivered_after_the_sender_restarts(client: httpx.Client, video: Path,
                                             loopback: LoopbackServer) -> None:
    cb = unique("restart")
    loopback.status_for[f"/cb/{cb}"] = 503  # keeps it in the outbox, retrying
    task_id = submit(client, video, loopback.url(cb))
    wait_until(lambda: delivery(client, task_id)["attempts"] >= 1)
    sender = next(a for a in ray.util.list_named_actors(all_namespaces=True)
                  if "CallbackSender" in a["name"])
    ray.kill(ray.get_actor(sender["name"], namespace=sender["namespace"]), no_restart=True)
    loopback.status_for[f"/cb/{cb}"] = 200
    got = loopback.wait_for(cb, timeout=120)
    assert got[0].json["task_id"] == task_id
    replacement = wait_until(lambda: [a for a in ray.util.list_named_actors(all_namespaces=True)
                                      if "CallbackSender" in a["name"]], timeout=120)
    assert replacement[0]["name"] != sender["name"]
    assert wait_until(lambda: delivery(client, task_id)["state"] == "delivered")
