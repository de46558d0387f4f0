"""Long audio in bounded blocks: constant work per second and flat memory.

`stream_blocks` reads a long signal block by block (each with context on both sides),
runs a function that maps a segment to same-length outputs, and writes the outputs as
it goes, cross-fading the outputs of neighbouring blocks across each boundary. The cost
of a block does not depend on where it is, so the total is linear in the length; only a
block and its context are in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class Writer(Protocol):
    def write(self, data: np.ndarray) -> None: ...


def block_bounds(n: int, block: int) -> list[int]:
    """Boundaries of about-`block`-long blocks covering [0, n); none shorter than block/2."""
    count = max(1, round(n / block))
    return [round(n * i / count) for i in range(count + 1)]


def stream_blocks(
    read: Callable[[int, int], np.ndarray],
    n: int,
    fn: Callable[[np.ndarray], Sequence[np.ndarray]],
    writers: Sequence[Writer],
    *,
    block: int,
    context: int,
    fade: int,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Run `fn` over [0, n) block by block and write its outputs in order.

    `read(lo, hi)` returns samples [lo, hi) as (samples, channels); `fn` returns one array
    of the same shape per writer. Each block is computed with `context` samples on both
    sides; across a boundary the two blocks' outputs are cross-faded over 2 * `fade`.
    """
    if not 0 < fade <= context or block < 4 * fade:
        raise ValueError("need 0 < fade <= context and block >= 4 * fade")
    bounds = block_bounds(n, block)
    count = len(bounds) - 1
    ramp = np.linspace(0.0, 1.0, 2 * fade, endpoint=False, dtype=np.float32)[:, None]
    pending: list[np.ndarray] = []
    for i in range(count):
        a, b = bounds[i], bounds[i + 1]
        first, last = i == 0, i == count - 1
        lo, hi = max(0, a - context), min(n, b + context)
        outs = fn(read(lo, hi))
        if not first:  # the boundary at `a`: previous block fades out, this one in
            for writer, prev, out in zip(writers, pending, outs, strict=True):
                writer.write(prev * (1 - ramp) + out[a - fade - lo:a + fade - lo] * ramp)
        start, end = (a if first else a + fade), (b if last else b - fade)
        for writer, out in zip(writers, outs, strict=True):
            writer.write(out[start - lo:end - lo])
        if not last:
            pending = [out[b - fade - lo:b + fade - lo].copy() for out in outs]
        if progress is not None:
            progress((i + 1) / count)


def quiet_cuts(read: Callable[[int, int], np.ndarray], n: int, piece: int, search: int,
               quiet: int) -> list[int]:
    """Boundaries of pieces of at most `piece` samples covering [0, n), each cut (except the
    last) at the quietest `quiet`-long stretch of its last `search` samples, so a piece ends
    between words rather than inside one. `read(lo, hi)` returns mono samples [lo, hi)."""
    if not 0 < quiet < search < piece:
        raise ValueError("need 0 < quiet < search < piece")
    cuts = [0]
    while n - cuts[-1] > piece:
        end = cuts[-1] + piece
        tail = read(end - search, end).astype(np.float64)
        energy = np.concatenate([[0.0], np.cumsum(tail ** 2)])
        window = energy[quiet:] - energy[:-quiet]  # energy of each quiet-long stretch
        cuts.append(end - search + int(np.argmin(window)) + quiet // 2)
    return [*cuts, n]
