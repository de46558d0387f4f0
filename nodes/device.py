"""Which device a node replica computes on (DESIGN §2).

Ray assigns GPUs to a replica that asks for `num_gpus` and narrows CUDA_VISIBLE_DEVICES to
them, so the assigned GPU is `cuda:0` inside the replica. A *logical* GPU (`ray start
--num-gpus=1` on a CPU-only machine, how the tests schedule fractional
deployments) has no CUDA behind it: the node then runs on the CPU.
"""

from __future__ import annotations

import importlib.util
import os


def cuda_present() -> bool:
    """True only if a CUDA runtime really sees a device (without importing heavy libraries
    unless they are installed)."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        return bool(torch.cuda.is_available())
    if importlib.util.find_spec("ctranslate2") is not None:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    return os.path.exists("/dev/nvidia0") and os.path.exists("/proc/driver/nvidia/version")


def assigned_gpu_ids() -> list[str]:
    try:
        import ray

        return [str(i) for i in ray.get_gpu_ids()] if ray.is_initialized() else []
    except Exception:  # outside Ray (unit tests, scripts)
        return []


def select_device() -> str:
    """`cuda:0` when Ray assigned this process a GPU and CUDA is present, else `cpu`."""
    if assigned_gpu_ids() and cuda_present():
        return "cuda:0"
    return "cpu"
