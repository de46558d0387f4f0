"""NodeSpec: everything the rest of the system knows about a node comes from here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from reuse.settings import Settings

# (task_name, output_key): where a missing param is taken from, in order.
Source = tuple[str, str]


class NodeParams(BaseModel):
    """Base of every node's params model: unknown keys are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass
class RunContext:
    """What a node's run function gets besides its params."""

    task_id: str
    task_name: str
    attempt: int
    workdir: Path  # <storage_root>/jobs/<task_id>/<task_name>/<attempt>/ - made empty
    settings: Settings
    engine: Any = None  # what the spec's `load` made, once per replica
    device: str = "cpu"  # nodes.device.select_device() of the replica
    _progress: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def report_progress(self, fraction: float) -> None:
        with self._lock:
            self._progress = max(self._progress, min(1.0, max(0.0, fraction)))

    @property
    def progress(self) -> float:
        with self._lock:
            return self._progress


RunFn = Callable[[Any, RunContext], dict[str, Any]]


@dataclass(frozen=True)
class NodeSpec:
    name: str  # the task_name, e.g. "ffmpeg.extract_audio"
    family: str  # e.g. "ffmpeg"
    summary: str
    params: type[NodeParams]
    run: RunFn  # blocking; runs in a worker thread of the node's replica
    reuse_keys: tuple[str, ...]  # output keys that must be non-empty for a hit
    outputs: tuple[str, ...]  # output keys the node writes
    upstream: dict[str, tuple[Source, ...]] = field(default_factory=dict)
    required: tuple[str, ...] = ()  # set after upstream resolution; "a|b": one of them
    file_params: tuple[str, ...] = ()  # params that name an input file or URL
    dir_params: tuple[str, ...] = ()  # params that name a local folder (never a URL)
    load: Callable[[Settings, str], Any] | None = None  # (settings, device): once per replica
    num_cpus: float = 0.05  # Ray's reservation for placement, not a limit (README)
    num_gpus: float = 0.0
    max_concurrent_runs: int = 4  # runs at once per replica (its max_ongoing_requests)

    @property
    def deployment_name(self) -> str:
        return "node_" + self.name.replace(".", "__")
