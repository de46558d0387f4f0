"""reelserve's metrics, through `ray.serve.metrics`.

Ray's metrics agent on each node exports them for Prometheus (`ray start
--metrics-export-port`), named `ray_<name>` (counters end in `_total`), with Serve's tags
`application`, `deployment`, `replica` added. `cluster/grafana_reelserve.json` charts them.
Each deployment builds its own set in `__init__` (nothing happens at import time).

| name | kind | tags | where |
|---|---|---|---|
| `reelserve_requests` | counter | node, outcome (hit, pending, miss, refused), reason | ingress |
| `reelserve_runs_started` | counter | node | node replica |
| `reelserve_runs_finished` | counter | node, status (success, failed, superseded) | node replica |
| `reelserve_run_duration_seconds` | histogram | node, status | node replica |
| `reelserve_runs_queued` / `reelserve_runs_running` | gauge | node | node replica |
| `reelserve_store_write_seconds` | histogram | op | StageStore |
| `reelserve_callback_deliveries` | counter | result (delivered, retry, failed, gone) | sender |
| `reelserve_outbox_lag_seconds` | gauge | | sender |

`reason` of a miss is its MissReason; of a refusal, the HTTP status; else empty. `node` of
a refused request whose task_name is not a node is `unknown`: tag values stay bounded.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from ray.serve import metrics

from nodes import registry

GAUGE_REFRESH_S = 1.0
SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]
RUN_SECONDS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]


def keys(*names: str) -> tuple[str]:
    """Tag keys. Ray annotates `tag_keys` as `tuple[str]` where it takes any number."""
    return cast("tuple[str]", names)


def node_tag(task_name: str) -> str:
    return task_name if registry.get(task_name) is not None else "unknown"


class IngressMetrics:
    def __init__(self) -> None:
        self.requests = metrics.Counter(
            "reelserve_requests", description="Task requests by node and outcome.",
            tag_keys=keys("node", "outcome", "reason"))

    def request(self, task_name: str, outcome: str, reason: str = "") -> None:
        self.requests.inc(tags={"node": node_tag(task_name), "outcome": outcome,
                                "reason": reason})


@functools.cache
def ingress_metrics() -> IngressMetrics:
    """The ingress replica's one set (its error handlers and request guard count too)."""
    return IngressMetrics()


def refused_before_handler(method: str, path: str, status: int) -> None:
    """A task request refused before its body was read as one (malformed body, too large,
    no API key): counted under node `unknown`."""
    if method == "POST" and path.rstrip("/") == "/v1/tasks":
        ingress_metrics().request("unknown", "refused", str(status))


class RunMetrics:
    """One node replica's runs. Also keeps the replica's own queued/running counts."""

    def __init__(self, task_name: str) -> None:
        self.tags = {"node": task_name}
        self.queued = 0
        self.running = 0
        self.started = metrics.Counter("reelserve_runs_started",
                                       description="Node runs started.", tag_keys=keys("node"))
        self.finished = metrics.Counter(
            "reelserve_runs_finished", description="Node runs ended, by status.",
            tag_keys=keys("node", "status"))
        self.duration = metrics.Histogram(
            "reelserve_run_duration_seconds", description="Node run time, start to end.",
            boundaries=RUN_SECONDS, tag_keys=keys("node", "status"))
        self.queued_gauge = metrics.Gauge(
            "reelserve_runs_queued", description="Runs waiting for a slot in this replica.",
            tag_keys=keys("node"))
        self.running_gauge = metrics.Gauge(
            "reelserve_runs_running", description="Runs in progress in this replica.",
            tag_keys=keys("node"))
        self.publish()

    def publish(self) -> None:
        """Set both gauges. Ray exports a gauge only for a while after it was set, so the
        replica calls this every `GAUGE_REFRESH_S` too (graph/node_deployment.py)."""
        self.queued_gauge.set(self.queued, tags=self.tags)
        self.running_gauge.set(self.running, tags=self.tags)

    def queue(self, delta: int) -> None:
        self.queued += delta
        self.publish()

    def start(self) -> None:
        self.running += 1
        self.started.inc(tags=self.tags)
        self.publish()

    def finish(self, status: str, seconds: float) -> None:
        self.running -= 1
        tags = {**self.tags, "status": status}
        self.finished.inc(tags=tags)
        self.duration.observe(seconds, tags=tags)
        self.publish()


class StoreMetrics:
    def __init__(self) -> None:
        self.writes = metrics.Histogram(
            "reelserve_store_write_seconds", description="StageStore calls, lock wait included.",
            boundaries=SECONDS, tag_keys=keys("op"))

    @contextmanager
    def timed(self, op: str) -> Iterator[None]:
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.writes.observe(time.perf_counter() - begun, tags={"op": op})


class SenderMetrics:
    def __init__(self) -> None:
        self.deliveries = metrics.Counter(
            "reelserve_callback_deliveries", description="Callback tries, by result.",
            tag_keys=keys("result"))
        self.lag = metrics.Gauge(
            "reelserve_outbox_lag_seconds",
            description="How long the oldest due callback has waited to be taken.")

    def delivery(self, result: str) -> None:
        self.deliveries.inc(tags={"result": result})

    def outbox_lag(self, seconds: float) -> None:
        self.lag.set(max(0.0, seconds))
