"""What each node deployment asks Ray and Serve for: resources, GPU or not, replicas.

serve_config.yaml lists every node's `num_cpus` / `num_gpus` under the application's
`args.resources` (generated from the registry). It does not set Serve's `ray_actor_options`
on node deployments: Serve would take those instead of the builder's, whole, and a
replica asking for a GPU fraction on a cluster without GPUs waits forever. The builder
decides instead, with `settings.gpu`:

- `auto` (default): the fractions apply if the cluster has GPUs when the app is deployed;
  otherwise every node runs on the CPU (`serve run serve_config.yaml` on a laptop).
- `on`: always (a cluster whose GPU workers start after the deploy, e.g. scaled from zero).
- `off`: never.

`num_cpus` is Ray's reservation for placing a replica, not a limit on what a run uses.

Replicas: a node deployment takes at most `max_concurrent_runs` calls at once, and each
`submit` call lasts its run, so runs beyond that wait in the callers' Serve routers, where
Serve's autoscaler counts them and a replica it adds takes them (`node_scaling`). A
replica being scaled in finishes its runs first (`graceful_shutdown_timeout_s`).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nodes import registry
from nodes.spec import NodeSpec

log = logging.getLogger("reelserve.graph")

# Ray Serve 2.60 in throughput-optimized mode (the HAProxy fast path) turns off logging to
# stderr, and then replaces `print` in replicas with one that writes `print(a, file=f)` as
# the tuple `(a,)` (`logging_utils.redirected_print` passes `objects` unpacked). Libraries
# that write files with print (pysubs2's SRT/VTT/ASS writers) would write garbage, so node
# replicas keep Serve's default: log to stderr too, `print` untouched.
NODE_ENV = {"RAY_SERVE_LOG_TO_STDERR": "1"}


class NodeResources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(ge=0, le=256, description="Ray CPUs reserved per replica.")
    num_gpus: float = Field(default=0.0, ge=0, le=16,
                            description="GPUs per replica; fractions of one GPU pack.")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Ray custom resources per replica, to pin a node "
        "to machines that have them (e.g. `node:__internal_head__: 0.01`: the head).")


def registry_resources() -> dict[str, NodeResources]:
    """Every node's resources as its spec declares them (what `make config` writes)."""
    return {s.name: NodeResources(num_cpus=s.num_cpus, num_gpus=s.num_gpus)
            for s in registry.NODES}


def cluster_gpus() -> float:
    """GPUs the connected Ray cluster has now (0 outside Ray)."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0.0


def gpus_apply(mode: str) -> bool:
    gpus = cluster_gpus() if mode == "auto" else None
    apply = mode == "on" or (gpus is not None and gpus > 0)
    (log.info if apply else log.warning)(
        "node GPU fractions %s (REELSERVE_GPU=%s%s)", "apply" if apply else "off", mode,
        "" if gpus is None else f"; the cluster has {gpus:g} GPUs")
    return apply


def node_actor_options(res: NodeResources, use_gpus: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": res.num_cpus,
                               "num_gpus": res.num_gpus if use_gpus else 0.0,
                               "runtime_env": {"env_vars": dict(NODE_ENV)}}
    if res.resources:
        options["resources"] = dict(res.resources)
    return options


# how long a replica being scaled in (or redeployed) may take to finish its runs
DRAIN_S = 3600.0


def autoscaling(spec: NodeSpec) -> dict[str, Any]:
    """Serve's autoscaling_config of a node (tune it in serve_config.yaml): one replica
    idle, up to 4 (2 for nodes with a GPU fraction), a replica per `max_concurrent_runs`
    runs in flight or waiting."""
    return {"min_replicas": 1, "max_replicas": 2 if spec.num_gpus else 4,
            "target_ongoing_requests": spec.max_concurrent_runs,
            "upscale_delay_s": 10.0, "downscale_delay_s": 120.0}


def node_scaling(spec: NodeSpec, override: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Serve options of a node deployment besides its resources."""
    return {"max_ongoing_requests": spec.max_concurrent_runs,
            "autoscaling_config": {**autoscaling(spec), **(override or {})},
            "graceful_shutdown_timeout_s": DRAIN_S}
