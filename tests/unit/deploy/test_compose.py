"""docker-compose.yml: services, ports, and environment names that the code really reads."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from deploy_support import (
    DEPLOY,
    ROOT,
    SETTING_ENV,
    amqp_parts,
    compose,
    definitions,
    generator,
    load_yaml,
    settings_from_env,
)

from engine.bus.topology import build_topology
from simulator.serve import ALLOW_ANY_HOST_ENV

SERVICES = {"rabbitmq", "postgres", "jaeger", "otel-collector", "simulator", "engine", "handlers"}
# Standard OpenTelemetry SDK variables (the spec's names) that we allow in the files.
OTEL_VARS = {
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
}


def services() -> dict[str, Any]:
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def published(service: str) -> set[int]:
    """Container ports a service publishes ("5672:5672", "127.0.0.1:8774:8774")."""
    return {int(str(p).rsplit(":", 1)[-1]) for p in services()[service].get("ports", [])}


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in services()[service].get("environment", {}).items()}


def test_every_service_is_there() -> None:
    assert set(services()) == SERVICES


@pytest.mark.parametrize(
    ("service", "ports"),
    [
        ("rabbitmq", {5672, 15672}),
        ("postgres", {5432}),
        ("jaeger", {4317, 4318, 16686}),
        ("simulator", {8774}),
    ],
)
def test_ports(service: str, ports: set[int]) -> None:
    assert published(service) == ports


def test_images() -> None:
    s = services()
    assert s["rabbitmq"]["image"] == "rabbitmq:3.10-management"
    assert s["postgres"]["image"] == "postgres:15"
    assert s["jaeger"]["image"].startswith("jaegertracing/all-in-one:")
    assert s["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"


def test_every_clusterbus_variable_is_a_setting() -> None:
    for name in ("engine", "handlers", "simulator"):
        for var in env(name):
            if var.startswith("CLUSTERBUS_"):
                assert var in SETTING_ENV, f"{name}: {var} is not a Settings field"
            elif var.startswith("OTEL_"):
                assert var in OTEL_VARS, f"{name}: unknown OpenTelemetry variable {var}"


@pytest.mark.parametrize("role", ["engine", "handlers"])
def test_role_services(role: str) -> None:
    service = services()[role]
    assert service["command"] == ["run", "--role", role]
    settings = settings_from_env(env(role))  # validates every value
    assert settings.store_url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in settings.store_url
    assert env(role)["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:")
    assert env(role)["OTEL_SERVICE_NAME"] == f"clusterbus-{role}"
    user, _, host, _ = amqp_parts(settings.amqp_url.get_secret_value())
    assert (user, host) == (role, "rabbitmq")


def test_engine_accepts_commands_from_the_producer_user() -> None:
    publishers = settings_from_env(env("engine")).command_publishers
    users = {u["name"] for u in definitions()["users"]}
    assert "producer" in publishers["*"]
    assert set(publishers["*"]) <= users


def test_roles_agree_on_shared_settings() -> None:
    engine, handlers = settings_from_env(env("engine")), settings_from_env(env("handlers"))
    shared = ("store_url", "queue_type", "shards", "topology_prefix", "secret_key_file")
    for field in shared:
        assert getattr(engine, field) == getattr(handlers, field), field


def test_topology_matches_the_broker_definitions() -> None:
    topology = build_topology(settings_from_env(env("engine")))
    defs = definitions()
    assert {q["name"]: q["arguments"] for q in defs["queues"]} == {
        q.name: dict(q.arguments) for q in topology.queues
    }


def test_amqp_users_and_passwords_exist_in_definitions() -> None:
    defs = definitions()
    users = {u["name"]: u["password_hash"] for u in defs["users"]}
    vhosts = {v["name"] for v in defs["vhosts"]}
    for role in ("engine", "handlers"):
        url = settings_from_env(env(role)).amqp_url.get_secret_value()
        user, password, _, vhost = amqp_parts(url)
        assert vhost in vhosts
        raw = base64.b64decode(users[user])
        salt, digest = raw[:4], raw[4:]
        assert hashlib.sha256(salt + password.encode()).digest() == digest, user


def test_rabbitmq_loads_definitions_and_plugins() -> None:
    mounts = services()["rabbitmq"]["volumes"]
    targets = {str(m).split(":")[1]: str(m).split(":")[0] for m in mounts if str(m).startswith(".")}
    for source in targets.values():
        assert (ROOT / source).is_file(), source
    assert targets["/etc/rabbitmq/definitions.json"] == "./deploy/rabbitmq/definitions.json"
    assert targets["/etc/rabbitmq/enabled_plugins"] == "./deploy/rabbitmq/enabled_plugins"
    conf_target = next(t for t in targets if t.startswith("/etc/rabbitmq/conf.d/"))
    conf = (ROOT / targets[conf_target]).read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf


def test_simulator_listens_in_its_container_and_handlers_reach_it() -> None:
    sim = services()["simulator"]
    command = sim["command"]
    assert command[:2] == ["sim", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    assert env("simulator") == {ALLOW_ANY_HOST_ENV: "1"}
    # published on loopback only on the host
    assert all(str(p).startswith("127.0.0.1:") for p in sim["ports"])
    mount = next(m for m in services()["handlers"]["volumes"] if "clouds.yaml" in m)
    source, target = mount.split(":")[:2]
    assert env("handlers")["OS_CLIENT_CONFIG_FILE"] == target
    clouds = load_yaml(ROOT / source)["clouds"]
    assert clouds["clusterbus-sim"]["auth"]["auth_url"] == f"http://simulator:{port}/identity"


def test_depends_on_waits_for_health() -> None:
    s = services()
    for role in ("engine", "handlers"):
        deps = s[role]["depends_on"]
        for dep in ("rabbitmq", "postgres"):
            assert deps[dep]["condition"] == "service_healthy"
    assert s["handlers"]["depends_on"]["simulator"]["condition"] == "service_healthy"
    for name, service in s.items():
        for dep, cond in service.get("depends_on", {}).items():
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in s[dep], f"{name} waits on {dep} without a healthcheck"


def test_key_volume_is_shared() -> None:
    engine_key = settings_from_env(env("engine")).secret_key_file
    for role in ("engine", "handlers"):
        volumes = services()[role]["volumes"]
        assert f"keys:{engine_key.parent}" in volumes


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert 'ENTRYPOINT ["clusterbus"]' in text
    assert "\nUSER clusterbus" in text
    assert "pip install" in text
    assert generator().VHOST == "/clusterbus"
    assert (DEPLOY / "rabbitmq" / "enabled_plugins").is_file()
