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


def build_graph(settings: Settings, nodes: list[str] | None = None) -> Application:
    store = as_deployment(StageStore).bind(settings)
    sender = as_deployment(CallbackSender).bind(settings, store)
    node_apps = {
        spec.name: as_deployment(NodeDeployment).options(
            name=spec.deployment_name,
            ray_actor_options={"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus},
        ).bind(spec.name, settings, store, sender)
        for spec in registry.select(nodes)
    }
    return as_deployment(Ingress).bind(settings, store, sender, node_apps)


def build_app(args: dict[str, Any]) -> Application:
    parsed = AppArgs.model_validate(args or {})
    return build_graph(Settings(**parsed.settings), parsed.nodes)
