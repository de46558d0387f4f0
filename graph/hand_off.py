"""Seeing a claimed attempt through at its node: one `submit` call, which lasts the run.

While every replica of the node is busy the call waits in the caller's Serve router (where
the autoscaler counts it), so the caller renews the attempt's lease meanwhile, without
touching the progress the node reports. The ingress hands off new runs this way, the
StageStore the runs it starts again.

A lost replica (its process or machine gone: `RayActorError`) ends the call quietly: the
lease then runs out and the StageStore's sweep starts the run again as the next attempt,
up to `lost_run_retries` times (graph/stage_store.py). Any other error is the caller's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ray.exceptions import RayActorError

from nodes.runner import Job
from reuse.redis_store import Fenced

log = logging.getLogger("reelserve.hand_off")


async def awaited(call: Any) -> Any:
    """A coroutine of any awaitable (a DeploymentResponse), for asyncio.wait_for/wait."""
    return await call


async def see_through(job: Job, submit: Callable[[Job], Any],
                      renew: Callable[[str, str, int], Awaitable[Fenced]],
                      every_s: float) -> None:
    key = (job.task_id, job.task_name, job.attempt)
    call = asyncio.ensure_future(awaited(submit(job)))
    current = True
    while not call.done():
        await asyncio.wait({call}, timeout=every_s)
        if not call.done() and current:
            try:
                current = (await renew(*key)).accepted  # ended or superseded: stop
            except Exception:
                log.warning("lease renewal of %s failed; trying again", key)
    try:
        call.result()
    except RayActorError as exc:
        log.warning("the replica running %s was lost (%r); its lease will run out and the "
                    "sweep start it again", key, exc)
