"""StageStore deployment: every Redis write goes through here, serialized per task_id."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ray import serve

from reuse.decide import Action
from reuse.models import CallbackDelivery
from reuse.outbox import Outbox, Settlement
from reuse.settings import Settings
from reuse.status import MissReason
from reuse.store import ClaimRequest, FencedWriter, RedisStageStore


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
        self.writer = FencedWriter(self.store)
        self.locks = KeyedLocks()

    async def ping(self) -> bool:
        return bool(await self.store.redis.ping())

    async def claim(self, req: ClaimRequest, callback_url: str | None) -> dict[str, Any]:
        """Authoritative decision + claim; subscribes the request's callback URL."""
        async with self.locks.hold(req.task_id):
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
            return {"action": decision.action.value,
                    "reason": decision.reason.value if decision.reason else None,
                    "stage": stage.model_dump(mode="json")}

    async def enqueue_hit(self, task_id: str, task_name: str, url: str) -> bool:
        async with self.locks.hold(task_id):
            stage = await self.store.read_stage(task_id, task_name)
            if stage is None:
                return False
            await self.outbox.enqueue_hit(task_id, task_name, stage, url)
            return True

    async def start(self, task_id: str, task_name: str, attempt: int) -> bool:
        async with self.locks.hold(task_id):
            return await self.writer.start(task_id, task_name, attempt)

    async def heartbeat(self, task_id: str, task_name: str, attempt: int, progress: float) -> bool:
        async with self.locks.hold(task_id):
            return await self.writer.heartbeat(task_id, task_name, attempt, progress)

    async def finish(
        self, task_id: str, task_name: str, attempt: int,
        output: dict[str, Any] | None, error: str | None,
    ) -> bool:
        async with self.locks.hold(task_id):
            accepted = await self.writer.finish(task_id, task_name, attempt, output, error)
            # promote in both cases: subscribers of a superseded attempt are told it ended
            await self.outbox.promote_waiting(task_id, task_name, attempt)
            return accepted

    async def take_due(self, limit: int) -> list[tuple[str, CallbackDelivery]]:
        return await self.outbox.take_due(limit)

    async def settle(self, task_id: str, record: CallbackDelivery, result: Settlement) -> None:
        async with self.locks.hold(task_id):
            await self.outbox.settle(task_id, record, result)

    async def delete_job(self, task_id: str, force: bool) -> dict[str, Any]:
        """Delete a job's keys and folder. Refused while a stage is in flight, unless forced."""
        async with self.locks.hold(task_id):
            stages = await self.store.read_stages(task_id)
            now = time.time()
            busy = [name for name, s in stages.items()
                    if s.status.in_flight and (s.lease_expires_at or 0) > now]
            if busy and not force:
                return {"deleted": False, "busy": busy}
            found = await self.store.delete_job(task_id)
            folder = self.settings.storage_root / task_id
            await asyncio.to_thread(shutil.rmtree, folder, True)
            return {"deleted": bool(found), "busy": busy}


