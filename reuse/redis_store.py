"""The Redis side of the stage store: reads, the atomic claim, fenced stage transitions.

Every mutation is atomic in Redis itself (a compare-and-set Lua script on the stage's
`rev`), so correctness never depends on there being one writer. The StageStore deployment
(graph/stage_store.py) additionally serializes writes per task_id.

In-flight stages are also indexed by lease expiry (`keys.leases(slot)`, one shard per Redis
Cluster slot, found through `keys.lease_slots()`), so a sweep finds the attempts whose
node died without reading every job. On Redis Cluster (`REELSERVE_REDIS_CLUSTER`) no
script crosses slots.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

import redis.asyncio as aioredis

from reuse import keys
from reuse.artifacts import artifact_store
from reuse.decide import Action, Decision, decide
from reuse.models import CallbackDelivery, JobMeta, Stage, WorkflowContext, iso, parse_iso
from reuse.settings import Settings
from reuse.slots import SlotIndex
from reuse.status import ReuseMode, StageStatus
from reuse.storage import artifacts_exist, job_dir


def lua(name: str) -> str:
    """The text of one of reuse/lua/*.lua."""
    return resources.files("reuse").joinpath("lua", name).read_text()


def _pairs(flat: list[str]) -> dict[str, str]:
    """HGETALL's reply inside a script is a flat [field, value, ...] list."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass
class ClaimRequest:
    task_id: str
    task_name: str
    reuse_keys: list[str]
    mode: ReuseMode
    input_params: dict[str, Any]  # resolved params the node will run with
    fingerprint: str
    request_params: dict[str, Any]  # the request as received, for meta.input_params


@dataclass(frozen=True)
class ClaimOutcome:
    decision: Decision
    stage: Stage  # the stage as stored after the claim (new PENDING, or the existing one)


@dataclass(frozen=True)
class Fenced:
    """Answer of a fenced write (start, heartbeat, finish, expire): `accepted` with the stage
    as written, or refused because the attempt is no longer current (or already ended)."""

    accepted: bool
    stage: Stage | None = None


@dataclass(frozen=True)
class DeleteOutcome:
    deleted: bool  # the job existed and its keys are gone
    busy: list[str]  # stages still in flight (with a live lease)


def connect(settings: Settings) -> aioredis.Redis:
    """A client of the configured Redis: one server, or a Redis Cluster (its nodes are
    found from the one in the URL)."""
    if settings.redis_cluster:
        cluster = aioredis.RedisCluster.from_url(settings.redis_url, decode_responses=True)
        return cast(aioredis.Redis, cluster)  # the commands used here are the same
    return aioredis.Redis.from_url(settings.redis_url, decode_responses=True)


class RedisStageStore:
    def __init__(self, settings: Settings, client: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.redis: aioredis.Redis = client or connect(settings)
        self._cas = self.redis.register_script(lua("cas_stage.lua"))
        self._read_job = self.redis.register_script(lua("read_job.lua"))
        self._delete_job = self.redis.register_script(lua("delete_job.lua"))
        self.lease_index = SlotIndex(self.redis, keys.lease_slots(), keys.leases)

    @property
    def ttl_ms(self) -> int:
        return int(self.settings.stage_ttl_s * 1000)

    async def close(self) -> None:
        await self.redis.aclose()

    # ---- reads -------------------------------------------------------------------------

    async def read_stage(self, task_id: str, task_name: str) -> Stage | None:
        raw = await self.redis.hget(keys.stages(task_id), task_name)
        return Stage.from_json(raw) if raw else None

    async def read_stages(self, task_id: str) -> dict[str, Stage]:
        raw = await self.redis.hgetall(keys.stages(task_id))
        return {str(name): Stage.from_json(value) for name, value in raw.items()}

    async def read_deliveries(self, task_id: str) -> list[CallbackDelivery]:
        raw = await self.redis.hgetall(keys.callbacks(task_id))
        return [CallbackDelivery.model_validate_json(v) for v in raw.values()]

    async def read_context(self, task_id: str) -> WorkflowContext | None:
        reply = await self._read_job(
            keys=[keys.meta(task_id), keys.stages(task_id), keys.callbacks(task_id)])
        meta_raw, stages_raw, cb_raw = (_pairs(flat) for flat in reply)
        if not meta_raw:
            return None
        meta = JobMeta(
            workflow_id=meta_raw["workflow_id"],
            create_at=meta_raw["create_at"],
            updated_at=meta_raw.get("updated_at", meta_raw["create_at"]),
            shared_storage_path=meta_raw["shared_storage_path"],
            input_params=json.loads(meta_raw.get("input_params", "{}")),
        )
        stages = {name: Stage.from_json(v) for name, v in stages_raw.items()}
        deliveries = [CallbackDelivery.model_validate_json(v) for v in cb_raw.values()]
        return WorkflowContext.build(meta, stages, deliveries)

    # ---- writes ------------------------------------------------------------------------

    def job_folder(self, task_id: str) -> str:
        return str(job_dir(self.settings.storage_root, task_id))

    async def _write_stage(
        self,
        task_id: str,
        task_name: str,
        expected_rev: int,
        stage: Stage,
        request_params: dict[str, Any] | None = None,
    ) -> bool:
        now = iso(time.time())
        setnx = ["workflow_id", task_id, "create_at", now,
                 "shared_storage_path", self.job_folder(task_id)]
        setall = ["updated_at", now]
        if request_params is not None:
            setall += ["input_params", json.dumps(request_params)]
        lease = "" if stage.lease_expires_at is None else repr(stage.lease_expires_at)
        args: list[Any] = [task_name, expected_rev, stage.to_json(), self.ttl_ms,
                           lease, keys.member(task_id, task_name), len(setnx) // 2]
        slot = keys.slot(task_id)
        result = await self._cas(keys=[*keys.job_keys(task_id), keys.leases(slot)],
                                 args=args + setnx + setall)
        if result and stage.lease_expires_at is not None:
            await self.lease_index.mark(slot, stage.lease_expires_at)
        return bool(result)

    async def claim(self, req: ClaimRequest) -> ClaimOutcome:
        """Decide and, on a miss, write a new PENDING attempt with a lease: one atomic step.

        The write is a compare-and-set on the stage's `rev`, so of N concurrent claims
        exactly one wins; the others re-read and see the winner's in-flight attempt.
        """
        while True:
            current = await self.read_stage(req.task_id, req.task_name)
            present = await asyncio.to_thread(artifacts_exist, current, req.reuse_keys,
                                              artifact_store(self.settings))
            now = time.time()
            decision = decide(
                current,
                reuse_keys=req.reuse_keys,
                mode=req.mode,
                now=now,
                fingerprint=req.fingerprint,
                artifacts_present=present,
            )
            if decision.action is not Action.RUN:
                assert current is not None
                return ClaimOutcome(decision, current)
            stage = Stage(
                status=StageStatus.PENDING,
                input_params=req.input_params,
                attempt=(current.attempt + 1) if current else 1,
                rev=(current.rev + 1) if current else 1,
                input_fingerprint=req.fingerprint,
                claimed_at=iso(now),
                lease_expires_at=now + self.settings.claim_lease_s,
                progress=0.0,
            )
            expected = current.rev if current else 0
            if await self._write_stage(
                req.task_id, req.task_name, expected, stage, req.request_params
            ):
                return ClaimOutcome(decision, stage)

    async def rerun(self, task_id: str, task_name: str, now: float) -> Stage | None:
        """Replace an in-flight attempt whose lease ran out by `now` (its run was lost) by
        the next attempt, with the same inputs: PENDING, a fresh claim lease, `reruns` + 1.
        None if there is no such attempt (ended, or its lease was renewed meanwhile)."""
        while True:
            current = await self.read_stage(task_id, task_name)
            if (current is None or not current.status.in_flight
                    or (current.lease_expires_at or 0) > now):
                return None
            stage = current.model_copy(update={
                "status": StageStatus.PENDING, "attempt": current.attempt + 1,
                "rev": current.rev + 1, "claimed_at": iso(now), "started_at": None,
                "progress": 0.0, "reruns": current.reruns + 1,
                "lease_expires_at": now + self.settings.claim_lease_s,
            })
            if await self._write_stage(task_id, task_name, current.rev, stage):
                return stage

    async def transition(
        self, task_id: str, task_name: str, attempt: int, **changes: Any
    ) -> Fenced:
        """Fenced update of an in-flight attempt; refused if it is not current any more."""
        while True:
            current = await self.read_stage(task_id, task_name)
            if current is None or current.attempt != attempt or current.status.terminal:
                return Fenced(False)
            updated = current.model_copy(update={**changes, "rev": current.rev + 1})
            if await self._write_stage(task_id, task_name, current.rev, updated):
                return Fenced(True, updated)

    async def start(self, task_id: str, task_name: str, attempt: int) -> Fenced:
        now = time.time()
        return await self.transition(
            task_id, task_name, attempt,
            status=StageStatus.RUNNING, started_at=iso(now),
            lease_expires_at=now + self.settings.run_lease_s,
        )

    async def heartbeat(
        self, task_id: str, task_name: str, attempt: int, progress: float | None = None
    ) -> Fenced:
        changes: dict[str, Any] = {"lease_expires_at": time.time() + self.settings.run_lease_s}
        if progress is not None:
            changes["progress"] = max(0.0, min(1.0, progress))
        return await self.transition(task_id, task_name, attempt, **changes)

    async def finish(
        self, task_id: str, task_name: str, attempt: int,
        output: dict[str, Any] | None = None, error: str | None = None,
    ) -> Fenced:
        """Fenced end of an attempt: SUCCESS with its output, or FAILED with its error."""
        current = await self.read_stage(task_id, task_name)
        now = time.time()
        started = current.started_at if current else None
        duration = round(now - parse_iso(started), 3) if started else None
        changes: dict[str, Any] = {
            "status": StageStatus.FAILED if error is not None else StageStatus.SUCCESS,
            "output": output or {},
            "error": error,
            "finished_at": iso(now),
            "started_at": started or iso(now),
            "duration": duration,
            "lease_expires_at": None,
            "progress": 1.0 if error is None else (current.progress if current else None),
        }
        return await self.transition(task_id, task_name, attempt, **changes)

    async def expired_leases(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """(task_id, task_name) of in-flight stages whose lease ran out by `now`."""
        out: list[tuple[str, str]] = []
        for slot in await self.lease_index.due(now):
            if len(out) >= limit:
                break
            members = await self.redis.zrangebyscore(keys.leases(slot), "-inf", now, start=0,
                                                     num=limit - len(out))
            out += [keys.parse_member(str(m)) for m in members]
            await self.lease_index.refresh(slot)
        return out

    async def expire(self, task_id: str, task_name: str, now: float) -> Fenced:
        """End an in-flight attempt whose lease ran out: FAILED with `lease_expired`.

        Refused (and the index entry dropped or corrected) if the stage is not in flight
        or its lease was renewed meanwhile.
        """
        stage = await self.read_stage(task_id, task_name)
        if (stage is None or not stage.status.in_flight
                or (stage.lease_expires_at or 0) > now):
            await self._reindex(task_id, task_name, stage)
            return Fenced(False)
        phase = ("stopped renewing its lease" if stage.status is StageStatus.RUNNING
                 else "was not taken up by its node in time")
        tries = f" after {stage.reruns} re-runs" if stage.reruns else ""
        error = (f"lease_expired: attempt {stage.attempt} {phase} (its node stopped or was "
                 f"lost){tries}; submit again to re-run it")
        return await self.finish(task_id, task_name, stage.attempt, error=error)

    async def _reindex(self, task_id: str, task_name: str, stage: Stage | None) -> None:
        member, slot = keys.member(task_id, task_name), keys.slot(task_id)
        if stage is not None and stage.status.in_flight and stage.lease_expires_at:
            await self.redis.zadd(keys.leases(slot), {member: stage.lease_expires_at})
            await self.lease_index.mark(slot, stage.lease_expires_at)
        else:
            await self.redis.zrem(keys.leases(slot), member)

    async def delete_job(self, task_id: str) -> int:
        stage_names = [str(n) for n in await self.redis.hkeys(keys.stages(task_id))]
        members = [keys.member(task_id, d.id) for d in await self.read_deliveries(task_id)]
        slot = keys.slot(task_id)
        deleted = await self._delete_job(
            keys=[*keys.job_keys(task_id), keys.outbox(slot), keys.leases(slot)],
            args=[*members, "|", *(keys.member(task_id, n) for n in stage_names)])
        return int(deleted)
