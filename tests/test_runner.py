"""The shared node runner on a real Redis and real ffmpeg, without Ray."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nodes import registry
from nodes.runner import Job, NodeRunner
from reuse.artifacts import artifact_store
from reuse.redis_store import ClaimRequest, RedisStageStore
from reuse.status import ReuseMode, StageStatus
from tests.conftest import make_settings, target_settings, unique
from tests.loopback import LoopbackServer
from tests.media import make_silent_video, make_video
from tests.s3_server import S3Server


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
    assert audio.is_file() and audio.parent == tmp_path / "jobs" / "run-1" / spec.name / "1"
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


@pytest.fixture
async def bucket_store(redis_url: str, s3_server: S3Server, tmp_path: Path
                       ) -> AsyncIterator[RedisStageStore]:
    """A store whose settings keep artifacts in the test S3 server, under a prefix of its own."""
    s = make_settings(redis_url, tmp_path, heartbeat_s=0.05, **s3_server.settings(),
                      s3_prefix=unique("runner"))
    store = RedisStageStore(s)
    yield store
    await store.close()


async def test_a_run_publishes_its_folder_and_links_its_files(
    bucket_store: RedisStageStore, s3_server: S3Server, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "in" / "v.mp4", seconds=2)
    artifact_store(bucket_store.settings).publish(video)  # as an upload would
    spec = registry.get("ffmpeg.extract_audio")
    assert spec is not None
    job = await claim(bucket_store, "pub-1", spec.name, {"video_path": str(video)})
    assert await NodeRunner(spec, bucket_store.settings, bucket_store).run(job) \
        is StageStatus.SUCCESS
    stage = await bucket_store.read_stage("pub-1", spec.name)
    assert stage is not None
    audio = Path(stage.output["audio_path"])
    prefix = f"{bucket_store.settings.s3_prefix}/jobs/pub-1/{spec.name}/1/"
    assert s3_server.keys(prefix) == [prefix + audio.name]
    assert httpx.get(stage.output["audio_path_url"]).content == audio.read_bytes()


async def test_a_superseded_attempt_publishes_nothing(
    bucket_store: RedisStageStore, s3_server: S3Server, loopback: LoopbackServer,
    tmp_path: Path
) -> None:
    """A zombie (its attempt replaced while it ran) must not replace the files of the
    attempt that replaced it: it finishes its work, but keeps it to itself."""
    video = make_video(tmp_path / "in" / "v.mp4", seconds=2)
    gate = unique("zombie")
    src = loopback.serve_file(gate, video, gated=True)  # the run waits on its input
    spec = registry.get("ffmpeg.extract_audio")
    assert spec is not None
    job = await claim(bucket_store, "pub-2", spec.name, {"video_path": src})
    run = asyncio.ensure_future(NodeRunner(spec, bucket_store.settings, bucket_store).run(job))
    while (await bucket_store.read_stage("pub-2", spec.name)).status is not StageStatus.RUNNING:
        await asyncio.sleep(0.02)  # a bounded poll: the run fails the test if it never starts
    replaced = await bucket_store.rerun("pub-2", spec.name, time.time() + 3600)
    assert replaced is not None and replaced.attempt == job.attempt + 1
    loopback.open_gate(gate)
    assert await asyncio.wait_for(run, timeout=60) is None  # fenced out
    assert (tmp_path / "jobs" / "pub-2" / spec.name / str(job.attempt)).is_dir()  # it ran
    assert s3_server.keys(f"{bucket_store.settings.s3_prefix}/jobs/pub-2/") == []


async def rerun(store: RedisStageStore, job: Job) -> Job:
    """The same node of the same job claimed again with reuse off: the next attempt."""
    outcome = await store.claim(ClaimRequest(
        task_id=job.task_id, task_name=job.task_name, reuse_keys=["audio_path"],
        mode=ReuseMode.OFF, input_params=job.input_params, fingerprint="fp",
        request_params={}))
    return job.model_copy(update={"attempt": outcome.stage.attempt})


async def test_each_attempt_writes_its_own_folder_and_a_success_deletes_the_others(
    bucket_store: RedisStageStore, s3_server: S3Server, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "in" / "v.mp4", seconds=2)
    artifact_store(bucket_store.settings).publish(video)
    spec = registry.get("ffmpeg.extract_audio")
    assert spec is not None
    node = tmp_path / "jobs" / "pub-3" / spec.name
    prefix = f"{bucket_store.settings.s3_prefix}/jobs/pub-3/{spec.name}/"
    first = await claim(bucket_store, "pub-3", spec.name, {"video_path": str(video)})
    runner = NodeRunner(spec, bucket_store.settings, bucket_store)
    assert await runner.run(first) is StageStatus.SUCCESS
    second = await rerun(bucket_store, first)
    assert second.attempt == first.attempt + 1
    assert await runner.run(second) is StageStatus.SUCCESS
    stage = await bucket_store.read_stage("pub-3", spec.name)
    assert stage is not None
    assert Path(stage.output["audio_path"]).parent == node / str(second.attempt)
    assert sorted(p.name for p in node.iterdir()) == [str(second.attempt)]
    assert s3_server.keys(prefix) == [f"{prefix}{second.attempt}/"
                                      f"{Path(stage.output['audio_path']).name}"]
