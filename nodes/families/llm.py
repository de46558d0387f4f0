"""Line-by-line text edits by an LLM over any OpenAI-compatible chat API.

Lines go to the model in batches of `batch_size`, each preceded by the `overlap` lines
before it (already edited, as read-only context). The model must answer with JSON
`{"lines": [{"id": <id>, "text": "<edited>"}]}` holding exactly the batch's ids in order;
any other answer is asked again (REELSERVE_LLM_FORMAT_RETRIES times, told what was wrong),
then the stage fails. So the model can change words, never how many lines there are or
their times. Rate limits (429), server errors and timeouts are retried by the official
`openai` client (REELSERVE_LLM_MAX_RETRIES, honouring Retry-After).

The API key is read from settings into the client only: it is not in params, outputs,
files, logs or callbacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from nodes.families.segments import cue_text
from nodes.spec import NodeParams
from reuse.errors import InputError, ProviderError, brief
from reuse.settings import Settings

MAX_LINES = 20_000  # lines one run may send (an hour of speech is ~1,000)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
FORMAT = ('Answer with JSON only: {"lines": [{"id": <id>, "text": "<edited text>"}, ...]} '
          "with exactly the ids of `lines`, in the same order, one entry each. Keep line "
          "breaks inside a text as \\n. Do not merge, split, add or drop lines.")


class LLMParams(NodeParams):
    """The params every LLM node shares."""

    provider: str | None = Field(default=None, max_length=64, description="The configured "
                                 "provider's name (REELSERVE_LLM_PROVIDER); another is refused.")
    model: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$",
                              description="REELSERVE_LLM_MODEL (the default) or one of "
                              "REELSERVE_LLM_MODELS; another is refused.")
    system_prompt: str | None = Field(default=None, description="Replaces the node's "
                                      "instructions (the reply format is always added).")
    batch_size: int = Field(default=20, ge=1, le=200, description="Lines per request.")
    overlap_size: int = Field(default=3, ge=0, le=50, description="Lines before each batch "
                              "sent again as context (at most batch_size).")

    @model_validator(mode="after")
    def _overlap(self) -> LLMParams:
        if self.overlap_size > self.batch_size:  # each line is sent at most twice
            raise ValueError("overlap_size must not exceed batch_size")
        return self


@dataclass
class Usage:
    requests: int = 0
    format_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    problems: list[str] = field(default_factory=list)


def parse_reply(content: str | None, ids: list[int]) -> dict[int, str]:
    """The edited lines of a reply, or ValueError saying what breaks the format."""
    match = _FENCE.match(content or "")
    text = match.group(1) if match else (content or "")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the reply is not JSON ({exc})") from exc
    lines = data.get("lines") if isinstance(data, dict) else None
    if not isinstance(lines, list):
        raise ValueError('the reply has no "lines" list')
    got = [item.get("id") if isinstance(item, dict) else None for item in lines]
    if got != ids:
        raise ValueError(f"the reply has ids {brief(got, 120)}, expected {brief(ids, 120)}")
    out = {}
    for item in lines:
        value = item.get("text")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"line {item['id']} has no text")
        out[item["id"]] = cue_text(value)
    return out


class LineEditor:
    """One run's client: edits lines batch by batch."""

    def __init__(self, settings: Settings, params: LLMParams) -> None:
        if not settings.llm_base_url:
            raise ProviderError(
                "no LLM provider is configured: set REELSERVE_LLM_BASE_URL to an "
                "OpenAI-compatible API (vLLM, Ray Serve LLM, Ollama, a hosted one), "
                "REELSERVE_LLM_MODEL, and REELSERVE_LLM_API_KEY if it needs a key")
        if params.provider not in (None, settings.llm_provider):
            raise InputError(f"provider {brief(params.provider)} is not configured; "
                             f"this service uses {settings.llm_provider!r}")
        model = params.model or settings.llm_model
        if not model:
            raise ProviderError("no model: set REELSERVE_LLM_MODEL")
        allowed = [m for m in (settings.llm_model, *settings.llm_models) if m]
        if model not in allowed:  # the operator's key pays for it: only the models it lists
            raise InputError(f"model {brief(model)} is not offered here; use one of {allowed}")
        self.model: str = model
        import openai

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "none"
        self.client = openai.OpenAI(base_url=settings.llm_base_url, api_key=key,
                                    timeout=settings.llm_timeout_s,
                                    max_retries=settings.llm_max_retries)
        self.format_retries = settings.llm_format_retries
        self.provider = settings.llm_provider
        self.usage = Usage()

    def __enter__(self) -> LineEditor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _ask(self, messages: list[dict[str, str]]) -> str | None:
        import openai

        self.usage.requests += 1
        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0)  # type: ignore[arg-type]
        except openai.APIStatusError as exc:
            raise ProviderError(f"the LLM provider answered HTTP {exc.status_code} "
                                f"(after retries): {brief(exc.message, 200)}") from None
        except openai.APIError as exc:  # timeouts, refused connections
            raise ProviderError(f"the LLM provider could not be reached (after retries): "
                                f"{type(exc).__name__}: {brief(str(exc), 200)}") from None
        if reply.usage is not None:
            self.usage.prompt_tokens += reply.usage.prompt_tokens
            self.usage.completion_tokens += reply.usage.completion_tokens
        return reply.choices[0].message.content if reply.choices else None

    def edit_batch(self, instructions: str, context: list[dict[str, Any]],
                   lines: list[dict[str, Any]]) -> dict[int, str]:
        ids = [line["id"] for line in lines]
        messages = [{"role": "system", "content": f"{instructions}\n\n{FORMAT}"},
                    {"role": "user", "content": json.dumps(
                        {"context": context, "lines": lines}, ensure_ascii=False)}]
        for attempt in range(self.format_retries + 1):
            content = self._ask(messages)
            try:
                return parse_reply(content, ids)
            except ValueError as exc:
                self.usage.problems.append(str(exc))
                if attempt == self.format_retries:
                    raise ProviderError(
                        f"the model's reply broke the expected format "
                        f"{self.format_retries + 1} times for lines {ids[0]}-{ids[-1]}; "
                        f"last: {exc}") from None
                self.usage.format_retries += 1
                messages += [{"role": "assistant", "content": content or ""},
                             {"role": "user", "content": f"That reply is invalid: {exc}. "
                              f"{FORMAT}"}]
        raise AssertionError("unreachable")

    def edit_lines(self, texts: list[str], instructions: str, batch_size: int, overlap: int,
                   progress: Callable[[float], None]) -> tuple[list[str], dict[str, Any]]:
        """Every text edited (same count, same order), and the run's statistics."""
        if len(texts) > MAX_LINES:
            raise InputError(f"{len(texts)} lines; at most {MAX_LINES} per run")
        edited = list(texts)
        starts = range(0, len(texts), batch_size)
        for k, start in enumerate(starts):
            end = min(len(texts), start + batch_size)
            context = [{"id": i, "text": edited[i]}
                       for i in range(max(0, start - overlap), start)]
            lines = [{"id": i, "text": texts[i]} for i in range(start, end)]
            for i, text in self.edit_batch(instructions, context, lines).items():
                edited[i] = text
            progress((k + 1) / len(starts))
        stats = {"lines": len(texts), "changed_lines": sum(
            a != b for a, b in zip(texts, edited, strict=True)), "batches": len(starts),
            "requests": self.usage.requests, "format_retries": self.usage.format_retries,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens}
        return edited, stats
