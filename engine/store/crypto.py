"""AES-256-GCM for the secrets table, with key rotation by key id.

Keys are base64 strings. Settings give either ``secret_key`` (one key, or several separated by
commas/whitespace) or ``secret_key_file`` (one key per line; created with mode 0600 and a fresh
random key if missing). The first key seals; every listed key opens, so rotating means putting
a new key first and keeping the old ones until their secrets are re-sealed. A key's id is
derived from the key itself, so rows name the key that sealed them without any configuration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine.settings import Settings

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12  # the GCM standard nonce; random nonces are safe far beyond our volumes


class UnknownKey(KeyError):
    """A secret was sealed with a key id that is not configured any more."""


def key_id_of(key: bytes) -> str:
    """A stable, non-secret name for a key (truncated SHA-256 of the key)."""
    return hashlib.sha256(b"clusterbus-key-id:" + key).hexdigest()[:16]


class SecretBox:
    """Seals with one current key; opens with it or any older key, found by key id."""

    def __init__(self, key: bytes, key_id: str, older: Mapping[str, bytes] | None = None) -> None:
        for candidate in (key, *(older or {}).values()):
            if len(candidate) != KEY_BYTES:
                raise ValueError(f"AES-256 keys are {KEY_BYTES} bytes, got {len(candidate)}")
        self.key_id = key_id
        self._ciphers = {kid: AESGCM(k) for kid, k in (older or {}).items()}
        self._ciphers[key_id] = AESGCM(key)

    @classmethod
    def from_keys(cls, keys: Sequence[bytes]) -> SecretBox:
        """The first key seals; all open. Key ids derive from the keys."""
        if not keys:
            raise ValueError("at least one key is needed")
        return cls(keys[0], key_id_of(keys[0]), {key_id_of(k): k for k in keys[1:]})

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes, bytes]:
        """(key_id, nonce, ciphertext); ``aad`` (e.g. b"cluster/name") binds it to its row."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self.key_id, nonce, self._ciphers[self.key_id].encrypt(nonce, plaintext, aad)

    def open(self, key_id: str, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext; raises ``UnknownKey`` or cryptography's ``InvalidTag`` on tampering."""
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKey(key_id)
        return cipher.decrypt(nonce, ciphertext, aad)

    def __repr__(self) -> str:  # never show key material
        return f"SecretBox(key_id={self.key_id!r}, keys={len(self._ciphers)})"


def parse_keys(text: str) -> list[bytes]:
    """Base64 keys separated by commas, whitespace or newlines; ``#`` starts a comment line."""
    lines = (line for line in text.splitlines() if not line.lstrip().startswith("#"))
    tokens = [t for t in re.split(r"[\s,]+", "\n".join(lines)) if t]
    keys: list[bytes] = []
    for token in tokens:
        try:
            key = base64.b64decode(token, validate=True)
        except binascii.Error:
            raise ValueError("secret key is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"secret key must decode to {KEY_BYTES} bytes, got {len(key)}")
        keys.append(key)
    if not keys:
        raise ValueError("no secret key found")
    return keys


def load_secret_box(settings: Settings) -> SecretBox:
    """The SecretBox from ``secret_key``, else from ``secret_key_file`` (created if absent)."""
    if settings.secret_key is not None:
        return SecretBox.from_keys(parse_keys(settings.secret_key.get_secret_value()))
    return SecretBox.from_keys(parse_keys(_read_or_create(settings.secret_key_file)))


def _read_or_create(path: Path) -> str:
    """The key file's text; a missing file is created with mode 0600.

    The key is written to a private temporary file first and then hard-linked into place, so a
    concurrent reader never sees a half-written file and two creators agree on one key.
    """
    if not path.exists():
        key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n"
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(key)
            os.link(tmp, path)
            log.info("created a new secret key file %s", path)
        except FileExistsError:
            pass  # another process won the race: use its key
        finally:
            tmp.unlink()
    mode = path.stat().st_mode & 0o077
    if mode:
        log.warning("secret key file %s is readable by group/others (mode %o)", path, mode)
    return path.read_text()
