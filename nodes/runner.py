"""The one node runner: start (fenced), heartbeat with progress, run, finish (fenced).

Family modules only provide a blocking `run(params, ctx)`. Everything else about a node's
lifecycle is here, so every node writes its stage and ends its attempt the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pydantic import BaseModel

from nodes.inputs import fetch_inputs, reset_workdir
from nodes.spec import NodeSpec, RunContext
from reuse.artifacts import artifact_store, prune_attempts, publish_outputs
from reuse.redis_store import Fenced
from reuse.settings import Settings
from reuse.status import StageStatus
from reuse.storage import attempt_dir

log = logging.getLogger("reelserve.runner")


class Job(BaseModel):
    """What the ingress hands to a node deployment after a successful claim."""

    task_id: str
    task_name: str
    attempt: int
    input_params: dict[str, Any]


class StageWriter(Protocol):
    """Fenced stage writes, refused (`accepted=False`) once the attempt is not current.

    `RedisStageStore` is one (tests run the runner on it directly); in the graph it is the
    StageStore deployment, through `graph.node_deployment.HandleWriter`."""

    async def start(self, task_id: str, task_name: str, attempt: int) -> Fenced: ...

    async def heartbeat(
        self, task_id: str, task_name: str, attempt: int, progress: float
    ) -> Fenced: ...

    async def finish(
        self, task_id: str, task_name: str, attempt: int,
        output: dict[str, Any] | None, error: str | None,
    ) -> Fenced: ...


class RunObserver(Protocol):
    """Told of each run's queueing, start and end (graph.metrics.RunMetrics is one)."""

    def queue(self, delta: int) -> None: ...

    def start(self) -> None: ...

    def finish(self, status: str, seconds: float) -> None: ...


class Uncounted:
    """The observer of a runner nobody watches (tests that drive a runner directly)."""

    def queue(self, delta: int) -> None:
        pass

    def start(self) -> None:
        pass

    def finish(self, status: str, seconds: float) -> None:
        pass


class NodeRunner:
    def __init__(
        self,
        spec: NodeSpec,
        settings: Settings,
        writer: StageWriter,
        engine: Any = None,
        on_finished: Callable[[], Awaitable[None]] | None = None,
        device: str = "cpu",
        observer: RunObserver | None = None,
    ) -> None:
        self.observer: RunObserver = observer or Uncounted()
        self.spec = spec
        self.device = device
        self.settings = settings
        self.writer = writer
        self.engine = engine
        self.on_finished = on_finished
        self.slots = asyncio.Semaphore(spec.max_concurrent_runs)
        self.artifacts = artifact_store(settings)  # reuse/artifacts.py

    async def _write(self, op: str, *args: Any) -> Fenced | None:
        """A fenced write that outlives a store that is briefly away (Redis restarting):
        retried with backoff while the attempt's lease could still be alive. None: no
        answer in that time (the lease sweep then ends the attempt as `lease_expired`)."""
        deadline = time.monotonic() + self.settings.run_lease_s
        delay = 0.2
        while True:
            try:
                fenced: Fenced = await getattr(self.writer, op)(*args)
                return fenced
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    log.error("%s of %s failed for good: %r", op, args[:3], exc)
                    return None
                log.warning("%s of %s failed (%r); retrying", op, args[:3], exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _wait_for_slot(self, key: tuple[str, str, int]) -> bool:
        """Queue for a run slot, keeping the claim's lease alive while waiting."""
        while True:
            try:
                await asyncio.wait_for(self.slots.acquire(), timeout=self.settings.heartbeat_s)
                return True
            except TimeoutError:
                beat = await self._write("heartbeat", *key, 0.0)
                if beat is not None and not beat.accepted:
                    return False

    def _call(self, job: Job, ctx: RunContext) -> dict[str, Any]:
        reset_workdir(ctx.workdir)
        params = self.spec.params.model_validate(job.input_params)
        fetch_inputs(self.spec, job.input_params, self.settings)  # reuse/artifacts.py
        return self.spec.run(params, ctx)

    async def _beating(self, work: asyncio.Future[Any], key: tuple[str, str, int],
                       ctx: RunContext) -> bool:
        """Wait for `work`, renewing the lease every heartbeat_s with the progress. False
        once the attempt was found superseded (its thread still runs to its end)."""
        current = True
        while not work.done():
            await asyncio.wait({work}, timeout=self.settings.heartbeat_s)
            if not work.done() and current:
                beat = await self._write("heartbeat", *key, ctx.progress)
                current = beat is None or beat.accepted  # no answer: keep going, try later
                if not current:
                    log.warning("attempt %s was superseded while running", key)
        return current

    async def _publish(self, key: tuple[str, str, int], ctx: RunContext,
                       output: dict[str, Any]) -> dict[str, Any]:
        """With a bucket: keep the node's folder there and link the output's files. Only an
        attempt confirmed current publishes: its lease was just renewed, so no other attempt
        can start while it publishes; an attempt cut off from the store (a zombie) would
        otherwise replace the files of the attempt that replaced it."""
        beat = await self._write("heartbeat", *key, ctx.progress)
        if beat is None or not beat.accepted:
            raise RuntimeError("the attempt could not be confirmed current; its files were "
                               "not published")
        work = asyncio.ensure_future(
            asyncio.to_thread(publish_outputs, ctx.workdir, output, self.settings))
        await self._beating(work, key, ctx)
        return work.result()

    async def run(self, job: Job) -> StageStatus | None:
        """Run one claimed attempt to its end. Returns the final status, None if fenced out."""
        key = (job.task_id, job.task_name, job.attempt)
        self.observer.queue(1)
        try:
            slot = await self._wait_for_slot(key)
        finally:
            self.observer.queue(-1)
        if not slot:
            log.warning("attempt %s was superseded while queued", key)
            return None
        try:
            return await self._run_in_slot(job, key)
        finally:
            self.slots.release()

    async def _run_in_slot(self, job: Job, key: tuple[str, str, int]) -> StageStatus | None:
        started = await self._write("start", *key)
        if started is None or not started.accepted:
            log.warning("attempt %s is no longer current; not started", key)
            return None
        ctx = RunContext(
            task_id=job.task_id, task_name=job.task_name, attempt=job.attempt,
            workdir=attempt_dir(self.settings.storage_root, job.task_id, job.task_name,
                                job.attempt),
            settings=self.settings, engine=self.engine, device=self.device,
        )
        begun = time.monotonic()
        self.observer.start()
        work = asyncio.ensure_future(asyncio.to_thread(self._call, job, ctx))
        current = await self._beating(work, key, ctx)
        output: dict[str, Any] | None = None
        error: str | None = None
        try:
            output = work.result()
            if self.artifacts.remote and current:
                output = await self._publish(key, ctx, output)
        except Exception as exc:
            log.exception("node %s failed for %s", job.task_name, job.task_id)
            error = f"{type(exc).__name__}: {exc}"
        finished = await self._write("finish", *key, output, error)
        accepted = finished is not None and finished.accepted
        if not accepted:
            log.warning("late finish of %s rejected by the fence", key)
        self.observer.finish("superseded" if not accepted else "failed" if error else "success",
                             time.monotonic() - begun)
        if accepted and error is None:
            await self._prune(ctx)
        if self.on_finished is not None:
            await self.on_finished()
        if not accepted:
            return None
        return StageStatus.FAILED if error is not None else StageStatus.SUCCESS

    async def _prune(self, ctx: RunContext) -> None:
        """This attempt's result replaced the node's earlier ones: their folders go."""
        try:
            await asyncio.to_thread(prune_attempts, ctx.workdir.parent, ctx.attempt,
                                    self.settings)
        except Exception:  # the result stands; old folders then go with the job
            log.exception("could not delete the earlier attempts of %s/%s", ctx.task_id,
                          ctx.task_name)
