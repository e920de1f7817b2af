"""The state store: aggregates, inbox, outbox, history and encrypted secrets in one database."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from engine.store import leases, queries
from engine.store.batch import apply_batch
from engine.store.connect import Backend, open_backend, upgrade
from engine.store.rows import ClusterRow, HistoryEntry, MachineRow, OutboxMessage, Step


class Store:
    """Async access to the store; one instance per process, safe for concurrent tasks.

    If a caller is cancelled while a write runs, the write may still commit (SQLite runs it in
    a thread): the inbox makes the redelivered message a duplicate, the relay sends its outbox.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` and, unless told not to, upgrade the schema to head."""
        backend = open_backend(url)
        if migrate:
            try:
                await backend.write(upgrade)
            except BaseException:
                await backend.dispose()
                raise
        return cls(backend)

    async def close(self) -> None:
        await self._backend.dispose()

    async def apply(self, steps: Sequence[Step]) -> list[bool]:
        """Commit ``steps`` in ONE transaction; per step True = applied, False = duplicate.

        A duplicate step (its (consumer, message_id) is already in the inbox, or earlier in the
        batch) writes nothing. A failed version check raises ``VersionConflict`` and nothing of
        the batch is written: retry the steps one by one to isolate the culprit. Within a step,
        ``deleted_machine_ids`` apply after its ``machines``. After commit, each applied step's
        ``outbox`` holds copies with their ``seq`` set, ready for ``mark_sent``.
        """
        if not steps:
            return []
        applied, seqs = await self._backend.write(apply_batch, steps, queries.utcnow())
        for step, step_seqs in zip(steps, seqs, strict=True):
            if step_seqs:
                pairs = zip(step.outbox, step_seqs, strict=True)
                step.outbox = [dataclasses.replace(m, seq=s) for m, s in pairs]
        return applied

    async def load(self, cluster_id: str) -> tuple[ClusterRow, list[MachineRow]] | None:
        """The cluster row and its machines (ordered by id), or None."""
        return await self._backend.read(queries.load, cluster_id)

    async def load_many(
        self, cluster_ids: Sequence[str]
    ) -> dict[str, tuple[ClusterRow, list[MachineRow]]]:
        """``load`` for several clusters at once (one transaction); absent ones are left out."""
        if not cluster_ids:
            return {}
        return await self._backend.read(queries.load_many, list(cluster_ids))

    async def list_clusters(self) -> list[ClusterRow]:
        return await self._backend.read(queries.list_clusters)

    async def unsent_outbox(
        self, limit: int = 500, *, older_than: timedelta | None = None
    ) -> list[OutboxMessage]:
        """Messages not yet marked sent, oldest first; only those older than ``older_than``."""
        cutoff = queries.utcnow() - older_than if older_than is not None else None
        return await self._backend.read(queries.unsent_outbox, limit, cutoff)

    async def metric_counts(self) -> tuple[dict[str, int], dict[str, int], int, datetime | None]:
        """For the metrics gauges: clusters/machines by state, unsent outbox rows, oldest one."""
        return await self._backend.read(queries.metric_counts)

    async def mark_sent(self, seqs: Sequence[int]) -> None:
        if seqs:
            await self._backend.write(queries.mark_sent, seqs, queries.utcnow())

    async def history(self, cluster_id: str) -> list[HistoryEntry]:
        """Every recorded transition of the cluster and its machines, oldest first."""
        return await self._backend.read(queries.history_of, cluster_id)

    async def put_secret(
        self, cluster_id: str, name: str, key_id: str, nonce: bytes, ciphertext: bytes
    ) -> bool:
        """Insert if absent: True if stored, False if the secret existed (left unchanged).

        First writer wins, so two engines racing to generate a CA agree on one: the loser
        reads the winner's back with ``get_secret``.
        """
        values = {
            "cluster_id": cluster_id,
            "name": name,
            "key_id": key_id,
            "nonce": nonce,
            "ciphertext": ciphertext,
            "created_at": queries.utcnow(),
        }
        return await self._backend.write(queries.put_secret, values)

    async def get_secret(self, cluster_id: str, name: str) -> tuple[str, bytes, bytes] | None:
        """(key_id, nonce, ciphertext), or None."""
        return await self._backend.read(queries.get_secret, cluster_id, name)

    async def delete_secrets(self, cluster_id: str) -> int:
        """Drop every secret of a cluster; returns how many."""
        return await self._backend.write(queries.delete_secrets, cluster_id)

    async def purge_inbox(self, older_than: timedelta) -> int:
        """Forget inbox records older than ``older_than``; returns how many."""
        return await self._backend.write(queries.purge_inbox, queries.utcnow() - older_than)

    async def purge_outbox(self, older_than: timedelta) -> int:
        """Drop sent outbox rows older than ``older_than``; returns how many."""
        return await self._backend.write(queries.purge_outbox, queries.utcnow() - older_than)

    # -- engine replicas and shard leases (see engine/shard_balancer.py) ------------------

    async def heartbeat(self, member_id: str, now: datetime) -> None:
        """Record that engine replica ``member_id`` is alive at ``now``."""
        await self._backend.write(leases.heartbeat, member_id, now)

    async def live_members(self, since: datetime) -> list[str]:
        """Replicas whose last heartbeat is at or after ``since``, sorted."""
        return await self._backend.read(leases.live_members, since)

    async def claim_shards(
        self, member_id: str, want: int, now: datetime, ttl: timedelta, *, shards: int
    ) -> set[int]:
        """Renew the member's leases, take free or expired ones (of ``shards``) up to ``want``.

        Atomic; returns every shard the member owns afterwards, which may exceed ``want`` (it
        keeps what it had: giving shards back is ``release_shards``).
        """
        return await self._backend.write(leases.claim_shards, member_id, want, now, ttl, shards)

    async def release_shards(self, member_id: str, shards: Sequence[int]) -> None:
        """Give up the member's leases on ``shards`` (others' leases are left alone)."""
        if shards:
            await self._backend.write(leases.release_shards, member_id, shards)

    async def leave(self, member_id: str) -> None:
        """Release all the member's leases and drop its heartbeat (a clean shutdown)."""
        await self._backend.write(leases.leave, member_id)

    async def forget_members(self, before: datetime) -> int:
        """Drop replicas silent since ``before``; returns how many."""
        return await self._backend.write(leases.forget_members, before)

    async def shard_leases(self) -> dict[int, tuple[str | None, datetime | None]]:
        """Every lease: shard -> (owner, expires_at); owner None = free."""
        return await self._backend.read(leases.leases)
