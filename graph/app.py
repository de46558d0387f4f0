"""The app builder: `serve run serve_config.yaml` imports `graph.app:build_app`."""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator
from ray.serve import Application, Deployment

from graph.callback_sender import CallbackSender
from graph.ingress import Ingress
from graph.node_deployment import NodeDeployment
from graph.resources import (
    NodeResources,
    gpus_apply,
    node_actor_options,
    node_scaling,
    registry_resources,
)
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
    resources: dict[str, NodeResources] = Field(
        default_factory=dict, description="Per node: num_cpus, num_gpus (see graph.resources)."
    )

    @field_validator("resources")
    @classmethod
    def _known_nodes(cls, value: dict[str, NodeResources]) -> dict[str, NodeResources]:
        unknown = sorted(set(value) - set(registry.names()))
        if unknown:
            raise ValueError(f"resources for unknown nodes: {unknown}")
        return value


def as_deployment(cls: object) -> Deployment:
    """The @serve.deployment classes are Deployments at run time; tell the type checker."""
    return cast(Deployment, cls)


def build_graph(
    settings: Settings, nodes: list[str] | None = None,
    resources: dict[str, NodeResources] | None = None,
    scaling: dict[str, dict[str, Any]] | None = None,
) -> Application:
    """The deployment graph. `resources` override the registry's per node; `scaling`
    overrides fields of a node's autoscaling_config (serve_config.yaml's deployment
    entries override both, the Serve way)."""
    wanted = {**registry_resources(), **(resources or {})}
    use_gpus = gpus_apply(settings.gpu)
    store = as_deployment(StageStore).bind(settings)
    sender = as_deployment(CallbackSender).bind(settings, store)
    node_apps = {
        spec.name: as_deployment(NodeDeployment).options(
            name=spec.deployment_name,
            ray_actor_options=node_actor_options(wanted[spec.name], use_gpus),
            **node_scaling(spec, (scaling or {}).get(spec.name)),
        ).bind(spec.name, settings, store, sender)
        for spec in registry.select(nodes)
    }
    return as_deployment(Ingress).bind(settings, store, sender, node_apps)


def build_app(args: dict[str, Any]) -> Application:
    parsed = AppArgs.model_validate(args or {})
    return build_graph(Settings(**parsed.settings), parsed.nodes, parsed.resources)
