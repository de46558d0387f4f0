"""Artifacts without a shared filesystem (issue 11): the graph with `artifacts=s3` against a
real S3 server (SeaweedFS on loopback). An app of its own ("objects") with its own storage
root; emptying that root between steps is what a node on another machine sees: only the
bucket. Every later step must then work from the bucket alone."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ray import serve

from graph.app import build_graph
from reuse.settings import Settings
from tests.conftest import make_settings, post_task, run_task, unique, wait_until
from tests.media import make_video
from tests.s3_server import S3Server

EXTRACT = "ffmpeg.extract_audio"
TRANSCRIBE = "faster_whisper.transcribe_audio"
KEYFRAMES = "ffmpeg.extract_keyframes"
DETECT = "paddleocr.detect_subtitle_area"
PREFIX = "e2e"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-cache")


@pytest.fixture(scope="module")
def objects(api: str, settings: Settings, s3_server: S3Server, cache: Path
            ) -> Iterator[httpx.Client]:
    s = make_settings(settings.redis_url, cache, s3_prefix=PREFIX, **s3_server.settings())
    serve.run(build_graph(s, [EXTRACT, TRANSCRIBE, KEYFRAMES, DETECT]), name="objects",
              route_prefix="/objects")
    base = f"{api}/objects"
    wait_until(lambda: httpx.get(f"{base}/readyz").json()["checks"].get("artifacts") == "ok")
    with httpx.Client(base_url=base, timeout=60) as client:
        yield client
    serve.delete("objects")


def another_machine(cache: Path) -> None:
    """Empty the local storage root: from here on, only the bucket has the files."""
    for child in cache.iterdir():
        shutil.rmtree(child)


def key(cache: Path, path: str) -> str:
    return f"{PREFIX}/{Path(path).relative_to(cache.resolve()).as_posix()}"


def upload(client: httpx.Client, tmp_path: Path) -> str:
    clip = make_video(tmp_path / "clip.mp4", seconds=3)
    r = client.post("/v1/files", params={"path": "uploads"},
                    files={"file": ("clip.mp4", clip.read_bytes())})
    assert r.status_code == 201, r.text
    return str(r.json()["path"])


def test_a_chain_runs_from_the_bucket_alone_and_links_its_outputs(
    objects: httpx.Client, s3_server: S3Server, cache: Path, tmp_path: Path
) -> None:
    video = upload(objects, tmp_path)
    assert key(cache, video) in s3_server.keys(f"{PREFIX}/uploads/")
    another_machine(cache)

    task_id = unique("s3")
    extracted = run_task(objects, task_id, EXTRACT, {"video_path": video})  # from the bucket
    audio = extracted["audio_path"]
    assert key(cache, audio) in s3_server.keys(f"{PREFIX}/jobs/{task_id}/")
    assert httpx.get(extracted["audio_path_url"]).content == Path(audio).read_bytes()

    another_machine(cache)
    hit = post_task(objects, task_id, EXTRACT, {"video_path": video})
    assert hit.status_code == 200 and hit.json()["reuse_info"]["reuse_hit"] is True
    spoken = run_task(objects, task_id, TRANSCRIBE, {})  # its audio_path: fetched
    assert spoken["audio_path"] == audio
    assert httpx.get(spoken["segments_file_url"]).json()["segments"] is not None
    assert objects.get(f"/v1/files/{Path(audio).relative_to(cache.resolve())}").content == \
        httpx.get(extracted["audio_path_url"]).content

    frames = run_task(objects, task_id, KEYFRAMES, {"video_path": video,
                                                    "keyframe_sample_count": 6})
    folder = key(cache, frames["keyframe_dir"])
    assert frames["keyframe_dir_url"] == f"s3://{s3_server.bucket}/{folder}/"
    assert len(s3_server.keys(folder + "/")) == frames["keyframe_files_count"] == 6
    another_machine(cache)
    area = run_task(objects, task_id, DETECT, {})  # its keyframe_dir: a folder, fetched
    assert area["frames_used"] == 6

    assert objects.delete(f"/v1/tasks/{task_id}").status_code == 200
    assert s3_server.keys(f"{PREFIX}/jobs/{task_id}/") == []


def test_reuse_asks_the_bucket_not_the_local_copy(
    objects: httpx.Client, s3_server: S3Server, cache: Path, tmp_path: Path
) -> None:
    video = upload(objects, tmp_path)
    task_id = unique("s3-gone")
    audio = run_task(objects, task_id, EXTRACT, {"video_path": video})["audio_path"]
    s3_server.client().delete_object(Bucket=s3_server.bucket, Key=key(cache, audio))
    assert Path(audio).exists()  # this machine still has it; the others would not
    again = post_task(objects, task_id, EXTRACT, {"video_path": video})
    assert again.status_code == 202, again.text
    assert again.json()["reuse_info"]["reason"] == "artifact_missing"


def test_a_path_neither_local_nor_in_the_bucket_is_refused(
    objects: httpx.Client, cache: Path
) -> None:
    r = post_task(objects, unique("s3-none"), EXTRACT,
                  {"video_path": str(cache / "uploads" / "never.mp4")})
    assert r.status_code == 422 and "no file in the artifact store's bucket" in r.text
    r = post_task(objects, unique("s3-out"), EXTRACT, {"video_path": "/etc/passwd"})
    assert r.status_code == 422 and "outside the storage root" in r.text
    only_here = make_video(cache / "inputs" / "only-here.mp4", seconds=1)  # not uploaded
    r = post_task(objects, unique("s3-local"), EXTRACT, {"video_path": str(only_here)})
    assert r.status_code == 422 and "no file in the artifact store's bucket" in r.text
    r = post_task(objects, unique("s3-jobs"), DETECT, {"keyframe_dir": str(cache / "jobs")})
    assert r.status_code == 422 and "inside one attempt's folder" in r.text
