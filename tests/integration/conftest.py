"""Integration fixtures: the Nmbrs sandbox over real HTTP, Kafka readers and producers, a clean poller."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession, web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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


# --- the target store with a small starting state (reconciler and decision tests) ---

RECONCILE_NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)
STATE = """
organisations:
  - {ref: org-zon, name: "Bakkerij De Zon B.V.", kvk_number: "88721495"}
persons:
  - ref: anna
    first_name: Anna
    prefix: van der
    last_name: Berg
    birthday: 1980-04-02
    email_work: anna@zon.nl
    organisation: org-zon
    account: {username: anna, roles: [medewerker]}
  - {ref: anna-duplicate, first_name: Anna, last_name: van der Berg, birthday: 1980-04-02, organisation: org-zon}
  - {ref: piet, first_name: Piet, last_name: Smit, birthday: 1975-01-01, organisation: org-zon}
blue_employees:
  - {ref: piet-blue, person: piet, organisation: org-zon, number: "900", employment_start: 2019-01-01}
labour_agreements:
  - {nmbrs_id: 2, number: "CAO-2", description: Bakkerij,
     extra_leave_hours_fulltime: "16", fulltime_hours_per_week: "38"}
"""
TARGET_TABLES = (
    "audit_log, pending_decisions, sync_blocks, sync_links, rt_leave_balances, rt_employee_time_categories, "
    "rt_time_categories, rt_leave_adjustments, rt_leave_taken, rt_overtime, rt_overtime_payouts, "
    "rt_contract_periods, rt_schedule_periods, rt_employees, rt_companies, rt_departments, rt_functions, "
    "rt_labour_agreements, crm_characteristics, crm_accounts, crm_persons, crm_organisations, processed_events"
)


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
