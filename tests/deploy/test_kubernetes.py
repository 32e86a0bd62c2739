"""deploy/kubernetes checked offline with kubernetes-validate (the schemas ship in the package):
every resource is valid and has no unknown field, and what the pod runs agrees with the config it
mounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from esm.config import parse_config

MANIFESTS = sorted((Path(__file__).resolve().parents[2] / "deploy" / "kubernetes").glob("*.yaml"))
VERSION = kubernetes_validate.latest_version()


def resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, Any]:
    [resource] = [doc for doc in resources() if doc["kind"] == kind]
    return resource


def test_there_are_manifests() -> None:
    assert MANIFESTS and {doc["kind"] for doc in resources()} >= {"ConfigMap", "Deployment", "Service"}


@pytest.mark.parametrize("resource", resources(), ids=lambda doc: f"{doc['kind']}/{doc['metadata']['name']}")
def test_each_resource_is_valid_and_strict(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, VERSION, strict=True)


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("spec", "replicas"), "two", "is not of type 'integer'"),
        (("spec", "template", "spec", "terminationGracePeriod"), 45, "Additional properties are not allowed"),
    ],
)
def test_a_broken_deployment_is_rejected(path: tuple[str, ...], value: object, complaint: str) -> None:
    broken = by_kind("Deployment")
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError, match=complaint):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_pod_runs_what_its_config_says() -> None:
    config = parse_config(yaml.safe_load(by_kind("ConfigMap")["data"]["esm.yaml"])).config
    containers = {c["name"]: c for c in by_kind("Deployment")["spec"]["template"]["spec"]["containers"]}
    daemon, worker = containers["esm"], containers["worker"]
    assert {port["containerPort"] for port in daemon["ports"]} == {config.Metrics.Port}
    assert daemon["livenessProbe"]["httpGet"]["path"] == "/healthz"
    listen = worker["args"][worker["args"].index("--listen") + 1]
    assert [list(f.Endpoints) for f in config.Functions] == [[listen]]
    assert worker["readinessProbe"]["grpc"]["port"] == int(listen.rsplit(":", 1)[1])
