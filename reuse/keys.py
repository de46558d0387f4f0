"""Every Redis key name reelserve uses. Nothing else builds key strings.

All of a job's keys share the `{task_id}` hash tag, so they sit in one Redis Cluster slot.
"""

from __future__ import annotations

PREFIX = "rs"


def stages(task_id: str) -> str:
    """Hash: field = task_name, value = Stage JSON."""
    return f"{PREFIX}:{{{task_id}}}:stages"


def meta(task_id: str) -> str:
    """Hash: workflow_id, create_at, updated_at, shared_storage_path, input_params (JSON)."""
    return f"{PREFIX}:{{{task_id}}}:meta"


def callbacks(task_id: str) -> str:
    """Hash: field = delivery id, value = CallbackDelivery JSON."""
    return f"{PREFIX}:{{{task_id}}}:callbacks"


def payloads(task_id: str) -> str:
    """Hash: field = delivery id, value = the frozen callback body (JSON)."""
    return f"{PREFIX}:{{{task_id}}}:payloads"


def job_keys(task_id: str) -> list[str]:
    """Every key of a job; scripts take them in this order and refresh all their TTLs."""
    return [stages(task_id), meta(task_id), callbacks(task_id), payloads(task_id)]


def member(task_id: str, name: str) -> str:
    """A member of the global sorted sets below: '<task_id> <name>' (a task_id has no
    space, so the first space splits it back)."""
    return f"{task_id} {name}"


def parse_member(value: str) -> tuple[str, str]:
    task_id, name = value.split(" ", 1)
    return task_id, name


def outbox() -> str:
    """Sorted set: member(task_id, delivery id), score = unix time it is due."""
    return f"{PREFIX}:outbox"


def leases() -> str:
    """Sorted set: member(task_id, task_name) of an in-flight stage, score = unix time its
    lease runs out. The sweep reads it to end attempts whose node died."""
    return f"{PREFIX}:leases"
