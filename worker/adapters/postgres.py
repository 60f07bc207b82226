"""PostgreSQL adapter: the connection pool, the idempotency inbox and the sync-request store (asyncpg)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from worker.config import Settings
from worker.domain.changes import Op, PlannedChange, PublishedAhead, SnapshotEntry
from worker.domain.events import Outcome, SyncRequested
from worker.domain.status import StepStatus, judge


async def keep_session(_connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset round trip on every release: we keep no session state (no SET, LISTEN or
    cursors; transactions are always closed by their context managers, and the session-level poll lock
    is released explicitly)."""


async def create_pool(
    settings: Settings, init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
) -> asyncpg.Pool:
    """Open the pool; `init` prepares each new connection (a benchmark adds its query logger)."""
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.database_pool_max,
        command_timeout=60,
        reset=keep_session,
        init=init,
    )
    assert pool is not None
    return pool


@dataclass(frozen=True)
class Claim:
    """Result of claiming an event in the inbox: new, or seen before with the outcomes it had then (none
    once their publish was acknowledged: see Inbox.mark_published)."""

    is_new: bool
    previous_outcomes: tuple[Outcome, ...] = ()


class Inbox:
    """Deduplicates consumers: the claim and the effect share one transaction."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    async def claim(self, connection: asyncpg.Connection, event_id: uuid.UUID) -> Claim:
        """Insert the event id; on a duplicate return the outcomes recorded the first time."""
        return (await self.claim_many(connection, [event_id]))[event_id]

    async def claim_many(self, connection: asyncpg.Connection, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, Claim]:
        """Claim a batch of event ids in one statement (plus one to read back the duplicates' outcomes)."""
        inserted = {
            row["event_id"]
            for row in await connection.fetch(
                """INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[])
                   ON CONFLICT DO NOTHING RETURNING event_id""",
                self.consumer,
                list(dict.fromkeys(event_ids)),
            )
        }
        claims = {event_id: Claim(is_new=True) for event_id in inserted}
        seen = [event_id for event_id in event_ids if event_id not in inserted]
        if seen:
            for row in await connection.fetch(
                """SELECT event_id, CASE WHEN published_at IS NULL THEN outcomes ELSE '[]' END AS outcomes
                   FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])""",
                self.consumer,
                seen,
            ):
                outcomes = tuple(Outcome.model_validate(o) for o in json.loads(row["outcomes"]))
                claims[row["event_id"]] = Claim(is_new=False, previous_outcomes=outcomes)
        return claims

    async def mark_published(self, executor: asyncpg.Pool | asyncpg.Connection, event_ids: list[uuid.UUID]) -> None:
        """Remember that the broker acknowledged these events' outcomes: a redelivery then re-publishes none.
        Until then it re-publishes them all, so a publish lost to a crash after the commit is repaired."""
        await executor.execute(
            """UPDATE processed_events SET published_at = now()
               WHERE consumer = $1 AND event_id = ANY($2::uuid[]) AND published_at IS NULL""",
            self.consumer,
            event_ids,
        )

    async def record_outcomes(
        self, connection: asyncpg.Connection, event_id: uuid.UUID, outcomes: list[Outcome]
    ) -> None:
        await self.record_outcomes_many(connection, {event_id: outcomes})

    async def record_outcomes_many(
        self, connection: asyncpg.Connection, outcomes: dict[uuid.UUID, list[Outcome]]
    ) -> None:
        await connection.execute(
            """UPDATE processed_events p SET outcomes = v.outcomes::jsonb
               FROM unnest($2::uuid[], $3::text[]) AS v(event_id, outcomes)
               WHERE p.consumer = $1 AND p.event_id = v.event_id""",
            self.consumer,
            list(outcomes),
            [_outcomes_json(items) for items in outcomes.values()],
        )


def _outcomes_json(outcomes: list[Outcome]) -> str:
    return "[" + ",".join(outcome.model_dump_json() for outcome in outcomes) + "]"


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One unit of work: a pooled connection inside a transaction, committed on success."""
    async with pool.acquire() as connection, connection.transaction():
        yield connection


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


async def run_once(
    pool: asyncpg.Pool,
    inbox: Inbox,
    event_id: uuid.UUID,
    effect: Callable[[asyncpg.Connection], Awaitable[list[Outcome]]],
) -> list[Outcome]:
    """Apply `effect` exactly once per event id: claim, effect and outcomes commit together.

    A redelivered event returns the outcomes stored the first time (same ids), so the caller publishes
    them again: a crash between commit and publish loses no outcome, and consumers deduplicate. Once their
    publish was marked acknowledged (Inbox.mark_published) a redelivery returns none.
    """
    async with transaction(pool) as connection:
        claim = await inbox.claim(connection, event_id)
        if not claim.is_new:
            return list(claim.previous_outcomes)
        outcomes = await effect(connection)
        await inbox.record_outcomes(connection, event_id, outcomes)
    return outcomes


# --- poller state ------------------------------------------------------------------------------------

POLL_LOCK_ID = 7_366_002  # one poll at a time across every worker replica


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
    return (entry.key, entry.entity.value, entry.company_id, entry.fingerprint, entry.version, entry.deleted,
            json.dumps(entry.record))  # fmt: skip


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


# --- step status ---------------------------------------------------------------------------------------

STEP_COUNTS_SQL = {
    "companies": """SELECT
        (SELECT count(*) FROM sync_links WHERE entity = 'company') AS linked,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'company' AND NOT skipped) AS pending,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'company' AND skipped) AS skipped,
        (SELECT count(*) FROM sync_blocks WHERE entity = 'company') AS blocked""",
    "departments": "SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS inactive "
    "FROM rt_departments",
    "functions": "SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS inactive "
    "FROM rt_functions",
    "labour_agreements": "SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) "
    "AS inactive FROM rt_labour_agreements",
    "employees": """SELECT
        (SELECT count(*) FROM sync_links WHERE entity = 'employee') AS linked,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'employee' AND NOT skipped) AS pending,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'employee' AND skipped) AS skipped,
        (SELECT count(*) FROM sync_blocks WHERE entity = 'employee') AS blocked,
        (SELECT count(*) FROM rt_employees WHERE source = 'manual') AS manual""",
    "contracts": """SELECT count(*) AS active_employees,
        count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM rt_contract_periods c WHERE c.employee_id = e.employee_id
            AND c.start_date <= $1 AND (c.end_date IS NULL OR c.end_date >= $1))) AS without_contract
        FROM rt_employees e WHERE e.source = 'nmbrs' AND e.active
          AND (e.employment_end IS NULL OR e.employment_end >= $1) AND e.employment_start <= $1""",
    "leave": """SELECT count(*) AS employees,
        count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM rt_leave_balances b WHERE b.employee_id = e.employee_id))
            AS not_calculated
        FROM rt_employees e WHERE e.source = 'nmbrs' AND e.active""",
}


async def step_statuses(connection: asyncpg.Connection, today: date, at: datetime) -> list[StepStatus]:
    """Every step's status, computed fresh from the store and the last poll."""
    statuses = []
    last_poll = await connection.fetchrow(
        "SELECT status, summary FROM poll_runs WHERE status <> 'running' ORDER BY started_at DESC LIMIT 1"
    )
    poll_summary = json.loads(last_poll["summary"]) if last_poll else {}
    poll_counts = {"polls": int(last_poll is not None), "soap_calls": poll_summary.get("soap_calls", 0)}
    poll_reasons = tuple(poll_summary.get("reasons", ())) if last_poll and poll_summary.get("status") == "red" else ()
    statuses.append(judge("poll", poll_counts, at, poll_reasons))
    for step, sql in STEP_COUNTS_SQL.items():
        row = await connection.fetchrow(sql, *((today,) if "$1" in sql else ()))
        statuses.append(judge(step, {key: int(value or 0) for key, value in dict(row or {}).items()}, at))
    return statuses


async def store_step_statuses(connection: asyncpg.Connection, statuses: list[StepStatus]) -> None:
    await connection.executemany(
        """INSERT INTO step_status (step, status, counts, updated_at) VALUES ($1, $2, $3::jsonb, $4)
           ON CONFLICT (step) DO UPDATE SET status = EXCLUDED.status, counts = EXCLUDED.counts,
               updated_at = EXCLUDED.updated_at""",
        [(s.step, s.status, json.dumps(s.counts), s.updated_at) for s in statuses],
    )
