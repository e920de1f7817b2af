"""The simulated Neutron (network v2.0): routes under /network/v2.0 and the cross-service calls.

The work is split by resource (``neutron_networks``, ``neutron_ports``, ``neutron_secgroups``,
``neutron_sgrules``, ``neutron_routers``, ``neutron_floatingips``, ``neutron_misc``, with
``neutron_base`` and ``neutron_ipam`` underneath); this module wires their routes
and re-exports the plain-Python functions that Nova and Octavia call without HTTP.
"""

from __future__ import annotations

from aiohttp import web

from simulator import (
    neutron_floatingips,
    neutron_misc,
    neutron_networks,
    neutron_ports_api,
    neutron_routers,
    neutron_secgroups,
    neutron_subnets,
)
from simulator.core import Cloud
from simulator.neutron_base import EXTERNAL_NETWORK_ID, EXTERNAL_SUBNET_ID
from simulator.neutron_ports import create_port, delete_port, ports_of_device, update_port
from simulator.neutron_secgroups import resolve_security_group
from simulator.neutron_sgrules import ensure_default_group

__all__ = [
    "EXTERNAL_NETWORK_ID",
    "EXTERNAL_SUBNET_ID",
    "create_port",
    "delete_port",
    "ensure_default_group",
    "ports_of_device",
    "resolve_security_group",
    "setup",
    "update_port",
]


def setup(app: web.Application, cloud: Cloud) -> None:
    """Seed the external network and register every Neutron route."""
    neutron_networks.seed_external_network(cloud)
    neutron_misc.setup_routes(app)
    neutron_networks.setup_routes(app)
    neutron_subnets.setup_routes(app)
    neutron_ports_api.setup_routes(app)
    neutron_secgroups.setup_routes(app)
    neutron_routers.setup_routes(app)
    neutron_floatingips.setup_routes(app)
