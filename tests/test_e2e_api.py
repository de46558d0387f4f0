"""The rest of the HTTP surface: supported-tasks, delete, files, health, auth, GPU packing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import ray
from ray import serve

from graph.app import build_graph
from nodes import registry
from reuse.settings import Settings
from tests.conftest import make_settings, unique, wait_stage, wait_until
from tests.loopback import LoopbackServer

SECURED_NODES = ["ffmpeg.extract_audio", "audio_separator.separate_vocals"]


@pytest.fixture(scope="module")
def secured(api: str, settings: Settings) -> Iterator[str]:
    """A second app on the same Serve instance: an API key and a subset of nodes."""
    s = make_settings(settings.redis_url, settings.storage_root, api_key="s3cret")
    serve.run(build_graph(s, SECURED_NODES), name="secured", route_prefix="/secured")
    base = f"{api}/secured"
    wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
    yield base
    serve.delete("secured")


def test_supported_tasks_come_from_the_registry(client: httpx.Client) -> None:
    tasks = client.get("/v1/tasks/supported-tasks").json()["tasks"]
    assert [t["task_name"] for t in tasks] == registry.names()
    by_name = {t["task_name"]: t for t in tasks}
    split = by_name["ffmpeg.split_audio_segments"]
    assert split["reuse_keys"] == ["audio_segments_dir"]
    assert split["upstream"]["audio_path"] == ["audio_separator.separate_vocals.vocal_audio",
                                               "ffmpeg.extract_audio.audio_path"]
    assert "sample_rate" in split["params_schema"]["properties"]


def test_delete_refuses_while_running_then_forces(client: httpx.Client, video: Path,
                                                  loopback: LoopbackServer,
                                                  storage_root: Path) -> None:
    task_id = unique("del")
    gate = unique("del-gate")
    url = loopback.serve_file(gate, video, gated=True)
    client.post("/v1/tasks", json={"task_name": "ffmpeg.extract_audio", "task_id": task_id,
                                   "input_data": {"video_path": url}})
    busy = client.delete(f"/v1/tasks/{task_id}")
    assert busy.status_code == 409 and "ffmpeg.extract_audio" in busy.json()["error"]
    loopback.open_gate(gate)
    wait_stage(client, task_id, "ffmpeg.extract_audio")
    assert (storage_root / "jobs" / task_id).is_dir()
    assert client.delete(f"/v1/tasks/{task_id}").status_code == 200
    assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404
    assert client.get(f"/v1/tasks/{task_id}/result").status_code == 404
    assert not (storage_root / "jobs" / task_id).exists()
    assert client.delete(f"/v1/tasks/{task_id}").status_code == 404


def test_unknown_task_is_404_everywhere(client: httpx.Client) -> None:
    for path in ("status", "result"):
        r = client.get(f"/v1/tasks/{unique('nope')}/{path}")
        assert r.status_code == 404 and "not found" in r.json()["error"]
    assert client.get("/v1/tasks/..%2Fetc/status").status_code in (404, 422)


def test_files_upload_download_delete_confined(client: httpx.Client, storage_root: Path) -> None:
    folder = unique("up")
    r = client.post("/v1/files", params={"path": folder},
                    files={"file": ("../../evil name.txt", b"hello")})
    assert r.status_code == 201, r.text
    path = Path(r.json()["path"])
    assert path == (storage_root / folder / "evil_name.txt").resolve()
    rel = f"{folder}/evil_name.txt"
    assert client.get(f"/v1/files/{rel}").content == b"hello"
    assert client.get("/v1/files/%2E%2E/%2E%2E/etc/passwd").status_code in (404, 422)
    assert client.post("/v1/files", params={"path": "../outside"},
                       files={"file": ("a.txt", b"x")}).status_code == 422
    assert client.delete("/v1/files/x/%2E%2E").status_code == 422  # never the root itself
    assert client.delete(f"/v1/files/{rel}").status_code == 200
    assert client.get(f"/v1/files/{rel}").status_code == 404


def test_health_readiness_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert "redis://" not in client.get("/readyz").text  # no connection details
    assert set(ready["checks"]) == {"redis", "stage_store", "callback_sender"}
    spec = client.get("/openapi.json").json()
    assert "/v1/tasks" in spec["paths"] and "/v1/tasks/{task_id}/status" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_api_key_and_node_subset(secured: str, video: Path) -> None:
    body = {"task_name": "ffmpeg.extract_audio", "task_id": unique("auth"),
            "input_data": {"video_path": str(video)}}
    assert httpx.post(f"{secured}/v1/tasks", json=body).status_code == 401
    ok = httpx.post(f"{secured}/v1/tasks", json=body, headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 202, ok.text
    listing = f"{secured}/v1/tasks/supported-tasks"
    assert httpx.get(listing).status_code == 401
    names = [t["task_name"] for t in httpx.get(listing, headers={"x-api-key": "s3cret"}).json()
             ["tasks"]]
    assert names == SECURED_NODES
    other = {**body, "task_name": "ffmpeg.extract_keyframes"}
    r = httpx.post(f"{secured}/v1/tasks", json=other, headers={"x-api-key": "s3cret"})
    assert r.status_code == 422 and r.json()["detail"]["supported_tasks"] == SECURED_NODES


def test_fractional_gpu_deployments_pack_on_one_gpu(secured: str) -> None:
    """The main app's GPU nodes and the secured app's separate_vocals replica (fractions of
    one GPU each) all hold the one logical GPU at once."""
    fractions = [spec.num_gpus for spec in registry.NODES if spec.num_gpus]
    fractions += [registry.BY_NAME[n].num_gpus for n in SECURED_NODES]
    assert all(0 <= f < 1 for f in fractions)
    expected = sum(fractions)
    assert ray.cluster_resources()["GPU"] == 1 and 0.5 < expected <= 1
    used = wait_until(lambda: (u := 1 - ray.available_resources().get("GPU", 0)) >=
                      expected - 1e-9 and u)
    assert used == pytest.approx(expected)


def test_logical_gpu_is_assigned_but_nodes_compute_on_cpu(api: str) -> None:
    """On this CPU-only machine Ray hands the GPU node a logical GPU; it must pick the CPU."""
    sep = registry.BY_NAME["audio_separator.separate_vocals"].deployment_name
    cpu_only = registry.BY_NAME["ffmpeg.extract_audio"].deployment_name
    got = serve.get_deployment_handle(sep, app_name="reelserve").describe.remote().result()
    assert (got["device"], got["gpu_ids"]) == ("cpu", ["0"])
    got = serve.get_deployment_handle(cpu_only, app_name="reelserve").describe.remote().result()
    assert got == {"device": "cpu", "gpu_ids": []}
