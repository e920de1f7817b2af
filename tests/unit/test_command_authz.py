"""Command authorization by the AMQP user_id property."""

from __future__ import annotations

from typing import Any

import pytest

from engine.authz import CommandPolicy, amqp_user, authorizing_decoder
from engine.messages import Unauthorized
from engine.messages.envelope import Envelope, envelope_for
from engine.settings import Settings

DELETE = envelope_for("cluster.delete", "demo", {}, source="tests")
EVENT = envelope_for("pki.ready", "demo", {"cluster_id": "demo"}, source="tests")


def policy() -> CommandPolicy:
    return CommandPolicy({"cluster.delete": ["ops"], "*": ["portal"]}, engine_user="clusterbus")


@pytest.mark.parametrize("user", ["ops", "portal", "clusterbus"])
def test_listed_users_and_the_engine_may_send(user: str) -> None:
    policy().check(DELETE, user)


@pytest.mark.parametrize("user", [None, "", "mallory"])
def test_missing_or_unlisted_user_is_unauthorized(user: str | None) -> None:
    with pytest.raises(Unauthorized, match=r"cluster\.delete"):
        policy().check(DELETE, user)


def test_only_commands_are_checked() -> None:
    policy().check(EVENT, None)


def test_per_type_lists_do_not_leak_to_other_types() -> None:
    scale = envelope_for("cluster.retry", "demo", {}, source="tests")
    with pytest.raises(Unauthorized):
        policy().check(scale, "ops")


def test_amqp_user_from_url() -> None:
    assert amqp_user("amqp://svc%40x:pw@127.0.0.1:5672/") == "svc@x"
    assert amqp_user("amqp://127.0.0.1/") == "guest"


def test_default_settings_allow_only_the_engine_user() -> None:
    default = CommandPolicy.from_settings(Settings())
    assert default.allowed("cluster.create") == {"guest"}


def test_decoder_wrapper_checks_the_user_id_property() -> None:
    def decode(body: bytes, properties: dict[str, Any]) -> Envelope:
        return DELETE

    wrapped = authorizing_decoder(decode, policy())
    assert wrapped(b"", {"user_id": "ops"}) is DELETE
    with pytest.raises(Unauthorized):
        wrapped(b"", {"user_id": None})
