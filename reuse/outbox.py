"""The durable callback outbox in Redis: subscriptions, queueing, taking and settling.

A delivery is WAITING while its attempt runs, QUEUED (body frozen, in the outbox zset)
once the attempt ends or for a reuse hit, then DELIVERED, FAILED or GONE. The outbox is a
sorted set scored by due time, one per Redis Cluster slot (reuse/keys.py, reuse/slots.py);
a sender takes due members by pushing them ahead by `callback_inflight_s`, so a sender that
dies mid-delivery loses nothing.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass

from reuse import keys
from reuse.callbacks import build_payload, freeze
from reuse.models import CallbackDelivery, Stage, iso
from reuse.redis_store import RedisStageStore, lua
from reuse.slots import SlotIndex
from reuse.status import DeliveryState, MissReason


def delivery_id(task_name: str, attempt: int, url: str) -> str:
    """One delivery per (attempt, URL): a URL subscribed twice gets one callback."""
    return f"{task_name}:{attempt}:{hashlib.sha256(url.encode()).hexdigest()[:12]}"


@dataclass
class Settlement:
    state: DeliveryState
    error: str | None = None
    retry_at: float | None = None  # set when the delivery is to be tried again


class Outbox:
    def __init__(self, store: RedisStageStore) -> None:
        self.store = store
        self._put_delivery = store.redis.register_script(lua("put_delivery.lua"))
        self._take_due = store.redis.register_script(lua("take_due.lua"))
        self.index = SlotIndex(store.redis, keys.outbox_slots(), keys.outbox)

    async def _put(
        self, task_id: str, record: CallbackDelivery, guard: str, score: str
    ) -> bool:
        member = keys.member(task_id, record.id)
        slot = keys.slot(task_id)
        job = [keys.callbacks(task_id), keys.outbox(slot), keys.stages(task_id),
               keys.meta(task_id), keys.payloads(task_id)]
        args: list[str | int] = [
            record.id, record.model_dump_json(exclude={"body"}), guard, score, member,
            self.store.ttl_ms, record.body or "",
        ]
        written = bool(await self._put_delivery(keys=job, args=args))
        if written and score not in ("", "-"):
            await self.index.mark(slot, float(score))
        return written

    async def subscribe(
        self, task_id: str, task_name: str, attempt: int, url: str,
        kind: str = "wait", reason: MissReason | None = None,
    ) -> CallbackDelivery:
        """Subscribe a URL to an attempt's end. Idempotent per (attempt, URL)."""
        record = CallbackDelivery(
            id=delivery_id(task_name, attempt, url), url=url, task_name=task_name,
            attempt=attempt, kind=kind, reason=reason.value if reason else None,
            created_at=iso(time.time()),
        )
        await self._put(task_id, record, guard="absent", score="")
        # The attempt may have ended between the caller's read and this write: promote now.
        stage = await self.store.read_stage(task_id, task_name)
        if stage is None or stage.attempt != attempt or stage.status.terminal:
            await self.promote_waiting(task_id, task_name, attempt)
        return record

    async def promote_waiting(self, task_id: str, task_name: str, attempt: int) -> int:
        """Queue every WAITING delivery of an ended attempt, with its body frozen."""
        stage = await self.store.read_stage(task_id, task_name)
        waiting = [
            d for d in await self.store.read_deliveries(task_id)
            if d.task_name == task_name and d.attempt == attempt
            and d.state is DeliveryState.WAITING
        ]
        if not waiting:
            return 0
        context = await self.store.read_context(task_id)
        now = time.time()
        queued = 0
        for record in waiting:
            if stage is None or context is None or stage.attempt != attempt:
                # The attempt was superseded (its lease expired): nothing final to report.
                update = record.model_copy(update={
                    "state": DeliveryState.FAILED,
                    "last_error": "the attempt was superseded before it ended",
                })
                await self._put(task_id, update, guard=DeliveryState.WAITING, score="")
                continue
            if not stage.status.terminal:
                continue
            update = record.model_copy(update={
                "state": DeliveryState.QUEUED, "next_attempt_at": now,
                "body": freeze(build_payload(task_id, record, stage, context)),
            })
            if await self._put(task_id, update, guard=DeliveryState.WAITING, score=str(now)):
                queued += 1
        return queued

    async def move_waiting(
        self, task_id: str, task_name: str, old_attempt: int, new_attempt: int
    ) -> int:
        """Carry the subscribers of a dead attempt (lease expired) over to its re-run."""
        moved = 0
        for record in await self.store.read_deliveries(task_id):
            if (record.task_name, record.attempt, record.state) != (
                    task_name, old_attempt, DeliveryState.WAITING):
                continue
            closed = record.model_copy(update={
                "state": DeliveryState.FAILED,
                "last_error": f"attempt {old_attempt} died; moved to attempt {new_attempt}"})
            if await self._put(task_id, closed, guard=DeliveryState.WAITING, score=""):
                await self.subscribe(task_id, task_name, new_attempt, record.url, kind="wait")
                moved += 1
        return moved

    async def enqueue_hit(self, task_id: str, task_name: str, stage: Stage, url: str) -> None:
        """A reuse hit with a callback URL: that URL is called; the stage is not touched."""
        now = time.time()
        record = CallbackDelivery(
            id=f"hit:{task_name}:{stage.attempt}:{uuid.uuid4().hex[:12]}", url=url,
            task_name=task_name, attempt=stage.attempt, kind="hit",
            state=DeliveryState.QUEUED, created_at=iso(now), next_attempt_at=now,
        )
        context = await self.store.read_context(task_id)
        assert context is not None
        record.body = freeze(build_payload(task_id, record, stage, context))
        await self._put(task_id, record, guard="absent", score=str(now))

    async def lag(self, now: float) -> float:
        """Seconds the oldest due delivery has waited to be taken (0: none is due)."""
        earliest = await self.index.earliest()
        return max(0.0, now - earliest) if earliest is not None else 0.0

    async def take_due(self, limit: int = 16) -> list[tuple[str, CallbackDelivery]]:
        now = time.time()
        members: list[tuple[int, str]] = []
        for slot in await self.index.due(now):
            if len(members) >= limit:
                break
            taken = await self._take_due(
                keys=[keys.outbox(slot)],
                args=[now, limit - len(members), self.store.settings.callback_inflight_s])
            members += [(slot, str(m)) for m in taken]
            await self.index.refresh(slot)
        out: list[tuple[str, CallbackDelivery]] = []
        for slot, member in members:
            task_id, did = keys.parse_member(member)
            async with self.store.redis.pipeline(transaction=False) as pipe:
                pipe.hget(keys.callbacks(task_id), did)
                pipe.hget(keys.payloads(task_id), did)
                raw, body = await pipe.execute()
            if raw is None or body is None:  # the job was deleted or expired
                await self.store.redis.zrem(keys.outbox(slot), member)
                continue
            record = CallbackDelivery.model_validate_json(raw)
            record.body = body
            if record.state is DeliveryState.QUEUED:
                out.append((task_id, record))
            else:
                await self.store.redis.zrem(keys.outbox(slot), member)
        return out

    async def settle(self, task_id: str, record: CallbackDelivery, result: Settlement) -> None:
        """Record one HTTP try: delivered, retry later, or give up."""
        now = time.time()
        update = record.model_copy(update={
            "attempts": record.attempts + 1,
            "last_error": result.error,
            "state": result.state,
            "delivered_at": iso(now) if result.state is DeliveryState.DELIVERED else None,
            "next_attempt_at": result.retry_at,
        })
        score = str(result.retry_at) if result.retry_at is not None else "-"
        await self._put(task_id, update, guard=DeliveryState.QUEUED, score=score)
