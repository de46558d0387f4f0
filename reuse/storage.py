"""The storage root: path rules, the jobs' folder layout, artifact checks.

Layout: `<root>/jobs/<task_id>/<task_name>/<attempt>/` holds the artifacts of one attempt
of a node (written only by the node runner; the node's other attempts' folders are deleted
when one succeeds, all of them with the job); everything else under the root is the
callers' (uploads, inputs). A path a caller names must stay inside the root once every
symbolic link is resolved.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reuse.errors import InputError, brief
from reuse.models import Stage
from reuse.status import StageStatus

if TYPE_CHECKING:
    from reuse.artifacts import Artifacts

JOBS = "jobs"
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(value: str, default: str, max_chars: int = 100) -> str:
    """A caller's text as one file or folder name: only [A-Za-z0-9._-], no leading dot or
    dash, never empty, `.` or `..` (so it cannot name a parent or another folder)."""
    name = _UNSAFE.sub("_", value).strip("._-")[:max_chars]
    return name or default


def job_dir(root: Path, task_id: str) -> Path:
    return root / JOBS / task_id


def node_dir(root: Path, task_id: str, task_name: str) -> Path:
    return job_dir(root, task_id) / task_name


def attempt_dir(root: Path, task_id: str, task_name: str, attempt: int) -> Path:
    """An attempt's own folder: a re-run never writes where a reader of the last result,
    or a run it replaced (a zombie), is."""
    return node_dir(root, task_id, task_name) / str(attempt)


def check_path_text(value: object) -> str:
    """A path as text: a string, no NUL, valid Unicode, within the OS's length limits."""
    if not isinstance(value, str):
        raise InputError("a path must be a string")
    if "\x00" in value:
        raise InputError("a path must not contain NUL characters")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError("a path must be valid Unicode (no lone surrogates)") from exc
    if len(raw) > MAX_PATH_BYTES:
        raise InputError(f"a path must be at most {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_NAME_BYTES for part in raw.split(b"/")):
        raise InputError(f"each part of a path must be at most {MAX_NAME_BYTES} bytes")
    return value


@functools.lru_cache(maxsize=8)
def real_root(root: Path) -> str:
    return os.path.realpath(root)


def confine(value: object, root: Path) -> Path:
    """A local path (absolute, or relative to the storage root) that must stay inside root.

    Symlinks are resolved first, so a link that points out of the root is refused.
    """
    text = check_path_text(value)
    top = real_root(root)
    candidate = os.path.realpath(os.path.join(top, text))  # join keeps absolute paths
    if candidate != top and not candidate.startswith(top + os.sep):
        raise InputError(f"{brief(text)} is outside the storage root")
    return Path(candidate)


def in_jobs(path: Path, root: Path) -> bool:
    """Is a confined path the jobs' folder or inside it?"""
    jobs = os.path.join(real_root(root), JOBS)
    return str(path) == jobs or str(path).startswith(jobs + os.sep)


def check_folder_input(path: Path, root: Path) -> None:
    """A folder input under `jobs/` must lie in one attempt's folder: `jobs/` or a whole
    job would hand a node every artifact of every (or every other) node."""
    if str(path) == real_root(root):
        raise InputError("the storage root itself cannot be a folder input")
    if in_jobs(path, root):
        depth = len(Path(path).relative_to(real_root(root)).parts)
        if depth < 4:
            raise InputError(f"a folder under '{JOBS}/' must be inside one attempt's folder "
                             f"({JOBS}/<task_id>/<task_name>/<attempt>/...)")


def not_local(value: object, folder: bool) -> InputError:
    """The error for a confined path with no file (folder) behind it."""
    return InputError(f"{brief(value)} is not a folder under the storage root" if folder
                      else f"{brief(value)} does not exist under the storage root")


def check_local_file(value: object, root: Path) -> str:
    path = confine(value, root)
    if not os.path.isfile(path):  # False (never an error) for a name too long or a loop
        raise not_local(value, folder=False)
    return str(path)


def check_local_dir(value: object, root: Path) -> str:
    path = confine(value, root)
    if not os.path.isdir(path):
        raise not_local(value, folder=True)
    return str(path)


def artifact_paths(stage: Stage | None, reuse_keys: Sequence[str]) -> list[str]:
    """The files/folders behind a SUCCESS stage's reuse keys (absolute paths only)."""
    if stage is None or stage.status is not StageStatus.SUCCESS:
        return []
    paths: list[str] = []
    for key in reuse_keys:
        value = stage.output.get(key)
        if isinstance(value, str) and value.startswith("/"):
            paths.append(value)
    return paths


def artifacts_exist(
    stage: Stage | None, reuse_keys: Sequence[str], store: Artifacts
) -> bool:
    """Are the files behind a SUCCESS stage's reuse keys still kept? (stat calls; for an S3
    store, a request to the bucket per path)"""
    return all(store.has(Path(p)) for p in artifact_paths(stage, reuse_keys))
