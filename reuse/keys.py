"""Every Redis key name reelserve uses. Nothing else builds key strings.

All of a job's keys share the `{task_id}` hash tag, so they sit in one Redis Cluster slot.
The callback outbox and the lease index are sharded by that slot: the shard of slot S has
a hash tag that hashes to S (`slot_tag`), so a script that writes a job's keys and its
shard touches one slot, on a single Redis and on Redis Cluster alike. Two small global
indexes tell which shards may hold something due (reuse/slots.py).
"""

from __future__ import annotations

import functools
import string

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

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


def slot(task_id: str) -> int:
    """The Redis Cluster slot of a job's keys."""
    return int(key_slot(stages(task_id).encode()))


@functools.cache
def _tags() -> tuple[str, ...]:
    """For each slot, the shortest tag (of digits and lower-case letters) hashing to it.
    Built once per process on first use (~0.2 s)."""
    found: dict[int, str] = {}
    alphabet = string.digits + string.ascii_lowercase
    n = 0
    while len(found) < REDIS_CLUSTER_HASH_SLOTS:
        digits, m = [], n
        while True:
            m, r = divmod(m, len(alphabet))
            digits.append(alphabet[r])
            if m == 0:
                break
        tag = "".join(reversed(digits))
        found.setdefault(int(key_slot(tag.encode())), tag)
        n += 1
    return tuple(found[s] for s in range(REDIS_CLUSTER_HASH_SLOTS))


def slot_tag(slot_id: int) -> str:
    return _tags()[slot_id]


def outbox(slot_id: int) -> str:
    """Sorted set, one per slot: member(task_id, delivery id) of the jobs of that slot,
    score = unix time it is due."""
    return f"{PREFIX}:{{{slot_tag(slot_id)}}}:outbox"


def leases(slot_id: int) -> str:
    """Sorted set, one per slot: member(task_id, task_name) of an in-flight stage of the
    jobs of that slot, score = unix time its lease runs out. The sweep reads it to deal
    with attempts whose node died."""
    return f"{PREFIX}:{{{slot_tag(slot_id)}}}:leases"


def outbox_slots() -> str:
    """Sorted set: slot numbers whose outbox may have a delivery due, score = a time at
    or before its earliest one (a hint the sender keeps up to date)."""
    return f"{PREFIX}:outbox-slots"


def lease_slots() -> str:
    """Sorted set: slot numbers whose lease shard may have a lease run out, score = a time
    at or before its earliest expiry."""
    return f"{PREFIX}:lease-slots"
