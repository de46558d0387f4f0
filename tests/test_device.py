"""Device selection outside Ray (pure enough: reads the process and /dev)."""

from __future__ import annotations

from nodes.device import assigned_gpu_ids, select_device


def test_outside_ray_there_is_no_assigned_gpu_and_the_device_is_cpu() -> None:
    assert assigned_gpu_ids() == []
    assert select_device() == "cpu"
