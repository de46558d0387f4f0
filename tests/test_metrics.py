"""reelserve's metrics, scraped from the real Prometheus endpoint of this session's Ray
(issue 11): after one miss, one hit, one failed run, one refused request and one callback,
each is counted once, under its node and outcome."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, wait_stage, wait_until
from tests.loopback import LoopbackServer

Key = tuple[str, frozenset[tuple[str, str]]]


def scrape(port: int) -> Counter[Key]:
    """Every sample of a reelserve metric, summed over replicas and workers."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: Counter[Key] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ray_reelserve_"):
                labels = {k: v for k, v in sample.labels.items()
                          if k in ("node", "outcome", "reason", "status", "op", "result")}
                out[(sample.name, frozenset(labels.items()))] += sample.value
    return out


def key(name: str, **labels: str) -> Key:
    return (f"ray_reelserve_{name}", frozenset(labels.items()))


def test_hit_miss_failure_refusal_and_callback_are_each_counted_once(
    client: httpx.Client, video: Path, loopback: LoopbackServer, metrics_port: int
) -> None:
    audio, crop = "ffmpeg.extract_audio", "ffmpeg.crop_subtitle_images"
    expected = {
        key("requests_total", node=audio, outcome="miss", reason="not_found"): 1,
        key("requests_total", node=audio, outcome="hit", reason=""): 1,
        key("requests_total", node=crop, outcome="miss", reason="not_found"): 1,
        key("requests_total", node="unknown", outcome="refused", reason="422"): 1,
        key("runs_started_total", node=audio): 1,
        key("runs_finished_total", node=audio, status="success"): 1,
        key("run_duration_seconds_count", node=audio, status="success"): 1,
        key("runs_started_total", node=crop): 1,
        key("runs_finished_total", node=crop, status="failed"): 1,
        key("run_duration_seconds_count", node=crop, status="failed"): 1,
        key("callback_deliveries_total", result="delivered"): 1,
        key("store_write_seconds_count", op="claim"): 2,  # the hit needs no claim
    }
    before = scrape(metrics_port)
    task_id = f"metrics-{time.time_ns()}"
    request = {"task_name": audio, "task_id": task_id,
               "input_data": {"video_path": str(video)}, "callback": loopback.url("metrics")}
    assert client.post("/v1/tasks", json=request).status_code == 202  # miss
    assert wait_stage(client, task_id, audio)["status"] == "SUCCESS"
    loopback.wait_for("metrics")
    hit = client.post("/v1/tasks", json={**request, "callback": None})
    assert hit.status_code == 200 and hit.json()["status"] == "completed"
    assert client.post("/v1/tasks", json={**request, "task_name": "ffmpeg.nope"}
                       ).status_code == 422
    assert client.post("/v1/tasks", json={
        "task_name": crop, "task_id": task_id,
        "input_data": {"video_path": str(video), "subtitle_area": [0, 0, 999, 999]},
    }).status_code == 202
    assert wait_stage(client, task_id, crop)["status"] == "FAILED"

    def all_in() -> dict[Key, float] | None:
        after = scrape(metrics_port)
        d = {k: after[k] - before[k] for k in expected}
        return d if all(d[k] >= v for k, v in expected.items()) else None

    # the agent exports what workers report every second: wait until all of it is in,
    # then nothing may have been counted twice
    seen = wait_until(all_in, timeout=60, every=0.5)
    print("counted:", {f"{n}{dict(sorted(labels))}": v for (n, labels), v in seen.items()})
    assert seen == expected
    def gauges() -> Counter[Key] | None:
        after = scrape(metrics_port)
        wanted = [key(g, node=audio) for g in ("runs_queued", "runs_running")]
        return after if all(k in after for k in [*wanted, key("outbox_lag_seconds")]) else None

    after = wait_until(gauges, timeout=30, every=0.5)
    for gauge in ("runs_queued", "runs_running"):
        assert after[key(gauge, node=audio)] == 0  # nothing waits or runs any more


def test_the_grafana_dashboard_charts_metrics_that_exist(
    client: httpx.Client, video: Path, loopback: LoopbackServer, metrics_port: int
) -> None:
    """Every series cluster/grafana_reelserve.json queries is exported by the running graph
    (after a run with a callback and a hit, so each has fresh samples)."""
    task_id = f"dash-{time.time_ns()}"
    request = {"task_name": "ffmpeg.extract_audio", "task_id": task_id,
               "input_data": {"video_path": str(video)}, "callback": loopback.url(task_id)}
    assert client.post("/v1/tasks", json=request).status_code == 202
    wait_stage(client, task_id, "ffmpeg.extract_audio")
    loopback.wait_for(task_id)
    assert client.post("/v1/tasks", json={**request, "callback": None}).status_code == 200
    dashboard = json.loads((ROOT / "cluster" / "grafana_reelserve.json").read_text())
    wanted = {name for panel in dashboard["panels"] for target in panel["targets"]
              for name in re.findall(r"\bray_[a-z_]+", target["expr"])}
    assert {n for n in wanted if n.startswith("ray_reelserve_")} >= {
        "ray_reelserve_requests_total", "ray_reelserve_runs_queued",
        "ray_reelserve_run_duration_seconds_bucket", "ray_reelserve_outbox_lag_seconds"}

    def missing() -> set[str]:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        return wanted - {s.name for f in text_string_to_metric_families(text)
                         for s in f.samples}

    try:
        wait_until(lambda: not missing(), timeout=60, every=0.5)
    except AssertionError:
        raise AssertionError(f"not exported: {sorted(missing())}") from None
