"""Paths and loaders shared by the deployment-file tests."""

from __future__ import annotations

import importlib.util
import json
import typing
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from engine.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
SETTING_ENV = {f"CLUSTERBUS_{name.upper()}": name for name in Settings.model_fields}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose() -> dict[str, Any]:
    loaded = load_yaml(COMPOSE)
    assert isinstance(loaded, dict)
    return loaded


def definitions() -> dict[str, Any]:
    loaded = json.loads(DEFINITIONS.read_text())
    assert isinstance(loaded, dict)
    return loaded


def generator() -> ModuleType:
    """deploy/rabbitmq/gen_definitions.py, imported from its path (it is a script)."""
    path = DEPLOY / "rabbitmq" / "gen_definitions.py"
    spec = importlib.util.spec_from_file_location("gen_definitions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_from_env(env: dict[str, Any]) -> Settings:
    """Settings as a process with this environment would build them (env names -> fields)."""
    values: dict[str, Any] = {}
    for key, value in env.items():
        if key.startswith("CLUSTERBUS_"):
            name = SETTING_ENV[key]
            # pydantic-settings reads lists and mappings from the environment as JSON.
            complex_ = typing.get_origin(Settings.model_fields[name].annotation) in (tuple, dict)
            values[name] = json.loads(value) if complex_ else value
    return Settings(**values)


def amqp_parts(url: str) -> tuple[str, str, str, str]:
    """(user, password, host, vhost) of an AMQP URL."""
    parts = urlsplit(url)
    return (
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        parts.hostname or "",
        unquote(parts.path[1:]),
    )
