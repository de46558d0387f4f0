"""The S3 artifact store (`REELSERVE_ARTIFACTS=s3`): see reuse/artifacts.py for the rules.

boto3 (the `.[s3]` extra) is imported when the first client is made, not here. One client
per process and configuration; it is thread-safe, and folders move up to WORKERS files at
once. A cached file is current when its size and modification time equal its object's size
and LastModified (set on every download and publish), as `aws s3 sync` compares them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from reuse.errors import InputError, TransientError, brief
from reuse.settings import Settings
from reuse.storage import JOBS, real_root

log = logging.getLogger("reelserve.artifacts")
WORKERS = 8  # parallel transfers of one folder (keyframes: thousands of small files)


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
                        # bounded: a bucket that does not answer fails a call in seconds
                        connect_timeout=5, read_timeout=60,
                        retries={"mode": "standard", "max_attempts": 3},
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
                if not obj["Key"].endswith("/"):  # "folder" markers some tools make
                    found[obj["Key"][len(prefix):]] = (obj["Size"], obj["LastModified"])
        return found

    def _any(self, prefix: str) -> bool:
        page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("KeyCount", 0))

    def has(self, path: Path, folder: bool | None = None) -> bool:
        key = self.key(path)
        with answering():
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
        with answering():
            if folder:
                return self._fetch_folder(path, key + "/")
            head = self._head(key)
            if head is None:
                return False
            if not is_current(path, head["ContentLength"], head["LastModified"]):
                self._download(key, path, head["LastModified"])
            return True

    def _fetch_folder(self, folder: Path, prefix: str) -> bool:
        objects = self._list(prefix)
        if not objects:  # an empty folder is kept as its marker (`publish`)
            if not self._any(prefix):
                return False
            folder.mkdir(parents=True, exist_ok=True)
            return True
        targets = {rel: below(folder, rel) for rel in objects}
        stale = [rel for rel, (size, modified) in objects.items()
                 if not is_current(targets[rel], size, modified)]
        try:
            _each(stale, lambda rel: self._download(prefix + rel, targets[rel],
                                                    objects[rel][1]))
        except (IsADirectoryError, NotADirectoryError) as exc:  # keys `a` and `a/b`
            raise InputError(f"the bucket holds both a file and a folder at {exc.filename!r}"
                             ) from exc
        if in_attempt(folder, self.root):  # written once, but a job deleted and made again
            for rel, local in _files(folder).items():  # reuses its attempt numbers: its
                if rel not in objects and not local.name.startswith(".fetch-"):  # old
                    local.unlink(missing_ok=True)  # files must not show through
        return True

    def publish(self, path: Path) -> None:
        with answering():
            self._publish(Path(os.path.realpath(path)))

    def _publish(self, real: Path) -> None:
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
        for empty in _empty_folders(real, local):  # a marker keeps an empty folder an output
            self.client.put_object(Bucket=self.bucket, Key=f"{prefix}{empty}", Body=b"")
        self._delete([prefix + rel for rel in kept if rel not in local])
        self._stamp(local, self._list(prefix))

    def keep_upload(self, path: Path, src: BinaryIO) -> float | None:
        key = self.key(path)
        with answering():
            self.client.upload_fileobj(src, self.bucket, key)
            head = self._head(key)
        return None if head is None else float(head["LastModified"].timestamp())

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
            answer = self.client.delete_objects(Bucket=self.bucket,
                                                Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):  # per key, in a 200 answer
                first = answer["Errors"][0]
                raise TransientError(f"the bucket did not delete {len(answer['Errors'])} "
                                     f"objects, e.g. {brief(first.get('Key'))}: "
                                     f"{first.get('Code')}")

    def remove(self, path: Path) -> bool:
        key = self.key(path)
        with answering():
            keys = [key + "/" + rel for rel in self._list(key + "/")]
            if self._head(key) is not None:
                keys.append(key)
            self._delete(keys)
        return bool(keys)

    def prune(self, folder: Path, keep: int) -> None:
        prefix = self.key(folder) + "/"
        with answering():
            self._delete([prefix + rel for rel in self._list(prefix)
                          if is_older_attempt(rel.split("/", 1)[0], keep)])

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
        with answering():
            self.client.head_bucket(Bucket=self.bucket)
        return True


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """A bucket that fails (unreachable, refusing, erring) is a TransientError: HTTP 503 at
    the ingress, a FAILED stage with this message in a node. Details go to the log only."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        log.warning("the artifact store failed: %r", exc)
        raise TransientError("the artifact store is unavailable right now; retry shortly"
                             ) from exc


def is_older_attempt(name: str, keep: int) -> bool:
    """Is a folder of a node's folder an attempt before `keep`? (A newer one, or anything
    that is no attempt number, is left alone.)"""
    return name.isdigit() and name.isascii() and int(name) < keep


def in_attempt(folder: Path, root: str) -> bool:
    """Is a folder inside one attempt's folder, `jobs/<task_id>/<task_name>/<attempt>/`?"""
    real = os.path.realpath(folder)
    if not real.startswith(root + os.sep):
        return False
    parts = Path(real[len(root) + 1:]).parts
    return len(parts) >= 4 and parts[0] == JOBS


def _empty_folders(folder: Path, files: Iterable[str]) -> list[str]:
    """Folders with no file at any depth below them, as `rel/` (`""` for `folder`), given
    the folder's files by relative path."""
    full: set[str] = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        full.update("/".join(parts[:i]) for i in range(len(parts) + 1))
    empty = []
    for here, _dirs, _names in os.walk(folder):
        rel = Path(here).relative_to(folder).as_posix()
        rel = "" if rel == "." else rel
        if rel not in full:
            empty.append(rel + "/" if rel else "")
    return empty


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
