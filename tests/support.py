"""What tests share besides fixtures: the repository's paths, the small starting state, worker settings for a
subprocess, a client for the sandbox's admin API, a relay that cuts the database away. Imported by tests and
conftests alike (conftests only hold fixtures and hooks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from worker.config import Settings, Topics

REPO = Path(__file__).resolve().parents[1]
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


def database_url_for_tests() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.fail("TEST_DATABASE_URL is not set: run the integration tests through ./dev test")
    return url


def unique_topics(prefix: str) -> Topics:
    """Topic names of their own, so tests never see each other's messages."""
    return Topics(**{name: f"{prefix}.{name}" for name in Topics.model_fields})


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Relay:
    """Forwards 127.0.0.1:port to the database; cut() drops every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def start_worker_process(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """`nmbrs-sync worker` in a subprocess with exactly `env`, its output appended to `log`."""
    with log.open("a") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker.entrypoints.cli",
            "worker",
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def stop_process(process: asyncio.subprocess.Process, timeout_s: float) -> None:
    """SIGTERM, and SIGKILL when it has not exited within `timeout_s`."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


async def first_poll_ahead(pool: Any) -> None:
    """The next poll is a first poll into an empty store: everything in the sandbox is new and unlinked."""
    await pool.execute(f"TRUNCATE nmbrs_snapshots, poll_runs, sync_requests, {TARGET_TABLES} RESTART IDENTITY CASCADE")
