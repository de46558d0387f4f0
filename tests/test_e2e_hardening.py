"""Issue 7's findings, each as the request that showed it, against the real graph.

Storage root = `storage_root`; "outside" is a folder next to it. Every test would pass a
service that answers as the issue asks and fails the one that answered as it found.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ray import serve

from graph.app import build_graph
from reuse.settings import Settings
from tests.conftest import make_settings, post_task, unique, wait_stage, wait_until
from tests.loopback import LoopbackServer
from tests.media import make_video

EXTRACT = "ffmpeg.extract_audio"


@pytest.fixture
def outside(storage_root: Path) -> Path:
    folder = storage_root.parent / unique("outside")
    folder.mkdir()
    return folder


def healthy(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


# ---- 1. uploads never write through a symbolic link -------------------------------------

def test_upload_does_not_follow_a_symlinked_file(client: httpx.Client, storage_root: Path,
                                                 outside: Path) -> None:
    folder = storage_root / unique("x") / "link"
    folder.mkdir(parents=True)
    secret = outside / "secret.txt"
    secret.write_text("keep me")
    (folder / "evil.txt").symlink_to(secret)
    (folder / "dangling.txt").symlink_to(outside / "created.txt")
    rel = str(folder.relative_to(storage_root))
    for name in ("evil.txt", "dangling.txt"):
        r = client.post("/v1/files", params={"path": rel}, files={"file": (name, b"pwned")})
        assert r.status_code == 409 and "link" in r.json()["error"], r.text
    assert secret.read_text() == "keep me"
    assert not (outside / "created.txt").exists()
    assert (folder / "evil.txt").is_symlink()  # refused, left as it was


def test_upload_does_not_descend_into_a_symlinked_folder(client: httpx.Client,
                                                         storage_root: Path,
                                                         outside: Path) -> None:
    base = storage_root / unique("y")
    base.mkdir()
    (base / "out").symlink_to(outside, target_is_directory=True)
    for path in (f"{base.name}/out", f"{base.name}/out/deeper"):
        r = client.post("/v1/files", params={"path": path}, files={"file": ("a.txt", b"x")})
        assert r.status_code in (409, 422), r.text
    assert list(outside.iterdir()) == []


def test_upload_into_the_jobs_folder_is_refused(client: httpx.Client) -> None:
    r = client.post("/v1/files", params={"path": "jobs/some-job/ffmpeg.extract_audio"},
                    files={"file": ("audio.wav", b"fake")})
    assert r.status_code == 422 and "jobs" in r.json()["error"]


# ---- 2. containers that reference other files are refused --------------------------------

def test_playlists_and_concat_lists_do_not_read_outside_files(client: httpx.Client,
                                                              storage_root: Path,
                                                              outside: Path) -> None:
    secret_clip = make_video(outside / "private.mp4", seconds=2)
    folder = unique("ref")
    playlists = {
        "ts.m3u8": f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{secret_clip}\n"
                   "#EXT-X-ENDLIST\n",
        "hidden.mp4": f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{secret_clip}\n"
                      "#EXT-X-ENDLIST\n",
        "list.ffconcat": f"ffconcat version 1.0\nfile '{secret_clip}'\n",
    }
    for name, text in playlists.items():
        r = client.post("/v1/files", params={"path": folder},
                        files={"file": (name, text.encode())})
        assert r.status_code == 201, r.text
        task_id = unique("hls")
        r = post_task(client, task_id, EXTRACT, {"video_path": f"{folder}/{name}"})
        assert r.status_code == 202, r.text
        stage = wait_stage(client, task_id, EXTRACT)
        assert stage["status"] == "FAILED", (name, stage)
        assert "accepted format" in stage["error"] or "Invalid data" in stage["error"], stage
        assert stage["output"] == {}


# ---- 3. models come from configured folders or names, never a request's path -------------

@pytest.mark.parametrize("model", ["run/../.venv/lib/python3.11/site-packages/x", "/etc",
                                   "../models/tiny", "a/b"])
def test_a_model_path_is_refused_at_submit(client: httpx.Client, model: str) -> None:
    r = post_task(client, unique("model"), "faster_whisper.transcribe_audio",
                  {"audio_path": "inputs/sample.mp4", "model": model})
    assert r.status_code == 422 and "model" in r.json()["error"], r.text


def test_an_unknown_model_name_fails_the_same_way_whether_or_not_a_folder_exists(
    client: httpx.Client, video: Path, storage_root: Path
) -> None:
    (storage_root / "tmp").mkdir(exist_ok=True)  # a folder named like the model exists
    errors = []
    for model in ("tmp", "no-such-model"):
        task_id = unique("unknown-model")
        r = post_task(client, task_id, "faster_whisper.transcribe_audio",
                      {"audio_path": str(video), "model": model})
        assert r.status_code == 202, r.text
        stage = wait_stage(client, task_id, "faster_whisper.transcribe_audio")
        assert stage["status"] == "FAILED"
        errors.append(stage["error"].replace(model, "<name>"))
    assert errors[0] == errors[1] and "unknown whisper model" in errors[0]


# ---- 4. DELETE touches only a known job's folder -----------------------------------------

def test_delete_of_an_unknown_task_removes_no_folder(client: httpx.Client,
                                                     storage_root: Path) -> None:
    name = unique("userfolder")
    (storage_root / name).mkdir()
    (storage_root / name / "keep.txt").write_text("mine")
    (storage_root / "inputs").mkdir(exist_ok=True)
    (storage_root / "inputs" / "keep.txt").write_text("mine")
    for task_id in (name, "inputs", "jobs", "uploads"):
        assert client.delete(f"/v1/tasks/{task_id}").status_code == 404
    assert (storage_root / name / "keep.txt").read_text() == "mine"
    assert (storage_root / "inputs" / "keep.txt").read_text() == "mine"


def test_job_artifacts_live_under_jobs_and_files_api_cannot_delete_them(
    client: httpx.Client, video: Path, storage_root: Path
) -> None:
    task_id = unique("layout")
    post_task(client, task_id, EXTRACT, {"video_path": str(video)})
    stage = wait_stage(client, task_id, EXTRACT)
    audio = Path(stage["output"]["audio_path"])
    assert audio.parent == (storage_root / "jobs" / task_id / EXTRACT / "1").resolve()
    rel = str(audio.relative_to(storage_root.resolve()))
    assert client.get(f"/v1/files/{rel}").status_code == 200  # readable
    assert client.delete(f"/v1/files/{rel}").status_code == 422  # not deletable here
    assert client.delete("/v1/files/jobs").status_code == 422
    assert audio.exists()


# ---- 5, 6. callback targets are checked at submit ----------------------------------------

@pytest.mark.parametrize("callback", [
    "http://[::a00:1]/cb", "http://[64:ff9b::a00:1]/cb", "http://[2002:a00:1::]/cb",
    "http://[64:ff9b::a9fe:a9fe]/cb", "http://10.0.0.1/cb", "http://169.254.169.254/",
    "http://127.0.0.1:99999/cb", "http://127.0.0.1:abc/cb", "http://[::1/x",
    "ftp://example.org/x", "http://user:pw@example.org/",
    # not a host: these "hosts" would show a secret path in /status
    "http://hooks.example.com\\SECRET?tok=x", "http://hooks.example.com;SECRET",
    "http://hooks.example.com%2FSECRET%3Ftok/",
])
def test_bad_callback_targets_are_refused_at_submit(client: httpx.Client, video: Path,
                                                    callback: str) -> None:
    task_id = unique("cbcheck")
    r = client.post("/v1/tasks", json={"task_name": EXTRACT, "task_id": task_id,
                                       "callback": callback,
                                       "input_data": {"video_path": str(video)}})
    assert r.status_code == 422 and "callback" in r.json()["error"], r.text
    assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404  # nothing written


# ---- 7. no 500: every bad request gets a clear 4xx ---------------------------------------

def test_bad_paths_and_names_get_4xx_not_500(client: httpx.Client, storage_root: Path) -> None:
    existing = unique("afile")
    (storage_root / existing).write_text("x")
    calls = [
        ("POST", "/v1/tasks", {"json": {"task_name": EXTRACT, "task_id": unique("nul"),
                                        "input_data": {"video_path": "a\x00b"}}}),
        ("POST", "/v1/tasks", {"content": json.dumps(
            {"task_name": EXTRACT, "input_data": {"video_path": "\ud800x"}}).encode(),
            "headers": {"content-type": "application/json"}}),
        ("POST", "/v1/tasks", {"json": {"task_name": EXTRACT,
                                        "input_data": {"video_path": "http://[::1/x"}}}),
        ("POST", "/v1/files?path=a%00b", {"files": {"file": ("a.txt", b"x")}}),
        ("POST", "/v1/files", {"files": {"file": ("n" * 304 + ".txt", b"x")}}),
        ("POST", "/v1/files?path=" + "d" * 300, {"files": {"file": ("a.txt", b"x")}}),
        ("POST", f"/v1/files?path={existing}", {"files": {"file": ("a.txt", b"x")}}),
        ("GET", "/v1/files/%00", {}),
        ("GET", "/v1/files/a%00b", {}),
        ("GET", "/v1/files/" + "p" * 10_000, {}),
        ("GET", "/v1/files/" + "/".join(["q" * 200] * 30), {}),
        ("DELETE", "/v1/files/%00", {}),
        ("GET", "/v1/tasks/" + "t" * 500 + "/status", {}),
        # lone surrogates in free-text params (the probe's 500s)
        ("POST", "/v1/tasks", {"content": json.dumps(
            {"task_name": "faster_whisper.transcribe_audio",
             "input_data": {"audio_path": "x.wav", "initial_prompt": "\ud800"}}).encode(),
            "headers": {"content-type": "application/json"}}),
        ("POST", "/v1/tasks", {"content": json.dumps(
            {"task_name": "pyannote_audio.get_speaker_segments",
             "input_data": {"diarization_file": "x.json", "speaker": "\udfff"}}).encode(),
            "headers": {"content-type": "application/json"}}),
    ]
    for method, url, kw in calls:
        r = client.request(method, url, **kw)
        assert 400 <= r.status_code < 500, (method, url[:60], r.status_code, r.text[:200])
        if r.headers.get("content-type", "").startswith("application/json"):
            assert r.json()["error"]
    healthy(client)


# ---- 8. size limits; the API key is checked before a body is read ------------------------

LIMITED = ["ffmpeg.extract_audio"]


@pytest.fixture(scope="module")
def limited(api: str, settings: Settings) -> Iterator[str]:
    """A second app on the same Serve instance with an API key and small limits."""
    s = make_settings(settings.redis_url, settings.storage_root, api_key="k3y",
                      max_upload_bytes=256 * 1024, max_body_bytes=16 * 1024,
                      max_string_chars=100)
    serve.run(build_graph(s, LIMITED), name="limited", route_prefix="/limited")
    base = f"{api}/limited"
    wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
    yield base
    serve.delete("limited")


def raw_request(base: str, head: str, timeout: float = 20) -> str:
    """Send request headers that announce a large body, and none of the body: a server
    that checks first answers at once; one that reads first would wait for the body."""
    url = httpx.URL(base)
    with socket.create_connection((url.host, url.port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1")


def test_key_and_size_are_checked_before_the_body_is_read(limited: str) -> None:
    prefix = httpx.URL(limited).path
    big = 10 * 1024**3
    head = (f"POST {prefix}/v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: {big}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    assert raw_request(limited, head).startswith("HTTP/1.1 401")
    keyed = head.replace("Host: x\r\n", "Host: x\r\nX-API-Key: k3y\r\n")
    assert raw_request(limited, keyed).startswith("HTTP/1.1 413")
    # an upload to a folder it may not write is refused before its (small) body is read
    small = keyed.replace(f"Content-Length: {big}", "Content-Length: 10000")
    for folder in ("jobs", "..", "a/../../b"):
        refused = small.replace("/v1/files ", f"/v1/files?path={folder} ")
        assert raw_request(limited, refused).startswith("HTTP/1.1 422"), folder


def test_uploads_bodies_and_strings_are_capped(limited: str, storage_root: Path) -> None:
    key = {"x-api-key": "k3y"}
    folder = unique("capped")
    r = httpx.post(f"{limited}/v1/files", params={"path": folder}, headers=key,
                   files={"file": ("big.bin", b"\0" * (300 * 1024))})
    assert r.status_code == 413, r.text
    assert not (storage_root / folder / "big.bin").exists()
    ok = httpx.post(f"{limited}/v1/files", params={"path": folder}, headers=key,
                    files={"file": ("small.bin", b"\0" * 1024)})
    assert ok.status_code == 201
    body = {"task_name": EXTRACT, "task_id": unique("cap"),
            "input_data": {"video_path": "v" * (20 * 1024)}}
    r = httpx.post(f"{limited}/v1/tasks", json=body, headers=key)
    assert r.status_code == 413 and len(r.content) < 1000

    def chunked(data: bytes) -> Iterator[bytes]:  # no Content-Length: counted as it comes
        for i in range(0, len(data), 4096):
            yield data[i:i + 4096]

    r = httpx.post(f"{limited}/v1/tasks", content=chunked(json.dumps(body).encode()),
                   headers={**key, "content-type": "application/json"})
    assert r.status_code == 413, r.text
    body["input_data"] = {"video_path": "v" * 200}
    r = httpx.post(f"{limited}/v1/tasks", json=body, headers=key)
    assert r.status_code == 422 and "longer than 100" in r.json()["error"]
    assert len(r.content) < 1000  # the input is not echoed back


def test_large_input_is_never_echoed(client: httpx.Client) -> None:
    huge = "z" * 500_000
    for body in ({"task_name": huge, "input_data": {}},
                 {"task_name": EXTRACT, "task_id": huge, "input_data": {}},
                 {"task_name": EXTRACT, "input_data": {"video_path": huge}},
                 {"task_name": EXTRACT, "input_data": {huge[:5000]: 1}}):
        r = client.post("/v1/tasks", json=body)
        assert 400 <= r.status_code < 500 and len(r.content) < 4000, (r.status_code,
                                                                        len(r.content))
    r = client.post("/v1/tasks", json={"task_name": EXTRACT, "input_data": {"x": "y" * 5_000_000}})
    assert r.status_code == 413
    healthy(client)


# ---- 9, 13. callback bodies: no other receiver's URL; a failed run is no hit -------------

def test_callbacks_carry_no_other_receivers_url(client: httpx.Client, video: Path,
                                                loopback: LoopbackServer) -> None:
    task_id = unique("leak")
    gate = unique("leak-gate")
    src = loopback.serve_file(gate, video, gated=True)
    names = [unique("rcv-a"), unique("rcv-b")]
    secret_urls = [loopback.url(n) + "?token=s3cr3t-" + n for n in names]
    for url in secret_urls:
        client.post("/v1/tasks", json={"task_name": EXTRACT, "task_id": task_id,
                                       "callback": url, "input_data": {"video_path": src}})
    loopback.open_gate(gate)
    bodies = [loopback.wait_for(n)[0].body.decode() for n in names]
    for body in bodies:
        assert "s3cr3t" not in body and "/cb/" not in body
        assert "callbacks" not in json.loads(body)["result"]
    status = client.get(f"/v1/tasks/{task_id}/status").text
    assert "s3cr3t" not in status and "/cb/" not in status


def test_a_waiter_of_a_failed_run_is_not_told_it_was_a_hit(client: httpx.Client, video: Path,
                                                           loopback: LoopbackServer) -> None:
    task_id = unique("waitfail")
    gate = unique("missing-file")  # gated, then 404: the run fails
    loopback.gates[gate] = __import__("threading").Event()
    src = f"{loopback.base}/files/{gate}"
    starter, waiter = unique("starter"), unique("waiter")
    for name in (starter, waiter):
        r = client.post("/v1/tasks", json={"task_name": EXTRACT, "task_id": task_id,
                                           "callback": loopback.url(name),
                                           "input_data": {"video_path": src}})
        assert r.status_code == 202
    loopback.open_gate(gate)
    for name in (starter, waiter):
        body = loopback.wait_for(name)[0].json
        assert body["status"] == "failed" and body["error"]
        assert body["reuse_info"]["reuse_hit"] is False
        assert "cached_at" not in body["reuse_info"]


# ---- 14. a host that does not resolve is retried on the schedule -------------------------

def test_unresolvable_callback_host_is_retried(client: httpx.Client, video: Path,
                                               settings: Settings) -> None:
    task_id = unique("dns")
    r = client.post("/v1/tasks", json={"task_name": EXTRACT, "task_id": task_id,
                                       "callback": "http://reelserve-test.invalid/cb",
                                       "input_data": {"video_path": str(video)}})
    assert r.status_code == 202

    def ended() -> dict | None:
        cbs = client.get(f"/v1/tasks/{task_id}/status").json()["callbacks"]
        return cbs[0] if cbs and cbs[0]["state"] == "failed" else None

    delivery = wait_until(ended, timeout=60)
    assert delivery["attempts"] == settings.callback_max_attempts
    assert "resolve" in delivery["last_error"]


# ---- 10. the OpenAPI document describes the answers --------------------------------------

def test_openapi_documents_error_answers_and_405_keeps_allow(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/v1/tasks"]["post"]["responses"]
    assert {"200", "202", "400", "401", "413", "422"} <= set(post)
    assert "404" in doc["paths"]["/v1/tasks/{task_id}/status"]["get"]["responses"]
    assert "409" in doc["paths"]["/v1/tasks/{task_id}"]["delete"]["responses"]
    schema = post["422"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][schema]["properties"]) == {"error", "detail"}
    r = client.post("/v1/tasks", json={"task_name": EXTRACT, "input_data": {"nope": 1}})
    assert r.status_code == 422 and set(r.json()) <= {"error", "detail"}
    r = client.put("/v1/tasks")
    assert r.status_code == 405 and "POST" in r.headers["allow"]


# ---- the probe's split_audio_segments findings ---------------------------------------------

def test_speaker_labels_cannot_name_folders_outside_the_job(client: httpx.Client, video: Path,
                                                           storage_root: Path,
                                                           outside: Path) -> None:
    """A speaker label from the caller's subtitle JSON was used as a folder name: `../..`
    and absolute labels wrote files outside the root and over other jobs' results."""
    victim = storage_root / "jobs" / unique("victim") / "ffmpeg.split_audio_segments"
    victim.mkdir(parents=True)
    labels = [f"{'../' * 12}{outside.relative_to('/')}/rel", str(outside / "abs"),
              f"../../../{victim.parent.name}/ffmpeg.split_audio_segments", "..", "."]
    subs = {"segments": [{"start": i * 0.4, "end": i * 0.4 + 0.3, "speaker": label}
                         for i, label in enumerate(labels)]}
    sub_file = storage_root / "inputs" / f"{unique('trav')}.json"
    sub_file.write_text(json.dumps(subs))
    task_id = unique("trav")
    r = post_task(client, task_id, "ffmpeg.split_audio_segments",
                  {"audio_path": str(video), "subtitle_path": str(sub_file),
                   "group_by_speaker": True, "min_segment_duration": 0.1})
    assert r.status_code == 202, r.text
    stage = wait_stage(client, task_id, "ffmpeg.split_audio_segments")
    assert stage["status"] == "SUCCESS", stage
    job = (storage_root / "jobs" / task_id).resolve()
    written = [Path(f["file"]) for f in json.loads(
        Path(stage["output"]["split_info_file"]).read_text())["segments"]]
    assert len(written) == len(labels)
    assert all(p.resolve().is_relative_to(job) for p in written), written
    assert list(outside.iterdir()) == [] and list(victim.iterdir()) == []
