"""Signing (checked with the independent `standardwebhooks` library), backoff, addresses."""

from __future__ import annotations

import json
import random

import pytest
from standardwebhooks import Webhook

from reuse.addresses import address_allowed, pinned, resolve_checked
from reuse.callbacks import backoff_s, headers
from reuse.errors import AddressRefused

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_verifies_with_standard_webhooks() -> None:
    body = json.dumps({"task_id": "t", "status": "completed"}).encode()
    hdrs = headers(SECRET, "msg_abc", body, now=1_700_000_000)
    assert hdrs["webhook-id"] == "msg_abc"
    assert hdrs["webhook-signature"].startswith("v1,")
    wh = Webhook(SECRET)
    # the library checks the timestamp against its clock; use a current one
    import time

    fresh = headers(SECRET, "msg_abc", body, now=time.time())
    assert wh.verify(body, fresh) == {"task_id": "t", "status": "completed"}
    with pytest.raises(Exception):  # noqa: B017 - any verification failure
        wh.verify(body + b" ", fresh)


def test_no_signature_without_secret() -> None:
    assert "webhook-signature" not in headers(None, "msg", b"{}", now=1.0)


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(7)
    for n in range(1, 12):
        delay = backoff_s(n, base=1.0, cap=30.0, rng=rng)
        assert 1.0 <= delay <= 60.0
    assert max(backoff_s(1, 1.0, 30.0, random.Random(i)) for i in range(50)) <= 2.0


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.0.0.2", "::1", "10.1.2.3", "192.168.1.1",
                                  "172.16.0.1", "169.254.169.254", "0.0.0.0", "fd00::1",
                                  "::ffff:127.0.0.1", "100.64.0.1", "224.0.0.1"])
def test_non_public_addresses_refused_by_default(addr: str) -> None:
    assert not address_allowed(addr, [])


def test_public_and_allowlisted_addresses() -> None:
    assert address_allowed("93.184.216.34", [])
    assert address_allowed("2606:4700::1111", [])
    assert address_allowed("127.0.0.1", ["127.0.0.0/8"])
    assert not address_allowed("10.0.0.1", ["127.0.0.0/8"])


@pytest.mark.parametrize("url", [
    "http://localhost/cb", "http://127.0.0.1:9/cb", "http://[::1]/cb", "http://127.0.0.2/cb",
    "http://169.254.169.254/latest/meta-data/", "http://2130706433/cb", "http://0x7f000001/cb",
    "http://017700000001/cb", "ftp://example.org/x", "http://user:pw@example.org/",
])
def test_resolve_checked_refuses(url: str) -> None:
    with pytest.raises(AddressRefused):
        resolve_checked(url, [])


def test_pinned_keeps_host_header_and_sni() -> None:
    target, host, ext = pinned("https://hooks.example.org:8443/a?b=1", "203.0.113.7")
    assert target == "https://203.0.113.7:8443/a?b=1"
    assert host == {"host": "hooks.example.org:8443"}
    assert ext == {"sni_hostname": "hooks.example.org"}
    target6, _, ext6 = pinned("http://example.org/x", "2001:db8::1")
    assert target6 == "http://[2001:db8::1]/x" and ext6 == {}


@pytest.mark.parametrize("addr", ["::a00:1", "::ffff:a00:1", "::ffff:0:a00:1", "64:ff9b::a00:1",
                                  "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:a00:1::",
                                  "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
                                  "64:ff9b:1::5db8:d822", "::", "ff02::1"])
def test_ipv6_forms_of_non_public_addresses_are_refused(addr: str) -> None:
    assert not address_allowed(addr, [])


def test_embedded_public_ipv4_stays_allowed() -> None:
    assert address_allowed("64:ff9b::5db8:d822", [])  # NAT64 of 93.184.216.34
    assert address_allowed("2002:5db8:d822::1", [])  # 6to4 of it
    assert address_allowed("::ffff:7f00:1", ["127.0.0.0/8"])  # allow-listed through the mapping


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/cb", "http://127.0.0.1:abc/cb",
                                 "http://[::1/x", "http://a b.example/", "http://ex\x00.org/",
                                 "http://\udc80.example/", "http://127.0.0.1:0/",
                                 "http://" + "a" * 70 + ".example/", "http://x/" + "a" * 3000])
def test_malformed_urls_are_refused_with_a_reason(url: str) -> None:
    from reuse.addresses import parse_url

    with pytest.raises(AddressRefused):
        parse_url(url)


def test_redacted_urls_keep_only_the_host() -> None:
    from reuse.addresses import redact

    assert redact("https://n8n.example.com/webhook/abc123?token=x") == "https://n8n.example.com/…"
    assert redact("http://[::1]:8080/x") == "http://[::1]:8080/…"
