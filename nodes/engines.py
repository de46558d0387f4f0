"""EngineCache: models of one replica, each loaded once, on first use or at start."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

# A model a request may name: a bare name, never a path (models come from configured
# folders or the engine's own names, so a request cannot load files it points at).
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class EngineCache:
    """Thread-safe `name -> loaded model`. Runs happen in worker threads, so two runs that
    ask for a model not yet loaded wait for one load instead of loading it twice.

    At most `max_loaded` models stay loaded; the least recently used one is dropped first,
    except the first one loaded (the replica's default, loaded at start)."""

    def __init__(self, loader: Callable[[str], Any], max_loaded: int = 3) -> None:
        self.loader = loader
        self.max_loaded = max_loaded
        self.loaded: OrderedDict[str, Any] = OrderedDict()
        self.pinned: str | None = None
        self.loads = 0  # how many times a model was loaded (reported by `describe`)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str) -> Any:
        with self._guard:
            if name in self.loaded:
                self.loaded.move_to_end(name)
                return self.loaded[name]
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            with self._guard:
                if name in self.loaded:  # loaded by the run we waited for
                    return self.loaded[name]
            model = self.loader(name)
            with self._guard:
                self.loads += 1
                self.pinned = self.pinned or name
                self.loaded[name] = model
                evictable = [n for n in self.loaded if n != self.pinned]
                while len(self.loaded) > self.max_loaded and evictable:
                    del self.loaded[evictable.pop(0)]
            return model

    def describe(self) -> dict[str, Any]:
        with self._guard:
            return {"loaded": list(self.loaded), "loads": self.loads}
