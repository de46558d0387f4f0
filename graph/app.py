"""The app builder: `serve run serve_config.yaml` imports `graph.app:build_app`."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application, Deployment

from graph.callback_sender import CallbackSender
from graph.ingress import Ingress
from graph.node_deployment import NodeDeployment
from graph.stage_store import StageStore
from nodes import registry
from reuse.settings import Settings


class AppArgs(BaseModel):
    """`args:` of the application in serve_config.yaml."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[str] | None = Field(default=None, description="Nodes to deploy (default all).")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Settings overrides; the rest come from REELSERVE_*."
    )


def as_deployment(cls: object) -> Deployment:
    """The @serve.deployment classes are Deployments at run time; tell the type checker."""
    return cast(Deployment, cls)


# Ray Serve 2.60 in throughput-optimized mode (the HAProxy fast path) turns off logging to
# stderr, and then replaces `print` in replicas with one that writes `print(a, file=f)` as
# the tuple `(a,)` (`logging_utils.redirected_print` passes `objects` unpacked). Libraries
# that write files with print (pysubs2's SRT/VTT/ASS writers) would write garbage, so node
# replicas keep Serve's default: log to stderr too, `print` untouched.
NODE_ENV = {"RAY_SERVE_LOG_TO_STDERR": "1"}


def node_actor_options(num_cpus: float, num_gpus: float) -> dict[str, Any]:
    return {"num_cpus": num_cpus, "num_gpus": num_gpus,
            "runtime_env": {"env_vars": dict(NODE_ENV)}}


def build_graph(settings: Settings, nodes: list[str] | None = None) -> Application:
    store = as_deployment(StageStore).bind(settings)
    sender = as_deployment(CallbackSender).bind(settings, store)
    node_apps = {
        spec.name: as_deployment(NodeDeployment).options(
            name=spec.deployment_name,
            ray_actor_options=node_actor_options(spec.num_cpus, spec.num_gpus),
        ).bind(spec.name, settings, store, sender)
        for spec in registry.select(nodes)
    }
    return as_deployment(Ingress).bind(settings, store, sender, node_apps)


def build_app(args: dict[str, Any]) -> Application:
    parsed = AppArgs.model_validate(args or {})
    return build_graph(Settings(**parsed.settings), parsed.nodes)
