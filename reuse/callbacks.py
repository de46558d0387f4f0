"""Callback payloads, Standard Webhooks signing, retry schedule and address checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from reuse import reuse_info
from reuse.models import CallbackDelivery, Stage, WorkflowContext
from reuse.status import MissReason, StageStatus


def build_payload(
    task_id: str, delivery: CallbackDelivery, stage: Stage, context: WorkflowContext
) -> dict[str, Any]:
    """The callback body, built from the stage it reports."""
    if delivery.kind == "run" and delivery.reason:
        info = reuse_info.miss(delivery.task_name, MissReason(delivery.reason), stage.attempt)
    else:
        info = reuse_info.hit(delivery.task_name, stage)
    return {
        "task_id": task_id,
        "task_name": delivery.task_name,
        "status": "completed" if stage.status is StageStatus.SUCCESS else "failed",
        "reuse_info": reuse_info.to_dict(info),
        "result": context.model_dump(mode="json"),
        "timestamp": time.time(),
    }


def webhook_id(task_id: str, delivery: CallbackDelivery) -> str:
    """Stable per (task_id, task_name, attempt) for run ends; per delivery for hits."""
    basis = (
        f"{task_id}\n{delivery.id}"
        if delivery.kind == "hit"
        else f"{task_id}\n{delivery.task_name}\n{delivery.attempt}"
    )
    return "msg_" + hashlib.sha256(basis.encode()).hexdigest()[:24]


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


class AddressRefused(Exception):
    """The URL is not allowed as a target (scheme, host or a resolved address)."""


def check_url_syntax(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AddressRefused(f"only http and https URLs are allowed, not {parts.scheme!r}")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("credentials in the URL are not allowed")


def address_allowed(addr: str, allow: Iterable[str]) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in allow):
        return True
    return ip.is_global and not ip.is_multicast


def resolve_checked(url: str, allow: Iterable[str]) -> list[str]:
    """Resolve the URL's host and return its addresses; refuse if any is not allowed.

    Run at send/download time (DNS can change). Decimal, octal and IPv6-mapped forms are
    caught because the check is on what the resolver returns, not on the spelling.
    """
    check_url_syntax(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressRefused(f"cannot resolve {host!r}: {exc}") from exc
    addrs = sorted({str(info[4][0]) for info in infos})
    allow = list(allow)
    refused = [a for a in addrs if not address_allowed(a, allow)]
    if refused:
        raise AddressRefused(f"{host!r} resolves to non-public address(es) {', '.join(refused)}")
    return addrs


def pinned(url: str, addr: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Rewrite a URL to connect to an already checked address (no second DNS lookup).

    Returns (url with the address, Host header, httpx extensions with the TLS SNI name),
    so a name that re-resolves to a private address between check and connect is useless.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip_host = f"[{addr}]" if ":" in addr else addr
    netloc = ip_host + (f":{parts.port}" if parts.port else "")
    target = parts._replace(netloc=netloc).geturl()
    host_header = host if not parts.port else f"{host}:{parts.port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" + (f":{parts.port}" if parts.port else "")
    ext: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, {"host": host_header}, ext
