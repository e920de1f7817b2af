"""Shrinking the shard count leaves bound queues nobody consumes: the bus says so at declare."""

from __future__ import annotations

import pytest
from bushelpers import bus_settings

from engine.bus import Bus

pytestmark = pytest.mark.rabbitmq


async def test_declare_reports_shard_queues_left_by_a_larger_shard_count() -> None:
    wide = bus_settings(shards=4)
    narrow = wide.model_copy(update={"shards": 2})
    first, second = Bus(wide), Bus(narrow)
    try:
        await first.declare()
        assert first.stale_shards == []
        await second.declare()
        assert second.stale_shards == [wide.topology_prefix + f".engine.shard.{k}" for k in (2, 3)]
    finally:
        await first.delete_topology()
