"""Integration fixtures: the Nmbrs sandbox over real HTTP, Kafka readers and producers, a clean poller.

Every test in this folder is marked `integration` here (it needs the Kafka and PostgreSQL of ./dev test)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp import ClientSession, web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.support import (
    DEMO_DATA,
    RECONCILE_NOW,
    STATE,
    TARGET_TABLES,
    Relay,
    Sandbox,
    TopicReader,
    database_url_for_tests,
    start_worker_process,
    stop_process,
    worker_env,
)
from worker.adapters.kafka import KafkaPublisher, client_kwargs, ensure_topics
from worker.adapters.nmbrs.client import NmbrsClient
from worker.adapters.target_store_load import load_target_state
from worker.config import Settings
from worker.domain.changes import ChangeEvent
from worker.domain.events import Outcome
from worker.domain.matching import MatchPolicy
from worker.domain.target_state import parse_target_file
from worker.sandbox.dataset import load_dataset
from worker.sandbox.server import create_app
from worker.service.reconciler import handle_change


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def sandbox(integration_settings: Settings) -> AsyncIterator[Sandbox]:
    settings = integration_settings
    app = create_app(
        load_dataset(DEMO_DATA),
        settings.nmbrs_username,
        settings.nmbrs_token.get_secret_value(),
        settings.nmbrs_domain,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with ClientSession() as session:
        yield Sandbox(f"http://127.0.0.1:{port}", session)
    await runner.cleanup()


@pytest.fixture
async def nmbrs(sandbox: Sandbox, integration_settings: Settings) -> AsyncIterator[NmbrsClient]:
    client = NmbrsClient.from_settings(
        integration_settings, base_url=f"{sandbox.base_url}/soap/v3/", max_retries=1, backoff_base_s=0.01
    )
    yield client
    await client.close()


@pytest.fixture
async def kafka_topics(integration_settings: Settings) -> Settings:
    await ensure_topics(integration_settings)
    return integration_settings


@pytest.fixture
async def publisher(kafka_topics: Settings) -> AsyncIterator[KafkaPublisher]:
    async with KafkaPublisher(kafka_topics) as publisher:
        yield publisher


@pytest.fixture
async def producer(kafka_topics: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**client_kwargs(kafka_topics), acks="all")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def read_topic(integration_settings: Settings) -> TopicReader:
    """`await read_topic(topic, count)`: the first `count` JSON messages, failing after a timeout;
    `count=None` reads whatever arrives within `quiet_s` (to prove nothing was published)."""

    async def read(topic: str, count: int | None, timeout_s: float = 60.0, quiet_s: float = 2.0) -> list[dict]:
        consumer = AIOKafkaConsumer(
            topic,
            **client_kwargs(integration_settings),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(quiet_s if count is None else timeout_s):
                while count is None or len(found) < count:
                    batch = await consumer.getmany(timeout_ms=300)
                    for records in batch.values():
                        found.extend({"key": r.key.decode() if r.key else None, **json.loads(r.value)} for r in records)
        except TimeoutError:
            if count is not None:
                pytest.fail(f"only {len(found)} of {count} messages arrived on {topic} within {timeout_s} s")
        finally:
            await consumer.stop()
        return found

    return read


@pytest.fixture
async def start_worker(migrated_database: str, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """`await start_worker(settings, VAR=value, ...)`: a real `nmbrs-sync worker` process on the settings'
    topics; every process is stopped with SIGTERM at the end (and its log printed if it failed)."""
    processes: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def start(settings: Settings, **env: str) -> None:
        await ensure_topics(settings)
        log_path = tmp_path / f"worker-{len(processes)}.log"
        process = await start_worker_process(worker_env(settings, **env), log_path)
        processes.append((process, log_path))

    yield start
    for process, log_path in processes:
        await stop_process(process, 30)
        if process.returncode not in (0, -15):
            print(log_path.read_text()[-5000:])


@pytest.fixture
async def clean_poller_state(pool: asyncpg.Pool) -> asyncpg.Pool:
    """Poller tables emptied: every poller test starts as a first poll."""
    await pool.execute("TRUNCATE nmbrs_snapshots, poll_runs")
    return pool


# --- the target store with a small starting state (reconciler and decision tests) ---


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    """An empty target store with the small starting state above."""
    await pool.execute(f"TRUNCATE {TARGET_TABLES} RESTART IDENTITY CASCADE")
    async with pool.acquire() as connection:
        await load_target_state(connection, parse_target_file(STATE, "state.yaml"))
    return pool


@pytest.fixture
def handle(db: asyncpg.Pool) -> Callable[..., Awaitable[list[Outcome]]]:
    async def run(event: ChangeEvent[Any], policy: MatchPolicy | None = None) -> list[Outcome]:
        return await handle_change(event, db, policy or MatchPolicy(), lambda: RECONCILE_NOW)

    return run


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    """A TCP relay to the test database that a test can cut() and start() again: the database gone and back."""
    parts = urlsplit(database_url_for_tests())
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    await relay.start()
    yield relay
    with contextlib.suppress(Exception):
        await relay.cut()
