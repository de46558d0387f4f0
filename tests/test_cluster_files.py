"""cluster/: the KubeRay RayService serves what serve_config.yaml serves, and the Dockerfile
installs the project's own packages and extras (issue 11). No Kubernetes or Docker daemon
here: these check the files against the code that they must match."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import yaml

from graph import kuberay
from graph.config import CLUSTER_HOST, LOCAL_HOST
from tests.conftest import ROOT


def load(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text())


def test_the_rayservice_is_generated_and_serves_serve_config() -> None:
    text = (ROOT / "cluster" / "rayservice.yaml").read_text()
    assert text == kuberay.render(), "run `make config`"
    service = yaml.safe_load(text)
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    cluster_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    local_config = load("serve_config.yaml")
    # the bind is the one difference: loopback on a machine, every interface in a cluster
    assert local_config["http_options"]["host"] == LOCAL_HOST
    assert cluster_config["http_options"]["host"] == CLUSTER_HOST
    for config in (cluster_config, local_config):
        config["http_options"].pop("host")
    assert cluster_config == local_config


def test_the_head_has_no_gpu_and_the_gpu_group_does() -> None:
    spec = load("cluster/rayservice.yaml")["spec"]["rayClusterConfig"]
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"][
        "limits"]
    (gpu,) = spec["workerGroupSpecs"]
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"][
        "nvidia.com/gpu"] == 1
    assert spec["rayVersion"] == "2.60.0"
    for group in (head, gpu):
        env = {e["name"]: e for e in group["template"]["spec"]["containers"][0]["env"]}
        assert {"REDIS_URL", "REELSERVE_STORAGE_ROOT", "REELSERVE_GPU"} <= set(env)


def test_the_dockerfile_installs_the_packages_and_extras_that_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    dockerfile = (ROOT / "cluster" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY --chown=ray (\w+) \1$", dockerfile, re.M))
    assert copied == packages
    extras = set(project["project"]["optional-dependencies"])
    named = {e for line in re.findall(r"EXTRAS=([\w,]+)", dockerfile)
             for e in line.split(",")}
    assert named and named <= extras
    assert re.search(r"rayproject/ray:2\.60\.0-py311\b", dockerfile)
    ignore = (ROOT / "cluster" / "Dockerfile.dockerignore").read_text().split()
    assert {f"!{p}" for p in packages} <= set(ignore)
