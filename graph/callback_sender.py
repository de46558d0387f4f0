"""CallbackSender deployment: drains the durable outbox and delivers callbacks over HTTP.

Deliveries live in Redis (reuse/outbox.py), so a sender that restarts picks up where the
last one stopped. It wakes when told (`notify`) and otherwise polls every second, which
also picks up retries that fall due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
from ray import serve
from ray.serve.handle import DeploymentHandle

from graph.metrics import SenderMetrics
from reuse.addresses import pinned, redact, resolve_checked
from reuse.callbacks import backoff_s, headers, webhook_id
from reuse.errors import AddressRefused
from reuse.models import CallbackDelivery
from reuse.outbox import Settlement
from reuse.settings import Settings
from reuse.status import DeliveryState

log = logging.getLogger("reelserve.callbacks")
POLL_S = 1.0
RESULTS = {DeliveryState.DELIVERED: "delivered", DeliveryState.QUEUED: "retry",
           DeliveryState.FAILED: "failed", DeliveryState.GONE: "gone"}
MAX_PARALLEL = 32


class Deliverer:
    """One HTTP try of one delivery, and what it means for the outbox.

    Every try counts, whatever went wrong: a refused address or a redirect ends the
    delivery; anything else (DNS failure, connection error, timeout, a non-2xx answer,
    even an error of our own) is retried on the backoff schedule until the tries run out.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(
            follow_redirects=False, timeout=settings.callback_timeout_s, trust_env=False
        )

    async def attempt(self, task_id: str, record: CallbackDelivery) -> Settlement:
        try:
            return await self._send(task_id, record)
        except AddressRefused as exc:
            return Settlement(DeliveryState.FAILED, f"refused: {exc}")
        except Exception as exc:  # DNS, network, a bad URL that slipped through: all retried
            return self._retry(record, f"{type(exc).__name__}: {exc}"[:300])

    async def _send(self, task_id: str, record: CallbackDelivery) -> Settlement:
        addrs = await asyncio.to_thread(resolve_checked, record.url,
                                        self.settings.callback_allow_cidrs)
        body = (record.body or "").encode()  # frozen when queued: re-sends are identical
        hdrs = headers(self.settings.callback_secret, webhook_id(task_id, record), body,
                       time.time())
        target, host, ext = pinned(record.url, addrs[0])
        resp = await self.client.post(target, content=body, headers={**hdrs, **host},
                                      extensions=ext)
        if resp.is_success:
            return Settlement(DeliveryState.DELIVERED)
        if resp.status_code == 410:
            return Settlement(DeliveryState.GONE, "410 Gone: receiver asked to stop")
        if resp.is_redirect:
            return Settlement(DeliveryState.FAILED,
                              f"{resp.status_code} redirect refused (redirects not followed)")
        return self._retry(record, f"HTTP {resp.status_code}")

    def _retry(self, record: CallbackDelivery, error: str) -> Settlement:
        s = self.settings
        tries = record.attempts + 1
        if tries >= s.callback_max_attempts:
            return Settlement(DeliveryState.FAILED, f"{error} (gave up after {tries} tries)")
        delay = backoff_s(tries, s.callback_backoff_base_s, s.callback_backoff_max_s)
        return Settlement(DeliveryState.QUEUED, error, retry_at=time.time() + delay)

    async def close(self) -> None:
        await self.client.aclose()


@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=100)
class CallbackSender:
    def __init__(self, settings: Settings, store: DeploymentHandle) -> None:
        self.store = store
        self.deliverer = Deliverer(settings)
        self.wake = asyncio.Event()
        self.metrics = SenderMetrics()
        self.active: set[asyncio.Task[None]] = set()
        self.loop_task = asyncio.get_running_loop().create_task(self._drain_forever())

    async def notify(self) -> None:
        """Something was queued: look at the outbox now rather than at the next poll."""
        self.wake.set()

    async def ping(self) -> bool:
        return not self.loop_task.done()

    async def _drain_forever(self) -> None:
        """Keep up to MAX_PARALLEL deliveries going; a slow receiver holds only its own slot."""
        while True:
            self.wake.clear()  # before reading, so a notify during the read is not lost
            room = MAX_PARALLEL - len(self.active)
            batch: list[tuple[str, CallbackDelivery]] = []
            try:
                self.metrics.outbox_lag(await self.store.outbox_lag.remote())
                if room > 0:
                    batch = await self.store.take_due.remote(room)
            except Exception:
                log.exception("cannot read the outbox; retrying")
            for task_id, record in batch:
                task = asyncio.get_running_loop().create_task(self._deliver(task_id, record))
                self.active.add(task)
                task.add_done_callback(self._done)
            if batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=POLL_S)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.active.discard(task)
        self.wake.set()  # a slot is free

    async def _deliver(self, task_id: str, record: CallbackDelivery) -> None:
        try:
            result = await self.deliverer.attempt(task_id, record)
            self.metrics.delivery(RESULTS[result.state])
            if result.state is not DeliveryState.DELIVERED:
                # the host only: callback URLs often carry tokens in their path or query
                log.warning("callback to %s for %s: %s", redact(record.url), task_id,
                            result.error)
            await self.store.settle.remote(task_id, record, result)
        except Exception:  # it stays in the outbox and is retried after callback_inflight_s
            log.exception("delivery %s of %s could not be settled", record.id, task_id)

    async def check_health(self) -> None:
        if self.loop_task.done():
            raise RuntimeError(f"outbox loop ended: {self.loop_task.exception()!r}")


