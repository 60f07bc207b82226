"""What the poller keeps: snapshots, what cut-off polls published ahead, poll runs, the poll lock and the
sync requests (asyncpg)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from worker.adapters.database import transaction
from worker.domain.changes import Op
from worker.domain.events import SyncRequested
from worker.domain.snapshot_diff import PlannedChange, PublishedAhead, SnapshotEntry


async def insert_sync_request(connection: asyncpg.Connection, request: SyncRequested) -> None:
    await connection.execute(
        """INSERT INTO sync_requests
               (request_id, full_sync, dry_run, release_hold, requested_by, requested_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        request.event_id,
        request.full,
        request.dry_run,
        request.release_hold,
        request.requested_by,
        request.requested_at,
    )


POLL_LOCK_ID = 7_366_002  # one poll at a time across every worker replica


async def sync_settled(connection: asyncpg.Connection) -> bool:
    """No sync request waits, a poll has published, and the reconciler handled every change it published."""
    row = await connection.fetchrow(
        """SELECT (SELECT count(*) FROM sync_requests WHERE status IN ('pending', 'running')) AS waiting,
                  (SELECT count(*) FROM poll_runs WHERE status = 'published') AS polls,
                  (SELECT coalesce(sum(value::int), 0) FROM poll_runs, jsonb_each_text(summary -> 'changes')
                   WHERE status = 'published') AS published,
                  (SELECT count(*) FROM processed_events WHERE consumer = 'reconciler') AS handled"""
    )
    assert row is not None  # an aggregate query always returns its one row
    return bool(row["waiting"] == 0 and row["polls"] > 0 and row["handled"] >= row["published"])


def _snapshot_entry(row: asyncpg.Record) -> SnapshotEntry:
    return SnapshotEntry(
        key=row["key"],
        entity=row["entity"],
        company_id=row["company_id"],
        fingerprint=row["fingerprint"],
        version=row["version"],
        deleted=row["deleted"],
        record=json.loads(row["record"]),
    )


def _snapshot_row(entry: SnapshotEntry) -> tuple[Any, ...]:
    return (
        entry.key,
        entry.entity.value,
        entry.company_id,
        entry.fingerprint,
        entry.version,
        entry.deleted,
        json.dumps(entry.record),
    )


class PollLockLost(RuntimeError):
    """The poll lock's connection closed during a poll: another replica may be polling."""


@dataclass(frozen=True)
class PendingRequest:
    request_id: uuid.UUID
    full: bool
    dry_run: bool
    release_hold: bool


class PollStore:
    """Snapshots, poll runs and the poll lock."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._lock_pid: int | None = None  # the backend holding our poll lock, while we hold it

    @asynccontextmanager
    async def poll_lock(self) -> AsyncIterator[bool]:
        """Yields True while this process holds the poll lock, False when another replica has it.

        A session lock: if releasing it fails (or is cancelled), the connection is terminated instead of
        going back to the pool with the lock (the pool does not reset sessions, see keep_session). A lock
        whose connection closed is gone with it: see ensure_lock."""
        async with self.pool.acquire() as connection:
            held = bool(await connection.fetchval("SELECT pg_try_advisory_lock($1)", POLL_LOCK_ID))
            self._lock_pid = connection.get_server_pid() if held else None
            try:
                yield held
            finally:
                self._lock_pid = None
                if held:
                    try:
                        await connection.execute("SELECT pg_advisory_unlock($1)", POLL_LOCK_ID)
                    except (asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError, asyncpg.InterfaceError):
                        pass  # the session ended, and its lock with it (the pool has let the connection go)
                    except BaseException:
                        connection.terminate()
                        raise

    async def ensure_lock(self, executor: Any = None) -> None:
        """Raise PollLockLost unless the poll lock taken by poll_lock is still held (its connection can
        close during a long fetch, and another replica may then poll from the same snapshot)."""
        if self._lock_pid is None:
            return  # no lock was taken through poll_lock (a store used directly, as in tests)
        held = await (executor or self.pool).fetchval(
            """SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1
                              AND ((classid::bigint << 32) | objid::bigint) = $2 AND objsubid = 1)""",
            self._lock_pid,
            POLL_LOCK_ID,
        )
        if not held:
            raise PollLockLost("the poll lock was lost (its connection closed): nothing is published or stored")

    async def load_snapshot(self) -> dict[str, SnapshotEntry]:
        rows = await self.pool.fetch(
            "SELECT key, entity, company_id, fingerprint, version, deleted, record FROM nmbrs_snapshots"
        )
        return {row["key"]: _snapshot_entry(row) for row in rows}

    async def load_published_ahead(self) -> dict[str, PublishedAhead]:
        """What polls cut off since the snapshot may have published (see PublishedAhead)."""
        rows = await self.pool.fetch(
            "SELECT key, entity, company_id, fingerprint, version, deleted, record, op FROM nmbrs_published_ahead"
        )
        return {row["key"]: PublishedAhead(op=Op(row["op"]), entry=_snapshot_entry(row)) for row in rows}

    async def advance(self, entries: list[SnapshotEntry], poll_id: uuid.UUID, summary: dict[str, Any]) -> None:
        """Store the new snapshot and close the poll run in one transaction (after the broker acked)."""
        async with transaction(self.pool) as connection:
            await self.ensure_lock(connection)
            # What a cut-off poll sent and this one had no reason to send again (Nmbrs holds it still) is what
            # consumers have: it becomes the snapshot, so its version is never handed out a second time.
            await connection.execute(
                """INSERT INTO nmbrs_snapshots AS s
                       (key, entity, company_id, fingerprint, version, deleted, record, updated_at)
                   SELECT key, entity, company_id, fingerprint, version, deleted, record, now()
                   FROM nmbrs_published_ahead
                   ON CONFLICT (key) DO UPDATE SET entity = EXCLUDED.entity, company_id = EXCLUDED.company_id,
                       fingerprint = EXCLUDED.fingerprint, version = EXCLUDED.version,
                       deleted = EXCLUDED.deleted, record = EXCLUDED.record, updated_at = now()
                   WHERE EXCLUDED.version > s.version"""
            )
            await connection.executemany(
                """INSERT INTO nmbrs_snapshots
                       (key, entity, company_id, fingerprint, version, deleted, record, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, now())
                   ON CONFLICT (key) DO UPDATE SET entity = EXCLUDED.entity, company_id = EXCLUDED.company_id,
                       fingerprint = EXCLUDED.fingerprint, version = EXCLUDED.version,
                       deleted = EXCLUDED.deleted, record = EXCLUDED.record, updated_at = now()""",
                [_snapshot_row(e) for e in entries],
            )
            await connection.execute("DELETE FROM nmbrs_published_ahead")
            # Overslaan hides a question until the next sync: this was it.
            await connection.execute("UPDATE pending_decisions SET skipped = false WHERE skipped")
            await self._finish(connection, poll_id, "published", summary)

    async def start_run(
        self,
        poll_id: uuid.UUID,
        request_id: uuid.UUID | None,
        full: bool,
        dry_run: bool,
        started_at: datetime,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO poll_runs (poll_id, request_id, full_sync, dry_run, started_at, status)
               VALUES ($1, $2, $3, $4, $5, 'running')""",
            poll_id,
            request_id,
            full,
            dry_run,
            started_at,
        )

    async def mark_publishing(self, poll_id: uuid.UUID, planned: list[PlannedChange]) -> None:
        """Record, before anything is sent, that the poll publishes, and the version of every record it sends."""
        async with transaction(self.pool) as connection:
            await self.ensure_lock(connection)
            await connection.execute("UPDATE poll_runs SET publishing_at = now() WHERE poll_id = $1", poll_id)
            await connection.executemany(
                """INSERT INTO nmbrs_published_ahead
                       (key, entity, company_id, fingerprint, version, deleted, record, op, poll_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
                   ON CONFLICT (key) DO UPDATE SET entity = EXCLUDED.entity, company_id = EXCLUDED.company_id,
                       fingerprint = EXCLUDED.fingerprint, version = EXCLUDED.version, deleted = EXCLUDED.deleted,
                       record = EXCLUDED.record, op = EXCLUDED.op, poll_id = EXCLUDED.poll_id""",
                [(*_snapshot_row(p.snapshot), p.event.op.value, poll_id) for p in planned],
            )

    async def publish_interrupted(self) -> bool:
        """Whether a poll began publishing and did not store its snapshot, with no full poll published since:
        what it published may differ from the snapshot, and only republishing everything repairs that."""
        return bool(
            await self.pool.fetchval(
                """SELECT EXISTS (
                       SELECT 1 FROM poll_runs r
                       WHERE r.publishing_at IS NOT NULL AND NOT r.dry_run AND r.status <> 'published'
                         AND r.started_at >= coalesce((SELECT max(started_at) FROM poll_runs
                                                       WHERE full_sync AND status = 'published'), '-infinity'))"""
            )
        )

    async def finish_run(self, poll_id: uuid.UUID, status: str, summary: dict[str, Any]) -> None:
        await self._finish(self.pool, poll_id, status, summary)

    @staticmethod
    async def _finish(executor: Any, poll_id: uuid.UUID, status: str, summary: dict[str, Any]) -> None:
        await executor.execute(
            "UPDATE poll_runs SET status = $2, summary = $3::jsonb, finished_at = now() WHERE poll_id = $1",
            poll_id,
            status,
            json.dumps(summary),
        )

    async def last_full_poll_at(self) -> datetime | None:
        value = await self.pool.fetchval(
            "SELECT max(started_at) FROM poll_runs WHERE full_sync AND status = 'published'"
        )
        return value  # type: ignore[no-any-return]

    async def claim_request(self) -> PendingRequest | None:
        """Take the oldest open sync request. Called under the poll lock: a request still 'running' then is one
        whose runner died with its lock, and is taken again."""
        row = await self.pool.fetchrow(
            """UPDATE sync_requests SET status = 'running', claimed_at = now()
               WHERE request_id = (SELECT request_id FROM sync_requests WHERE status IN ('pending', 'running')
                                   ORDER BY requested_at FOR UPDATE SKIP LOCKED LIMIT 1)
               RETURNING request_id, full_sync, dry_run, release_hold"""
        )
        if row is None:
            return None
        return PendingRequest(row["request_id"], row["full_sync"], row["dry_run"], row["release_hold"])

    async def close_request(self, request_id: uuid.UUID, ok: bool) -> None:
        await self.pool.execute(
            "UPDATE sync_requests SET status = $2 WHERE request_id = $1",
            request_id,
            "done" if ok else "failed",
        )
