"""PKI material, the admin kubeconfig and kubeadm user data: parsed and checked, no cloud needed."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.messages.registry import kind_of
from handlers import bastion, compute, pki
from handlers.base import Deps
from handlers.bootstrap import (
    INIT,
    JOIN_CONTROL_PLANE,
    JOIN_WORKER,
    SENTINEL,
    NodeBootstrap,
    cloud_config,
    kubeadm_api_version,
)
from handlers.pki import CertKey, PkiMaterial

TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")


class MemorySecrets:
    """In-memory SecretStore that counts writes."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], bytes] = {}
        self.puts = 0

    async def get(self, cluster_id: str, name: str) -> bytes | None:
        return self.data.get((cluster_id, name))

    async def put_if_absent(self, cluster_id: str, name: str, value: bytes) -> bytes:
        self.puts += 1
        return self.data.setdefault((cluster_id, name), value)

    async def delete_all(self, cluster_id: str) -> None:
        self.data = {k: v for k, v in self.data.items() if k[0] != cluster_id}


class NoClouds:
    async def run(self, cloud: str, fn: Any, *args: Any) -> Any:
        raise AssertionError("PKI work must not touch a cloud")


@pytest.fixture(scope="module")
def material() -> PkiMaterial:
    return PkiMaterial(
        ca=pki.new_ca("kubernetes"),
        etcd=pki.new_ca("etcd-ca"),
        proxy=pki.new_ca("front-proxy-ca"),
        sa=pki.new_service_account_keys(),
        token=pki.new_bootstrap_token(),
    )


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _cn(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


# ---- PKI ----------------------------------------------------------------------------------------
def test_ca_is_self_signed_ca_with_capi_shape(material: PkiMaterial) -> None:
    now = dt.datetime.now(dt.UTC)
    for pair, cn in (
        (material.ca, "kubernetes"),
        (material.etcd, "etcd-ca"),
        (material.proxy, "front-proxy-ca"),
    ):
        cert = _cert(pair.cert)
        assert _cn(cert.subject) == cn and cert.issuer == cert.subject
        cert.verify_directly_issued_by(cert)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.digital_signature and usage.key_encipherment
        skew = now - cert.not_valid_before_utc
        assert dt.timedelta(minutes=4) < skew < dt.timedelta(minutes=6)
        assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 3650
        key = serialization.load_pem_private_key(pair.key.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_token_and_ca_hash_formats(material: PkiMaterial) -> None:
    tokens = {pki.new_bootstrap_token() for _ in range(50)}
    assert len(tokens) == 50 and all(TOKEN.match(t) for t in tokens)
    spki = (
        _cert(material.ca.cert)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert material.ca_cert_hash == "sha256:" + hashlib.sha256(spki).hexdigest()


def test_service_account_public_key_matches_private(material: PkiMaterial) -> None:
    public = serialization.load_pem_public_key(material.sa.cert.encode())
    private = serialization.load_pem_private_key(material.sa.key.encode(), password=None)
    assert isinstance(public, rsa.RSAPublicKey) and isinstance(private, rsa.RSAPrivateKey)
    assert public.public_numbers() == private.public_key().public_numbers()


def test_admin_kubeconfig(material: PkiMaterial) -> None:
    config = yaml.safe_load(pki.admin_kubeconfig(material, "demo", "127.100.0.7"))
    assert config["current-context"] == "demo-admin@demo"
    (cluster,) = config["clusters"]
    assert cluster["name"] == "demo"
    assert cluster["cluster"]["server"] == "https://127.100.0.7:6443"
    ca_data = base64.b64decode(cluster["cluster"]["certificate-authority-data"]).decode()
    assert ca_data == material.ca.cert
    (user,) = config["users"]
    assert user["name"] == "demo-admin"
    client = _cert(base64.b64decode(user["user"]["client-certificate-data"]).decode())
    client.verify_directly_issued_by(_cert(material.ca.cert))
    assert _cn(client.subject) == "kubernetes-admin"
    org = client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert org == "system:masters"
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert 364 <= (client.not_valid_after_utc - dt.datetime.now(dt.UTC)).days <= 366
    (context,) = config["contexts"]
    assert context == {
        "name": "demo-admin@demo",
        "context": {"cluster": "demo", "user": "demo-admin"},
    }


async def test_pki_ensure_generates_once_and_event_has_no_secret() -> None:
    store = MemorySecrets()
    deps = Deps(clouds=NoClouds(), secrets=store)
    reply = await pki.handle_pki_ensure({"cluster_id": "c1", "cloud": "demo"}, deps)
    assert [e.type for e in reply.events] == ["pki.ready"]
    assert reply.events[0].data == {"cluster_id": "c1"} and reply.retry_after_ms is None
    names = {name for _, name in store.data}
    assert names == {"ca", "etcd", "proxy", "sa", "bootstrap-token"}
    assert set(json.loads(store.data[("c1", "ca")])) == {"tls.crt", "tls.key"}
    before, puts = dict(store.data), store.puts
    await pki.handle_pki_ensure({"cluster_id": "c1", "cloud": "demo"}, deps)
    assert store.data == before and store.puts == puts  # nothing generated twice
    stored = await pki.ensure_material(store, "c1")
    assert stored.ca == CertKey.from_bytes(before[("c1", "ca")])
    deleted = await pki.handle_pki_delete({"cluster_id": "c1"}, deps)
    assert [e.type for e in deleted.events] == ["pki.deleted"] and store.data == {}


async def test_first_writer_wins_when_runs_race() -> None:
    store = MemorySecrets()
    store.data[("c2", "bootstrap-token")] = b"abcdef.0123456789abcdef"
    material = await pki.ensure_material(store, "c2")
    assert material.token == "abcdef.0123456789abcdef"
    first = await pki.ensure_kubeconfig(store, "c2", material, "127.100.0.9")
    again = await pki.ensure_kubeconfig(store, "c2", material, "127.100.0.10")
    assert again == first and b"https://127.100.0.9:6443" in first


# ---- bootstrap ----------------------------------------------------------------------------------
def _user_data(material: PkiMaterial, kind: str, version: str = "v1.30.2") -> dict[str, Any]:
    node = NodeBootstrap(kind, "demo", f"demo-{kind}-0", "127.100.0.7", version)
    text = cloud_config(node, material)
    assert text.startswith("#cloud-config\n")
    encoded = base64.b64encode(text.encode())
    assert len(encoded) < 64 * 1024  # Nova's user_data limit is on the base64 text
    parsed: dict[str, Any] = yaml.safe_load(text)
    return parsed


def _paths(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {f["path"]: f for f in document["write_files"]}


CP_KEYS = {
    "/etc/kubernetes/pki/ca.key",
    "/etc/kubernetes/pki/etcd/ca.key",
    "/etc/kubernetes/pki/front-proxy-ca.key",
    "/etc/kubernetes/pki/sa.key",
}


def test_init_user_data(material: PkiMaterial) -> None:
    document = _user_data(material, INIT)
    files = _paths(document)
    assert set(files) >= CP_KEYS and "/etc/kubernetes/pki/sa.pub" in files
    assert all(files[k]["permissions"] == "0600" for k in CP_KEYS)
    assert files["/etc/kubernetes/pki/ca.key"]["content"] == material.ca.key
    cluster, init = yaml.safe_load_all(files["/run/kubeadm/kubeadm.yaml"]["content"])
    assert cluster["kind"] == "ClusterConfiguration"
    assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert cluster["controlPlaneEndpoint"] == "127.100.0.7:6443"
    assert cluster["kubernetesVersion"] == "v1.30.2"
    assert set(cluster["networking"]) == {"podSubnet", "serviceSubnet"}
    assert init["kind"] == "InitConfiguration"
    assert init["bootstrapTokens"][0]["token"] == material.token
    (command,) = document["runcmd"]
    assert command.startswith("kubeadm init --config /run/kubeadm/kubeadm.yaml && ")
    assert command.endswith(f"echo success > {SENTINEL}")


def test_control_plane_join_user_data(material: PkiMaterial) -> None:
    document = _user_data(material, JOIN_CONTROL_PLANE, "v1.31.0")
    files = _paths(document)
    assert set(files) >= CP_KEYS
    join = yaml.safe_load(files["/run/kubeadm/kubeadm-join-config.yaml"]["content"])
    assert join["kind"] == "JoinConfiguration" and "controlPlane" in join
    assert join["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    token = join["discovery"]["bootstrapToken"]
    assert token == {
        "apiServerEndpoint": "127.100.0.7:6443",
        "token": material.token,
        "caCertHashes": [material.ca_cert_hash],
    }
    (command,) = document["runcmd"]
    assert "kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml" in command
    assert "kubeadm init" not in yaml.safe_dump(document)


def test_worker_join_user_data_has_no_keys(material: PkiMaterial) -> None:
    document = _user_data(material, JOIN_WORKER)
    files = _paths(document)
    assert not [p for p in files if p.startswith("/etc/kubernetes/pki/")]
    text = yaml.safe_dump(document)
    for secret in (material.ca.key, material.etcd.key, material.proxy.key, material.sa.key):
        assert secret.strip().splitlines()[1] not in text
    join = yaml.safe_load(files["/run/kubeadm/kubeadm-join-config.yaml"]["content"])
    assert "controlPlane" not in join
    assert join["discovery"]["bootstrapToken"]["caCertHashes"] == [material.ca_cert_hash]
    assert document["runcmd"][0].startswith("kubeadm join ")


def test_kubeadm_api_version_by_release() -> None:
    assert kubeadm_api_version("v1.28.9").endswith("v1beta3")
    assert kubeadm_api_version("v1.33.0").endswith("v1beta4")


# ---- bastion ------------------------------------------------------------------------------------
def test_ssh_config_jumps_through_bastion() -> None:
    text = bastion.ssh_config("demo", "127.100.0.5", {"demo-control-plane-0": "10.6.0.11"})
    assert "Host demo-bastion\n  HostName 127.100.0.5" in text
    assert (
        "Host demo-control-plane-0\n  HostName 10.6.0.11\n  User ubuntu\n  ProxyJump demo-bastion"
        in text
    )
    with pytest.raises(Exception, match="no kubeadm"):
        bastion.check_no_bootstrap("bastion", "init")


# ---- handler tables -----------------------------------------------------------------------------
def test_handler_tables_cover_catalog_tasks() -> None:
    tables = {**compute.HANDLERS, **pki.HANDLERS}
    assert set(tables) == {
        "server.create",
        "server.poll",
        "server.delete",
        "pki.ensure",
        "pki.delete",
    }
    assert all(kind_of(task_type) == "task" for task_type in tables)
