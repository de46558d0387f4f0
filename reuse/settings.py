"""One Settings object, read from the environment (REELSERVE_*) and passed in everywhere."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REELSERVE_", extra="forbid", populate_by_name=True
    )

    redis_url: str = Field(
        default="redis://127.0.0.1:6390/0",
        validation_alias="REDIS_URL",
        description="Redis/Valkey URL. `make run` starts an embedded Valkey here unless set.",
    )
    storage_root: Path = Field(
        default=Path("/tmp/reelserve/share"),
        description="All inputs and artifacts live below this folder.",
    )
    stage_ttl_s: int = Field(default=7 * 24 * 3600, description="Sliding TTL of a job's keys.")
    claim_lease_s: float = Field(
        default=60.0, description="Lease of a claimed attempt until its node starts it."
    )
    run_lease_s: float = Field(
        default=60.0, description="Lease of a running attempt; renewed by its heartbeat."
    )
    heartbeat_s: float = Field(default=10.0, description="How often a running node renews.")
    api_key: str | None = Field(
        default=None, description="If set, every /v1 call needs `Authorization: Bearer <key>`."
    )

    # Callbacks (Standard Webhooks)
    callback_secret: str | None = Field(
        default=None, description="`whsec_<base64>` secret; when set, callbacks are signed."
    )
    callback_allow_cidrs: list[str] = Field(
        default_factory=list,
        description="Private ranges callbacks and URL inputs may reach (default: public only).",
    )
    callback_timeout_s: float = 10.0
    callback_max_attempts: int = 8
    callback_backoff_base_s: float = 2.0
    callback_backoff_max_s: float = 600.0
    callback_inflight_s: float = Field(
        default=60.0, description="A delivery taken by a sender that died is retried after this."
    )

    # Inputs
    download_max_bytes: int = Field(default=2 * 1024**3, description="Limit for URL inputs.")
    download_timeout_s: float = 600.0

    # Engines
    ffmpeg_binary: str | None = Field(
        default=None, description="ffmpeg to run; default: ffmpeg on PATH, else imageio-ffmpeg's."
    )
