"""A real HTTP server on loopback for tests: callback receiver and gated file server.

- POST /cb/<name>        records the callback; `fail_first`/`status_for` decide the answer
                         (500 for the first N tries, 410, a redirect); `slow_callback`
                         holds the answer until the test opens the gate
- GET  /files/<name>     serves a registered file; if a gate is set for it, the response
                         waits until the test opens the gate (a deterministic "running" node)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LoopbackServer:
    received: list[Received] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> 500 this many times
    status_for: dict[str, int] = field(default_factory=dict)  # path -> fixed status
    files: dict[str, Path] = field(default_factory=dict)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    hits: dict[str, int] = field(default_factory=dict)  # answered requests per path
    arrived: dict[str, int] = field(default_factory=dict)  # requests that came in per path

    def start(self) -> LoopbackServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                self.path = self.path.split("?", 1)[0]  # a query (a token) is not the route
                with owner.cond:
                    owner.arrived[self.path] = owner.arrived.get(self.path, 0) + 1
                    owner.cond.notify_all()
                gate = owner.gates.get(self.path)
                if gate is not None:  # a slow receiver, until the test opens the gate
                    gate.wait(timeout=120)
                with owner.cond:
                    n = owner.hits.get(self.path, 0) + 1
                    owner.hits[self.path] = n
                    status = owner.status_for.get(self.path, 200)
                    if n <= owner.fail_first.get(self.path, 0):
                        status = 500
                    if status < 300 or status == 410:
                        owner.received.append(Received(self.path, dict(self.headers), body))
                    owner.cond.notify_all()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "http://127.0.0.1:1/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                name = self.path.split("/files/", 1)[-1]
                gate = owner.gates.get(name)
                if gate is not None:
                    gate.wait(timeout=120)
                path = owner.files.get(name)
                if path is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/cb/{name}"

    def serve_file(self, name: str, path: Path, gated: bool = False) -> str:
        self.files[name] = path
        if gated:
            self.gates[name] = threading.Event()
        return f"{self.base}/files/{name}"

    def slow_callback(self, name: str) -> str:
        self.gates[f"/cb/{name}"] = threading.Event()
        return self.url(name)

    def open_gate(self, name: str) -> None:
        self.gates[name].set()

    def calls(self, name: str) -> list[Received]:
        with self.cond:
            return [r for r in self.received if r.path == f"/cb/{name}"]

    def wait_for(self, name: str, count: int = 1, timeout: float = 60) -> list[Received]:
        """Block until `count` callbacks reached /cb/<name> (Condition, not sleeps)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.calls(name)) >= count, timeout=timeout)
        got = self.calls(name)
        assert ok, f"expected {count} callbacks on {name}, got {len(got)}"
        return got

    def wait_for_hit(self, path: str, timeout: float = 60) -> None:
        """Block until a request reached `path` (answered or still held by a gate)."""
        with self.cond:
            assert self.cond.wait_for(lambda: self.arrived.get(path, 0) > 0, timeout=timeout)

    def stop(self) -> None:
        self.httpd.shutdown()
