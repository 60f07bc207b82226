"""PostgreSQL adapter: the connection pool, the idempotency inbox and the sync-request store (asyncpg)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from worker.config import Settings
from worker.domain.events import Outcome, SyncRequested


async def create_pool(settings: Settings, dsn: str | None = None) -> asyncpg.Pool:
    """Open the pool; `dsn` overrides the configured database (tests use their own)."""
    pool = await asyncpg.create_pool(
        dsn or settings.database_url.get_secret_value(),
        min_size=1,
        max_size=settings.database_pool_max,
        command_timeout=60,
    )
    assert pool is not None
    return pool


@dataclass(frozen=True)
class Claim:
    """Result of claiming an event in the inbox: new, or seen before with the outcomes it had then."""

    is_new: bool
    previous_outcomes: tuple[Outcome, ...] = ()


class Inbox:
    """Deduplicates consumers: the claim and the effect share one transaction."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    async def claim(self, connection: asyncpg.Connection, event_id: uuid.UUID) -> Claim:
        """Insert the event id; on a duplicate return the outcomes recorded the first time."""
        inserted = await connection.fetchval(
            """INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
               ON CONFLICT DO NOTHING RETURNING true""",
            self.consumer,
            event_id,
        )
        if inserted:
            return Claim(is_new=True)
        stored = await connection.fetchval(
            "SELECT outcomes FROM processed_events WHERE consumer = $1 AND event_id = $2",
            self.consumer,
            event_id,
        )
        return Claim(
            is_new=False, previous_outcomes=tuple(Outcome.model_validate(o) for o in json.loads(stored))
        )

    async def record_outcomes(
        self, connection: asyncpg.Connection, event_id: uuid.UUID, outcomes: list[Outcome]
    ) -> None:
        await connection.execute(
            "UPDATE processed_events SET outcomes = $3::jsonb WHERE consumer = $1 AND event_id = $2",
            self.consumer,
            event_id,
            json.dumps([outcome.model_dump(mode="json") for outcome in outcomes]),
        )


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One unit of work: a pooled connection inside a transaction, committed on success."""
    async with pool.acquire() as connection, connection.transaction():
        yield connection


async def insert_sync_request(connection: asyncpg.Connection, request: SyncRequested) -> None:
    await connection.execute(
        """INSERT INTO sync_requests (request_id, full_sync, dry_run, requested_by, requested_at)
           VALUES ($1, $2, $3, $4, $5)""",
        request.event_id,
        request.full,
        request.dry_run,
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
    them again: a crash between commit and publish loses no outcome, and consumers deduplicate.
    """
    async with transaction(pool) as connection:
        claim = await inbox.claim(connection, event_id)
        if not claim.is_new:
            return list(claim.previous_outcomes)
        outcomes = await effect(connection)
        await inbox.record_outcomes(connection, event_id, outcomes)
    return outcomes
