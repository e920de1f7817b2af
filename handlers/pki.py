"""The cluster's PKI: CAs, service-account keys, bootstrap token, admin kubeconfig (pki.ensure).

Keys are RSA-2048, like kubeadm's and Cluster API's default: every supported Kubernetes release
(1.28-1.33) and every kubeadm config version accepts them (ECDSA CAs need kubeadm v1beta4 to
keep leaf keys consistent), and the cost, about 5 key generations per cluster, is paid once and
off the event loop. Certificates follow CAPI (util/certs): CN ``kubernetes`` (etcd-ca,
front-proxy-ca), IsCA, NotBefore now-5 min, 10 years; the admin client cert lives 1 year.

Secrets (names in the store): ``ca``, ``etcd``, ``proxy``, ``sa`` as JSON {"tls.crt", "tls.key"}
of PEM text (sa: public key in tls.crt, like CAPI); ``bootstrap-token`` as text; ``kubeconfig``
as YAML. Nothing secret ever goes into an event.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import secrets as random
import string
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from handlers.base import Deps, Event, Handler, Reply, SecretStore

CA_NAMES = {"ca": "kubernetes", "etcd": "etcd-ca", "proxy": "front-proxy-ca"}
CA_VALIDITY = dt.timedelta(days=3650)
CLIENT_VALIDITY = dt.timedelta(days=365)
CLOCK_SKEW = dt.timedelta(minutes=5)
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
KUBECONFIG_SECRET = "kubeconfig"
TOKEN_SECRET = "bootstrap-token"


@dataclass(frozen=True)
class CertKey:
    """A certificate (or, for sa, a public key) and its private key, both PEM text."""

    cert: str
    key: str

    def to_bytes(self) -> bytes:
        return json.dumps({"tls.crt": self.cert, "tls.key": self.key}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CertKey:
        data = json.loads(raw)
        return cls(cert=data["tls.crt"], key=data["tls.key"])


@dataclass(frozen=True)
class PkiMaterial:
    """Everything a control-plane node needs from us (and a worker needs a part of)."""

    ca: CertKey
    etcd: CertKey
    proxy: CertKey
    sa: CertKey
    token: str

    @property
    def ca_cert_hash(self) -> str:
        return ca_cert_hash(self.ca.cert)


# ---- pure generation ----------------------------------------------------------------------------
def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """DigitalSignature | KeyEncipherment (+ CertSign for a CA)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def new_ca(common_name: str, now: dt.datetime | None = None) -> CertKey:
    """A self-signed CA: CertSign | DigitalSignature | KeyEncipherment, 10 years."""
    now = now or dt.datetime.now(dt.UTC)
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = _key_usage(cert_sign=True)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert=_cert_pem(cert), key=_key_pem(key))


def new_service_account_keys() -> CertKey:
    """The service-account signing key pair (public key PEM in ``cert``, like CAPI's tls.crt)."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CertKey(cert=public.decode(), key=_key_pem(key))


def new_bootstrap_token() -> str:
    """A kubeadm bootstrap token ``[a-z0-9]{6}.[a-z0-9]{16}``."""
    pick = "".join(random.choice(TOKEN_ALPHABET) for _ in range(22))
    return f"{pick[:6]}.{pick[6:]}"


def ca_cert_hash(cert_pem: str) -> str:
    """kubeadm's discovery hash: ``sha256:`` + hex SHA-256 of the CA's SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _client_cert(ca: CertKey, now: dt.datetime) -> CertKey:
    """kubernetes-admin / system:masters, ClientAuth, signed by the cluster CA, 1 year."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.encode())
    ca_key = serialization.load_pem_private_key(ca.key.encode(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise ValueError("the cluster CA key is not an RSA key")
    key = _new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-admin"),
        ]
    )
    usage = _key_usage(cert_sign=False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CLIENT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return CertKey(cert=_cert_pem(cert), key=_key_pem(key))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def admin_kubeconfig(
    material: PkiMaterial, cluster: str, endpoint: str, *, port: int = 6443
) -> bytes:
    """The admin kubeconfig for ``https://<endpoint>:<port>`` with a fresh client certificate."""
    client = _client_cert(material.ca, dt.datetime.now(dt.UTC))
    user, context = f"{cluster}-admin", f"{cluster}-admin@{cluster}"
    server = f"https://{endpoint}:{port}"
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": _b64(material.ca.cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert),
                    "client-key-data": _b64(client.key),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    return yaml.safe_dump(document, sort_keys=False).encode()


# ---- stored material ----------------------------------------------------------------------------
def _generate(name: str) -> bytes:
    if name in CA_NAMES:
        return new_ca(CA_NAMES[name]).to_bytes()
    if name == "sa":
        return new_service_account_keys().to_bytes()
    return new_bootstrap_token().encode()


async def _get_or_create(store: SecretStore, cluster_id: str, name: str) -> bytes:
    """The stored secret, else a new one; the first writer wins if two runs race."""
    stored = await store.get(cluster_id, name)
    if stored is not None:
        return stored
    fresh = await asyncio.to_thread(_generate, name)  # RSA key generation: keep the loop free
    return await store.put_if_absent(cluster_id, name, fresh)


async def ensure_material(store: SecretStore, cluster_id: str) -> PkiMaterial:
    """Load the cluster's PKI, generating (once) whatever is missing."""
    raw = {
        name: await _get_or_create(store, cluster_id, name)
        for name in (*CA_NAMES, "sa", TOKEN_SECRET)
    }
    return PkiMaterial(
        ca=CertKey.from_bytes(raw["ca"]),
        etcd=CertKey.from_bytes(raw["etcd"]),
        proxy=CertKey.from_bytes(raw["proxy"]),
        sa=CertKey.from_bytes(raw["sa"]),
        token=raw[TOKEN_SECRET].decode(),
    )


async def ensure_kubeconfig(
    store: SecretStore, cluster_id: str, material: PkiMaterial, endpoint: str
) -> bytes:
    """The stored admin kubeconfig, created for ``endpoint`` if there is none yet."""
    stored = await store.get(cluster_id, KUBECONFIG_SECRET)
    if stored is not None:
        return stored
    config = await asyncio.to_thread(admin_kubeconfig, material, cluster_id, endpoint)
    return await store.put_if_absent(cluster_id, KUBECONFIG_SECRET, config)


# ---- handlers -----------------------------------------------------------------------------------
async def handle_pki_ensure(task: dict[str, Any], deps: Deps) -> Reply:
    await ensure_material(deps.secrets, task["cluster_id"])
    return Reply.done(Event("pki.ready", {"cluster_id": task["cluster_id"]}))


async def handle_pki_delete(task: dict[str, Any], deps: Deps) -> Reply:
    await deps.secrets.delete_all(task["cluster_id"])
    return Reply.done(Event("pki.deleted", {"cluster_id": task["cluster_id"]}))


HANDLERS: dict[str, Handler] = {
    "pki.ensure": handle_pki_ensure,
    "pki.delete": handle_pki_delete,
}
