"""`make run`'s exposure and `make stop`'s reach (issue 7, finding 11), on the real scripts.

scripts/run.sh starts its own Valkey, Ray and the whole serve_config.yaml, with its files
in a temporary run folder and ports of its own, next to this session's Ray. Then: Redis,
the API and the dashboard listen on loopback only; Ray refuses callers without the token
(the dashboard answers 401, the GCS refuses `ray status`); Redis answers only PING without
its password; scripts/stop.sh stops all of
it and leaves this session's Ray and Serve running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
import ray
import redis
import yaml

from tests.conftest import ROOT, free_port, wait_until

pytestmark = pytest.mark.slow


def listening(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def test_make_run_is_loopback_and_token_only_and_stop_stops_only_itself(
    api: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    redis_port, ray_port, dash_port, metrics_port = (free_port() for _ in range(4))
    api_port = yaml.safe_load((ROOT / "serve_config.yaml").read_text())["http_options"]["port"]
    env = {**os.environ, "REELSERVE_RUN_DIR": str(run_dir), "REDIS_PORT": str(redis_port),
           "RAY_PORT": str(ray_port), "DASHBOARD_PORT": str(dash_port),
           "METRICS_PORT": str(metrics_port),
           "REELSERVE_STORAGE_ROOT": str(tmp_path / "share"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("REDIS_URL", None)
    for key in [k for k in env if k.startswith(("RAY_SERVE_", "RAY_ADDRESS"))]:
        env.pop(key)  # the session's HAProxy settings are not make run's
    started = subprocess.run(["bash", "scripts/run.sh"], cwd=ROOT, env=env, timeout=600,
                             capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        assert "reelserve is up" in started.stdout
        for port in (redis_port, api_port, dash_port):
            assert listening(port) == {"127.0.0.1"}, (port, listening(port))
        assert httpx.get(f"http://127.0.0.1:{api_port}/healthz").status_code == 200
        # Ray's Prometheus endpoint on METRICS_PORT (reelserve's metrics join it when counted)
        assert "ray_" in wait_until(lambda: httpx.get(
            f"http://127.0.0.1:{metrics_port}/metrics").text, timeout=60)
        # Redis needs the password from run/: without it only PING is allowed
        stranger_redis = redis.Redis(port=redis_port)
        assert stranger_redis.ping()
        with pytest.raises(redis.RedisError, match="permission"):
            stranger_redis.keys("*")
        password = (run_dir / "redis_password").read_text().strip()
        owner = redis.Redis(port=redis_port, username="reelserve", password=password)
        assert owner.dbsize() >= 0
        assert password not in started.stdout
        assert httpx.get(f"http://127.0.0.1:{dash_port}/api/version").status_code == 401
        token = (run_dir / "ray_auth_token").read_text().strip()
        assert len(token) >= 32 and (run_dir / "ray_auth_token").stat().st_mode & 0o077 == 0
        stranger = subprocess.run(
            ["ray", "status", "--address", f"127.0.0.1:{ray_port}"], env={
                **env, "RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN_PATH": ""},
            capture_output=True, text=True, timeout=120)
        assert stranger.returncode != 0
        assert "token" in (stranger.stdout + stranger.stderr).lower()
    finally:
        stopped = subprocess.run(["bash", "scripts/stop.sh"], cwd=ROOT, env=env, timeout=300,
                                 capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    for port in (redis_port, api_port, dash_port, ray_port, metrics_port):
        wait_until(lambda port=port: listening(port) == set(), timeout=30)
    # this session's Ray and Serve are untouched
    assert ray.is_initialized() and ray.cluster_resources().get("CPU", 0) > 0
    assert httpx.get(f"{api}/healthz").status_code == 200
