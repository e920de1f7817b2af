"""deploy/kubernetes: manifests parse, have the expected kinds and reference real settings."""

from __future__ import annotations

from typing import Any

import pytest
from deploy_support import DEPLOY, SETTING_ENV, load_yaml_all

K8S = DEPLOY / "kubernetes"
EXPECTED_KINDS = {
    "namespace.yaml": ["Namespace"],
    "configmap.yaml": ["ConfigMap"],
    "secret.example.yaml": ["Secret"],
    "engine-deployment.yaml": ["Deployment"],
    "handlers-deployment.yaml": ["Deployment"],
}


def manifest(name: str) -> dict[str, Any]:
    (doc,) = load_yaml_all(K8S / name)
    assert isinstance(doc, dict)
    return doc


def test_every_manifest_has_its_kind() -> None:
    found = {p.name: [d["kind"] for d in load_yaml_all(p)] for p in K8S.glob("*.yaml")}
    assert found == EXPECTED_KINDS
    for name in EXPECTED_KINDS:
        for doc in load_yaml_all(K8S / name):
            assert doc["apiVersion"] and doc["metadata"]["name"]


def test_everything_lives_in_the_namespace() -> None:
    namespace = manifest("namespace.yaml")["metadata"]["name"]
    for name in EXPECTED_KINDS:
        if name != "namespace.yaml":
            assert manifest(name)["metadata"]["namespace"] == namespace


def test_configmap_keys_are_settings_or_otel() -> None:
    for key in manifest("configmap.yaml")["data"]:
        assert key in SETTING_ENV or key.startswith("OTEL_"), key


@pytest.mark.parametrize("role", ["engine", "handlers"])
def test_deployment(role: str) -> None:
    deployment = manifest(f"{role}-deployment.yaml")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    (container,) = spec["template"]["spec"]["containers"]
    assert container["args"] == ["run", "--role", role]
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    secret = manifest("secret.example.yaml")
    config = manifest("configmap.yaml")
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    for var in container["env"]:
        name = var["name"]
        assert name in SETTING_ENV or name.startswith(("OTEL_", "OS_")), name
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"], ref["key"]
    names = {var["name"] for var in container["env"]}
    assert {"CLUSTERBUS_AMQP_URL", "CLUSTERBUS_STORE_URL", "CLUSTERBUS_SECRET_KEY"} <= names


def test_handlers_get_clouds_yaml() -> None:
    pod = manifest("handlers-deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volume = next(v for v in pod["volumes"] if "secret" in v)
    path = volume["secret"]["items"][0]["path"]
    assert env["OS_CLIENT_CONFIG_FILE"] == f"{mounts[volume['name']]}/{path}"


def test_readme_explains_sac_shards() -> None:
    text = (K8S / "README.md").read_text()
    assert "single-active-consumer" in text and "CLUSTERBUS_SHARDS" in text
