"""The shared node runner on a real Redis and real ffmpeg, without Ray."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from nodes import registry
from nodes.runner import Job, NodeRunner
from reuse.redis_store import ClaimRequest, RedisStageStore
from reuse.status import ReuseMode, StageStatus
from tests.conftest import target_settings
from tests.media import make_silent_video, make_video


@pytest.fixture
async def store(store_target: dict[str, Any], tmp_path: Path) -> AsyncIterator[RedisStageStore]:
    s = RedisStageStore(target_settings(store_target, tmp_path, heartbeat_s=0.05))
    yield s
    await s.close()


async def claim(store: RedisStageStore, task_id: str, name: str, params: dict) -> Job:
    outcome = await store.claim(ClaimRequest(
        task_id=task_id, task_name=name, reuse_keys=["audio_path"], mode=ReuseMode.AUTO,
        input_params=params, fingerprint="fp", request_params={}))
    return Job(task_id=task_id, task_name=name, attempt=outcome.stage.attempt,
               input_params=params)


async def test_runner_runs_a_real_node_to_success(store: RedisStageStore, tmp_path: Path) -> None:
    video = make_video(tmp_path / "in" / "v.mp4", seconds=3)
    spec = registry.get("ffmpeg.extract_audio")
    assert spec is not None
    job = await claim(store, "run-1", spec.name, {"video_path": str(video)})
    status = await NodeRunner(spec, store.settings, store).run(job)
    assert status is StageStatus.SUCCESS
    stage = await store.read_stage("run-1", spec.name)
    assert stage is not None and stage.status is StageStatus.SUCCESS
    audio = Path(stage.output["audio_path"])
    assert audio.is_file() and audio.parent == tmp_path / "jobs" / "run-1" / spec.name
    assert stage.duration is not None and stage.progress == 1.0


async def test_runner_records_failure_with_message(store: RedisStageStore, tmp_path: Path) -> None:
    video = make_silent_video(tmp_path / "in" / "silent.mp4")
    spec = registry.get("ffmpeg.extract_audio")
    assert spec is not None
    job = await claim(store, "run-2", spec.name, {"video_path": str(video)})
    assert await NodeRunner(spec, store.settings, store).run(job) \
        is StageStatus.FAILED
    stage = await store.read_stage("run-2", spec.name)
    assert stage is not None and stage.error and "has no audio stream" in stage.error


async def test_superseded_attempt_does_not_start(store: RedisStageStore, tmp_path: Path) -> None:
    spec = registry.get("ffmpeg.extract_audio")
    assert spec is not None
    job = await claim(store, "run-3", spec.name, {"video_path": "/nope"})
    stale = job.model_copy(update={"attempt": job.attempt + 5})
    assert await NodeRunner(spec, store.settings, store).run(stale) is None
    stage = await store.read_stage("run-3", spec.name)
    assert stage is not None and stage.status is StageStatus.PENDING
