"""One callback try against a real receiver on loopback: what is sent, refused, retried."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from graph.callback_sender import Deliverer
from reuse.models import CallbackDelivery, iso
from reuse.status import DeliveryState
from tests.conftest import make_settings, unique
from tests.loopback import LoopbackServer


def record(url: str, attempts: int = 0) -> CallbackDelivery:
    return CallbackDelivery(id="n:1:x", url=url, task_name="ffmpeg.extract_audio", attempt=1,
                            created_at=iso(time.time()), attempts=attempts,
                            state=DeliveryState.QUEUED, payload={"task_id": "t", "ok": True})


async def test_delivered_and_signed(loopback: LoopbackServer, tmp_path: Path) -> None:
    settings = make_settings("redis://unused", tmp_path)
    name = unique("signed")
    result = await Deliverer(settings).attempt("t", record(loopback.url(name)))
    assert result.state is DeliveryState.DELIVERED
    got = loopback.wait_for(name)[0]
    assert got.headers["webhook-id"].startswith("msg_")
    assert settings.callback_secret
    Webhook(settings.callback_secret).verify(got.body, got.headers)  # raises if wrong
    assert got.json == {"task_id": "t", "ok": True}


async def test_5xx_is_retried_with_backoff_then_given_up(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    settings = make_settings("redis://unused", tmp_path, callback_max_attempts=3)
    name = unique("fail")
    loopback.status_for[f"/cb/{name}"] = 503
    d = Deliverer(settings)
    first = await d.attempt("t", record(loopback.url(name), attempts=0))
    assert first.state is DeliveryState.QUEUED and first.error == "HTTP 503"
    assert first.retry_at is not None and first.retry_at > time.time()
    last = await d.attempt("t", record(loopback.url(name), attempts=2))
    assert last.state is DeliveryState.FAILED and "gave up after 3" in (last.error or "")


async def test_410_stops(loopback: LoopbackServer, tmp_path: Path) -> None:
    name = unique("gone")
    loopback.status_for[f"/cb/{name}"] = 410
    result = await Deliverer(make_settings("redis://u", tmp_path)).attempt(
        "t", record(loopback.url(name)))
    assert result.state is DeliveryState.GONE


async def test_redirect_is_not_followed(loopback: LoopbackServer, tmp_path: Path) -> None:
    name = unique("redirect")
    loopback.status_for[f"/cb/{name}"] = 302
    result = await Deliverer(make_settings("redis://u", tmp_path)).attempt(
        "t", record(loopback.url(name)))
    assert result.state is DeliveryState.FAILED and "redirect" in (result.error or "")
    assert loopback.hits[f"/cb/{name}"] == 1  # one request, the Location was not fetched


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.2", "2130706433",
                                  "0x7f000001", "169.254.169.254", "10.0.0.1"])
async def test_non_public_targets_refused_unless_allowed(
    loopback: LoopbackServer, tmp_path: Path, host: str
) -> None:
    settings = make_settings("redis://u", tmp_path, callback_allow_cidrs=[])
    name = unique("refused")
    port = loopback.base.rsplit(":", 1)[1]
    result = await Deliverer(settings).attempt("t", record(f"http://{host}:{port}/cb/{name}"))
    assert result.state is DeliveryState.FAILED
    assert (result.error or "").startswith("refused")
    assert loopback.calls(name) == []  # nothing was sent
