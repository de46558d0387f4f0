"""Autoscaling sees the backlog (issue 11): a burst of 20 runs of a slow node scales its
deployment out within its autoscaling_config and back in when idle, every run once.

The node is wservice.correct_subtitles against the scripted chat API's `held` model, whose
answers wait until the test opens a gate: runs that last exactly as long as the test says.
It runs in an app of its own ("scaling") with short delays, so the session's app keeps
one replica per node.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pysubs2
import pytest
from ray import serve

from graph.app import build_graph
from nodes import registry
from reuse.settings import Settings
from tests.chat_server import ChatServer
from tests.conftest import wait_stage, wait_until

NODE = "wservice.correct_subtitles"
DEPLOYMENT = registry.BY_NAME[NODE].deployment_name
MAX = 4


@pytest.fixture
def scaling_api(api: str, settings: Settings) -> Iterator[str]:
    app_settings = settings.model_copy(update={"llm_models": ["held"], "llm_timeout_s": 300.0})
    # look_back_period_s must exceed Serve's metrics_interval_s (10 s, deprecated field)
    scaling = {NODE: {"min_replicas": 1, "max_replicas": MAX, "look_back_period_s": 11.0,
                      "upscale_delay_s": 0.5, "downscale_delay_s": 3.0}}
    serve.run(build_graph(app_settings, [NODE], scaling=scaling), name="scaling",
              route_prefix="/scaling")
    yield f"{api}/scaling"
    serve.delete("scaling")


def running_replicas() -> int:
    deployment = serve.status().applications["scaling"].deployments[DEPLOYMENT]
    return int(deployment.replica_states.get("RUNNING", 0))


def test_a_burst_scales_the_node_out_and_back_in(
    scaling_api: str, chat_server: ChatServer, storage_root: Path
) -> None:
    srt = storage_root / "inputs" / "burst.srt"
    srt.parent.mkdir(parents=True, exist_ok=True)
    subs = pysubs2.SSAFile()
    subs.append(pysubs2.SSAEvent(start=0, end=1000, text="one line"))
    subs.save(str(srt))
    trace: list[tuple[float, int]] = []
    t0 = time.monotonic()

    def replicas() -> int:
        n = running_replicas()
        if not trace or trace[-1][1] != n:
            trace.append((round(time.monotonic() - t0, 1), n))
        return n

    assert replicas() == 1
    chat_server.gate.clear()
    mark = len(chat_server.requests)
    ids = [f"burst-{time.time_ns()}-{i}" for i in range(20)]
    with httpx.Client(base_url=scaling_api, timeout=60) as client:
        try:
            for task_id in ids:
                r = client.post("/v1/tasks", json={
                    "task_name": NODE, "task_id": task_id,
                    "input_data": {"subtitle_path": str(srt), "model": "held"}})
                assert r.status_code == 202, r.text
            # 4 runs per replica at once: the other 16 wait in the ingress' router, which
            # reports them to the autoscaler; it adds replicas up to max_replicas
            wait_until(lambda: replicas() == MAX, timeout=180, every=0.2)
            wait_until(lambda: len(chat_server.since(mark)) == 4 * MAX, timeout=60)
        finally:
            chat_server.gate.set()  # every held answer goes out now
        stages = [wait_stage(client, task_id, NODE, timeout=180) for task_id in ids]
    assert [(s["status"], s["attempt"]) for s in stages] == [("SUCCESS", 1)] * 20
    held = [r for r in chat_server.since(mark) if r["body"]["model"] == "held"]
    assert len(held) == 20  # one LLM call per run: no run twice
    wait_until(lambda: replicas() == 1, timeout=180, every=0.2)
    print(f"replicas over time (s, running): {trace}")
    assert trace[0][1] == 1 and max(n for _, n in trace) == MAX and trace[-1][1] == 1
