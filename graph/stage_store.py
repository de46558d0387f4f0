"""StageStore deployment: every Redis write goes through here, serialized per task_id.

It also sweeps: attempts whose lease ran out (their node replica or the whole service
died mid-run) are ended FAILED with `lease_expired` and their callbacks fire, without
waiting for someone to submit again.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ray import serve

from graph.hand_off import see_through
from graph.metrics import StoreMetrics
from nodes import registry
from nodes.runner import Job
from reuse.artifacts import artifact_store
from reuse.decide import Action
from reuse.models import CallbackDelivery
from reuse.outbox import Outbox, Settlement
from reuse.redis_store import ClaimOutcome, ClaimRequest, DeleteOutcome, Fenced, RedisStageStore
from reuse.settings import Settings
from reuse.slots import RECONCILE_S
from reuse.status import MissReason
from reuse.storage import job_dir

log = logging.getLogger("reelserve.store")


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: defaultdict[str, int] = defaultdict(int)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                self._locks.pop(key, None)


@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=1000)
class StageStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = RedisStageStore(settings)
        self.outbox = Outbox(self.store)
        self.locks = KeyedLocks()
        self.metrics = StoreMetrics()
        self.hand_offs: set[asyncio.Task[None]] = set()  # runs it started again
        self.sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    @asynccontextmanager
    async def _writing(self, op: str, task_id: str) -> AsyncIterator[None]:
        """Hold the job's lock for one write; its time (lock wait included) is measured."""
        with self.metrics.timed(op):
            async with self.locks.hold(task_id):
                yield

    async def ping(self) -> bool:
        return bool(await self.store.redis.ping())

    async def check_health(self) -> None:
        if self.sweeper.done():
            raise RuntimeError(f"lease sweep ended: {self.sweeper.exception()!r}")

    async def claim(self, req: ClaimRequest, callback_url: str | None) -> ClaimOutcome:
        """Authoritative decision + claim; subscribes the request's callback URL."""
        async with self._writing("claim", req.task_id):
            outcome = await self.store.claim(req)
            stage, decision = outcome.stage, outcome.decision
            if decision.reason is MissReason.LEASE_EXPIRED:
                await self.outbox.move_waiting(req.task_id, req.task_name, stage.attempt - 1,
                                               stage.attempt)
            if callback_url:
                if decision.action is Action.HIT:
                    await self.outbox.enqueue_hit(req.task_id, req.task_name, stage, callback_url)
                else:
                    kind = "run" if decision.action is Action.RUN else "wait"
                    await self.outbox.subscribe(req.task_id, req.task_name, stage.attempt,
                                                callback_url, kind=kind, reason=decision.reason)
            return outcome

    async def enqueue_hit(self, task_id: str, task_name: str, url: str) -> bool:
        async with self._writing("enqueue_hit", task_id):
            stage = await self.store.read_stage(task_id, task_name)
            if stage is None:
                return False
            await self.outbox.enqueue_hit(task_id, task_name, stage, url)
            return True

    async def start(self, task_id: str, task_name: str, attempt: int) -> Fenced:
        async with self._writing("start", task_id):
            return await self.store.start(task_id, task_name, attempt)

    async def heartbeat(
        self, task_id: str, task_name: str, attempt: int, progress: float | None
    ) -> Fenced:
        """Renew an in-flight attempt's lease (and set its progress, unless None)."""
        async with self._writing("heartbeat", task_id):
            return await self.store.heartbeat(task_id, task_name, attempt, progress)

    async def finish(
        self, task_id: str, task_name: str, attempt: int,
        output: dict | None, error: str | None,
    ) -> Fenced:
        async with self._writing("finish", task_id):
            fenced = await self.store.finish(task_id, task_name, attempt, output, error)
            # promote in both cases: subscribers of a superseded attempt are told it ended
            await self.outbox.promote_waiting(task_id, task_name, attempt)
            return fenced

    async def take_due(self, limit: int) -> list[tuple[str, CallbackDelivery]]:
        return await self.outbox.take_due(limit)

    async def outbox_lag(self) -> float:
        return await self.outbox.lag(time.time())

    async def settle(self, task_id: str, record: CallbackDelivery, result: Settlement) -> None:
        async with self._writing("settle", task_id):
            await self.outbox.settle(task_id, record, result)

    async def delete_job(self, task_id: str, force: bool) -> DeleteOutcome:
        """Delete a job's keys, its folder under `jobs/` and its objects in the bucket.
        Refused while a stage is in flight, unless forced. A job that does not exist leaves
        every folder alone."""
        async with self._writing("delete_job", task_id):
            stages = await self.store.read_stages(task_id)
            now = time.time()
            busy = [name for name, s in stages.items()
                    if s.status.in_flight and (s.lease_expires_at or 0) > now]
            if busy and not force:
                return DeleteOutcome(deleted=False, busy=busy)
            folder = job_dir(self.settings.storage_root, task_id)
            if stages:  # objects first: if the bucket fails, the job is still there to retry
                await asyncio.to_thread(artifact_store(self.settings).remove, folder)
            found = bool(await self.store.delete_job(task_id))
            if found:
                await asyncio.to_thread(shutil.rmtree, folder, True)
            return DeleteOutcome(deleted=found, busy=busy)

    # ---- the lease sweep ---------------------------------------------------------------

    async def sweep(self) -> int:
        """Deal with every attempt whose lease ran out (its run was lost: the node's replica
        or machine died, or the caller that renewed it while it waited): start it again as
        the next attempt, up to `lost_run_retries` times, its waiters moved over; then end
        it FAILED `lease_expired`. Returns how many were started again or ended."""
        dealt = 0
        now = time.time()
        for task_id, task_name in await self.store.expired_leases(now):
            if await self._rerun(task_id, task_name, now):
                dealt += 1
                continue
            async with self._writing("expire", task_id):
                fenced = await self.store.expire(task_id, task_name, now)
                if not fenced.accepted or fenced.stage is None:
                    continue
                await self.outbox.promote_waiting(task_id, task_name, fenced.stage.attempt)
            log.warning("ended %s/%s attempt %s: its lease ran out", task_id, task_name,
                        fenced.stage.attempt)
            dealt += 1
        return dealt  # the CallbackSender polls the outbox every second: no notify needed

    async def _rerun(self, task_id: str, task_name: str, now: float) -> bool:
        async with self._writing("rerun", task_id):
            stage = await self.store.read_stage(task_id, task_name)
            if stage is None or stage.reruns >= self.settings.lost_run_retries:
                return False
            new = await self.store.rerun(task_id, task_name, now)
            if new is None:
                return False
            await self.outbox.move_waiting(task_id, task_name, stage.attempt, new.attempt)
        log.warning("%s/%s attempt %s was lost; attempt %s runs it again", task_id, task_name,
                    stage.attempt, new.attempt)
        job = Job(task_id=task_id, task_name=task_name, attempt=new.attempt,
                  input_params=new.input_params)
        task = asyncio.get_running_loop().create_task(self._hand_off(job))
        self.hand_offs.add(task)
        task.add_done_callback(self.hand_offs.discard)
        return True

    async def _hand_off(self, job: Job) -> None:
        """As the ingress does for a new run (graph/hand_off.py)."""
        spec = registry.get(job.task_name)
        try:
            assert spec is not None, job.task_name
            handle = serve.get_deployment_handle(
                spec.deployment_name, app_name=serve.get_replica_context().app_name)
            await see_through(job, handle.submit.remote, self._renew, self.settings.heartbeat_s)
        except Exception as exc:
            await self.finish(job.task_id, job.task_name, job.attempt, None,
                              f"hand-off to the node failed: {exc!r}"[:500])

    async def _renew(self, task_id: str, task_name: str, attempt: int) -> Fenced:
        return await self.heartbeat(task_id, task_name, attempt, None)

    async def reconcile(self) -> None:
        """Index every non-empty outbox and lease shard again (reuse/slots.py): covers a
        writer that died between its script and its index write."""
        for index in (self.outbox.index, self.store.lease_index):
            await index.reconcile()

    async def _sweep_forever(self) -> None:
        reconciled = 0.0
        while True:
            try:
                if time.monotonic() - reconciled > RECONCILE_S:
                    await self.reconcile()
                    reconciled = time.monotonic()
                await self.sweep()
            except Exception:  # Redis may be restarting: log and try again next round
                log.exception("lease sweep failed; retrying")
            await asyncio.sleep(self.settings.lease_sweep_s)
