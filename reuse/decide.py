"""The reuse decision: a pure function of the stored stage and the request (DESIGN §3).

`decide` does no I/O. Whether the stage's artifacts still exist is checked by the caller
(`reuse.storage.artifacts_exist`) and passed in as `artifacts_present`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reuse.models import Stage
from reuse.status import MissReason, ReuseMode, StageStatus


class Action(StrEnum):
    HIT = "hit"  # reuse the SUCCESS stage; no run
    WAIT = "wait"  # an attempt is in flight; subscribe to it, no run
    RUN = "run"  # claim a new attempt and run the node


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: MissReason | None = None  # set when action is RUN


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def decide(
    stage: Stage | None,
    *,
    reuse_keys: Sequence[str],
    mode: ReuseMode,
    now: float,
    fingerprint: str,
    artifacts_present: bool = True,
) -> Decision:
    """Decide what a request for (task_id, task_name) does, given the stored stage.

    An attempt in flight is never doubled, whatever the mode: with `reuse: off` a request
    that arrives while the node runs waits for that run instead of starting a second one.
    """
    if stage is None:
        return Decision(Action.RUN, MissReason.NOT_FOUND)
    if stage.status.in_flight:
        if stage.lease_expires_at is not None and stage.lease_expires_at > now:
            return Decision(Action.WAIT)
        return Decision(Action.RUN, MissReason.LEASE_EXPIRED)
    if stage.status is StageStatus.FAILED:
        return Decision(Action.RUN, MissReason.FAILED)
    if mode is ReuseMode.OFF:
        return Decision(Action.RUN, MissReason.FORCED)
    if not reuse_keys or any(is_empty(stage.output.get(key)) for key in reuse_keys):
        return Decision(Action.RUN, MissReason.EMPTY_OUTPUT)
    if mode is ReuseMode.STRICT and stage.input_fingerprint != fingerprint:
        return Decision(Action.RUN, MissReason.INPUT_CHANGED)
    if not artifacts_present:
        return Decision(Action.RUN, MissReason.ARTIFACT_MISSING)
    return Decision(Action.HIT)
