"""EngineCache: one load per model however many runs ask at once; bounded, default kept."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def test_a_requested_whisper_model_path_must_be_under_the_storage_root(tmp_path: Path) -> None:
    import pytest

    from nodes.families.whisper import requested_model
    from nodes.inputs import InputError

    root = tmp_path / "share"
    (root / "models" / "small").mkdir(parents=True)
    assert requested_model(None, "/opt/default", root) == "/opt/default"
    assert requested_model("/opt/default", "/opt/default", root) == "/opt/default"
    assert requested_model("large-v3", "/opt/default", root) == "large-v3"  # a name
    inside = str(root / "models" / "small")
    assert requested_model(inside, "/opt/default", root) == inside
    with pytest.raises(InputError):
        requested_model("/etc", "/opt/default", root)
    with pytest.raises(InputError):
        requested_model("../../etc", "/opt/default", root)
