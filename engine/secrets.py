"""The handlers' SecretStore over the store's secrets table, sealed with AES-GCM.

The additional authenticated data binds each ciphertext to its cluster and name, so a row
copied to another cluster or name does not decrypt.
"""

from __future__ import annotations

from engine.settings import Settings
from engine.store import SecretBox, Store, load_secret_box


class StoreSecrets:
    """Implements handlers.base.SecretStore."""

    def __init__(self, store: Store, box: SecretBox) -> None:
        self._store = store
        self._box = box

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> StoreSecrets:
        return cls(store, load_secret_box(settings))

    @staticmethod
    def _aad(cluster_id: str, name: str) -> bytes:
        return f"clusterbus:{cluster_id}:{name}".encode()

    async def get(self, cluster_id: str, name: str) -> bytes | None:
        row = await self._store.get_secret(cluster_id, name)
        if row is None:
            return None
        key_id, nonce, ciphertext = row
        return self._box.open(key_id, nonce, ciphertext, self._aad(cluster_id, name))

    async def put_if_absent(self, cluster_id: str, name: str, value: bytes) -> bytes:
        """Store ``value`` unless a secret exists; returns the one that is stored (first wins)."""
        sealed = self._box.seal(value, self._aad(cluster_id, name))
        if await self._store.put_secret(cluster_id, name, *sealed):
            return value
        stored = await self.get(cluster_id, name)
        assert stored is not None  # put_secret said it exists
        return stored

    async def delete_all(self, cluster_id: str) -> None:
        await self._store.delete_secrets(cluster_id)
