"""The reuse decision, one row per line of DESIGN §3's table (pure; no services)."""

from __future__ import annotations

from typing import Any

import pytest

from reuse.decide import Action, decide
from reuse.models import Stage
from reuse.status import MissReason, ReuseMode, StageStatus
from reuse.storage import artifact_paths

NOW = 1_000_000.0
KEYS = ("audio_path",)


def stage(status: StageStatus, **kw: Any) -> Stage:
    base: dict[str, Any] = {"status": status, "input_fingerprint": "fp"}
    if status is StageStatus.SUCCESS:
        base["output"] = {"audio_path": "/s/a.wav"}
    base.update(kw)
    return Stage(**base)


ROWS = [
    # (stored stage, mode, fingerprint, artifacts present) -> (action, reason)
    ("success", stage(StageStatus.SUCCESS), ReuseMode.AUTO, "fp", True, Action.HIT, None),
    ("success, input changed, auto", stage(StageStatus.SUCCESS), ReuseMode.AUTO, "other", True,
     Action.HIT, None),
    ("pending, live lease", stage(StageStatus.PENDING, lease_expires_at=NOW + 5), ReuseMode.AUTO,
     "fp", True, Action.WAIT, None),
    ("running, live lease", stage(StageStatus.RUNNING, lease_expires_at=NOW + 5), ReuseMode.AUTO,
     "fp", True, Action.WAIT, None),
    ("running, live lease, off", stage(StageStatus.RUNNING, lease_expires_at=NOW + 5),
     ReuseMode.OFF, "fp", True, Action.WAIT, None),
    ("absent", None, ReuseMode.AUTO, "fp", True, Action.RUN, MissReason.NOT_FOUND),
    ("failed", stage(StageStatus.FAILED, error="boom"), ReuseMode.AUTO, "fp", True, Action.RUN,
     MissReason.FAILED),
    ("success, empty output", stage(StageStatus.SUCCESS, output={}), ReuseMode.AUTO, "fp", True,
     Action.RUN, MissReason.EMPTY_OUTPUT),
    ("success, reuse key null", stage(StageStatus.SUCCESS, output={"audio_path": None}),
     ReuseMode.AUTO, "fp", True, Action.RUN, MissReason.EMPTY_OUTPUT),
    ("success, other keys only", stage(StageStatus.SUCCESS, output={"srt_file": "/x"}),
     ReuseMode.AUTO, "fp", True, Action.RUN, MissReason.EMPTY_OUTPUT),
    ("success, artifact gone", stage(StageStatus.SUCCESS), ReuseMode.AUTO, "fp", False,
     Action.RUN, MissReason.ARTIFACT_MISSING),
    ("pending, lease expired", stage(StageStatus.PENDING, lease_expires_at=NOW - 1),
     ReuseMode.AUTO, "fp", True, Action.RUN, MissReason.LEASE_EXPIRED),
    ("running, no lease", stage(StageStatus.RUNNING), ReuseMode.AUTO, "fp", True, Action.RUN,
     MissReason.LEASE_EXPIRED),
    ("success, off", stage(StageStatus.SUCCESS), ReuseMode.OFF, "fp", True, Action.RUN,
     MissReason.FORCED),
    ("success, strict, input changed", stage(StageStatus.SUCCESS), ReuseMode.STRICT, "other",
     True, Action.RUN, MissReason.INPUT_CHANGED),
    ("success, strict, same input", stage(StageStatus.SUCCESS), ReuseMode.STRICT, "fp", True,
     Action.HIT, None),
]


@pytest.mark.parametrize(("label", "stored", "mode", "fp", "present", "action", "reason"), ROWS,
                         ids=[r[0] for r in ROWS])
def test_decision_table(label: str, stored: Stage | None, mode: ReuseMode, fp: str,
                        present: bool, action: Action, reason: MissReason | None) -> None:
    got = decide(stored, reuse_keys=KEYS, mode=mode, now=NOW, fingerprint=fp,
                 artifacts_present=present)
    assert (got.action, got.reason) == (action, reason)


def test_node_without_reuse_keys_never_hits() -> None:
    got = decide(stage(StageStatus.SUCCESS), reuse_keys=(), mode=ReuseMode.AUTO, now=NOW,
                 fingerprint="fp")
    assert got.action is Action.RUN


def test_artifact_paths_only_for_success_and_absolute_paths() -> None:
    ok = stage(StageStatus.SUCCESS, output={"audio_path": "/s/a.wav", "n": 3})
    assert artifact_paths(ok, ("audio_path", "n")) == ["/s/a.wav"]
    assert artifact_paths(stage(StageStatus.FAILED), KEYS) == []
    assert artifact_paths(None, KEYS) == []
