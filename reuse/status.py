"""The one status vocabulary every layer uses (lesson 3: no IN_PROGRESS vs running drift)."""

from __future__ import annotations

from enum import StrEnum


class StageStatus(StrEnum):
    """Status of one stage (one node run) of a job, as stored in Redis."""

    PENDING = "PENDING"  # claimed, handed to the node, not started yet
    RUNNING = "RUNNING"  # the node is working on it and renews its lease
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    @property
    def in_flight(self) -> bool:
        return self in (StageStatus.PENDING, StageStatus.RUNNING)

    @property
    def terminal(self) -> bool:
        return self in (StageStatus.SUCCESS, StageStatus.FAILED)


class JobStatus(StrEnum):
    """Status of a whole job, derived from its stages (never stored)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ReuseMode(StrEnum):
    AUTO = "auto"  # the seed's rule: a SUCCESS stage with its reuse keys is reused
    STRICT = "strict"  # as auto, but a changed input fingerprint is a miss
    OFF = "off"  # always run again


class MissReason(StrEnum):
    NOT_FOUND = "not_found"
    FAILED = "failed"
    EMPTY_OUTPUT = "empty_output"
    ARTIFACT_MISSING = "artifact_missing"
    LEASE_EXPIRED = "lease_expired"
    FORCED = "forced"
    INPUT_CHANGED = "input_changed"


class DeliveryState(StrEnum):
    """State of one callback delivery in the outbox."""

    WAITING = "waiting"  # subscribed to an attempt that has not ended yet
    QUEUED = "queued"  # payload built, in the outbox, not delivered yet
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: retries exhausted, refused address, redirect
    GONE = "gone"  # the receiver answered 410: stop
