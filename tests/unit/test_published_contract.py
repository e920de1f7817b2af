"""The published contract: generated files are up to date and valid AsyncAPI 3.0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.contract import DOCS, asyncapi_document, expected_files, write
from engine.messages.registry import REGISTRY

ASYNCAPI_SCHEMA = Path(__file__).parents[1] / "support" / "data" / "asyncapi-3.0.0.schema.json"


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text()))


def test_generated_files_match_the_models() -> None:
    stale = [
        str(path.relative_to(DOCS))
        for path, text in expected_files().items()
        if not path.exists() or path.read_text() != text
    ]
    assert stale == [], "run `python -m engine.contract` and commit the result"
    on_disk = {p.name for p in (DOCS / "schemas").glob("*.json")}
    assert on_disk == {f"{t}.json" for t in REGISTRY}


def test_write_creates_every_file(tmp_path: Path) -> None:
    written = write(tmp_path)
    assert len(written) == len(REGISTRY) + 1
    assert (tmp_path / "schemas" / "cluster.create.json").exists()


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    document = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]
    assert errors == []


def test_the_validator_rejects_a_broken_document() -> None:
    document = asyncapi_document()
    document["channels"]["cluster_create"]["bindings"]["amqp"]["is"] = "topic"
    assert not validator().is_valid(document)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_every_reference_resolves() -> None:
    document = asyncapi_document()
    for ref in set(_refs(document)):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # KeyError names the dangling reference
        assert node, ref


@pytest.mark.parametrize("type_", ["cluster.create", "server.active", "cluster.state_changed"])
def test_message_has_payload_headers_and_exchange(type_: str) -> None:
    document = asyncapi_document()
    key = type_.replace(".", "_")
    message = document["components"]["messages"][key]
    assert message["headers"] == {"$ref": "#/components/schemas/CloudEventHeaders"}
    assert message["payload"]["$ref"].startswith("#/components/schemas/")
    exchange = document["channels"][key]["bindings"]["amqp"]["exchange"]["name"]
    assert exchange.startswith("clusterbus.")


def test_cloudevent_headers_require_the_subject() -> None:
    headers = asyncapi_document()["components"]["schemas"]["CloudEventHeaders"]
    assert "ce-subject" in headers["required"]
