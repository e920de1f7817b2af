"""The published contract: JSON Schemas per message and an AsyncAPI 3.0 document, from the models.

``python -m engine.contract`` rewrites docs/schemas/<type>.json and docs/asyncapi.yaml; a test
regenerates them and fails on drift. The document describes the engine and its handlers as one
application: it receives commands, sends notifications, and sends and receives tasks and events.
Payload = the CloudEvent's ``data``; headers = the ``ce-*`` attributes (binary content mode, which
the engine accepts like structured mode, see engine.messages.codec and docs/integration.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from engine.messages.common import ClusterState, MachineState
from engine.messages.registry import EXCHANGE_OF_KIND, KINDS, REGISTRY, Kind, json_schemas

DOCS = Path(__file__).resolve().parent.parent / "docs"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
AMQP_BINDING_VERSION = "0.3.0"
_REF = "#/components/schemas/{model}"
_ACTIONS: dict[Kind, tuple[str, ...]] = {
    "command": ("receive",),
    "task": ("send", "receive"),
    "event": ("send", "receive"),
    "notification": ("send",),
}
_STATES = {
    "cluster.state_changed": [s.value for s in ClusterState],
    "machine.state_changed": [s.value for s in MachineState],
}


def message_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema per message type (docs/schemas/<type>.json)."""
    return {
        type_: {"$schema": JSON_SCHEMA_DIALECT, "$id": f"{type_}.json", **schema}
        for type_, schema in json_schemas().items()
    }


def _key(type_: str) -> str:
    """An AsyncAPI component key (no dots) for a message type."""
    return type_.replace(".", "_")


def _headers_schema() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1, "maxLength": 128}
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes as AMQP headers (binary content mode).",
        "required": ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-subject"],
        "properties": {
            "ce-specversion": {"type": "string", "const": "1.0"},
            "ce-id": {**text, "description": "= the AMQP message_id"},
            "ce-source": {**text, "maxLength": 256, "description": "who sent it (a URI-ref)"},
            "ce-type": {**text, "description": "the message type = the routing key"},
            "ce-subject": {
                **text,
                "description": "the cluster id; the consistent-hash key of the engine shards",
            },
            "ce-time": {"type": "string", "format": "date-time"},
            "ce-correlationid": {**text, "description": "= the AMQP correlation_id"},
            "ce-causationid": {**text, "description": "id of the message that caused this one"},
        },
    }


def _channel(type_: str, kind: Kind) -> dict[str, Any]:
    key = _key(type_)
    channel: dict[str, Any] = {
        "address": type_,
        "title": type_,
        "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": EXCHANGE_OF_KIND[kind],
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }
    if kind == "notification":
        channel["address"] = type_ + ".{to_state}.{cluster_id}"
        channel["parameters"] = {
            "to_state": {"enum": _STATES[type_], "description": "the state just entered"},
            "cluster_id": {"description": "the cluster id (DNS-1123 name)"},
        }
    return channel


def _operation(type_: str, kind: Kind, action: str) -> dict[str, Any]:
    key = _key(type_)
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
        "bindings": {
            "amqp": {
                "deliveryMode": 2,
                "mandatory": kind != "notification",  # nobody has to listen to notifications
                "timestamp": True,
                "ack": True,
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _message(type_: str, schema_name: str) -> dict[str, Any]:
    model = REGISTRY[type_]
    return {
        "name": type_,
        "title": type_,
        "summary": (model.__doc__ or type_).strip().splitlines()[0],
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
        "payload": {"$ref": f"#/components/schemas/{schema_name}"},
        "correlationId": {"location": "$message.header#/ce-correlationid"},
        "bindings": {"amqp": {"messageType": type_, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def asyncapi_document(version: str = "0.1.0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the whole message catalog."""
    types = sorted(REGISTRY)
    refs, defs = models_json_schema([(REGISTRY[t], "validation") for t in types], ref_template=_REF)
    schemas: dict[str, Any] = {"CloudEventHeaders": _headers_schema(), **defs["$defs"]}
    names = {t: refs[(REGISTRY[t], "validation")]["$ref"].rsplit("/", 1)[1] for t in types}
    operations: dict[str, Any] = {}
    for t in types:
        for action in _ACTIONS[KINDS[t]]:
            operations[f"{action}_{_key(t)}"] = _operation(t, KINDS[t], action)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "clusterbus",
            "version": version,
            "description": (
                "Kubernetes clusters on OpenStack, event-driven on RabbitMQ. Every message is a"
                " CloudEvents 1.0 event; see docs/integration.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:5672",
                "pathname": "/",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ (vhost /); exchange names carry the topology prefix",
            }
        },
        "channels": {_key(t): _channel(t, KINDS[t]) for t in types},
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": {_key(t): _message(t, names[t]) for t in types},
        },
    }


def render_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def render_asyncapi(document: dict[str, Any]) -> str:
    header = "# Generated by `python -m engine.contract` from engine/messages; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def expected_files(docs: Path = DOCS) -> dict[Path, str]:
    """Every generated file and its content."""
    files = {docs / "schemas" / f"{t}.json": render_schema(s) for t, s in message_schemas().items()}
    files[docs / "asyncapi.yaml"] = render_asyncapi(asyncapi_document())
    return files


def write(docs: Path = DOCS) -> list[Path]:
    """Rewrite the generated files (and drop stale schemas); returns the paths written."""
    files = expected_files(docs)
    (docs / "schemas").mkdir(parents=True, exist_ok=True)
    for stale in set((docs / "schemas").glob("*.json")) - files.keys():
        stale.unlink()
    for path, text in files.items():
        path.write_text(text)
    return sorted(files)


def main() -> int:
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
