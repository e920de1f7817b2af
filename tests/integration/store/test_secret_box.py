"""SecretBox (AES-256-GCM) and key loading from Settings, including the key file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import SecretStr

from engine.settings import Settings
from engine.store import SecretBox, UnknownKey, load_secret_box
from engine.store.crypto import key_id_of

OLD, NEW = bytes(32), bytes(range(32))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def settings(tmp_path: Path, secret_key: str | None = None) -> Settings:
    return Settings(
        secret_key=SecretStr(secret_key) if secret_key else None,
        secret_key_file=tmp_path / "clusterbus.key",
    )


def test_seal_open_round_trip_uses_fresh_nonces() -> None:
    box = SecretBox(NEW, "k1")
    first = box.seal(b"kubeconfig", b"demo/admin")
    second = box.seal(b"kubeconfig", b"demo/admin")
    assert first[0] == "k1" and first[1] != second[1] and first[2] != second[2]
    assert box.open(*first, b"demo/admin") == b"kubeconfig"
    assert b"kubeconfig" not in first[2]


def test_tampering_and_wrong_aad_are_detected() -> None:
    box = SecretBox(NEW, "k1")
    key_id, nonce, ct = box.seal(b"secret", b"a")
    with pytest.raises(InvalidTag):
        box.open(key_id, nonce, ct, b"b")
    with pytest.raises(InvalidTag):
        box.open(key_id, nonce, bytes([ct[0] ^ 1]) + ct[1:], b"a")
    with pytest.raises(UnknownKey):
        box.open("nope", nonce, ct, b"a")


def test_rotation_seals_with_the_first_key_and_opens_with_all() -> None:
    sealed_old = SecretBox.from_keys([OLD]).seal(b"v1", b"x")
    rotated = SecretBox.from_keys([NEW, OLD])
    assert rotated.open(*sealed_old, b"x") == b"v1"
    assert rotated.seal(b"v2", b"x")[0] == key_id_of(NEW) != key_id_of(OLD)
    assert "key" in repr(rotated) and b64(NEW) not in repr(rotated)


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        SecretBox(b"short", "k")
    with pytest.raises(ValueError):
        SecretBox.from_keys([])


def test_settings_secret_key_takes_precedence(tmp_path: Path) -> None:
    box = load_secret_box(settings(tmp_path, f"{b64(NEW)}, {b64(OLD)}"))
    assert box.key_id == key_id_of(NEW)
    assert box.open(*SecretBox.from_keys([OLD]).seal(b"p", b""), b"") == b"p"
    assert not (tmp_path / "clusterbus.key").exists()
    with pytest.raises(ValueError):
        load_secret_box(settings(tmp_path, "not base64!"))
    with pytest.raises(ValueError):
        load_secret_box(settings(tmp_path, b64(b"16 bytes only!!!")))


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    first = load_secret_box(settings(tmp_path))
    path = tmp_path / "clusterbus.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    again = load_secret_box(settings(tmp_path))
    assert again.key_id == first.key_id
    assert again.open(*first.seal(b"ca", b"demo/ca"), b"demo/ca") == b"ca"


def test_key_file_with_rotation_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "clusterbus.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"# current key first\n{b64(NEW)}\n{b64(OLD)}\n")
    box = load_secret_box(settings(tmp_path))
    assert box.key_id == key_id_of(NEW)
    assert box.open(*SecretBox.from_keys([OLD]).seal(b"p", b"a"), b"a") == b"p"
