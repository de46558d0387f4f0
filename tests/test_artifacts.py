"""The artifact stores (reuse/artifacts.py) against a real S3 server (SeaweedFS on loopback):
two storage roots stand for two machines that share only the bucket."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
from pydantic import ValidationError

from graph.files import write_upload
from reuse.artifacts import artifact_store, prune_attempts, with_urls
from reuse.errors import InputError, TransientError
from reuse.s3_artifacts import S3Artifacts, below, is_current
from reuse.settings import Settings
from tests.s3_server import S3Server


def store(server: S3Server, root: Path, prefix: str, **over: Any) -> S3Artifacts:
    s = Settings(storage_root=root, s3_prefix=prefix, **{**server.settings(), **over})
    made = artifact_store(s)
    assert isinstance(made, S3Artifacts)
    return made


@pytest.fixture
def machines(s3_server: S3Server, tmp_path: Path, request: pytest.FixtureRequest
             ) -> tuple[S3Artifacts, S3Artifacts]:
    prefix = f"t/{request.node.name}"  # each test its own part of the bucket
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    return store(s3_server, a, prefix), store(s3_server, b, prefix)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_published_folder_is_mirrored_in_the_bucket_and_fetched_on_another_machine(
    machines: tuple[S3Artifacts, S3Artifacts], s3_server: S3Server
) -> None:
    a, b = machines
    node_a = Path(a.root) / "jobs" / "t1" / "ffmpeg.extract_keyframes"
    write(node_a / "keyframes" / "f1.jpg", b"one")
    write(node_a / "keyframes" / "f2.jpg", b"two")
    write(node_a / "manifest.json", b"{}")
    a.publish(node_a)
    prefix = a.key(node_a) + "/"
    assert s3_server.keys(prefix) == [prefix + k for k in
                                      ("keyframes/f1.jpg", "keyframes/f2.jpg", "manifest.json")]
    size, modified = a._list(prefix)["manifest.json"]
    assert is_current(node_a / "manifest.json", size, modified)  # stamped: reads as current

    node_b = Path(b.root) / "jobs" / "t1" / "ffmpeg.extract_keyframes"
    assert not node_b.exists() and b.has(node_b, folder=True)
    assert b.fetch(node_b, folder=True)
    assert tree(node_b) == tree(node_a)

    # published again with one file gone, one changed, one new: the bucket mirrors it; b
    # gets the changed and the new file (a fetch deletes no local file)
    (node_a / "keyframes" / "f1.jpg").unlink()
    write(node_a / "keyframes" / "f2.jpg", b"two, longer")
    write(node_a / "keyframes" / "f3.jpg", b"three")
    a.publish(node_a)
    assert s3_server.keys(prefix) == [prefix + k for k in
                                      ("keyframes/f2.jpg", "keyframes/f3.jpg", "manifest.json")]
    assert b.fetch(node_b, folder=True)
    assert tree(node_b) == {**tree(node_a), "keyframes/f1.jpg": b"one"}


def test_a_file_is_fetched_when_missing_or_stale_and_kept_when_current(
    machines: tuple[S3Artifacts, S3Artifacts],
) -> None:
    a, b = machines
    src = write(Path(a.root) / "uploads" / "clip.mp4", b"video bytes")
    a.publish(src)
    dst = Path(b.root) / "uploads" / "clip.mp4"
    assert b.has(dst, folder=False) and not b.has(dst, folder=True)
    assert b.fetch(dst, folder=False) and dst.read_bytes() == b"video bytes"
    inode = dst.stat().st_ino
    assert b.fetch(dst, folder=False) and dst.stat().st_ino == inode  # current: not again
    write(dst, b"a stale copy!")
    assert b.fetch(dst, folder=False) and dst.read_bytes() == b"video bytes"


def test_the_bucket_is_the_truth_a_copy_only_one_machine_has_is_not_kept(
    machines: tuple[S3Artifacts, S3Artifacts],
) -> None:
    a, b = machines
    only_a = write(Path(a.root) / "inputs" / "local.wav", b"x")
    assert not a.has(only_a) and not a.fetch(only_a, folder=False)
    assert only_a.read_bytes() == b"x"  # left alone
    gone = write(Path(a.root) / "uploads" / "gone.wav", b"y")
    a.publish(gone)
    assert a.remove(gone)
    assert not a.fetch(gone, folder=False)  # deleted from the bucket: no input any more
    assert not b.fetch(Path(b.root) / "inputs" / "nothing", folder=True)


def test_folder_markers_are_skipped_and_bucket_failures_are_transient(
    machines: tuple[S3Artifacts, S3Artifacts], s3_server: S3Server, tmp_path: Path
) -> None:
    a, b = machines
    folder = Path(a.root) / "uploads" / "frames"
    client = s3_server.client()
    client.put_object(Bucket=s3_server.bucket, Key=a.key(folder) + "/", Body=b"")  # a marker
    client.put_object(Bucket=s3_server.bucket, Key=a.key(folder) + "/f.jpg", Body=b"f")
    assert b.fetch(Path(b.root) / "uploads" / "frames", folder=True)
    assert tree(Path(b.root) / "uploads" / "frames") == {"f.jpg": b"f"}

    down = store(s3_server, tmp_path, "down", s3_endpoint="http://127.0.0.1:9")  # nothing
    with pytest.raises(TransientError, match="artifact store is unavailable"):
        down.has(tmp_path / "x.wav")
    with pytest.raises(TransientError):
        down.ping()


def test_remove_deletes_a_folders_objects_and_a_files_object(
    machines: tuple[S3Artifacts, S3Artifacts], s3_server: S3Server
) -> None:
    a, _ = machines
    job = Path(a.root) / "jobs" / "t2"
    write(job / "n1" / "a.txt", b"a")
    write(job / "n2" / "b.txt", b"b")
    a.publish(job / "n1")
    a.publish(job / "n2")
    single = write(Path(a.root) / "uploads" / "s.txt", b"s")
    a.publish(single)
    assert a.remove(job) and s3_server.keys(a.key(job) + "/") == []
    assert a.remove(single) and not a.has(single)
    assert not a.remove(job)


def test_links_download_the_files_and_name_folders_by_prefix(
    machines: tuple[S3Artifacts, S3Artifacts], s3_server: S3Server, tmp_path: Path
) -> None:
    a, _ = machines
    node = Path(a.root) / "jobs" / "t3" / "audio_separator.separate_vocals"
    vocals = write(node / "vocals.wav", b"RIFF vocals")
    music = write(node / "music.wav", b"RIFF music")
    write(node / "stems" / "x.wav", b"stem")
    a.publish(node)
    outside = write(tmp_path / "elsewhere.txt", b"not ours")
    output = {"vocal_audio": str(vocals), "all_audio_files": [str(vocals), str(music)],
              "files": {"srt": str(music)}, "segments_dir": str(node / "stems"),
              "engine": "repet_sim", "escape": str(outside), "missing": str(node / "no.wav"),
              "mixed": [str(vocals), "text"], "count": 2}
    linked = with_urls(output, a, Path(a.root))
    assert set(linked) - set(output) == {"vocal_audio_url", "all_audio_files_url",
                                         "files_url", "segments_dir_url"}
    assert httpx.get(linked["vocal_audio_url"]).content == b"RIFF vocals"
    assert [httpx.get(u).content for u in linked["all_audio_files_url"]] == [
        b"RIFF vocals", b"RIFF music"]
    assert httpx.get(linked["files_url"]["srt"]).content == b"RIFF music"
    assert linked["segments_dir_url"] == f"s3://{s3_server.bucket}/{a.key(node)}/stems/"
    assert "X-Amz-Expires=604800" in linked["vocal_audio_url"]

    public = store(s3_server, Path(a.root), a.prefix.rstrip("/"),
                   s3_public_url="https://cdn.example.com/media/")
    assert public.url(vocals, folder=False) == f"https://cdn.example.com/media/{a.key(vocals)}"


def test_object_keys_and_local_links_cannot_lead_out_of_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    folder.mkdir()
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", folder / "link")
    for rel in ("../x", "a/../../x", "a//b", "./a", "", "link/x"):
        with pytest.raises(InputError):
            below(folder, rel)
    assert below(folder, "a/b.jpg") == folder / "a" / "b.jpg"


def test_publish_skips_links_and_fetch_refuses_paths_outside_the_root(
    machines: tuple[S3Artifacts, S3Artifacts], s3_server: S3Server, tmp_path: Path
) -> None:
    a, _ = machines
    secret = write(tmp_path / "secret.txt", b"do not upload")
    node = Path(a.root) / "jobs" / "t4" / "n"
    write(node / "ok.txt", b"ok")
    os.symlink(secret, node / "leak.txt")
    a.publish(node)
    assert s3_server.keys(a.key(node) + "/") == [a.key(node) + "/ok.txt"]
    with pytest.raises(InputError, match="outside the storage root"):
        a.fetch(secret, folder=False)


def test_local_storage_adds_no_links_and_s3_needs_a_bucket(tmp_path: Path) -> None:
    local = artifact_store(Settings(storage_root=tmp_path))
    assert not local.remote
    assert with_urls({"audio_path": str(tmp_path)}, local, tmp_path) == {
        "audio_path": str(tmp_path)}
    with pytest.raises(ValidationError, match="s3_bucket"):
        Settings(storage_root=tmp_path, artifacts="s3")


def test_fetching_a_callers_folder_adds_files_and_deletes_none(
    machines: tuple[S3Artifacts, S3Artifacts],
) -> None:
    a, b = machines
    write(Path(a.root) / "uploads" / "frames" / "kept.jpg", b"kept")
    a.publish(Path(a.root) / "uploads" / "frames" / "kept.jpg")
    mine = write(Path(b.root) / "uploads" / "frames" / "only-here.jpg", b"mine")
    assert b.fetch(Path(b.root) / "uploads" / "frames", folder=True)
    assert tree(Path(b.root) / "uploads" / "frames") == {"kept.jpg": b"kept",
                                                         "only-here.jpg": b"mine"}
    assert mine.exists()


def test_an_empty_folder_is_kept_and_fetched_as_a_folder(
    machines: tuple[S3Artifacts, S3Artifacts],
) -> None:
    a, b = machines
    node = Path(a.root) / "jobs" / "t5" / "ffmpeg.crop_subtitle_images" / "1"
    (node / "crops").mkdir(parents=True)  # no text found: an empty output folder
    write(node / "info.json", b"{}")
    a.publish(node)
    crops = Path(b.root) / "jobs" / "t5" / "ffmpeg.crop_subtitle_images" / "1" / "crops"
    assert b.has(crops, folder=True)
    assert b.fetch(crops, folder=True) and crops.is_dir() and list(crops.iterdir()) == []


def test_a_job_made_again_under_its_task_id_shows_none_of_the_old_files(
    machines: tuple[S3Artifacts, S3Artifacts],
) -> None:
    """Attempt numbers start at 1 again after a job is deleted: another machine's cached
    copy of the old attempt folder must not show through."""
    a, b = machines
    frames_a = Path(a.root) / "jobs" / "t6" / "ffmpeg.extract_keyframes" / "1" / "keyframes"
    for i in range(4):
        write(frames_a / f"frame_{i}.jpg", b"old %d" % i)
    a.publish(frames_a.parent)
    frames_b = Path(b.root) / "jobs" / "t6" / "ffmpeg.extract_keyframes" / "1" / "keyframes"
    assert b.fetch(frames_b, folder=True) and len(tree(frames_b)) == 4
    assert a.remove(Path(a.root) / "jobs" / "t6")
    shutil.rmtree(Path(a.root) / "jobs" / "t6")
    write(frames_a / "frame_0.jpg", b"new zero")
    write(frames_a / "frame_1.jpg", b"new one")
    a.publish(frames_a.parent)
    in_flight = write(frames_b / ".fetch-0123", b"another fetch's download")
    assert b.fetch(frames_b, folder=True)
    assert tree(frames_b) == {".fetch-0123": b"another fetch's download",
                              "frame_0.jpg": b"new zero", "frame_1.jpg": b"new one"}
    assert in_flight.exists()


def test_a_success_deletes_only_the_attempts_before_it(
    machines: tuple[S3Artifacts, S3Artifacts], s3_server: S3Server
) -> None:
    a, _ = machines
    node = Path(a.root) / "jobs" / "t7" / "ffmpeg.extract_audio"
    for name in ("1", "2", "3", "10", "other"):
        write(node / name / "audio.wav", name.encode())
        a.publish(node / name)
    prune_attempts(node, 3, a.settings)
    assert sorted(p.name for p in node.iterdir()) == ["10", "3", "other"]
    prefix = a.key(node) + "/"
    assert s3_server.keys(prefix) == [prefix + f"{n}/audio.wav" for n in ("10", "3", "other")]


def test_an_upload_is_in_the_bucket_before_it_is_in_place(tmp_path: Path) -> None:
    """`keep` stores the bytes while the final name still holds the old file, so a fetch
    meanwhile cannot bring the old object back over the new upload."""
    (tmp_path / "uploads").mkdir()
    final = write(tmp_path / "uploads" / "clip.mp4", b"old")
    seen: list[bytes] = []

    def keep(fh: BinaryIO) -> float:
        seen.extend([fh.read(), final.read_bytes()])
        return 1_700_000_000.0

    assert write_upload(tmp_path, ["uploads"], "clip.mp4", io.BytesIO(b"new bytes"), 1024,
                        keep) == 9
    assert seen == [b"new bytes", b"old"]
    assert final.read_bytes() == b"new bytes" and final.stat().st_mtime == 1_700_000_000.0
