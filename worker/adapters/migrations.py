"""Database migrations: versioned SQL files applied in order, each once, with the version recorded.

A tiny runner instead of a migration tool: the maintained tools (alembic, yoyo, sqitch) bring their own
driver (psycopg/SQLAlchemy) or runtime, and we need nothing beyond ordered plain SQL over asyncpg.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed number works; it serialises concurrent migrators (several workers starting at once).
ADVISORY_LOCK_ID = 7_366_001
# 14 for ALTER COLUMN ... SET COMPRESSION (0006) and the SQL used since; 13 is out of support anyway.
MINIMUM_SERVER_VERSION = 14


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    """The migration files or the recorded history are inconsistent."""


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Read NNNN_name.sql files in version order; gaps and duplicates are errors."""
    if directory is None:
        directory = Path(str(resources.files("worker.migrations")))
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_case_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing or duplicated (found {migration.version:04d})")
    return found


async def migrate(connection: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply the pending migrations; return the versions applied now (empty when up to date)."""
    migrations = load_migrations() if migrations is None else migrations
    await require_supported_server(connection)
    # Only when missing: a worker whose user may not run DDL (a migration job did it) starts on a migrated
    # database, and even CREATE ... IF NOT EXISTS needs the CREATE privilege.
    if not await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        await connection.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer     PRIMARY KEY,
                   name       text        NOT NULL,
                   checksum   text        NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
    applied_now = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK_ID)
        recorded = {
            row["version"]: row["checksum"]
            for row in await connection.fetch("SELECT version, checksum FROM schema_migrations")
        }
        known = {migration.version for migration in migrations}
        unknown = sorted(set(recorded) - known)
        if unknown:
            raise MigrationError(f"the database has migrations this code does not know: {unknown}")
        for migration in migrations:
            if migration.version in recorded:
                if recorded[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after it was "
                        "applied; add a new migration instead"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied_now.append(migration.version)
    return applied_now


async def require_supported_server(connection: asyncpg.Connection) -> None:
    """Refuse, before any DDL, a server older than MINIMUM_SERVER_VERSION (a half-applied schema helps nobody)."""
    number = int(await connection.fetchval("SHOW server_version_num"))
    if number // 10000 < MINIMUM_SERVER_VERSION:
        shown = await connection.fetchval("SHOW server_version")
        raise MigrationError(
            f"PostgreSQL {shown} is too old: nmbrs-sync needs PostgreSQL {MINIMUM_SERVER_VERSION} or newer"
        )


async def current_version(connection: asyncpg.Connection) -> int:
    """The highest applied version, 0 for an empty database."""
    exists = await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))
