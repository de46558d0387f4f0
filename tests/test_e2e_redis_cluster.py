"""The graph on a 3-primary Valkey Cluster (issue 11): a run with a callback, a wait and a
hit, a delete; no script or transaction crosses slots (Redis Cluster would refuse it with
CROSSSLOT). An app of its own ("clustered"), so the session's app keeps its Valkey."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ray import serve

from graph.app import build_graph
from reuse.settings import Settings
from tests.conftest import make_settings, unique, wait_stage, wait_until
from tests.loopback import LoopbackServer

EXTRACT = "ffmpeg.extract_audio"


@pytest.fixture(scope="module")
def clustered(api: str, settings: Settings, valkey_cluster: str) -> Iterator[str]:
    s = make_settings(valkey_cluster, settings.storage_root, redis_cluster=True)
    serve.run(build_graph(s, [EXTRACT]), name="clustered", route_prefix="/clustered")
    base = f"{api}/clustered"
    wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
    yield base
    serve.delete("clustered")


def test_a_job_runs_waits_hits_and_is_deleted_on_redis_cluster(
    clustered: str, video: Path, loopback: LoopbackServer
) -> None:
    with httpx.Client(base_url=clustered, timeout=60) as client:
        for task_id in (unique("rc-a"), unique("rc-b"), unique("rc-c")):  # other slots
            body = {"task_name": EXTRACT, "task_id": task_id, "callback": loopback.url(task_id),
                    "input_data": {"video_path": str(video)}}
            assert client.post("/v1/tasks", json=body).status_code == 202
            waiter = {**body, "callback": loopback.url(f"{task_id}-w")}
            assert client.post("/v1/tasks", json=waiter).json()["status"] == "pending"
            assert wait_stage(client, task_id, EXTRACT)["status"] == "SUCCESS"
            for name in (task_id, f"{task_id}-w"):
                assert loopback.wait_for(name)[0].json["status"] == "completed"
            hit = client.post("/v1/tasks", json={**body, "callback": None})
            assert hit.status_code == 200 and hit.json()["reuse_info"]["reuse_hit"] is True
            r = client.delete(f"/v1/tasks/{task_id}")
            assert r.status_code == 200, r.text
            assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404
