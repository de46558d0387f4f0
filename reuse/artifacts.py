"""Where artifacts are kept: the storage root alone (default), or an S3-compatible bucket.

Nodes always read and write local files under the storage root. With `artifacts=s3` that
folder is each machine's cache of a bucket, and the bucket is the truth:

- an object's key is `s3_prefix` + the file's path relative to the storage root, so a path in
  a stage's output names the same file on every machine;
- a node fetches the inputs its machine lacks (or holds stale) before a run, and publishes its
  folder after a successful run, before its stage is written SUCCESS (nodes.runner);
- request checks and the reuse decision ask the bucket; uploads go to it; deleting a job or
  a file deletes its objects too;
- output values that name files or folders gain `<key>_url` links (`with_urls`).

A cached file is current when its size and modification time equal its object's size and
LastModified (set on every download and publish), as `aws s3 sync` compares them.

boto3 is the client (the `.[s3]` extra), imported when the first S3 store is used.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from reuse.errors import InputError, brief
from reuse.settings import Settings
from reuse.storage import in_jobs, real_root

WORKERS = 8  # parallel transfers of one folder (keyframes: thousands of small files)


class Artifacts(Protocol):
    """Paths given are absolute and inside the storage root."""

    remote: bool  # False: the storage root is all there is (every other call is trivial)

    def has(self, path: Path, folder: bool | None = None) -> bool:
        """Is the file (folder; None: either) kept? The bucket's answer for S3."""
        ...

    def fetch(self, path: Path, folder: bool) -> bool:
        """Bring the file (folder) into the local cache, replacing stale copies. False if
        it is neither kept nor local."""
        ...

    def publish(self, path: Path) -> None:
        """Keep a local file, or mirror a local folder (objects no longer in it go)."""
        ...

    def remove(self, path: Path) -> bool:
        """Delete a file's or folder's objects. True if there were any."""
        ...

    def url(self, path: Path, folder: bool) -> str | None:
        """A link to the kept file (a folder: its `s3://` prefix); None for local storage."""
        ...

    def ping(self) -> bool: ...


class LocalArtifacts:
    """The default: every machine sees the storage root (one machine, or a shared volume)."""

    remote = False

    def has(self, path: Path, folder: bool | None = None) -> bool:
        if folder is None:
            return os.path.exists(path)
        return os.path.isdir(path) if folder else os.path.isfile(path)

    def fetch(self, path: Path, folder: bool) -> bool:
        return self.has(path, folder)

    def publish(self, path: Path) -> None:
        pass

    def remove(self, path: Path) -> bool:
        return False

    def url(self, path: Path, folder: bool) -> str | None:
        return None

    def ping(self) -> bool:
        return True


def is_current(path: Path, size: int, modified: datetime) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == size and int(st.st_mtime) == int(modified.timestamp())


def below(folder: Path, rel: str) -> Path:
    """The local path of an object `rel` (its key less the folder's prefix) in `folder`.
    A key that would leave the folder (`..`, empty or `.` parts) is refused: a bucket is
    shared, and S3 itself allows such keys."""
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InputError(f"the object key {brief(rel)} does not name a file in its folder")
    path = folder.joinpath(*parts)
    real = os.path.realpath(path)
    if not real.startswith(os.path.realpath(folder) + os.sep):
        raise InputError(f"the object key {brief(rel)} leads out of its folder")
    return path


class S3Artifacts:
    remote = True

    def __init__(self, settings: Settings) -> None:
        assert settings.s3_bucket
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.root = real_root(settings.storage_root)
        prefix = settings.s3_prefix.strip("/")
        self.prefix = prefix + "/" if prefix else ""
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:  # boto3's client creation is not thread-safe; the client is
            if self._client is None:
                import boto3
                from botocore.config import Config

                s = self.settings
                secret = s.s3_secret_access_key
                self._client = boto3.client(
                    "s3", endpoint_url=s.s3_endpoint, region_name=s.s3_region,
                    aws_access_key_id=s.s3_access_key_id,
                    aws_secret_access_key=secret.get_secret_value() if secret else None,
                    config=Config(
                        signature_version="s3v4", max_pool_connections=2 * WORKERS,
                        retries={"mode": "standard", "max_attempts": 5},
                        # MinIO, SeaweedFS, Ceph: bucket in the path; AWS: its own choice
                        s3={"addressing_style": "path" if s.s3_endpoint else "auto"}),
                )
            return self._client

    def key(self, path: Path) -> str:
        real = os.path.realpath(path)
        if not real.startswith(self.root + os.sep):
            raise InputError(f"{brief(str(path))} is outside the storage root")
        return self.prefix + real[len(self.root) + 1:].replace(os.sep, "/")

    # ---- bucket reads ------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
            return head
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _list(self, prefix: str) -> dict[str, tuple[int, datetime]]:
        """Every object under `prefix`: {key less the prefix: (size, LastModified)}."""
        found: dict[str, tuple[int, datetime]] = {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", ()):
                found[obj["Key"][len(prefix):]] = (obj["Size"], obj["LastModified"])
        return found

    def _any(self, prefix: str) -> bool:
        page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("KeyCount", 0))

    def has(self, path: Path, folder: bool | None = None) -> bool:
        key = self.key(path)
        if folder is not True and self._head(key) is not None:
            return True
        return folder is not False and self._any(key + "/")

    # ---- transfers ---------------------------------------------------------------------

    def _download(self, key: str, dest: Path, modified: datetime) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".fetch-{uuid.uuid4().hex}"
        try:
            self.client.download_file(self.bucket, key, str(tmp))
            stamp = modified.timestamp()
            os.utime(tmp, (stamp, stamp))
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def fetch(self, path: Path, folder: bool) -> bool:
        key = self.key(path)
        if folder:
            return self._fetch_folder(path, key + "/")
        head = self._head(key)
        if head is None:  # not kept: a file only this machine has is used as it is
            return os.path.isfile(path)
        if not is_current(path, head["ContentLength"], head["LastModified"]):
            self._download(key, path, head["LastModified"])
        return True

    def _fetch_folder(self, folder: Path, prefix: str) -> bool:
        objects = self._list(prefix)
        if not objects:
            return os.path.isdir(folder)
        targets = {rel: below(folder, rel) for rel in objects}
        stale = [rel for rel, (size, modified) in objects.items()
                 if not is_current(targets[rel], size, modified)]
        _each(stale, lambda rel: self._download(prefix + rel, targets[rel], objects[rel][1]))
        if in_jobs(Path(os.path.realpath(folder)), Path(self.root)):
            for rel, local in _files(folder).items():  # a node's folder: mirror it, so
                if rel not in objects:                 # a newer run's deletions show
                    local.unlink()
        return True

    def publish(self, path: Path) -> None:
        real = Path(os.path.realpath(path))
        key = self.key(real)
        if real.is_file():
            self.client.upload_file(str(real), self.bucket, key)
            self._stamp({"": real}, self._head_listing(key))
            return
        prefix = key + "/"
        kept = self._list(prefix)
        local = _files(real)
        changed = [rel for rel, file in local.items()
                   if rel not in kept or not is_current(file, *kept[rel])]
        _each(changed, lambda rel: self.client.upload_file(str(local[rel]), self.bucket,
                                                           prefix + rel))
        self._delete([prefix + rel for rel in kept if rel not in local])
        self._stamp(local, self._list(prefix))

    def _head_listing(self, key: str) -> dict[str, tuple[int, datetime]]:
        head = self._head(key)
        return {} if head is None else {"": (head["ContentLength"], head["LastModified"])}

    @staticmethod
    def _stamp(local: dict[str, Path], kept: dict[str, tuple[int, datetime]]) -> None:
        """Give local copies their objects' LastModified, so they read as current."""
        for rel, file in local.items():
            if rel in kept:
                stamp = kept[rel][1].timestamp()
                os.utime(file, (stamp, stamp))

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch,
                                                                   "Quiet": True})

    def remove(self, path: Path) -> bool:
        key = self.key(path)
        keys = [key + "/" + rel for rel in self._list(key + "/")]
        if self._head(key) is not None:
            keys.append(key)
        self._delete(keys)
        return bool(keys)

    def url(self, path: Path, folder: bool) -> str | None:
        key = self.key(path)
        if folder:
            return f"s3://{self.bucket}/{key}/"
        if self.settings.s3_public_url:
            return self.settings.s3_public_url.rstrip("/") + "/" + quote(key)
        link: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=self.settings.s3_url_expires_s)
        return link

    def ping(self) -> bool:
        self.client.head_bucket(Bucket=self.bucket)
        return True


def _files(folder: Path) -> dict[str, Path]:
    """Every regular file below a folder, by its path relative to it (`/`-separated)."""
    found: dict[str, Path] = {}
    for here, _dirs, names in os.walk(folder):
        for name in names:
            file = Path(here, name)
            if file.is_file() and not file.is_symlink():
                found[file.relative_to(folder).as_posix()] = file
    return found


def _each(items: Iterable[str], work: Callable[[str], None]) -> None:
    todo = list(items)
    if len(todo) <= 1:
        for item in todo:
            work(item)
        return
    with ThreadPoolExecutor(min(WORKERS, len(todo))) as pool:
        for done in [pool.submit(work, item) for item in todo]:
            done.result()  # the first failure is raised


_LOCAL = LocalArtifacts()
_stores: dict[tuple[Any, ...], S3Artifacts] = {}
_stores_lock = threading.Lock()


def artifact_store(settings: Settings) -> Artifacts:
    """The store of these settings: one per process and configuration (its client is
    made on first use, not here)."""
    if settings.artifacts == "local":
        return _LOCAL
    ident = (real_root(settings.storage_root), settings.s3_endpoint, settings.s3_bucket,
             settings.s3_prefix, settings.s3_region, settings.s3_access_key_id,
             settings.s3_url_expires_s, settings.s3_public_url)
    with _stores_lock:
        if ident not in _stores:
            _stores[ident] = S3Artifacts(settings)
        return _stores[ident]


def _link(value: Any, store: Artifacts, top: str) -> Any:
    if isinstance(value, str):
        if not value.startswith("/"):
            return None
        real = os.path.realpath(value)
        if not real.startswith(top + os.sep) or not os.path.exists(real):
            return None
        return store.url(Path(real), os.path.isdir(real))
    if isinstance(value, list | dict) and value:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        links = {k: _link(v, store, top) for k, v in items}
        if any(link is None for link in links.values()):
            return None
        return links if isinstance(value, dict) else list(links.values())
    return None


def with_urls(output: dict[str, Any], store: Artifacts, root: Path) -> dict[str, Any]:
    """The output with `<key>_url` beside each value that names files under the root: a
    file's link, a folder's `s3://` prefix, a list or dict of them. Unchanged if local."""
    if not store.remote:
        return output
    top = real_root(root)
    links = {f"{key}_url": _link(value, store, top) for key, value in output.items()}
    return {**output, **{k: v for k, v in links.items() if v is not None}}


def publish_outputs(workdir: Path, output: dict[str, Any], settings: Settings
                    ) -> dict[str, Any]:
    """After a successful run: keep the node's folder, and link its output's files."""
    store = artifact_store(settings)
    if not store.remote:
        return output
    store.publish(workdir)
    return with_urls(output, store, settings.storage_root)
