"""What is special about the bastion: its name, no user data, and reaching nodes through it.

The bastion is a plain server (server.create with role bastion and bootstrap none: no kubeadm,
no cluster keys), in the bastion security group only, with a floating IP (floatingip.ensure).
Its floating IP is released by server.delete, before the server, and only if it is ours.
"""

from __future__ import annotations

from collections.abc import Mapping

from handlers.base import TerminalError

BASTION_ROLE = "bastion"
DEFAULT_SSH_USER = "ubuntu"


def bastion_machine_id(cluster_id: str) -> str:
    return f"{cluster_id}-bastion"


def is_bastion(cluster_id: str, machine_id: str) -> bool:
    return machine_id == bastion_machine_id(cluster_id)


def check_no_bootstrap(role: str, bootstrap: str) -> None:
    """The bastion boots without user data: asking it to run kubeadm is a caller's bug."""
    if role == BASTION_ROLE and bootstrap != "none":
        raise TerminalError(f"the bastion runs no kubeadm (bootstrap {bootstrap!r} asked)")


def ssh_config(
    cluster_id: str,
    bastion_address: str,
    nodes: Mapping[str, str],
    *,
    user: str = DEFAULT_SSH_USER,
    identity_file: str | None = None,
) -> str:
    """An OpenSSH client config: ``ssh <machine>`` jumps through the bastion (``ssh -J``)."""
    bastion = bastion_machine_id(cluster_id)
    identity = [f"  IdentityFile {identity_file}"] if identity_file else []
    lines = [f"Host {bastion}", f"  HostName {bastion_address}", f"  User {user}", *identity, ""]
    for machine_id, address in sorted(nodes.items()):
        lines += [
            f"Host {machine_id}",
            f"  HostName {address}",
            f"  User {user}",
            f"  ProxyJump {bastion}",
            *identity,
            "",
        ]
    return "\n".join(lines)
