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
                            state=DeliveryState.QUEUED, body='{"task_id":"t","ok":true}')


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


@pytest.mark.parametrize("host", [
    "[::a00:1]",             # IPv4-compatible 10.0.0.1
    "[::ffff:a00:1]",        # IPv4-mapped 10.0.0.1
    "[64:ff9b::a00:1]",      # NAT64 of 10.0.0.1
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[2002:a00:1::]",        # 6to4 of 10.0.0.1
    "[2001:0:4136:e378:8000:63bf:f5ff:fffe]",  # Teredo, client 10.0.0.1
    "[64:ff9b:1::1]",        # local-use NAT64 prefix
])
async def test_ipv6_embeddings_of_private_ipv4_are_refused_before_connecting(
    loopback: LoopbackServer, tmp_path: Path, host: str
) -> None:
    """Finding 5: these passed the check and were connected to."""
    settings = make_settings("redis://u", tmp_path, callback_allow_cidrs=[])
    result = await Deliverer(settings).attempt("t", record(f"http://{host}:8080/cb"))
    assert result.state is DeliveryState.FAILED
    assert (result.error or "").startswith("refused"), result.error


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/cb", "http://127.0.0.1:abc/cb",
                                 "http://[::1/x"])
async def test_a_malformed_stored_url_ends_the_delivery(tmp_path: Path, url: str) -> None:
    """Finding 6: a delivery whose URL cannot be used is settled, not retaken forever."""
    result = await Deliverer(make_settings("redis://u", tmp_path)).attempt("t", record(url))
    assert result.state is DeliveryState.FAILED and "malformed" in (result.error or "")


async def test_a_host_that_does_not_resolve_is_retried(tmp_path: Path) -> None:
    """Finding 14: DNS errors are transient; the normal schedule applies."""
    settings = make_settings("redis://u", tmp_path, callback_max_attempts=3)
    d = Deliverer(settings)
    url = "http://reelserve-test.invalid/cb"  # .invalid never resolves (RFC 6761)
    first = await d.attempt("t", record(url, attempts=0))
    assert first.state is DeliveryState.QUEUED and first.retry_at is not None
    assert "resolve" in (first.error or "")
    last = await d.attempt("t", record(url, attempts=2))
    assert last.state is DeliveryState.FAILED and "gave up after 3" in (last.error or "")


async def test_a_resend_repeats_the_frozen_body_byte_for_byte(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    """Finding 15: one webhook-id, one body, however often it is sent."""
    settings = make_settings("redis://u", tmp_path)
    name = unique("twice")
    rec = record(loopback.url(name))
    rec.body = '{"task_id":"t","text":"café","n":1.0000000001}'
    d = Deliverer(settings)
    for _ in range(2):
        assert (await d.attempt("t", rec)).state is DeliveryState.DELIVERED
    first, second = loopback.wait_for(name, 2)
    assert first.body == second.body == rec.body.encode()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
