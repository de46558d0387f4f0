"""Request guard: the API key is checked and the body size capped before a body is read.

A pure ASGI middleware on the ingress' FastAPI app. FastAPI parses a body (and spools an
upload to disk) before any handler or dependency runs, so both checks have to sit in
front of it. Serve hands each replica a frozen copy of the app, so the replica tells
this module its settings (`configure`, from `Ingress.__init__`): one ingress per process,
as every Serve replica is its own actor process.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException

from graph import files
from graph.metrics import refused_before_handler
from reuse.errors import InputError, ReelserveError
from reuse.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around an upload
MAX_DEPTH = 32

_settings: Settings | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def is_upload(method: str, path: str) -> bool:
    return method == "POST" and path.rstrip("/") == "/v1/files"


def body_limit(settings: Settings, method: str, path: str) -> int:
    if is_upload(method, path):
        return settings.max_upload_bytes + MULTIPART_OVERHEAD
    return settings.max_body_bytes


def early_refusal(settings: Settings, method: str, path: str, query: bytes) -> str | None:
    """A request that will be refused whatever its body: say so before reading an upload."""
    if not is_upload(method, path):
        return None
    try:
        folder = parse_qs(query.decode("latin-1")).get("path", [""])[-1]
        files.folder_parts(settings.storage_root, folder)
    except ReelserveError as exc:
        return exc.message
    return None


def authorized(settings: Settings, authorization: str | None, api_key: str | None) -> bool:
    key = settings.api_key
    if not key:
        return True
    given = (authorization or "").removeprefix("Bearer ").strip() or api_key or ""
    return hmac.compare_digest(given.encode(), key.encode())


async def _answer(send: Send, status: int, error: str, extra: dict[str, str] | None = None
                  ) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = _settings
        if scope["type"] != "http" or settings is None:
            await self.app(scope, receive, send)
            return
        declared = authorization = api_key = None
        for name, value in scope.get("headers", ()):  # one pass, only what is needed
            if name == b"content-length":
                declared = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                api_key = value.decode("latin-1")
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")  # the app's route prefix, when mounted under one
        if root and path.startswith(root):
            path = path[len(root):]
        method: str = scope.get("method", "GET")
        if path.startswith("/v1/") and not authorized(settings, authorization, api_key):
            refused_before_handler(method, path, 401)
            await _answer(send, 401, "missing or wrong API key",
                          {"www-authenticate": "Bearer"})
            return
        refused = early_refusal(settings, method, path, scope.get("query_string", b""))
        if refused is not None:
            refused_before_handler(method, path, 422)
            await _answer(send, 422, refused)
            return
        limit = body_limit(settings, method, path)
        if declared is not None:
            if not declared.isdigit():
                refused_before_handler(method, path, 400)
                await _answer(send, 400, "invalid Content-Length header")
                return
            if int(declared) > limit:
                refused_before_handler(method, path, 413)
                await _answer(send, 413, f"the request body is larger than {limit} bytes")
                return
            # the server reads no more than Content-Length: nothing left to count
            await self.app(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:  # a chunked body: counted as it arrives
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"the request body is larger than {limit} bytes")
            return message

        await self.app(scope, bounded, send)


def check_strings(value: Any, limit: int, where: str = "input_data", depth: int = 0) -> None:
    """Every string (and key) inside a JSON value is at most `limit` characters."""
    if depth > MAX_DEPTH:
        raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > limit:
            raise InputError(f"{where}: longer than {limit} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{where}: not valid Unicode (a lone surrogate)") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(key, limit, where, depth + 1)
            check_strings(item, limit, f"{where}.{str(key)[:40]}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, limit, f"{where}[{i}]", depth + 1)
