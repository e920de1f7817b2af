"""deploy/otel/collector.yaml and the Grafana dashboard agree with the code and with compose."""

from __future__ import annotations

import json
import re
from typing import Any

from deploy_support import DEPLOY, compose, load_yaml
from prometheus_client import REGISTRY

import engine.metrics  # noqa: F401  (registers the clusterbus_* metrics)

COLLECTOR = DEPLOY / "otel" / "collector.yaml"
DASHBOARD = DEPLOY / "grafana" / "clusterbus-dashboard.json"
# Series a metric family exposes in the text format (counter -> _total, histogram -> _bucket...).
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count", "_created")
METRIC = re.compile(r"\b(clusterbus_[a-z_]+)\b")


def collector() -> dict[str, Any]:
    found = load_yaml(COLLECTOR)
    assert isinstance(found, dict)
    return found


def dashboard() -> dict[str, Any]:
    found = json.loads(DASHBOARD.read_text())
    assert isinstance(found, dict)
    return found


def exposed_names() -> set[str]:
    """Every clusterbus_* series name the process can expose."""
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("clusterbus_"):
            names |= {family.name + suffix for suffix in SUFFIXES}
    return names


def test_collector_receives_otlp_on_both_protocols_and_batches() -> None:
    config = collector()
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"] and "batch" in traces["processors"]
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"


def test_every_pipeline_component_is_defined() -> None:
    config = collector()
    for name, pipeline in config["service"]["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in config[section], f"{name}: {section} {component} undefined"
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"]


def test_compose_runs_the_collector_with_this_config_in_front_of_jaeger() -> None:
    services = compose()["services"]
    mounts = services["otel-collector"]["volumes"]
    assert any(m.startswith("./deploy/otel/collector.yaml:") for m in mounts)
    for role in ("engine", "handlers"):
        assert services[role]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith(
            "http://otel-collector:4318"
        )


def test_dashboard_queries_only_metrics_the_code_exposes() -> None:
    used = {
        name
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
        for name in METRIC.findall(target["expr"])
    }
    assert used, "the dashboard queries no clusterbus metric"
    assert used <= exposed_names(), sorted(used - exposed_names())


def test_dashboard_has_the_panels_operators_need() -> None:
    titles = " | ".join(p["title"].lower() for p in dashboard()["panels"])
    for wanted in ("clusters by state", "to ready", "openstack error rate", "queue depth",
                   "outbox lag", "transitions", "handler duration"):  # fmt: skip
        assert wanted in titles


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable() -> None:
    board = dashboard()
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
