"""EngineCache: one load per model however many runs ask at once; bounded, default kept."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from nodes.engines import EngineCache


def test_concurrent_first_uses_load_once() -> None:
    loads: list[str] = []
    release = threading.Event()

    def loader(name: str) -> str:
        loads.append(name)
        release.wait(5)  # every caller arrives while the first load is in progress
        return f"model:{name}"

    cache = EngineCache(loader)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.get, "a") for _ in range(8)]
        release.set()
        assert {f.result() for f in futures} == {"model:a"}
    assert loads == ["a"]


def test_least_recently_used_is_dropped_but_never_the_default() -> None:
    loads: list[str] = []
    cache = EngineCache(lambda n: loads.append(n) or n, max_loaded=2)
    for name in ("default", "b", "c", "b", "d"):
        cache.get(name)
    assert list(cache.loaded) == ["default", "d"]
    cache.get("default")
    assert loads == ["default", "b", "c", "b", "d"]  # b was dropped for c; default never
