"""Stateless OpenStack handlers: one module per service area, one dispatch table here.

``TASK_HANDLERS`` maps every task type to the one handler that performs it.
"""

from handlers import compute, loadbalancer, network, pki, security_groups
from handlers.base import Handler

TASK_HANDLERS: dict[str, Handler] = {
    **network.HANDLERS,
    **security_groups.HANDLERS,
    **loadbalancer.HANDLERS,
    **compute.HANDLERS,
    **pki.HANDLERS,
}
