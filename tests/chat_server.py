"""A real HTTP server on loopback speaking the OpenAI chat-completions API, with scripted
answers (tests of the LLM nodes; no model behind it).

The model a request names picks the script (by its prefix):
- `editor...`            edits each line: first letter upper-case, a final full stop
- `malformed-once...`    first answer is prose, not JSON; then like `editor`
- `wrong-count...`       always answers one line too few
- `rate-limited-once...` first answer is HTTP 429 (Retry-After: 0); then like `editor`
- `slow-once...`         first answer comes after the client's timeout; then like `editor`
- `broken...`            always HTTP 500
- `blank-lines...`       answers each line with blank lines and a cue-like text in it
- `held...`              answers like `editor` once the test opens `gate` (a run that
                         lasts until the test says so)
Every request is recorded (headers and body), so tests can check what was sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def edit(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


@dataclass
class ChatServer:
    requests: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # model -> requests so far
    release: threading.Event = field(default_factory=threading.Event)  # ends a slow answer
    slow_hold_s: float = 30.0
    gate: threading.Event = field(default_factory=threading.Event)  # releases `held` answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ChatServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                model = str(body.get("model", ""))
                with owner.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    owner.requests.append({"path": self.path, "headers": headers, "body": body})
                    n = owner.seen[model] = owner.seen.get(model, 0) + 1
                status, reply = owner.answer(model, n, body)
                if status == -1:  # slow: hold the answer past the client's timeout
                    owner.release.wait(timeout=owner.slow_hold_s)
                    status = 200
                if model.startswith("held"):
                    owner.gate.wait(timeout=300)
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    if status == 429:
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the slow script)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def since(self, mark: int) -> list[dict[str, Any]]:
        """The requests received after `mark` (a `len(requests)` taken before)."""
        with self.lock:
            return self.requests[mark:]

    def stop(self) -> None:
        self.release.set()
        self.gate.set()
        self.server.shutdown()

    def answer(self, model: str, n: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if model.startswith("broken"):
            return 500, {"error": {"message": "scripted failure", "type": "server_error"}}
        if model.startswith("rate-limited-once") and n == 1:
            return 429, {"error": {"message": "slow down", "type": "rate_limit"}}
        lines = json.loads(body["messages"][1]["content"])["lines"]
        edited = [{"id": line["id"], "text": edit(line["text"])} for line in lines]
        if model.startswith("wrong-count"):
            edited = edited[:-1]
        if model.startswith("blank-lines"):
            edited = [{**e, "text": e["text"] + "\n\n2\n00:00:00,000 --> 09:00:00,000\nINJECTED"}
                      for e in edited]
        content = json.dumps({"lines": edited})
        if model.startswith("malformed-once") and n == 1:
            content = "Sure! Here are your corrected lines, I hope they help."
        reply = {"id": f"chat-{n}", "object": "chat.completion", "created": 0, "model": model,
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": content}}],
                 "usage": {"prompt_tokens": 10 * len(lines), "completion_tokens": 5 * len(lines),
                           "total_tokens": 15 * len(lines)}}
        if model.startswith("slow-once") and n == 1:
            return -1, reply
        return 200, reply
