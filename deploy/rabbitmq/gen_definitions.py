"""Write deploy/rabbitmq/definitions.json from the engine's own topology table.

    python deploy/rabbitmq/gen_definitions.py [--shards 4] [--queue-type quorum] [-o PATH]

RabbitMQ imports the file at boot (``load_definitions`` in rabbitmq.conf): the vhost, the users
and their permissions, a policy, and every exchange, queue and binding exactly as
``engine.bus.topology.build_topology`` declares them, so the engine's own declarations at start
are no-ops and a queue argument mismatch (PRECONDITION_FAILED) cannot happen.

The users get the development passwords below (salted with a fixed salt, so the file is
reproducible); change them on any real broker: ``rabbitmqctl change_password engine ...``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from engine.bus.topology import Topology, build_topology
from engine.settings import QueueType, Settings

VHOST = "/clusterbus"
PREFIX = "clusterbus"
DEFAULT_SHARDS = 4
DEFAULT_QUEUE_TYPE = QueueType.QUORUM
OUT = Path(__file__).with_name("definitions.json")
HASHING = "rabbit_password_hashing_sha256"

# user -> (development password, tags). The producer is what a client (CLI, UI) logs in as.
DEV_USERS: dict[str, tuple[str, list[str]]] = {
    "admin": ("admin-dev-password", ["administrator"]),
    "engine": ("engine-dev-password", []),
    "handlers": ("handlers-dev-password", []),
    "producer": ("producer-dev-password", []),
}


def permissions(prefix: str) -> dict[str, dict[str, str]]:
    """configure/write/read regexes per user (RabbitMQ matches them against resource names)."""
    own = rf"^{prefix}\..*"
    # Server-named reply queues (amq.gen-*) and the producer's own named queues.
    private = r"amq\.gen-.*|producer\..*"
    return {
        "admin": {"configure": ".*", "write": ".*", "read": ".*"},
        # Both roles declare the whole topology at start (idempotent), hence configure.
        "engine": {"configure": own, "write": own, "read": own},
        "handlers": {"configure": own, "write": own, "read": own},
        # Publishes commands only; reads notifications through its own queues.
        "producer": {
            "configure": rf"^({private})$",
            "write": rf"^({prefix}\.commands|{private})$",
            "read": rf"^({prefix}\.notifications|{private})$",
        },
    }


def password_hash(password: str, salt: bytes) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def _salt(user: str) -> bytes:
    return hashlib.sha256(b"clusterbus-dev-salt:" + user.encode()).digest()[:4]


def topology_settings(shards: int, queue_type: QueueType) -> Settings:
    """Settings with every topology-shaping field explicit, whatever the environment says."""
    defaults = Settings.model_fields
    return Settings(
        topology_prefix=PREFIX,
        shards=shards,
        queue_type=queue_type,
        delivery_limit=defaults["delivery_limit"].default,
        delay_levels_ms=defaults["delay_levels_ms"].default,
    )


def _entities(topology: Topology, vhost: str) -> dict[str, list[dict[str, Any]]]:
    exchanges = [
        {
            "name": e.name,
            "vhost": vhost,
            "type": e.type,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": dict(e.arguments),
        }
        for e in topology.exchanges
    ]
    queues = [
        {
            "name": q.name,
            "vhost": vhost,
            "durable": True,
            "auto_delete": False,
            "arguments": dict(q.arguments),
        }
        for q in topology.queues
    ]
    bindings = [
        {
            "source": b.source,
            "vhost": vhost,
            "destination": b.destination,
            "destination_type": "exchange" if b.to_exchange else "queue",
            "routing_key": b.routing_key,
            "arguments": dict(b.arguments),
        }
        for b in topology.bindings
    ]
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def definitions(
    shards: int = DEFAULT_SHARDS, queue_type: QueueType = DEFAULT_QUEUE_TYPE
) -> dict[str, Any]:
    """The whole definitions document."""
    topology = build_topology(topology_settings(shards, queue_type))
    users = [
        {
            "name": name,
            "password_hash": password_hash(password, _salt(name)),
            "hashing_algorithm": HASHING,
            "tags": tags,
        }
        for name, (password, tags) in DEV_USERS.items()
    ]
    perms = [{"user": user, "vhost": VHOST, **p} for user, p in permissions(PREFIX).items()]
    # Poison messages are kept for inspection, but not without bound: the newest million stay.
    policy = {
        "vhost": VHOST,
        "name": f"{PREFIX}-dead-letter-bound",
        "pattern": rf"^{PREFIX}\.dead-letter$",
        "apply-to": "queues",
        "definition": {"max-length": 1_000_000},
        "priority": 0,
    }
    return {
        "rabbit_version": "3.10.0",
        "users": users,
        "vhosts": [{"name": VHOST}],
        "permissions": perms,
        "policies": [policy],
        **_entities(topology, VHOST),
    }


def render(shards: int = DEFAULT_SHARDS, queue_type: QueueType = DEFAULT_QUEUE_TYPE) -> str:
    return json.dumps(definitions(shards, queue_type), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS)
    parser.add_argument("--queue-type", type=QueueType, default=DEFAULT_QUEUE_TYPE)
    parser.add_argument("-o", "--output", default=str(OUT), help="path, or - for stdout")
    args = parser.parse_args(argv)
    text = render(args.shards, args.queue_type)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
