"""The message catalog as tables: routing key -> model, kind, exchange; and parse/make helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from engine.messages.commands import COMMANDS, CreateCluster
from engine.messages.common import Message
from engine.messages.envelope import Envelope, new_id
from engine.messages.errors import InvalidPayload, UnknownMessageType
from engine.messages.events import EVENTS
from engine.messages.notifications import NOTIFICATIONS, Notification
from engine.messages.tasks import TASKS

Kind = Literal["command", "task", "event", "notification"]
M = TypeVar("M", bound=Message)

EXCHANGE_OF_KIND: Mapping[Kind, str] = MappingProxyType(
    {
        "command": "clusterbus.commands",
        "task": "clusterbus.tasks",
        "event": "clusterbus.events",
        "notification": "clusterbus.notifications",
    }
)
_MODELS_OF_KIND: Mapping[Kind, tuple[type[Message], ...]] = {
    "command": COMMANDS,
    "task": TASKS,
    "event": EVENTS,
    "notification": NOTIFICATIONS,
}

REGISTRY: Mapping[str, type[Message]] = MappingProxyType(
    {model.TYPE: model for models in _MODELS_OF_KIND.values() for model in models}
)
KINDS: Mapping[str, Kind] = MappingProxyType(
    {model.TYPE: kind for kind, models in _MODELS_OF_KIND.items() for model in models}
)
MAX_ERRORS_IN_REASON = 5


def model_for(type_: str) -> type[Message]:
    """The payload model of a message type, or UnknownMessageType."""
    try:
        return REGISTRY[type_]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {type_[:128]!r}") from None


def kind_of(type_: str) -> Kind:
    model_for(type_)
    return KINDS[type_]


def exchange_for(type_: str, prefix: str = "clusterbus") -> str:
    """The exchange a message type is published to (``prefix`` = Settings.topology_prefix)."""
    suffix = EXCHANGE_OF_KIND[kind_of(type_)].removeprefix("clusterbus")
    return prefix + suffix


def routing_key_for(envelope: Envelope) -> str:
    """The type, except notifications: ``<type>.<to_state>.<cluster_id>``."""
    if KINDS.get(envelope.type) == "notification":
        return f"{envelope.type}.{envelope.data.get('to_state')}.{envelope.subject}"
    return envelope.type


def type_from_routing_key(routing_key: str) -> str:
    """The message type a routing key was made from (the longest registered prefix)."""
    parts = routing_key.split(".")
    for end in range(len(parts), 1, -1):
        candidate = ".".join(parts[:end])
        if candidate in REGISTRY:
            return candidate
    raise UnknownMessageType(f"unknown message type {routing_key[:128]!r}")


def format_errors(error: ValidationError, prefix: str = "data") -> str:
    """A short reason like ``data.spec.control_plane.replicas: must be odd`` (no input values)."""
    details = error.errors(include_url=False, include_input=False)
    parts = [f"{_location(prefix, item['loc'])}: {_message(item)}" for item in details]
    shown = parts[:MAX_ERRORS_IN_REASON]
    if len(parts) > len(shown):
        shown.append(f"and {len(parts) - len(shown)} more")
    return "; ".join(shown)


def _location(prefix: str, loc: Iterable[int | str]) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not any(mark in part for mark in "[(,"):  # skip union-member and validator tags
            text += f".{part}"
    return text


def _message(item: Mapping[str, Any]) -> str:
    if item["type"] == "extra_forbidden":
        return "unknown field"
    if item["type"] == "missing":
        return "required"
    return str(item["msg"]).removeprefix("Value error, ")


def parse(envelope: Envelope) -> Message:
    """Validate ``envelope.data`` against its type's model (and against the subject)."""
    model = model_for(envelope.type)
    try:
        message = model.model_validate(envelope.data)
    except ValidationError as error:
        raise InvalidPayload(format_errors(error)) from None
    _check_subject(message, envelope.subject)
    return message


def parse_as(envelope: Envelope, model: type[M]) -> M:
    """``parse`` for callers that know which model to expect."""
    message = parse(envelope)
    if not isinstance(message, model):
        raise InvalidPayload(f"expected {model.TYPE}, got {envelope.type}")
    return message


def _check_subject(message: Message, subject: str) -> None:
    """A payload about one cluster sent under another's subject would reach the wrong shard."""
    cluster_id = getattr(message, "cluster_id", None)
    if cluster_id is not None and cluster_id != subject:
        raise InvalidPayload("data.cluster_id: does not match the envelope subject")
    if isinstance(message, CreateCluster) and message.spec.name != subject:
        raise InvalidPayload("data.spec.name: does not match the envelope subject")


def make(
    model: Message,
    *,
    source: str,
    subject: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """An envelope for a payload; subject defaults to the payload's cluster id."""
    subject = subject or getattr(model, "cluster_id", None)
    if subject is None:
        raise ValueError(f"{model.TYPE} needs an explicit subject (the cluster id)")
    message_id = new_id()
    return Envelope(
        id=message_id,
        source=source,
        type=model.TYPE,
        subject=subject,
        correlationid=correlation_id or message_id,
        causationid=causation_id,
        data=model.model_dump(mode="json"),
    )


def routing_key_of(model: Message) -> str:
    """The routing key of a payload model (see ``routing_key_for``)."""
    return model.routing_key() if isinstance(model, Notification) else model.TYPE


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every payload, by type (for docs and the AsyncAPI document)."""
    return {type_: model.model_json_schema() for type_, model in sorted(REGISTRY.items())}
