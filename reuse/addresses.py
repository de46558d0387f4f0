"""Outbound address checks, shared by callbacks and URL inputs.

A target URL is http(s), carries no credentials, has a valid host and port, and every
address its host resolves to is globally routable, unless a configured CIDR allows it.
IPv6 forms that embed an IPv4 address (mapped, compatible, SIIT, 6to4, Teredo, NAT64) are
judged by the IPv4 address they carry too, so `[::a00:1]` is 10.0.0.1 and refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit

from reuse.errors import AddressRefused, TransientError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048

_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 6052 §2.1)
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local use, never global
_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")


class Unresolvable(TransientError):
    """The host name did not resolve (now): DNS errors are retried, not final."""


def parse_url(url: str) -> SplitResult:
    """Syntax of a target URL; raises AddressRefused with the reason."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or 0xD800 <= ord(c) <= 0xDFFF or ord(c) == 0x7F for c in url):
        raise AddressRefused("the URL contains spaces, control characters or invalid Unicode")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port out of range or not a number
    except ValueError as exc:
        raise AddressRefused(f"the URL is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise AddressRefused(f"only http and https URLs are allowed, not {parts.scheme[:20]!r}")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("credentials in the URL are not allowed")
    if port == 0:
        raise AddressRefused("port 0 is not a valid target")
    if _literal(parts.hostname) is None:
        try:
            ascii_host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise AddressRefused("the URL's host name is not a valid DNS name") from exc
        # letters, digits, '-', '_' per label: a '\\', ';' or '%' is not part of a host
        if not _HOSTNAME.fullmatch(ascii_host):
            raise AddressRefused("the URL's host name is not a valid DNS name")
    return parts


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (empty for plain IPv6 and for IPv4)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _V4_COMPATIBLE or ip in _V4_TRANSLATED or ip in _NAT64_WELL_KNOWN:
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client), the client already de-obfuscated
    return found


def _public(ip: IPAddress) -> bool:
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved
            and not ip.is_link_local and not ip.is_unspecified)


def address_allowed(addr: str | IPAddress, allow: Iterable[str] = ()) -> bool:
    """Is this address a permitted target? Public, or inside an allow-listed CIDR."""
    ip = addr if not isinstance(addr, str) else _literal(addr)
    if ip is None:
        return False
    nets = [ipaddress.ip_network(cidr, strict=False) for cidr in allow]
    inner = embedded_ipv4(ip)
    candidates: list[IPAddress] = [ip, *inner]
    if any(c in net for c in candidates for net in nets if c.version == net.version):
        return True
    if ip in _NAT64_LOCAL:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and (
            ip.ipv4_mapped is not None or ip in _V4_TRANSLATED or ip in _NAT64_WELL_KNOWN):
        return _public(inner[0])  # a translation of that IPv4 address: judged as it
    return _public(ip) and all(_public(v4) for v4 in inner)


def check_target(url: str, allow: Iterable[str] = ()) -> SplitResult:
    """Request-time check: syntax, and the address when the host is an IP literal (names
    are resolved and checked when the URL is used)."""
    parts = parse_url(url)
    ip = _literal(parts.hostname or "")
    if ip is not None and not address_allowed(ip, allow):
        raise AddressRefused(f"{ip} is not a public address")
    return parts


def resolve_checked(url: str, allow: Iterable[str] = ()) -> list[str]:
    """Resolve the URL's host and return its addresses; refuse if any is not allowed.

    Run at send/download time (DNS can change). Decimal, octal and IPv6 forms are caught
    because the check is on what the resolver returns, not on the spelling.
    """
    parts = parse_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"cannot resolve {host[:100]!r}: {exc}") from exc
    addrs = sorted({str(info[4][0]) for info in infos})
    allow = list(allow)
    refused = [a for a in addrs if not address_allowed(a, allow)]
    if refused:
        raise AddressRefused(f"{host[:100]!r} resolves to non-public address(es) "
                             f"{', '.join(refused[:4])}")
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
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if not parts.port else f"{shown}:{parts.port}"
    ext: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, {"host": host_header}, ext


def redact(url: str) -> str:
    """A URL shown to others: scheme, host and port only (paths and queries carry tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}{port}/…"
