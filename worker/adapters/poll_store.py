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
from worker.domain.changes import Entity, Op
from worker.domain.events import SyncRequested
from worker.domain.snapshot_diff import PlannedChange, PublishedAhead, SnapshotEntry, StoredRows


async def insert_sync_request(connection: asyncpg.Connection, request: SyncRequested) -> None:
    await connection.execute(
        """INSERT INTO sync_requests
               (request_id, full_sync, dry_run, release_hold, requested_by, requested_at, employee_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        request.event_id,
        request.full,
        request.dry_run,
        request.release_hold,
        request.requested_by,
        request.requested_at,
        request.employee_id,
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


SNAPSHOT_COLUMNS = "key, entity, company_id, fingerprint, version, deleted, record"
SNAPSHOT_UPDATE = ", ".join(
    f"{column} = EXCLUDED.{column}"
    for column in ("entity", "company_id", "fingerprint", "version", "deleted", "record")
)
STAGED_COLUMNS = [
    "poll_id", "key", "rank", "entity", "company_id", "op", "fingerprint", "version", "deleted", "record", "event"
]  # fmt: skip
ANALYZE_AFTER_ROWS = 1_000  # a poll that stored this many snapshot rows refreshes the table's statistics
# Companies and reference data go out before the employees that refer to them.
PUBLICATION_RANK = {
    Entity.COMPANY: 0,
    Entity.DEPARTMENT: 1,
    Entity.FUNCTION: 1,
    Entity.LABOUR_AGREEMENT: 1,
    Entity.EMPLOYEE: 2,
}


def _snapshot_entry(row: asyncpg.Record) -> SnapshotEntry:
    # Rows this store wrote from valid entries: not validated again (a poll reads every row of the domain).
    return SnapshotEntry.model_construct(
        key=row["key"],
        entity=Entity(row["entity"]),
        company_id=row["company_id"],
        fingerprint=row["fingerprint"],
        version=row["version"],
        deleted=row["deleted"],
        record=json.loads(row["record"]) if "record" in row else None,
    )


class PollLockLost(RuntimeError):
    """The poll lock's connection closed during a poll: another replica may be polling."""


@dataclass(frozen=True)
class PendingRequest:
    request_id: uuid.UUID
    full: bool
    dry_run: bool
    release_hold: bool
    employee_id: int | None = None


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

    async def load_shared(self) -> StoredRows:
        """The rows of the companies and the reference data: few, and shared by the whole domain."""
        return await self._load(["entity <> 'employee'"])

    async def load_company(self, company_id: int, keys: list[str]) -> StoredRows:
        """The employee rows stored under one company and those of `keys` (the employees it lists now), without
        their stored records (see load_records); what cut-off polls published ahead in full."""
        # Two selects rather than one OR: asyncpg prepares its statements, and PostgreSQL's generic plan for
        # `company_id = $1 OR key = ANY($2)` scans the whole table (150 ms a company at 100,000 rows).
        return await self._load(
            [
                "entity = 'employee' AND company_id = $1",
                "key = ANY($2::text[]) AND entity = 'employee' AND company_id IS DISTINCT FROM $1",
            ],
            company_id,
            keys,
            records=False,
        )

    async def load_keys(self, keys: list[str]) -> StoredRows:
        return await self._load(["key = ANY($1::text[])"], keys)

    async def load_records(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The stored records of `keys` (snapshot rows)."""
        rows = await self.pool.fetch("SELECT key, record FROM nmbrs_snapshots WHERE key = ANY($1::text[])", keys)
        return {row["key"]: json.loads(row["record"]) for row in rows}

    async def _load(self, conditions: list[str], *args: Any, records: bool = True) -> StoredRows:

        def select(columns: str, table: str) -> str:
            return " UNION ALL ".join(f"SELECT {columns} FROM {table} WHERE {condition}" for condition in conditions)

        columns = SNAPSHOT_COLUMNS if records else SNAPSHOT_COLUMNS.removesuffix(", record")
        async with self.pool.acquire() as connection:
            snapshot = await connection.fetch(select(columns, "nmbrs_snapshots"), *args)
            ahead = await connection.fetch(select(f"{SNAPSHOT_COLUMNS}, op", "nmbrs_published_ahead"), *args)
        return StoredRows(
            snapshot={row["key"]: _snapshot_entry(row) for row in snapshot},
            ahead={row["key"]: PublishedAhead(op=Op(row["op"]), entry=_snapshot_entry(row)) for row in ahead},
        )

    async def unlisted_employee_keys(self, listed: list[int]) -> list[str]:
        """Employees stored under a company that is not in `listed` (a company Nmbrs no longer lists), also those
        only a cut-off poll announced."""
        rows = await self.pool.fetch(
            """SELECT key FROM nmbrs_snapshots
               WHERE entity = 'employee' AND NOT deleted AND company_id <> ALL($1::int[])
               UNION SELECT key FROM nmbrs_published_ahead
               WHERE entity = 'employee' AND company_id <> ALL($1::int[])""",
            listed,
        )
        return [row["key"] for row in rows]

    async def active_employees_by_company(self) -> dict[int, int]:
        """The employees of each company in the last snapshot, removed ones not counted."""
        rows = await self.pool.fetch(
            """SELECT company_id, count(*) AS employees FROM nmbrs_snapshots
               WHERE entity = 'employee' AND NOT deleted GROUP BY company_id"""
        )
        return {row["company_id"]: row["employees"] for row in rows}

    async def clear_staged(self) -> None:
        """Called under the poll lock before a poll stages: what is left is from a poll that failed."""
        await self.pool.execute("TRUNCATE nmbrs_poll_staged")

    async def stage(self, poll_id: uuid.UUID, planned: list[PlannedChange]) -> None:
        """Stage planned changes with their events serialised as they will be published."""
        if not planned:
            return
        await self.pool.copy_records_to_table(
            "nmbrs_poll_staged",
            columns=STAGED_COLUMNS,
            records=[
                (
                    poll_id,
                    p.snapshot.key,
                    PUBLICATION_RANK[p.snapshot.entity],
                    p.snapshot.entity.value,
                    p.snapshot.company_id,
                    p.event.op.value,
                    p.snapshot.fingerprint,
                    p.snapshot.version,
                    p.snapshot.deleted,
                    json.dumps(p.snapshot.record),
                    p.event.model_dump_json().encode(),
                )
                for p in planned
            ],
        )

    async def staged(self, poll_id: uuid.UUID, batch: int) -> AsyncIterator[list[tuple[Entity, str, bytes]]]:
        """The staged events in publication order, `batch` at a time, as (entity, key, body)."""
        after = (-1, -1)
        while True:
            rows = await self.pool.fetch(
                """SELECT rank, seq, entity, key, event FROM nmbrs_poll_staged
                   WHERE poll_id = $1 AND (rank, seq) > ($2, $3) ORDER BY rank, seq LIMIT $4""",
                poll_id,
                *after,
                batch,
            )
            if not rows:
                return
            yield [(Entity(row["entity"]), row["key"], row["event"]) for row in rows]
            after = (rows[-1]["rank"], rows[-1]["seq"])

    async def advance(self, poll_id: uuid.UUID, summary: dict[str, Any], employee_id: int | None = None) -> None:
        """Store the poll's staged rows as the new snapshot and close the poll run in one transaction (after the
        broker acked every event). `employee_id`: the poll re-read just this employee."""
        async with transaction(self.pool) as connection:
            await self.ensure_lock(connection)
            # What a cut-off poll sent and this one had no reason to send again (Nmbrs holds it still) is what
            # consumers have: it becomes the snapshot, so its version is never handed out a second time. (This
            # poll's own rows there are its staged ones, stored next.)
            await connection.execute(
                f"""INSERT INTO nmbrs_snapshots AS s ({SNAPSHOT_COLUMNS}, updated_at)
                   SELECT {SNAPSHOT_COLUMNS}, now() FROM nmbrs_published_ahead WHERE poll_id <> $1
                   ON CONFLICT (key) DO UPDATE SET {SNAPSHOT_UPDATE}, updated_at = now()
                   WHERE EXCLUDED.version > s.version""",
                poll_id,
            )
            stored = await connection.execute(
                f"""INSERT INTO nmbrs_snapshots ({SNAPSHOT_COLUMNS}, updated_at)
                   SELECT {SNAPSHOT_COLUMNS}, now() FROM nmbrs_poll_staged WHERE poll_id = $1
                   ON CONFLICT (key) DO UPDATE SET {SNAPSHOT_UPDATE}, updated_at = now()""",
                poll_id,
            )
            # Truncated, not deleted: a large poll's rows left dead would be scanned by each company's reads of
            # the next poll until autovacuum came by.
            await connection.execute("TRUNCATE nmbrs_published_ahead, nmbrs_poll_staged")
            # Overslaan hides a question until the next sync: this was it (for the one employee re-read, of one).
            await connection.execute(
                """UPDATE pending_decisions SET skipped = false
                   WHERE skipped AND ($1::integer IS NULL OR (entity = 'employee' AND nmbrs_id = $1))""",
                employee_id,
            )
            await self._finish(connection, poll_id, "published", summary)
        if int(stored.split()[-1]) >= ANALYZE_AFTER_ROWS:
            # The next poll reads each company's rows with prepared statements, planned once on the statistics of
            # then: planned on an empty table's (after a first poll), each read scanned the whole table.
            await self.pool.execute("ANALYZE nmbrs_snapshots")

    async def start_run(
        self,
        poll_id: uuid.UUID,
        request_id: uuid.UUID | None,
        full: bool,
        dry_run: bool,
        started_at: datetime,
        employee_id: int | None = None,
    ) -> None:
        await self.pool.execute(
            """INSERT INTO poll_runs (poll_id, request_id, full_sync, dry_run, started_at, status, employee_id)
               VALUES ($1, $2, $3, $4, $5, 'running', $6)""",
            poll_id,
            request_id,
            full,
            dry_run,
            started_at,
            employee_id,
        )

    async def mark_publishing(self, poll_id: uuid.UUID) -> None:
        """Record, before anything is sent, that the poll publishes, and the version of every record it sends."""
        async with transaction(self.pool) as connection:
            await self.ensure_lock(connection)
            await connection.execute("UPDATE poll_runs SET publishing_at = now() WHERE poll_id = $1", poll_id)
            await connection.execute(
                f"""INSERT INTO nmbrs_published_ahead ({SNAPSHOT_COLUMNS}, op, poll_id)
                   SELECT {SNAPSHOT_COLUMNS}, op, poll_id FROM nmbrs_poll_staged WHERE poll_id = $1
                   ON CONFLICT (key) DO UPDATE SET {SNAPSHOT_UPDATE}, op = EXCLUDED.op, poll_id = EXCLUDED.poll_id""",
                poll_id,
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
               RETURNING request_id, full_sync, dry_run, release_hold, employee_id"""
        )
        if row is None:
            return None
        return PendingRequest(
            row["request_id"], row["full_sync"], row["dry_run"], row["release_hold"], row["employee_id"]
        )

    async def close_request(self, request_id: uuid.UUID, ok: bool) -> None:
        await self.pool.execute(
            "UPDATE sync_requests SET status = $2 WHERE request_id = $1",
            request_id,
            "done" if ok else "failed",
        )
