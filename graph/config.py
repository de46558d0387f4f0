"""Generate serve_config.yaml from the node registry: `python -m graph.config > serve_config.yaml`.

The file is the user's to tune afterwards (replicas, fractions); a test checks that it
still names exactly the registered nodes.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from ray.serve import Deployment

from graph.app import as_deployment
from graph.callback_sender import CallbackSender
from graph.ingress import Ingress
from graph.node_deployment import NodeDeployment
from graph.resources import registry_resources
from graph.stage_store import StageStore
from nodes import registry

HEADER = """\
# reelserve on Ray Serve: `serve run serve_config.yaml` (local) or `serve deploy` (cluster).
# Generated from the node registry by `make config`; tune replicas and fractions here.
# Node resources are under args.resources: num_gpus are fractions of one GPU, used when
# the cluster has GPUs at deploy time (REELSERVE_GPU=auto; `on`/`off` force it), so the
# same file serves a CPU-only machine. Serve's `ray_actor_options` on a node deployment
# would replace the builder's options whole: set resources in args instead.
"""


def _entry(name: str, deployment: Deployment) -> dict[str, Any]:
    return {"name": name, "num_replicas": 1,
            "max_ongoing_requests": deployment.max_ongoing_requests}


def platform_deployments() -> list[dict[str, Any]]:
    """Ingress, StageStore, CallbackSender with the options their decorators declare."""
    platform = (as_deployment(c) for c in (Ingress, StageStore, CallbackSender))
    return [{**_entry(d.name, d), "ray_actor_options": dict(d.ray_actor_options or {})}
            for d in platform]


def generate() -> dict[str, Any]:
    nodes = [_entry(spec.deployment_name, as_deployment(NodeDeployment))
             for spec in registry.NODES]
    resources = {name: res.model_dump() for name, res in registry_resources().items()}
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": 8000},
        "applications": [{
            "name": "reelserve",
            "route_prefix": "/",
            "import_path": "graph.app:build_app",
            "args": {"nodes": None, "settings": {}, "resources": resources},
            "deployments": platform_deployments() + nodes,
        }],
    }


def render() -> str:
    return HEADER + yaml.safe_dump(generate(), sort_keys=False)


if __name__ == "__main__":
    sys.stdout.write(render())
