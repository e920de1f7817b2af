"""Runtime settings: CLUSTERBUS_* environment variables, optionally a TOML/YAML config file.

Cloud credentials are deliberately absent: they come from clouds.yaml / OS_CLOUD like every
OpenStack tool.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_FILE_ENV = "CLUSTERBUS_CONFIG"


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"


class Settings(BaseSettings):
    """Every knob of the engine and the handlers; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="CLUSTERBUS_", extra="forbid", frozen=True)

    amqp_url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672/"), description="RabbitMQ URL"
    )
    store_url: str = Field(
        "sqlite+aiosqlite:///./clusterbus.db", description="SQLAlchemy async URL of the store"
    )
    shards: int = Field(4, ge=1, le=256, description="number of engine shard queues")
    queue_type: QueueType = Field(QueueType.CLASSIC, description="classic or quorum queues")
    prefetch: int = Field(64, ge=1, le=10_000, description="consumer prefetch per channel")
    delivery_limit: int = Field(20, ge=1, description="redeliveries before dead-lettering")
    max_message_bytes: int = Field(64 * 1024, ge=1024, description="larger messages are poison")
    secret_key: SecretStr | None = Field(
        None, description="base64 AES-256 key for the secrets table (overrides secret_key_file)"
    )
    secret_key_file: Path = Field(
        Path("./clusterbus.key"), description="file holding the base64 AES-256 key"
    )
    source: str = Field("clusterbus", description="CloudEvents source of what we publish")
    topology_prefix: str = Field(
        "clusterbus",
        pattern=r"^[a-z][a-z0-9_.-]*$",
        description="prefix of every exchange and queue name (tests use a unique one)",
    )
    delay_levels_ms: tuple[int, ...] = Field(
        (1000, 2000, 5000, 10000, 30000, 60000), description="retry/poll delay queue TTLs"
    )
    command_publishers: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "command type (or '*') -> RabbitMQ users allowed to send it; the engine's own"
            " AMQP user is always allowed (see docs/integration.md)"
        ),
    )
    inbox_retention_hours: float = Field(
        168.0, gt=0, description="how long consumed message ids are kept for de-duplication"
    )
    reconcile_interval_s: float = Field(
        30.0, gt=0, description="seconds between reconcile ticks for unsettled clusters"
    )
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description=(
            "port of the Prometheus /metrics endpoint; 0 = off (set one port per process:"
            " an engine and a handlers process on one host need two)"
        ),
    )
    metrics_host: str = Field("0.0.0.0", description="address the metrics endpoint listens on")
    shard_leases: bool = Field(
        True,
        description=(
            "spread the shards over the engine replicas with leases in the store; false ="
            " every replica subscribes to every shard (single-active-consumer picks one)"
        ),
    )
    lease_interval_s: float = Field(
        5.0,
        gt=0,
        description=(
            "seconds between shard lease renewals and rebalancing; a lease lasts 3x this, so a"
            " crashed replica's shards move after at most 4x"
        ),
    )
    metrics_refresh_s: float = Field(
        15.0, gt=0, description="seconds between refreshes of the store gauges (engine role)"
    )

    @field_validator("store_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("store_url must use sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by CLUSTERBUS_CONFIG (lowest priority after env)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_FILE_ENV)
        if not path:
            return {}
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: the config file must be a mapping")
        return loaded


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with explicit overrides on top."""
    return Settings(**overrides)
