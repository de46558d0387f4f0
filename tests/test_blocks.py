"""Cutting long audio into pieces at quiet points (`blocks.quiet_cuts`)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nodes.families.blocks import quiet_cuts


def test_pieces_are_cut_in_the_quietest_stretch_near_their_end() -> None:
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 1, 10_000).astype(np.float32)
    for quiet_at in (2_850, 5_700, 8_600):  # a silent gap near each piece's end
        signal[quiet_at:quiet_at + 50] = 0.0
    cuts = quiet_cuts(lambda lo, hi: signal[lo:hi], len(signal), piece=3_000, search=400,
                      quiet=50)
    assert cuts[0] == 0 and cuts[-1] == len(signal)
    assert all(0 < b - a <= 3_000 for a, b in itertools.pairwise(cuts))
    assert cuts[1:-1] == [2_875, 5_725, 8_625]  # the middle of each gap


def test_short_audio_is_one_piece_and_bad_sizes_are_refused() -> None:
    assert quiet_cuts(lambda lo, hi: np.zeros(hi - lo), 100, piece=3_000, search=400,
                      quiet=50) == [0, 100]
    with pytest.raises(ValueError):
        quiet_cuts(lambda lo, hi: np.zeros(hi - lo), 100, piece=300, search=400, quiet=50)
