"""The /v1/files API: upload, download, delete, all confined to the storage root.

Uploads never follow a symbolic link: the folder is walked one part at a time with
`O_NOFOLLOW` (created where missing), the file is written under a temporary name inside
it and renamed over the final name, so a link planted at any step cannot redirect the
write. The jobs' folder (`jobs/`) belongs to the nodes: it can be read, not written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import UploadFile

from reuse.artifacts import Artifacts
from reuse.errors import Conflict, InputError, NotFound, TooLarge, brief
from reuse.storage import (
    JOBS,
    MAX_NAME_BYTES,
    check_path_text,
    confine,
    in_jobs,
    real_root,
    safe_name,
)

DEFAULT_FOLDER = "uploads"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _inside(root: Path, rel: str) -> Path:
    path = confine(rel, root)
    if str(path) == real_root(root):
        raise InputError("the storage root itself cannot be addressed")
    return path


def upload_name(filename: str | None) -> str:
    name = Path(check_path_text(filename or "upload")).name
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InputError(f"the file name is longer than {MAX_NAME_BYTES} bytes")
    return safe_name(name, "upload", MAX_NAME_BYTES)


def folder_parts(root: Path, folder: str) -> list[str]:
    """The upload folder as parts relative to the root ('..' and the jobs' folder refused)."""
    text = check_path_text(folder or DEFAULT_FOLDER)
    top = real_root(root)
    if text.startswith("/"):
        if text != top and not text.startswith(top + "/"):
            raise InputError(f"{brief(text)} is outside the storage root")
        text = text[len(top):]
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError("an upload folder must not contain '..'")
    if not parts:
        parts = [DEFAULT_FOLDER]
    if parts[0] == JOBS:
        raise InputError(f"'{JOBS}/' holds the jobs' artifacts; upload to another folder")
    return parts


def _open_folder(root: Path, parts: list[str]) -> int:
    """Open (creating) root/parts... without following any link; returns a folder fd."""
    fd = os.open(real_root(root), _DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
                    where = "/".join(parts[: i + 1])
                    raise Conflict(f"{brief(where)} is a file or a link, not a folder") from exc
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_upload(root: Path, parts: list[str], name: str, src: BinaryIO, limit: int,
                 keep: Callable[[BinaryIO], float | None] | None = None) -> int:
    """Write the upload under a temporary name, let `keep` store its bytes (the artifact
    store, before the file is in place: a fetch meanwhile cannot bring the old object back
    over it), then rename it into place with the mtime `keep` returned."""
    folder = _open_folder(root, parts)
    tmp = f".upload-{uuid.uuid4().hex}"
    try:
        try:
            existing = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            raise Conflict(f"{brief(name)} exists and is not a regular file (a link or folder)")
        out = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                      dir_fd=folder)
        size = 0
        stamp = None
        with os.fdopen(out, "w+b") as fh:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the upload is larger than {limit} bytes")
                fh.write(chunk)
            if keep is not None:
                fh.seek(0)
                stamp = keep(fh)
        # rename replaces the name itself: a link put there meanwhile is replaced, not followed
        os.rename(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        if stamp is not None:
            os.utime(name, (stamp, stamp), dir_fd=folder, follow_symlinks=False)
        return size
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=folder)
        raise
    finally:
        os.close(folder)


async def save(root: Path, upload: UploadFile, folder: str, limit: int,
               store: Artifacts) -> dict[str, Any]:
    """Write the upload under the root, kept in the artifact store first (if remote)."""
    name = upload_name(upload.filename)
    parts = folder_parts(root, folder)
    path = os.path.join(real_root(root), *parts, name)
    keep = (lambda fh: store.keep_upload(Path(path), fh)) if store.remote else None
    size = await asyncio.to_thread(write_upload, root, parts, name, upload.file, limit, keep)
    return {"path": path, "size": size}


async def existing(root: Path, rel: str, store: Artifacts) -> Path:
    """A file to send: the local copy, fetched (or refreshed) from the store if remote."""
    path = _inside(root, rel)
    try:
        found = await asyncio.to_thread(store.fetch, path, False)
    except OSError:
        found = False
    if not found:
        raise NotFound(f"no file {brief(rel)} under the storage root")
    return path


async def delete(root: Path, rel: str, store: Artifacts) -> dict[str, Any]:
    """Delete a file or folder: its local copy and its objects in the store."""
    path = _inside(root, rel)
    if in_jobs(path, root):
        raise InputError(f"files under '{JOBS}/' belong to jobs; use DELETE /v1/tasks/<task_id>")
    kept = await asyncio.to_thread(store.remove, path)

    def remove() -> bool:
        if path.is_dir():
            shutil.rmtree(path)
            return True
        if path.exists():
            path.unlink()
            return True
        return False

    if not await asyncio.to_thread(remove) and not kept:
        raise NotFound(f"no file {brief(rel)} under the storage root")
    return {"path": str(path), "deleted": True}
