"""EngineCache: models of one replica, each loaded once, on first use or at start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class EngineCache:
    """Thread-safe `name -> loaded model`. Runs happen in worker threads, so two runs that
    ask for a model not yet loaded wait for one load instead of loading it twice."""

    def __init__(self, loader: Callable[[str], Any]) -> None:
        self.loader = loader
        self.loaded: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str) -> Any:
        if name in self.loaded:
            return self.loaded[name]
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self.loaded:
                self.loaded[name] = self.loader(name)
            return self.loaded[name]
