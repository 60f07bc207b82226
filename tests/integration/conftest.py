"""Integration fixtures: the Nmbrs sandbox over real HTTP, Kafka readers and producers, a clean poller."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession, web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from worker.adapters.kafka import KafkaPublisher, client_kwargs, ensure_topics
from worker.adapters.nmbrs.client import NmbrsClient
from worker.config import Settings
from worker.sandbox.dataset import load_dataset
from worker.sandbox.server import create_app

REPO = Path(__file__).resolve().parents[2]
DEMO_DATA = REPO / "worker" / "sandbox" / "data" / "demo.json"
DEMO_TARGET = REPO / "worker" / "sandbox" / "data" / "demo-target.yaml"

TopicReader = Callable[..., Awaitable[list[dict[str, Any]]]]


class Sandbox:
    """A running local Nmbrs sandbox and a tiny client for its admin endpoints."""

    def __init__(self, base_url: str, session: ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, f"{self.base_url}/admin/{path}", json=body) as response:
            assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
            return None if response.status == 204 else await response.json()


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


def worker_env(settings: Settings, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAFKA_APP_ID=settings.kafka_app_id,
        KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        KAFKA_TOPIC_PARTITIONS=str(settings.kafka_topic_partitions),
        DATABASE_URL=settings.database_url.get_secret_value(),
        STATUS_PORT="0",
        LOG_LEVEL="INFO",
    )
    for name, topic in settings.topics.model_dump().items():
        env[f"TOPICS__{name.upper()}"] = topic
    env.update(overrides)
    return env


@pytest.fixture
async def start_worker(migrated_database: str, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """`await start_worker(settings, VAR=value, ...)`: a real `nmbrs-sync worker` process on the settings'
    topics; every process is stopped with SIGTERM at the end (and its log printed if it failed)."""
    processes: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def start(settings: Settings, **env: str) -> None:
        await ensure_topics(settings)
        log_path = tmp_path / f"worker-{len(processes)}.log"
        with log_path.open("w") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker.entrypoints.cli", "worker",
                cwd=REPO, env=worker_env(settings, **env), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        processes.append((process, log_path))

    yield start
    for process, log_path in processes:
        process.terminate()
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        if process.returncode not in (0, -15):
            print(log_path.read_text()[-5000:])


@pytest.fixture
async def clean_poller_state(pool: asyncpg.Pool) -> asyncpg.Pool:
    """Poller tables emptied: every poller test starts as a first poll."""
    await pool.execute("TRUNCATE nmbrs_snapshots, poll_runs")
    return pool
