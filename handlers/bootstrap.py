"""kubeadm cloud-init user data (#cloud-config), written the way CAPI's kubeadm bootstrap does.

- init (first control-plane node): the CA, etcd CA, front-proxy CA and service-account keys,
  ``/run/kubeadm/kubeadm.yaml`` (ClusterConfiguration + InitConfiguration with our bootstrap
  token), then ``kubeadm init``.
- join_control_plane: the same key files + a JoinConfiguration with a ``controlPlane`` section.
- join_worker: no CA keys at all; a JoinConfiguration that pins the CA by its public-key hash.
Success is the sentinel file ``/run/cluster-api/bootstrap-success.complete`` (CAPI's contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from handlers.pki import PkiMaterial

PKI_DIR = "/etc/kubernetes/pki"
INIT_CONFIG = "/run/kubeadm/kubeadm.yaml"
JOIN_CONFIG = "/run/kubeadm/kubeadm-join-config.yaml"
SENTINEL = "/run/cluster-api/bootstrap-success.complete"
DEFAULT_POD_CIDR = "192.168.0.0/16"  # Calico's default, as in CAPO's templates
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"  # kubeadm's default
# The engine cannot refresh tokens inside the workload cluster (CAPI can): a scale-out days later
# must still join, so the token does not expire. It is stored encrypted and never in a message.
TOKEN_TTL = "0s"
INIT, JOIN_CONTROL_PLANE, JOIN_WORKER = "init", "join_control_plane", "join_worker"


@dataclass(frozen=True)
class NodeBootstrap:
    """What one node's user data depends on."""

    kind: str  # init | join_control_plane | join_worker
    cluster: str
    node_name: str
    endpoint_host: str
    kubernetes_version: str
    endpoint_port: int = 6443
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR

    @property
    def endpoint(self) -> str:
        return f"{self.endpoint_host}:{self.endpoint_port}"


def kubeadm_api_version(kubernetes_version: str) -> str:
    """kubeadm.k8s.io/v1beta4 from Kubernetes 1.31 on, v1beta3 before (as CAPI chooses)."""
    minor = int(kubernetes_version.lstrip("v").split(".")[1])
    return "kubeadm.k8s.io/" + ("v1beta4" if minor >= 31 else "v1beta3")


def _file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def _key_files(material: PkiMaterial) -> list[dict[str, str]]:
    """The shared control-plane keys (CAPI: certs 0640, keys 0600)."""
    files: list[dict[str, str]] = []
    pairs = (("ca", material.ca), ("etcd/ca", material.etcd), ("front-proxy-ca", material.proxy))
    for base, pair in pairs:
        files.append(_file(f"{PKI_DIR}/{base}.crt", pair.cert, "0640"))
        files.append(_file(f"{PKI_DIR}/{base}.key", pair.key, "0600"))
    files.append(_file(f"{PKI_DIR}/sa.pub", material.sa.cert, "0640"))
    files.append(_file(f"{PKI_DIR}/sa.key", material.sa.key, "0600"))
    return files


def _node_registration(node: NodeBootstrap) -> dict[str, Any]:
    return {"name": node.node_name, "criSocket": "unix:///var/run/containerd/containerd.sock"}


def _init_documents(node: NodeBootstrap, material: PkiMaterial) -> list[dict[str, Any]]:
    api = kubeadm_api_version(node.kubernetes_version)
    cluster = {
        "apiVersion": api,
        "kind": "ClusterConfiguration",
        "clusterName": node.cluster,
        "kubernetesVersion": node.kubernetes_version,
        "controlPlaneEndpoint": node.endpoint,
        "networking": {"podSubnet": node.pod_cidr, "serviceSubnet": node.service_cidr},
    }
    init = {
        "apiVersion": api,
        "kind": "InitConfiguration",
        "bootstrapTokens": [
            {
                "token": material.token,
                "ttl": TOKEN_TTL,
                "usages": ["signing", "authentication"],
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
            }
        ],
        "nodeRegistration": _node_registration(node),
    }
    return [cluster, init]


def _join_document(node: NodeBootstrap, material: PkiMaterial) -> dict[str, Any]:
    join: dict[str, Any] = {
        "apiVersion": kubeadm_api_version(node.kubernetes_version),
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": node.endpoint,
                "token": material.token,
                "caCertHashes": [material.ca_cert_hash],
            }
        },
        "nodeRegistration": _node_registration(node),
    }
    if node.kind == JOIN_CONTROL_PLANE:
        join["controlPlane"] = {"localAPIEndpoint": {"bindPort": node.endpoint_port}}
    return join


def _run(command: str) -> str:
    return f"{command} && echo success > {SENTINEL}"


PLACEHOLDER = (
    "This placeholder file is used to create the /run/cluster-api sub directory in a way that "
    "is compatible with both Linux and Windows (mkdir -p /run/cluster-api does not work with "
    "Windows)"
)


def _files_and_command(node: NodeBootstrap, material: PkiMaterial) -> tuple[list[Any], str]:
    placeholder = _file("/run/cluster-api/placeholder", PLACEHOLDER, "0640")
    if node.kind == INIT:
        config = yaml.safe_dump_all(_init_documents(node, material))
        files = [*_key_files(material), placeholder, _file(INIT_CONFIG, config, "0640")]
        return files, _run(f"kubeadm init --config {INIT_CONFIG}")
    if node.kind in (JOIN_CONTROL_PLANE, JOIN_WORKER):
        keys = _key_files(material) if node.kind == JOIN_CONTROL_PLANE else []
        join = yaml.safe_dump(_join_document(node, material))
        files = [*keys, placeholder, _file(JOIN_CONFIG, join, "0640")]
        return files, _run(f"kubeadm join --config {JOIN_CONFIG}")
    raise ValueError(f"no kubeadm user data for bootstrap kind {node.kind!r}")


def cloud_config(node: NodeBootstrap, material: PkiMaterial) -> str:
    """The ``#cloud-config`` user data for ``node``."""
    files, command = _files_and_command(node, material)
    document = {"write_files": files, "runcmd": [command]}
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)
