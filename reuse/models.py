"""Stored records: a stage, a callback delivery, the WorkflowContext built from them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reuse.addresses import redact
from reuse.status import DeliveryState, JobStatus, StageStatus


def iso(ts: float) -> str:
    """Unix seconds -> ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def fingerprint(params: dict[str, Any]) -> str:
    """Stable hash of the resolved input params (used by reuse: strict)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Stage(BaseModel):
    """One node run of a job: `stages[task_name]`. Written only through the stage store."""

    model_config = ConfigDict(extra="ignore")

    status: StageStatus
    input_params: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    duration: float | None = None  # seconds the node ran (started -> finished)
    attempt: int = 1  # fencing token: bumped by every claim
    rev: int = 1  # bumped by every write; compare-and-set guard
    input_fingerprint: str = ""
    claimed_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    lease_expires_at: float | None = None  # unix seconds; in-flight stages only
    progress: float | None = None  # 0..1 while running, 1 when done
    reruns: int = 0  # times this run was lost (its lease ran out) and started again

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Stage:
        return cls.model_validate_json(raw)


class CallbackDelivery(BaseModel):
    """One callback to one URL: the end of an attempt, or a reuse hit."""

    id: str
    url: str
    task_name: str
    attempt: int
    kind: str = "run"  # run: the claimer's URL | wait: subscribed while in flight | hit
    reason: str | None = None  # run: why the attempt was started (a MissReason)
    state: DeliveryState = DeliveryState.WAITING
    attempts: int = 0  # HTTP tries made so far
    last_error: str | None = None
    created_at: str
    delivered_at: str | None = None
    next_attempt_at: float | None = None
    # the exact body text, frozen when queued and stored apart (keys.payloads); every
    # re-send repeats it byte for byte
    body: str | None = None

    def public(self) -> dict[str, Any]:
        """As `/status` shows it: the URL redacted to its host (paths carry tokens)."""
        shown = self.model_dump(exclude={"body", "next_attempt_at", "id"})
        shown["url"] = redact(self.url)
        return shown


class JobMeta(BaseModel):
    workflow_id: str
    create_at: str
    updated_at: str
    shared_storage_path: str
    input_params: dict[str, Any] = Field(default_factory=dict)


class WorkflowContext(BaseModel):
    """What `/status`, `/result`, hits and callbacks report: the job with every stage."""

    workflow_id: str
    create_at: str
    updated_at: str
    status: JobStatus
    input_params: dict[str, Any]
    shared_storage_path: str
    error: str | None = None
    stages: dict[str, Stage]
    callbacks: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def build(
        cls, meta: JobMeta, stages: dict[str, Stage], deliveries: list[CallbackDelivery]
    ) -> WorkflowContext:
        return cls(
            workflow_id=meta.workflow_id,
            create_at=meta.create_at,
            updated_at=meta.updated_at,
            status=derive_job_status(stages),
            input_params=meta.input_params,
            shared_storage_path=meta.shared_storage_path,
            error=_job_error(stages),
            stages=stages,
            callbacks=[d.public() for d in sorted(deliveries, key=lambda d: d.created_at)],
        )


def derive_job_status(stages: dict[str, Stage]) -> JobStatus:
    """running if any stage runs, pending if any waits, failed if any failed, else completed."""
    statuses = {s.status for s in stages.values()}
    if StageStatus.RUNNING in statuses:
        return JobStatus.RUNNING
    if StageStatus.PENDING in statuses or not statuses:
        return JobStatus.PENDING
    if StageStatus.FAILED in statuses:
        return JobStatus.FAILED
    return JobStatus.COMPLETED


def _job_error(stages: dict[str, Stage]) -> str | None:
    failed = [f"{name}: {s.error}" for name, s in stages.items() if s.status is StageStatus.FAILED]
    return "; ".join(failed) or None
