"""Errors as HTTP answers, in one place: every 4xx carries `error` (a sentence) and,
where useful, `detail`. The classes are reelserve's one exception tree (reuse/errors.py);
this module maps each to its status and documents the answers in the OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph.metrics import refused_before_handler
from reuse.errors import (
    Conflict,
    InputError,
    NotFound,
    ReelserveError,
    TooLarge,
    TransientError,
    Unauthorized,
)

log = logging.getLogger("reelserve.errors")

STATUS: dict[type[ReelserveError], int] = {
    InputError: 422,  # AddressRefused is an InputError
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    TransientError: 503,
}


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="What went wrong, as a sentence.")
    detail: Any = Field(default=None, description="Machine-readable context, when useful: "
                        "the list of problems, the supported tasks, the busy stages.")


def _doc(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("The body is not valid JSON, or a header is malformed."),
    401: _doc("Missing or wrong API key (when one is configured)."),
    413: _doc("The body or upload is larger than its configured limit."),
    422: _doc("A parameter is invalid; `detail` lists each problem."),
    503: _doc("Redis or the artifact store is unavailable for a moment (retry later; for "
              "Redis, Retry-After says when)."),
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route: the common errors plus `codes`."""
    extra = {404: _doc("Not found."), 409: _doc("Conflicts with the current state.")}
    return {**ERROR_RESPONSES, **{c: extra[c] for c in codes}}


def status_of(exc: ReelserveError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def describe_errors(errors: list[Any], prefix: str = "") -> list[str]:
    out = []
    for err in errors:
        loc = ".".join(str(p)[:40] for p in err.get("loc", ()) if p != "body")
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body"
        out.append(f"{where}: {err.get('msg', 'invalid')}"[:300])
    return out


def from_validation(exc: ValidationError, prefix: str) -> InputError:
    messages = describe_errors(list(exc.errors()), prefix)
    return InputError("; ".join(messages)[:1000], messages)


def _json(status: int, error: str, detail: Any = None,
          headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(status_code=status, content=body, headers=headers)


def _flat(routes: list[Any]) -> list[Any]:
    """Routes, with included routers (Serve includes the ingress class's) opened up."""
    out: list[Any] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None and not hasattr(route, "path_regex"):
            out += _flat(list(inner.routes))
        else:
            out.append(route)
    return out


def allowed_methods(request: Request) -> list[str]:
    """Methods of all routes whose path matches (Starlette names only the first route's)."""
    path, root = request.scope.get("path", ""), request.scope.get("root_path", "")
    candidates = {path, path.removeprefix(root)} if root else {path}
    matched = [r for r in _flat(request.app.router.routes)
               if getattr(r, "path_regex", None) is not None
               and any(r.path_regex.match(p) for p in candidates)]
    static = [r for r in matched if "{" not in r.path]  # a concrete path beats a template
    methods: set[str] = set()
    for route in static or matched:
        methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(api: FastAPI) -> None:
    @api.exception_handler(ReelserveError)
    async def _ours(_: Request, exc: ReelserveError) -> JSONResponse:
        return _json(status_of(exc), exc.message, exc.detail)

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        refused_before_handler(request.method, request.url.path, status)
        if status == 400:
            return _json(400, "the request body is not valid JSON", describe_errors(errors))
        messages = describe_errors(errors)
        return _json(422, "; ".join(messages)[:1000], messages)

    @api.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if exc.status_code < 500:
            refused_before_handler(request.method, request.url.path, exc.status_code)
        if exc.status_code == 405:  # Allow names every route's methods for this path
            headers["allow"] = ", ".join(allowed_methods(request)) or headers.get("allow", "")
        return _json(exc.status_code, str(exc.detail), headers=headers)

    @api.exception_handler(RedisConnectionError)
    async def _store_away(_: Request, exc: RedisConnectionError) -> JSONResponse:
        log.warning("the store is unavailable: %r", exc)
        return _json(503, "the stage store is unavailable right now; retry shortly",
                     headers={"retry-after": "2"})

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path[:200],
                  exc_info=exc)
        return _json(500, "internal error; it was logged")
