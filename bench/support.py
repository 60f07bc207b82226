"""Shared plumbing of the benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

# The benchmarks run as `python bench/X.py`: importing this module puts the repository root on sys.path.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from worker.adapters.kafka import delete_topics_with_prefix, ensure_topics  # noqa: E402
from worker.adapters.migrations import migrate  # noqa: E402
from worker.config import Settings, Topics  # noqa: E402

if TYPE_CHECKING:
    from worker.sandbox.dataset import Dataset

USERNAME, TOKEN, DOMAIN = "bench@example.nl", "bench-token", "bench"
BENCH_DATABASE = "nmbrs_sync_bench"
PROTECTED_DATABASES = {"nmbrs_sync", "nmbrs_sync_test", "postgres", "template0", "template1"}
SANDBOX_START_S = 120


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- the database --------------------------------------------------------------------------------------


def add_database_url_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help=f"a database of the benchmark's own (default: $BENCH_DATABASE_URL, else {BENCH_DATABASE}"
        " on the configured server)",
    )


def bench_database_url(explicit: str | None) -> str:
    """The benchmark's own database: `explicit` (--database-url), else $BENCH_DATABASE_URL (`./dev bench` sets
    it), else `nmbrs_sync_bench` on the configured server. Never the demo or test database."""
    url = explicit or os.environ.get("BENCH_DATABASE_URL")
    if not url:
        configured = Settings(_env_file=None).database_url.get_secret_value()
        url = urlunsplit(urlsplit(configured)._replace(path=f"/{BENCH_DATABASE}"))
    name = urlsplit(url).path.lstrip("/")
    if name in PROTECTED_DATABASES:
        raise SystemExit(f"refusing database '{name}': the benchmark drops its schema; give it a database of its own")
    return url


async def prepare_database(url: str) -> None:
    """Create the database when missing, then an empty, migrated public schema."""
    try:
        connection = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        name = urlsplit(url).path.lstrip("/")
        admin = await asyncpg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        await migrate(connection)
    finally:
        await connection.close()


def bench_settings(prefix: str, database_url: str, *, env_file: bool = False) -> Settings:
    """Settings with topics (and Kafka app id) of a unique `prefix` and the benchmark's database; a `.env`
    file is read only with `env_file`."""
    return Settings(
        kafka_app_id=prefix,
        topics=Topics(**{name: f"{prefix}.{name}" for name in Topics.model_fields}),
        database_url=database_url,
        kafka_topic_partitions=4,
        status_port=0,
        **({} if env_file else {"_env_file": None}),
    )


@asynccontextmanager
async def bench_topics(settings: Settings) -> AsyncIterator[None]:
    """The benchmark's own topics: created on entry, deleted on exit (also after a failure), so benchmark runs
    do not pile up topics on the development broker."""
    await ensure_topics(settings)
    try:
        yield
    finally:
        await delete_topics_with_prefix(settings, [f"{settings.kafka_app_id}."])


# --- the sandbox ---------------------------------------------------------------------------------------


def _serve(
    companies: int,
    employees: int,
    seed: int,
    describe: Callable[[Dataset], tuple[Any, ...]],
    out: Connection,
    largest: int | None = None,
) -> None:
    """Child process: generate the dataset, serve it on an ephemeral loopback port, send the port followed
    by `describe(dataset)`."""
    from aiohttp import web

    from worker.sandbox.generate import generate
    from worker.sandbox.server import create_app

    async def main() -> None:
        dataset = generate(companies, employees, seed, largest=largest)
        described = describe(dataset)
        runner = web.AppRunner(create_app(dataset, USERNAME, TOKEN, DOMAIN), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        out.send((site._server.sockets[0].getsockname()[1], *described))  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


@contextmanager
def sandbox(
    companies: int,
    employees: int,
    seed: int,
    describe: Callable[[Dataset], tuple[Any, ...]],
    largest: int | None = None,
) -> Iterator[tuple[Any, ...]]:
    """The Nmbrs sandbox in a spawned process of its own (so its CPU time is not ours), serving a generated
    dataset (`largest`: see sandbox.generate); yields `(port, *describe(dataset))`. `describe` must be a
    module-level function (it is pickled)."""
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(companies, employees, seed, describe, send, largest), daemon=True
    )
    server.start()
    try:
        if not receive.poll(SANDBOX_START_S):
            raise SystemExit("sandbox did not start")
        yield receive.recv()
    finally:
        server.terminate()
        server.join(10)


# --- the worker ----------------------------------------------------------------------------------------


async def start_worker(settings: Settings) -> asyncio.subprocess.Process:
    """A real `nmbrs-sync worker` process on the benchmark's topics and database (polling off, status port 0),
    as bench/decisions.py starts it; the caller terminates it."""
    env = dict(
        os.environ,
        KAFKA_APP_ID=settings.kafka_app_id,
        DATABASE_URL=settings.database_url.get_secret_value(),
        STATUS_PORT="0",
        POLL_ENABLED="false",
        LOG_LEVEL="WARNING",
        KAFKA_TOPIC_PARTITIONS=str(settings.kafka_topic_partitions),
        **{f"TOPICS__{name.upper()}": topic for name, topic in settings.topics.model_dump().items()},
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.entrypoints.cli",
        "worker",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
