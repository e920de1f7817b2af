"""Every task the state machines emit validates against the engine's message models."""

from __future__ import annotations

import json

import pytest
from sm_support import Driver, answer, make_spec

pytest.importorskip("engine.messages.registry")
from engine.messages.registry import model_for


def test_emitted_tasks_and_fake_events_match_the_catalog() -> None:
    spec = make_spec(cp=3, workers={"md": 2, "big": 1}, bastion=True)
    spec_model = model_for("cluster.create")
    spec_model.model_validate({"spec": spec})  # the fixture spec itself is a valid ClusterSpec
    driver = Driver()
    driver.create(spec)
    driver.run()
    driver.send("cluster.scale", {"workers": {"md": 3}, "control_plane_replicas": 1})
    driver.run()
    driver.send("cluster.delete", {})
    driver.run()
    emitted = driver.emitted()
    assert {e.type for e in emitted} >= {"server.create", "member.delete", "pki.delete"}
    for emit in emitted:
        # As the engine sees them after a trip through the store (JSON).
        model_for(emit.type).model_validate(json.loads(json.dumps(emit.data)))
        for kind, data in answer(emit):
            model_for(kind).model_validate(json.loads(json.dumps(data)))
