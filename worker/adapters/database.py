"""The PostgreSQL connection pool, units of work, and which of asyncpg's errors mean "try again" (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, cast

import asyncpg

from worker.config import Settings

# The use cases and entrypoints name the pool and a connection by these, so asyncpg stays inside the adapters.
Pool: TypeAlias = asyncpg.Pool
Connection: TypeAlias = asyncpg.Connection

# A database that cannot be reached (or refuses us) at connect time: a CLI says so instead of a traceback.
CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
)


async def keep_session(_connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset round trip on every release: we keep no session state (no SET, LISTEN or
    cursors; transactions are always closed by their context managers, and the session-level poll lock
    is released explicitly)."""


async def create_pool(
    settings: Settings,
    init: Callable[[asyncpg.Connection], Coroutine[Any, Any, None]] | None = None,
    max_size: int | None = None,
) -> asyncpg.Pool:
    """Open the pool (DATABASE_POOL_MAX connections unless `max_size`); `init` prepares each new connection
    (a benchmark adds its query logger)."""
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=max_size or settings.database_pool_max,
        command_timeout=60,
        reset=keep_session,
        init=init,
    )
    assert pool is not None
    return pool


async def connect(settings: Settings) -> asyncpg.Connection:
    """One connection outside the pool, for a short CLI command."""
    return await asyncpg.connect(settings.database_url.get_secret_value())


async def unreachable(pool: asyncpg.Pool, timeout_s: float) -> str | None:
    """Why the database does not answer a trivial query within `timeout_s`, or None when it does."""
    try:
        async with asyncio.timeout(timeout_s):
            await pool.fetchval("SELECT 1")
    except TimeoutError:
        return f"the database did not answer within {timeout_s:g} s"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        return f"the database: {type(error).__name__}"
    return None


@asynccontextmanager
async def read_only(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in a read-only, repeatable-read transaction: the queries of one page see one
    snapshot, and nothing can write by mistake."""
    async with pool.acquire() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
        yield cast(asyncpg.Connection, connection)


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One unit of work: a pooled connection inside a transaction, committed on success."""
    async with pool.acquire() as connection, connection.transaction():
        # A pooled connection is a proxy that forwards every method of the connection it holds.
        yield cast(asyncpg.Connection, connection)


# Errors that say "not now" rather than "never": the database is unreachable, busy, out of resources or in
# the hands of an operator. Anything else (a bad statement) would fail forever and goes to the dead letters:
# a database incident must never dead-letter every event.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08, and a connection closed under us
    asyncpg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    asyncpg.OperatorInterventionError,  # class 57: shutdown, crash recovery
    asyncpg.ReadOnlySQLTransactionError,  # connected to a standby after a failover
    asyncpg.IdleInTransactionSessionTimeoutError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)

# Errors that may pass (a cancel by an operator, a statement timeout while waiting on a lock) or may meet a
# given batch every time (a slow statement, a configured limit such as temp_file_limit): retried a few times,
# then given up, so that a batch is handled one by one and an event that still fails alone is dead-lettered
# instead of holding the partition forever.
REPEATING_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.QueryCanceledError,
    asyncpg.ConfigurationLimitExceededError,
)
REPEATING_ERROR_ATTEMPTS = 3


def database_error_is_transient(error: BaseException, attempt: int = 0) -> bool:
    """Whether a database error (met `attempt` times before) is worth another try."""
    if isinstance(error, REPEATING_ERRORS):
        return attempt < REPEATING_ERROR_ATTEMPTS
    return isinstance(error, TRANSIENT_ERRORS)
