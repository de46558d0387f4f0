"""One Serve deployment per node, all built from this class and the registry.

`submit` runs one claimed attempt and returns when it has ended, so Serve counts a run as
one ongoing request: a replica takes `max_concurrent_runs` at once, the rest wait in the
caller's router where the autoscaler sees them (graph/resources.py), and a replica being
scaled in drains its runs first. The run itself is a task of the replica, shielded from
the call: a cancelled call (the caller gone) does not stop it (DESIGN §2).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from graph.metrics import GAUGE_REFRESH_S, RunMetrics
from nodes import registry
from nodes.device import assigned_gpu_ids, select_device
from nodes.runner import Job, NodeRunner
from reuse.redis_store import Fenced
from reuse.settings import Settings

log = logging.getLogger("reelserve.nodes")


class HandleWriter:
    """The runner's StageWriter: the StageStore deployment's fenced writes, over its handle."""

    def __init__(self, store: DeploymentHandle) -> None:
        self.store = store

    async def start(self, task_id: str, task_name: str, attempt: int) -> Fenced:
        return await self.store.start.remote(task_id, task_name, attempt)

    async def heartbeat(self, task_id: str, task_name: str, attempt: int,
                        progress: float) -> Fenced:
        return await self.store.heartbeat.remote(task_id, task_name, attempt, progress)

    async def finish(
        self, task_id: str, task_name: str, attempt: int,
        output: dict[str, Any] | None, error: str | None,
    ) -> Fenced:
        return await self.store.finish.remote(task_id, task_name, attempt, output, error)


# max_ongoing_requests and autoscaling come per node from graph/resources.py
@serve.deployment
class NodeDeployment:
    def __init__(
        self, task_name: str, settings: Settings, store: DeploymentHandle,
        sender: DeploymentHandle,
    ) -> None:
        spec = registry.get(task_name)
        if spec is None:
            raise ValueError(f"unknown node {task_name!r}")
        self.sender = sender
        self.device = select_device()
        engine = spec.load(settings, self.device) if spec.load else None  # once per replica
        self.engine: Any = engine
        self.metrics = RunMetrics(spec.name)
        self.runner = NodeRunner(spec, settings, HandleWriter(store), engine, self._notify,
                                 self.device, self.metrics)
        self.running: set[asyncio.Task[Any]] = set()
        self.gauges = asyncio.get_running_loop().create_task(self._refresh_gauges())

    async def _refresh_gauges(self) -> None:
        while True:
            self.metrics.publish()
            await asyncio.sleep(GAUGE_REFRESH_S)

    async def _notify(self) -> None:
        await self.sender.notify.remote()

    async def submit(self, job: Job) -> str | None:
        """Run a claimed attempt to its end: its final status, None if it was fenced out."""
        task = asyncio.get_running_loop().create_task(self.runner.run(job))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        status = await asyncio.shield(task)
        return status.value if status is not None else None

    async def describe(self) -> dict[str, Any]:
        """Where this replica computes (the device and the GPUs Ray assigned to it) and,
        for nodes with an engine, what it has loaded."""
        out: dict[str, Any] = {"device": self.device, "gpu_ids": assigned_gpu_ids()}
        if hasattr(self.engine, "describe"):
            out["engine"] = self.engine.describe()
        return out
