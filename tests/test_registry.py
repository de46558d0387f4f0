"""The registry is the one source: its specs are coherent, serve_config.yaml and the README
follow it (no services)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve import Application

from graph.app import AppArgs, build_app
from graph.config import generate, platform_deployments
from nodes import registry
from nodes.spec import NodeSpec
from reuse.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("spec", registry.NODES, ids=registry.names())
def test_spec_is_coherent(spec: NodeSpec) -> None:
    fields = set(spec.params.model_fields)
    assert spec.name.startswith(spec.family + ".")
    assert set(spec.reuse_keys) <= set(spec.outputs) and spec.reuse_keys
    assert {n for r in spec.required for n in r.split("|")} <= fields
    assert set(spec.upstream) <= fields and set(spec.file_params) <= fields
    assert 0 <= spec.num_gpus <= 1 and 0 < spec.num_cpus <= 1


def test_names_are_unique_and_selectable() -> None:
    assert len(registry.names()) == len(set(registry.names()))
    assert [s.name for s in registry.select(["audio_separator.separate_vocals"])] == [
        "audio_separator.separate_vocals"]
    with pytest.raises(ValueError, match="unknown nodes"):
        registry.select(["ffmpeg.nope"])


def test_serve_config_names_exactly_the_registered_nodes() -> None:
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = config["applications"][0]
    assert app["import_path"] == "graph.app:build_app"
    AppArgs.model_validate(app["args"])
    names = [d["name"] for d in app["deployments"]]
    expected = [d["name"] for d in platform_deployments()] + [
        s.deployment_name for s in registry.NODES]
    assert sorted(names) == sorted(expected)
    platform = {d["name"] for d in platform_deployments()}
    for dep in app["deployments"]:
        # node deployments take their resources from args (graph/resources.py): Serve's
        # ray_actor_options would replace the builder's options whole
        assert ("ray_actor_options" in dep) == (dep["name"] in platform), dep["name"]
    assert sorted(app["args"]["resources"]) == sorted(registry.names())
    assert config["http_options"]["host"] == "127.0.0.1"
    generated = generate()["applications"][0]["deployments"]
    assert [d["name"] for d in generated] == expected


def test_builder_accepts_the_config_args_without_ray() -> None:
    app = build_app({"nodes": ["ffmpeg.extract_audio"], "settings": {"stage_ttl_s": 60}})
    assert isinstance(app, Application)
    with pytest.raises(ValueError):
        build_app({"nodes": ["nope.node"]})


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        env = field.validation_alias if isinstance(field.validation_alias, str) else \
            f"REELSERVE_{name.upper()}"
        short = env.removesuffix("_MAX_S").removesuffix("_BASE_S")
        assert env in readme or f"{short}_BASE_S` / `_MAX_S" in readme, env
