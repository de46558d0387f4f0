"""Callback payloads, Standard Webhooks signing and the retry schedule.

Address checks (which hosts a callback may reach) are in `reuse/addresses.py`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from typing import Any

from reuse import reuse_info
from reuse.models import CallbackDelivery, Stage, WorkflowContext
from reuse.status import MissReason, StageStatus


def build_payload(
    task_id: str, delivery: CallbackDelivery, stage: Stage, context: WorkflowContext
) -> dict[str, Any]:
    """The callback body, built from the stage it reports.

    `result` is the job without its delivery records: one receiver never sees another
    receiver's URL, and the body does not grow with every delivery.
    """
    if delivery.kind == "run" and delivery.reason:
        info = reuse_info.miss(delivery.task_name, MissReason(delivery.reason), stage.attempt)
    elif stage.status is StageStatus.SUCCESS:
        info = reuse_info.hit(delivery.task_name, stage)
    else:  # a waiter of an attempt that failed: nothing was reused
        info = reuse_info.waited_failed(delivery.task_name, stage)
    body: dict[str, Any] = {
        "task_id": task_id,
        "task_name": delivery.task_name,
        "status": "completed" if stage.status is StageStatus.SUCCESS else "failed",
        "reuse_info": reuse_info.to_dict(info),
        "result": context.model_dump(mode="json", exclude={"callbacks"}),
        "timestamp": time.time(),
    }
    if stage.status is StageStatus.FAILED:
        body["error"] = stage.error
    return body


def freeze(payload: dict[str, Any]) -> str:
    """The exact body text a delivery sends, fixed once; every re-send repeats it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def webhook_id(task_id: str, delivery: CallbackDelivery) -> str:
    """One message id per delivery: stable per (task_id, task_name, attempt, URL) for the
    end of an attempt, per request for a hit. Re-sends of a delivery keep it."""
    return "msg_" + hashlib.sha256(f"{task_id}\n{delivery.id}".encode()).hexdigest()[:24]


def _secret_bytes(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks `webhook-signature`: v1,<base64 HMAC-SHA256 of id.timestamp.body>."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str | None, msg_id: str, body: bytes, now: float) -> dict[str, str]:
    ts = int(now)
    out = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "user-agent": "reelserve-callbacks",
    }
    if secret:
        out["webhook-signature"] = sign(secret, msg_id, ts, body)
    return out


def backoff_s(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(base, min(cap, base * 2**(n-1)) * 2)."""
    rng = rng or random.Random()
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return rng.uniform(base, max(base, ceiling * 2)) if ceiling > 0 else 0.0
