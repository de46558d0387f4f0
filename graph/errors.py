"""Error responses: every 4xx carries `error` (a sentence) and optional `detail`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def describe_errors(errors: list[Any], prefix: str = "") -> list[str]:
    out = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body"
        out.append(f"{where}: {err.get('msg', 'invalid')}")
    return out


def from_validation(exc: ValidationError, prefix: str) -> ApiError:
    messages = describe_errors(list(exc.errors()), prefix)
    return ApiError(422, "; ".join(messages), messages)


def install(api: FastAPI) -> None:
    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.error}
        if exc.detail is not None:
            body["detail"] = exc.detail
        return JSONResponse(status_code=exc.status, content=body)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(status_code=400, content={
                "error": "the request body is not valid JSON",
                "detail": describe_errors(errors)})
        messages = describe_errors(errors)
        return JSONResponse(status_code=422, content={"error": "; ".join(messages),
                                                      "detail": messages})

    @api.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)})
