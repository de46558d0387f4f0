"""A real two-raylet Ray cluster on this machine (issue 11): a head without GPUs and a worker
with one (logical) GPU, both started with `ray start`, the graph deployed with `serve deploy`.

The chain extract_audio → transcribe_audio runs with its stages on different raylets (the
transcription's GPU fraction exists only on the worker). Then the worker is stopped while
a transcription runs there and started again: the run starts again as the next attempt
once the new worker's replica is up, and its caller is called back once, with the result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from graph.config import generate
from nodes import registry
from nodes.espeak import write_speech
from tests.conftest import free_port, unique, wait_stage, wait_until
from tests.loopback import LoopbackServer
from tests.media import make_speech_video

pytestmark = pytest.mark.slow
NODES = ["ffmpeg.extract_audio", "faster_whisper.transcribe_audio"]
RAY = str(Path(sys.executable).parent / "ray")
SERVE = str(Path(sys.executable).parent / "serve")
WORKER_MARK = "reelserve_test_worker"  # a custom resource that tells the worker's raylet


def start(args: list[str], env: dict[str, str]) -> int:
    """`ray start` as the leader of a new session: the daemons it leaves keep that session
    (its id is the pid of `ray start`), so killing the session stops exactly them."""
    proc = subprocess.Popen([RAY, "start", "--node-ip-address=127.0.0.1",
                             "--disable-usage-stats", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out[-3000:]
    return proc.pid


def session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def kill_session(sid: int) -> None:
    """Every process of one `ray start` (nothing of this session's own Ray)."""
    procs = [p for p in psutil.process_iter() if session_of(p.pid) == sid]
    for p in procs:
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=30)


@dataclass
class Cluster:
    env: dict[str, str]
    gcs: str
    dashboard: str
    api: str
    sessions: dict[str, int]

    def start_worker(self) -> None:
        self.sessions["worker"] = start(
            [f"--address={self.gcs}", "--num-cpus=4", "--num-gpus=1",
             f'--resources={{"{WORKER_MARK}": 1}}'], self.env)

    def stop_worker(self) -> None:
        """Kill the worker's raylet, its workers and agents, as when its machine is lost;
        the head stays."""
        kill_session(self.sessions.pop("worker"))

    def nodes(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.dashboard}/api/v0/nodes", params={"detail": "true"}, timeout=30)
        return list(r.json()["data"]["result"]["result"])

    def worker_ids(self) -> set[str]:
        return {n["node_id"] for n in self.nodes()
                if n["state"] == "ALIVE" and WORKER_MARK in n["resources_total"]}

    def placement(self) -> dict[str, set[str]]:
        """Deployment name → the Ray node ids of its running replicas."""
        details = httpx.get(f"{self.dashboard}/api/serve/applications/", timeout=30).json()
        deployments = details["applications"]["reelserve"]["deployments"]
        return {name: {r["node_id"] for r in d["replicas"] if r["state"] == "RUNNING"}
                for name, d in deployments.items()}


def config(port: int) -> dict[str, Any]:
    """serve_config.yaml's app for two nodes, the API on loopback (one machine here)."""
    conf = generate()
    conf["http_options"]["port"] = port
    app = conf["applications"][0]
    app["args"]["nodes"] = NODES
    app["args"]["resources"] = {n: app["args"]["resources"][n] for n in NODES}
    # ffmpeg on the head (Ray gives the head this resource), whisper where its GPU is
    app["args"]["resources"]["ffmpeg.extract_audio"]["resources"] = {
        "node:__internal_head__": 0.01}
    keep = {"Ingress", "StageStore", "CallbackSender"} | {
        registry.BY_NAME[n].deployment_name for n in NODES}
    app["deployments"] = [d for d in app["deployments"] if d["name"] in keep]
    return conf


@pytest.fixture(scope="module")
def cluster(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("multinode")
    temp = Path(tempfile.mkdtemp(prefix="rs-mn-", dir="/tmp"))  # Ray's socket paths are short
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_SERVE_", "RAY_ADDRESS", "REELSERVE_"))}
    env.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                "REDIS_URL": redis_url, "REELSERVE_STORAGE_ROOT": str(root / "share"),
                "REELSERVE_CALLBACK_ALLOW_CIDRS": json.dumps(["127.0.0.0/8"]),
                "REELSERVE_HEARTBEAT_S": "0.5", "REELSERVE_RUN_LEASE_S": "4",
                "REELSERVE_CLAIM_LEASE_S": "10", "REELSERVE_LEASE_SWEEP_S": "0.5"})
    gcs_port, dash_port, api_port = free_port(), free_port(), free_port()
    sessions = {"head": start(
        ["--head", f"--port={gcs_port}", "--num-cpus=2", "--num-gpus=0",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1",
         f"--dashboard-port={dash_port}", f"--temp-dir={temp}"], env)}
    c = Cluster(env, f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}",
                f"http://127.0.0.1:{api_port}", sessions)
    try:
        c.start_worker()
        path = root / "serve_config.yaml"
        path.write_text(yaml.safe_dump(config(api_port), sort_keys=False))
        subprocess.run([SERVE, "deploy", str(path), "--address", c.dashboard], env=env,
                       check=True, capture_output=True, timeout=180)
        wait_until(lambda: httpx.get(f"{c.api}/readyz").status_code == 200, timeout=300,
                   every=1)
        wait_until(lambda: all(c.placement().values()), timeout=300, every=1)  # models loaded
        yield c
    finally:  # not `ray stop`: it would stop every Ray on the machine, this session's too
        for sid in sessions.values():
            kill_session(sid)


@pytest.fixture(scope="module")
def speech(cluster: Cluster) -> Path:
    share = Path(cluster.env["REELSERVE_STORAGE_ROOT"])
    wav = share / "inputs" / "talk.wav"
    write_speech(wav, [("en-us", "Good morning, this is the first speaker talking."),
                       ("en-us", "Thank you, that is all for today.")])
    return make_speech_video(share / "inputs" / "talk.mp4", wav)


def test_a_chain_runs_with_its_stages_on_different_raylets(
    cluster: Cluster, speech: Path
) -> None:
    workers = cluster.worker_ids()
    assert len(workers) == 1
    placement = cluster.placement()
    whisper = registry.BY_NAME["faster_whisper.transcribe_audio"].deployment_name
    ffmpeg = registry.BY_NAME["ffmpeg.extract_audio"].deployment_name
    assert placement[whisper] == workers  # its GPU fraction exists only there
    assert placement[ffmpeg] and placement[ffmpeg].isdisjoint(workers)  # pinned to the head
    task_id = unique("multi")
    with httpx.Client(base_url=cluster.api, timeout=60) as client:
        for name, data in (("ffmpeg.extract_audio", {"video_path": str(speech)}),
                           ("faster_whisper.transcribe_audio", {"language": "en"})):
            r = client.post("/v1/tasks", json={"task_name": name, "task_id": task_id,
                                               "input_data": data})
            assert r.status_code == 202, r.text
            assert wait_stage(client, task_id, name, timeout=300)["status"] == "SUCCESS"
        job = client.get(f"/v1/tasks/{task_id}/status").json()
    out = job["stages"]["faster_whisper.transcribe_audio"]["output"]
    assert out["segments_count"] >= 1 and out["device"] == "cpu"  # a logical GPU here
    assert "morning" in Path(out["segments_file"]).read_text().lower()
    print(f"replicas by Ray node (worker {workers}): {placement}")


def test_the_worker_stopped_mid_run_and_started_again_loses_nothing(
    cluster: Cluster, speech: Path, loopback: LoopbackServer
) -> None:
    whisper = registry.BY_NAME["faster_whisper.transcribe_audio"].deployment_name
    gate = unique("mn-gate")
    src = loopback.serve_file(gate, speech, gated=True)  # the run waits for its input
    task_id, name = unique("mn-lost"), unique("mn-cb")
    with httpx.Client(base_url=cluster.api, timeout=60) as client:
        r = client.post("/v1/tasks", json={
            "task_name": "faster_whisper.transcribe_audio", "task_id": task_id,
            "callback": loopback.url(name),
            "input_data": {"audio_path": src, "language": "en"}})
        assert r.status_code == 202, r.text
        stage = lambda: client.get(f"/v1/tasks/{task_id}/status").json()["stages"][  # noqa: E731
            "faster_whisper.transcribe_audio"]
        wait_until(lambda: stage()["status"] == "RUNNING", timeout=120)
        old = cluster.worker_ids()
        cluster.stop_worker()
        wait_until(lambda: stage()["attempt"] >= 2, timeout=120)  # the next attempt waits
        cluster.start_worker()
        new = wait_until(lambda: cluster.worker_ids() - old, timeout=120)
        wait_until(lambda: cluster.placement()[whisper] == new, timeout=300, every=1)
        loopback.open_gate(gate)
        done = wait_stage(client, task_id, "faster_whisper.transcribe_audio", timeout=300)
    assert done["status"] == "SUCCESS" and done["attempt"] >= 2, done
    print(f"worker {old} stopped mid-run, {new} started: attempt {done['attempt']}, "
          f"reruns {done['reruns']}, {done['status']}")
    calls = loopback.wait_for(name)
    assert [c.json["status"] for c in calls] == ["completed"]
