"""`reuse_info`: built from the stage it reports, never carried over (lesson 7)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from reuse.models import Stage
from reuse.status import MissReason, StageStatus


class ReuseInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reuse_hit: bool
    task_name: str
    source: Literal["redis"] | None = None  # hit: where the result came from
    cached_at: str | None = None  # hit: when the reused stage finished
    state: Literal["pending"] | None = None  # waiting on an attempt in flight
    stage_status: StageStatus | None = None  # waiting: PENDING or RUNNING
    attempt: int | None = None  # the attempt reported on
    reason: MissReason | None = None  # miss: why it runs


def hit(task_name: str, stage: Stage) -> ReuseInfo:
    return ReuseInfo(
        reuse_hit=True, task_name=task_name, source="redis",
        cached_at=stage.finished_at, attempt=stage.attempt,
    )


def pending(task_name: str, stage: Stage) -> ReuseInfo:
    return ReuseInfo(
        reuse_hit=True, task_name=task_name, state="pending",
        stage_status=stage.status, attempt=stage.attempt,
    )


def miss(task_name: str, reason: MissReason, attempt: int) -> ReuseInfo:
    return ReuseInfo(reuse_hit=False, task_name=task_name, reason=reason, attempt=attempt)


def to_dict(info: ReuseInfo) -> dict[str, object]:
    return info.model_dump(mode="json", exclude_none=True)


def waited_failed(task_name: str, stage: Stage) -> ReuseInfo:
    """A request that waited on an attempt which then failed: nothing was reused."""
    return ReuseInfo(reuse_hit=False, task_name=task_name, attempt=stage.attempt)
