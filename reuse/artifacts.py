"""Where artifacts are kept: the storage root alone (default), or an S3-compatible bucket.

Nodes always read and write local files under the storage root. With `artifacts=s3` that
folder is each machine's cache of a bucket, and the bucket is the truth:

- an object's key is `s3_prefix` + the file's path relative to the storage root, so a path in
  a stage's output names the same file on every machine;
- a node fetches the inputs its machine lacks (or holds stale) before a run, and publishes its
  attempt's folder after a successful run, before its stage is written SUCCESS
  (nodes.runner); an attempt's folder is not written again once published;
- request checks and the reuse decision ask the bucket, and only what it holds is fetched
  (a copy that only one machine has is no input); uploads go to it; deleting a job or a
  file deletes its objects too; bucket errors are `TransientError`s (HTTP 503);
- output values that name files or folders gain `<key>_url` links (`with_urls`).

The S3 store itself is reuse/s3_artifacts.py.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from reuse.s3_artifacts import S3Artifacts, is_older_attempt
from reuse.settings import Settings
from reuse.storage import real_root


class Artifacts(Protocol):
    """Paths given are absolute and inside the storage root."""

    remote: bool  # False: the storage root is all there is (every other call is trivial)

    def has(self, path: Path, folder: bool | None = None) -> bool:
        """Is the file (folder; None: either) kept? The bucket's answer for S3."""
        ...

    def fetch(self, path: Path, folder: bool) -> bool:
        """Bring the file (folder) into the local cache, replacing stale copies (a folder's
        local files that the bucket lacks are left alone). False if it is not kept."""
        ...

    def publish(self, path: Path) -> None:
        """Keep a local file, or mirror a local folder (objects no longer in it go)."""
        ...

    def keep_upload(self, path: Path, src: BinaryIO) -> float | None:
        """Keep `src`'s bytes as the file `path`, before they are put in place there.
        Returns the mtime that makes the local file read as current (None: local)."""
        ...

    def remove(self, path: Path) -> bool:
        """Delete a file's or folder's objects. True if there were any."""
        ...

    def prune(self, folder: Path, keep: int) -> None:
        """Delete the objects of a node folder's attempts before attempt `keep`."""
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

    def keep_upload(self, path: Path, src: BinaryIO) -> float | None:
        return None

    def remove(self, path: Path) -> bool:
        return False

    def prune(self, folder: Path, keep: int) -> None:
        pass

    def url(self, path: Path, folder: bool) -> str | None:
        return None

    def ping(self) -> bool:
        return True


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


def prune_attempts(node_folder: Path, keep: int, settings: Settings) -> None:
    """After attempt `keep` of a node succeeded: delete the folders of its attempts before
    it, here and in the bucket (their results were replaced; a run still writing in one is
    a zombie, fenced out). A newer attempt's folder, or any other, is left alone."""
    if node_folder.is_dir():
        for child in node_folder.iterdir():
            if (is_older_attempt(child.name, keep) and child.is_dir()
                    and not child.is_symlink()):
                shutil.rmtree(child, ignore_errors=True)
    artifact_store(settings).prune(node_folder, keep)


def publish_outputs(workdir: Path, output: dict[str, Any], settings: Settings
                    ) -> dict[str, Any]:
    """After a successful run: keep the node's folder, and link its output's files."""
    store = artifact_store(settings)
    if not store.remote:
        return output
    store.publish(workdir)
    return with_urls(output, store, settings.storage_root)
