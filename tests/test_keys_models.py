"""Key builders and derived job status (pure)."""

from __future__ import annotations

import re

from reuse import keys
from reuse.models import Stage, derive_job_status, fingerprint
from reuse.status import JobStatus, StageStatus


def test_job_keys_share_one_hash_tag() -> None:
    tags = {re.search(r"\{(.*)\}", k).group(1) for k in keys.job_keys("job-1")}  # type: ignore[union-attr]
    assert tags == {"job-1"}
    assert len(set(keys.job_keys("job-1"))) == 4


def test_member_roundtrip() -> None:
    member = keys.member("job.1", "ffmpeg.extract_audio:2:abc")
    assert keys.parse_member(member) == ("job.1", "ffmpeg.extract_audio:2:abc")


def test_fingerprint_ignores_key_order() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_job_status_is_derived_from_stages() -> None:
    def s(status: StageStatus) -> Stage:
        return Stage(status=status)

    assert derive_job_status({}) is JobStatus.PENDING
    assert derive_job_status({"a": s(StageStatus.SUCCESS)}) is JobStatus.COMPLETED
    assert derive_job_status({"a": s(StageStatus.SUCCESS), "b": s(StageStatus.RUNNING)}) \
        is JobStatus.RUNNING
    assert derive_job_status({"a": s(StageStatus.SUCCESS), "b": s(StageStatus.PENDING)}) \
        is JobStatus.PENDING
    assert derive_job_status({"a": s(StageStatus.SUCCESS), "b": s(StageStatus.FAILED)}) \
        is JobStatus.FAILED


def test_every_slot_has_a_tag_and_a_job_shares_its_shards_slot() -> None:
    from redis.crc import key_slot

    assert all(key_slot(keys.slot_tag(s).encode()) == s for s in range(16384))
    for task_id in ("job-1", "n8n:run/42", "x" * 100):
        slot = keys.slot(task_id)
        slots = {key_slot(k.encode()) for k in
                 [*keys.job_keys(task_id), keys.outbox(slot), keys.leases(slot)]}
        assert slots == {slot}
