"""Migrations and the idempotency inbox against the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from worker.adapters.inbox import Inbox, run_once
from worker.adapters.migrations import Migration, MigrationError, current_version, load_migrations, migrate
from worker.adapters.poll_store import insert_sync_request
from worker.domain.events import Outcome, OutcomeKind, SyncRequested, outcome_for


@pytest.fixture
async def scratch_schema(migrated_database: str) -> asyncpg.Connection:
    """A connection whose search_path is a fresh schema, to run migrations from nothing."""
    connection = await asyncpg.connect(migrated_database)
    schema = f"scratch_{uuid.uuid4().hex[:8]}"
    await connection.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
    yield connection
    await connection.execute(f"DROP SCHEMA {schema} CASCADE")
    await connection.close()


async def test_migrate_applies_everything_once_and_records_the_version(
    scratch_schema: asyncpg.Connection,
) -> None:
    shipped = load_migrations()
    assert await current_version(scratch_schema) == 0
    assert await migrate(scratch_schema) == [m.version for m in shipped]
    assert await migrate(scratch_schema) == []
    assert await current_version(scratch_schema) == shipped[-1].version


async def test_a_changed_applied_migration_is_refused(scratch_schema: asyncpg.Connection) -> None:
    await migrate(scratch_schema, [Migration(1, "first", "CREATE TABLE t (x int);")])
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(scratch_schema, [Migration(1, "first", "CREATE TABLE t (x bigint);")])


async def test_a_failing_migration_leaves_nothing_behind(scratch_schema: asyncpg.Connection) -> None:
    broken = [
        Migration(1, "ok", "CREATE TABLE a (x int);"),
        Migration(2, "bad", "CREATE TABLE b (x nosuchtype);"),
    ]
    with pytest.raises(asyncpg.UndefinedObjectError):
        await migrate(scratch_schema, broken)
    assert await current_version(scratch_schema) == 0
    assert await scratch_schema.fetchval("SELECT to_regclass('a')") is None


def request() -> SyncRequested:
    return SyncRequested(event_id=uuid.uuid4(), requested_by="test", requested_at=datetime.now(UTC))


async def test_run_once_applies_the_effect_once_and_replays_the_same_outcomes(pool: asyncpg.Pool) -> None:
    command = request()
    calls = 0

    async def effect(connection: asyncpg.Connection) -> list[Outcome]:
        nonlocal calls
        calls += 1
        await insert_sync_request(connection, command)
        return [outcome_for(command.event_id, OutcomeKind.ACCEPTED, "sync-request", datetime.now(UTC))]

    first = await run_once(pool, Inbox("test"), command.event_id, effect)
    again = await run_once(pool, Inbox("test"), command.event_id, effect)
    assert calls == 1
    assert again == first
    assert await pool.fetchval("SELECT count(*) FROM sync_requests WHERE request_id = $1", command.event_id) == 1


async def test_a_failing_effect_rolls_back_the_claim_so_a_redelivery_retries(pool: asyncpg.Pool) -> None:
    command = request()

    async def failing(connection: asyncpg.Connection) -> list[Outcome]:
        await insert_sync_request(connection, command)
        raise RuntimeError("crash after the write, before commit")

    with pytest.raises(RuntimeError):
        await run_once(pool, Inbox("test"), command.event_id, failing)
    assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE event_id = $1", command.event_id) == 0

    async def working(connection: asyncpg.Connection) -> list[Outcome]:
        await insert_sync_request(connection, command)
        return []

    assert await run_once(pool, Inbox("test"), command.event_id, working) == []
    assert await pool.fetchval("SELECT count(*) FROM sync_requests WHERE request_id = $1", command.event_id) == 1


async def test_the_same_event_id_is_independent_per_consumer(pool: asyncpg.Pool) -> None:
    event_id = uuid.uuid4()
    async with pool.acquire() as connection:
        assert (await Inbox("a").claim(connection, event_id)).is_new
        assert (await Inbox("b").claim(connection, event_id)).is_new
        assert not (await Inbox("a").claim(connection, event_id)).is_new


async def test_migrating_a_migrated_database_writes_nothing_so_a_user_without_ddl_rights_can_start(
    scratch_schema: asyncpg.Connection,
) -> None:
    # As with the chart's migrations.job.enabled: the owner migrates, the worker's user may not run DDL. A
    # read-only session refuses any DDL or write, also CREATE TABLE IF NOT EXISTS of a table that exists.
    await migrate(scratch_schema)
    await scratch_schema.execute("SET default_transaction_read_only = on")
    assert await migrate(scratch_schema) == []
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):  # the session really refuses DDL
        await scratch_schema.execute("CREATE TABLE IF NOT EXISTS schema_migrations (x int)")
    await scratch_schema.execute("SET default_transaction_read_only = off")
