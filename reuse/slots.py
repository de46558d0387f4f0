"""Which slot shards (of the outbox, of the lease index) may hold something due.

A shard lives in its jobs' Redis Cluster slot, so a job's script can write it atomically;
the index of shards is one global sorted set (member: the slot number, score: a time at or
before the shard's earliest member), written next to the script, not in it. It is kept a
safe hint:

- a writer that adds to a shard then lowers the slot's score (`mark`: ZADD LT);
- a reader that took what was due raises it to the shard's new earliest (`refresh`), then
  reads the shard again and lowers it if something earlier arrived meanwhile: a member
  added before that second read is seen by it, one added after is marked by its writer
  after the raise. So no due member is ever left without an index entry at or before it;
- a writer that died between its script and its mark leaves a member unindexed: the
  StageStore's sweep re-marks every non-empty shard every `RECONCILE_S` (`reconcile`).
"""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis
from redis.crc import REDIS_CLUSTER_HASH_SLOTS

RECONCILE_S = 60.0


class SlotIndex:
    def __init__(self, client: aioredis.Redis, index: str, shard: Callable[[int], str]) -> None:
        self.redis = client
        self.index = index
        self.shard = shard

    async def mark(self, slot: int, score: float) -> None:
        await self.redis.zadd(self.index, {str(slot): score}, lt=True)

    async def due(self, now: float, limit: int = 64) -> list[int]:
        members = await self.redis.zrangebyscore(self.index, "-inf", now, start=0, num=limit)
        return [int(str(m)) for m in members]

    async def earliest(self) -> float | None:
        first = await self.redis.zrange(self.index, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def _shard_min(self, slot: int) -> float | None:
        first = await self.redis.zrange(self.shard(slot), 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def refresh(self, slot: int) -> None:
        """Set the slot's score to its shard's earliest member (drop it if empty)."""
        before = await self._shard_min(slot)
        if before is None:
            await self.redis.zrem(self.index, str(slot))
        else:
            await self.redis.zadd(self.index, {str(slot): before})
        after = await self._shard_min(slot)
        if after is not None and (before is None or after < before):
            await self.mark(slot, after)

    async def reconcile(self) -> int:
        """Mark every non-empty shard (16384 reads, pipelined); returns how many."""
        marked = 0
        step = 1024
        for start in range(0, REDIS_CLUSTER_HASH_SLOTS, step):
            slots = range(start, start + step)
            async with self.redis.pipeline(transaction=False) as pipe:
                for slot in slots:
                    pipe.zrange(self.shard(slot), 0, 0, withscores=True)
                firsts = await pipe.execute()
            for slot, first in zip(slots, firsts, strict=True):
                if first:
                    await self.mark(slot, float(first[0][1]))
                    marked += 1
        return marked
