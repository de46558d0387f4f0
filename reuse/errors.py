"""The one exception tree. Every error a caller can cause or see is one of these; the
HTTP layer maps each class to its status in one table (`graph/errors.py`)."""

from __future__ import annotations

from typing import Any


class ReelserveError(Exception):
    """Root of reelserve's own errors. `detail` is extra, machine-readable context."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InputError(ReelserveError, ValueError):
    """A bad input the caller can fix (HTTP 422)."""


class AddressRefused(InputError):
    """A URL that may not be a target: scheme, host, port, or a non-public address."""


class Unauthorized(ReelserveError):
    """Missing or wrong API key (HTTP 401)."""


class NotFound(ReelserveError):
    """The task, file or model named does not exist (HTTP 404)."""


class Conflict(ReelserveError):
    """The request clashes with the current state, e.g. a stage in flight (HTTP 409)."""


class TooLarge(ReelserveError):
    """A body, upload, string or media file over its configured limit (HTTP 413)."""


class TransientError(ReelserveError):
    """Worth retrying later: a DNS lookup that failed, a host that did not answer."""


class ProviderError(ReelserveError):
    """A service a node depends on (an LLM provider) is not configured, failed, or kept
    answering in a form the node cannot use: the stage fails with this message."""


def brief(value: object, limit: int = 80) -> str:
    """`repr` of a caller's value, cut short: error messages never echo large input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
