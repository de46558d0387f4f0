"""HTTP request and response models of the task API."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reuse.addresses import MAX_URL_LENGTH, parse_url
from reuse.errors import AddressRefused
from reuse.models import WorkflowContext
from reuse.status import ReuseMode

TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def new_task_id() -> str:
    return f"task-{uuid.uuid4()}"


class TaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_name: str = Field(max_length=128,
                           description="A registered node, see /v1/tasks/supported-tasks.")
    task_id: str = Field(default_factory=new_task_id, pattern=TASK_ID_PATTERN,
                         description="The job; stages of one job accumulate under it.")
    callback: str | None = Field(
        default=None, max_length=MAX_URL_LENGTH,
        description="http(s) URL called when the result is ready. Its host must resolve to "
        "public addresses only (unless allow-listed); it is never shown to other callers.")
    input_data: dict[str, Any] = Field(default_factory=dict, description="The node's params.")
    reuse: ReuseMode = Field(default=ReuseMode.AUTO)

    @field_validator("callback")
    @classmethod
    def _callback(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        try:
            parse_url(v)
        except AddressRefused as exc:
            raise ValueError(str(exc)) from exc
        return v


class TaskResponse(BaseModel):
    task_id: str
    task_name: str
    status: Literal["completed", "pending"]
    message: str
    reuse_info: dict[str, Any]
    result: WorkflowContext | None = None  # the whole job, on a hit
