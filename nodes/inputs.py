"""Input files: paths confined to the storage root, URL downloads, upstream sources."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from nodes.spec import NodeSpec
from reuse.addresses import check_target, pinned, resolve_checked
from reuse.artifacts import artifact_store
from reuse.decide import is_empty
from reuse.errors import AddressRefused, InputError, TooLarge, brief
from reuse.models import Stage
from reuse.settings import Settings
from reuse.status import StageStatus
from reuse.storage import (
    check_folder_input,
    check_local_file,
    confine,
    not_local,
    safe_name,
)


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def resolve_upstream(
    spec: NodeSpec, params: dict[str, Any], stages: dict[str, Stage]
) -> dict[str, Any]:
    """Fill missing params from SUCCESS stages of the same job, in the declared order.

    An explicit param always wins over an upstream source.
    """
    resolved = dict(params)
    for name, sources in spec.upstream.items():
        if not is_empty(resolved.get(name)):
            continue
        for task_name, key in sources:
            stage = stages.get(task_name)
            if stage and stage.status is StageStatus.SUCCESS and not is_empty(
                stage.output.get(key)
            ):
                resolved[name] = stage.output[key]
                break
    problems = []
    for requirement in spec.required:  # "a|b" means one of a, b
        names = requirement.split("|")
        if all(is_empty(resolved.get(n)) for n in names):
            hint = "'" + "' or '".join(names) + "' is required"
            found = [f"{t}.{k}" for n in names for t, k in spec.upstream.get(n, ())]
            if found:
                hint += " (or a SUCCESS stage of " + " / ".join(found) + " in this task)"
            problems.append(hint)
    if problems:
        raise InputError("; ".join(problems))
    return resolved


def check_file_params(spec: NodeSpec, params: dict[str, Any], settings: Settings) -> None:
    """Request-time check: local inputs exist under the root (folders for `dir_params`);
    URLs are http(s)."""
    for name in spec.file_params:
        value = params.get(name)
        if is_empty(value):
            continue
        if not isinstance(value, str):
            raise InputError(f"'{name}' must be a path or an http(s) URL")
        if is_url(value):
            try:
                check_target(value, settings.callback_allow_cidrs)
            except AddressRefused as exc:
                raise AddressRefused(f"'{name}': {exc}") from exc
        else:
            params[name] = check_kept(value, settings, folder=False)
    for name in spec.dir_params:
        value = params.get(name)
        if not is_empty(value):
            params[name] = check_kept(value, settings, folder=True)


def check_kept(value: object, settings: Settings, folder: bool) -> str:
    """A confined path whose file (folder) is kept: under the storage root, or, with an S3
    artifact store, in its bucket (the truth there: a copy only one machine has is not)."""
    root = settings.storage_root
    path = confine(value, root)
    if folder:
        check_folder_input(path, root)
    store = artifact_store(settings)
    if store.has(path, folder):  # local: a stat call; S3: the bucket
        return str(path)
    if store.remote:
        kind = "folder" if folder else "file"
        raise InputError(f"{brief(value)} is no {kind} in the artifact store's bucket")
    raise not_local(value, folder)


def fetch_inputs(spec: NodeSpec, params: dict[str, Any], settings: Settings) -> None:
    """Run-time, before the node: bring the file and folder inputs that this machine lacks
    (or holds stale) from the artifact store into the storage root. Nothing to do when
    artifacts are local."""
    store = artifact_store(settings)
    if not store.remote:
        return
    named = [(n, False) for n in spec.file_params] + [(n, True) for n in spec.dir_params]
    for name, folder in named:
        value = params.get(name)
        if not isinstance(value, str) or not value or is_url(value):
            continue
        if not store.fetch(confine(value, settings.storage_root), folder):
            raise InputError(f"'{name}': {brief(value)} is not in the artifact store's "
                             "bucket")


def fetch_input(value: str, workdir: Path, settings: Settings,
                max_bytes: int | None = None) -> str:
    """Run-time: a local path is re-checked; a URL is downloaded into the job folder.

    A download stops at `max_bytes` (default REELSERVE_DOWNLOAD_MAX_BYTES; counted after
    decompression) and after REELSERVE_DOWNLOAD_TIMEOUT_S in all (the same timeout also
    bounds each read); what was written of a failed download is deleted."""
    if not is_url(value):
        return check_local_file(value, settings.storage_root)
    addrs = resolve_checked(value, settings.callback_allow_cidrs)
    name = safe_name(os.path.basename(unquote(urlsplit(value).path)), "input")
    dest_dir = workdir / "inputs"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / name
    limit = min(settings.download_max_bytes, max_bytes or settings.download_max_bytes)
    deadline = time.monotonic() + settings.download_timeout_s
    transport = httpx.HTTPTransport(retries=1)
    target, host, ext = pinned(value, addrs[0])
    try:
        with httpx.Client(
            follow_redirects=False, timeout=settings.download_timeout_s, transport=transport
        ) as client, client.stream("GET", target, headers=host, extensions=ext) as resp:
            if resp.is_redirect:
                raise InputError("the URL answered a redirect; redirects are not followed")
            resp.raise_for_status()
            size = 0
            with open(dest, "wb") as fh:
                for chunk in resp.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"the download is larger than the {limit}-byte limit")
                    if time.monotonic() > deadline:
                        raise InputError(f"the download took longer than "
                                         f"{settings.download_timeout_s:g} s")
                    fh.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return str(dest)


def reset_workdir(workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
