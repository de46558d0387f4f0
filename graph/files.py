"""The /v1/files API: upload, download, delete, all confined to the storage root."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

from fastapi import UploadFile

from graph.errors import ApiError
from nodes.inputs import InputError, confine

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _inside(root: Path, rel: str) -> Path:
    try:
        path = confine(rel, root)
    except InputError as exc:
        raise ApiError(422, str(exc)) from exc
    if path == root.resolve():
        raise ApiError(422, "the storage root itself cannot be addressed")
    return path


async def save(root: Path, upload: UploadFile, folder: str) -> dict[str, Any]:
    name = SAFE_NAME.sub("_", Path(upload.filename or "upload").name).strip("._") or "upload"
    base = _inside(root, folder) if folder else (root / "uploads").resolve()
    dest = base / name

    def write() -> int:
        base.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        return dest.stat().st_size

    size = await asyncio.to_thread(write)
    return {"path": str(dest), "size": size}


async def existing(root: Path, rel: str) -> Path:
    path = _inside(root, rel)
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, f"no file {rel!r} under the storage root")
    return path


async def delete(root: Path, rel: str) -> dict[str, Any]:
    path = _inside(root, rel)

    def remove() -> bool:
        if path.is_dir():
            shutil.rmtree(path)
            return True
        if path.exists():
            path.unlink()
            return True
        return False

    if not await asyncio.to_thread(remove):
        raise ApiError(404, f"no file {rel!r} under the storage root")
    return {"path": str(path), "deleted": True}
