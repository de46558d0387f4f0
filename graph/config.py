"""Generate serve_config.yaml from the node registry: `python -m graph.config > serve_config.yaml`.

The file is the user's to tune afterwards (replicas, fractions); a test checks that it
still names exactly the registered nodes.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from graph.app import as_deployment
from graph.callback_sender import CallbackSender
from graph.ingress import Ingress
from graph.resources import node_scaling, registry_resources
from graph.stage_store import StageStore
from nodes import registry

HEADER = """\
# reelserve on Ray Serve: `serve run serve_config.yaml` (local) or `serve deploy` (cluster).
# Generated from the node registry by `make config`; tune replicas and fractions here.
# Node deployments autoscale: a node takes max_ongoing_requests runs per replica; more
# wait in Serve's routers, where the autoscaler counts them (graph/resources.py).
# Node resources are under args.resources: num_gpus are fractions of one GPU, used when
# the cluster has GPUs at deploy time (REELSERVE_GPU=auto; `on`/`off` force it), so the
# same file serves a CPU-only machine. Serve's `ray_actor_options` on a node deployment
# would replace the builder's options whole: set resources in args instead.
"""

def platform_deployments() -> list[dict[str, Any]]:
    """Ingress, StageStore, CallbackSender with the options their decorators declare."""
    platform = (as_deployment(c) for c in (Ingress, StageStore, CallbackSender))
    return [{"name": d.name, "num_replicas": 1,
             "max_ongoing_requests": d.max_ongoing_requests,
             "ray_actor_options": dict(d.ray_actor_options or {})} for d in platform]


LOCAL_HOST = "127.0.0.1"  # `make run`, `serve run`: the API on this machine only
CLUSTER_HOST = "0.0.0.0"  # a cluster: proxies and HAProxy reach replicas on other nodes


def generate(host: str = LOCAL_HOST) -> dict[str, Any]:
    """The Serve config; `host` is the one thing that differs between a machine (loopback)
    and a cluster (every interface; put TLS, REELSERVE_API_KEY and a firewall in front)."""
    nodes = [{"name": spec.deployment_name, **node_scaling(spec)} for spec in registry.NODES]
    resources = {name: res.model_dump(exclude_defaults=True) | {"num_gpus": res.num_gpus}
                 for name, res in registry_resources().items()}
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": host, "port": 8000},
        "applications": [{
            "name": "reelserve",
            "route_prefix": "/",
            "import_path": "graph.app:build_app",
            "args": {"nodes": None, "settings": {}, "resources": resources},
            "deployments": platform_deployments() + nodes,
        }],
    }


def render(host: str = LOCAL_HOST) -> str:
    return HEADER + yaml.safe_dump(generate(host), sort_keys=False)


if __name__ == "__main__":
    # --cluster: the same file with the cluster's bind (cluster/README.md)
    sys.stdout.write(render(CLUSTER_HOST if "--cluster" in sys.argv[1:] else LOCAL_HOST))
