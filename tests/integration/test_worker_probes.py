"""The worker's probes: /healthz (alive) and /readyz (database and broker answer), on STATUS_BIND:STATUS_PORT.
The database is reached through a TCP relay the test can cut, so "the database went away" is real for the
worker while the shared test database stays up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import ClientSession

from tests.support import Relay, Sandbox, database_url_for_tests, first_poll_ahead, free_port
from worker.adapters.command_requests import CommandRequests
from worker.config import Settings
from worker.domain.decisions import Decision, DecisionAction


async def probe(url: str) -> tuple[int, dict[str, object]]:
    async with ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def until(url: str, status: int, timeout_s: float) -> dict[str, object]:
    """The probe's body once it answers `status`; fails with the last answer after `timeout_s`."""
    last: object = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                with contextlib.suppress(OSError):
                    code, body = await probe(url)
                    if code == status:
                        return body
                    last = (code, body)
                await asyncio.sleep(0.3)
    except TimeoutError:
        pytest.fail(f"{url} did not answer {status} within {timeout_s} s; last: {last}")


async def test_readyz_turns_red_within_seconds_when_the_database_goes_and_green_when_it_is_back(
    start_worker: Callable[..., Awaitable[None]], integration_settings: Settings, relay: Relay
) -> None:
    parts = urlsplit(database_url_for_tests())
    through_relay = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{relay.port}"))
    port = free_port()
    await start_worker(integration_settings, DATABASE_URL=through_relay, STATUS_PORT=str(port), STATUS_BIND="127.0.0.1")
    base = f"http://127.0.0.1:{port}"
    ready = await until(f"{base}/readyz", 200, 90)
    assert ready == {"ready": True, "problems": []}
    alive = await until(f"{base}/healthz", 200, 10)
    assert alive["ok"] is True and alive["dead_agents"] == []

    await relay.cut()
    loop = asyncio.get_running_loop()
    cut_at = loop.time()
    not_ready = await until(f"{base}/readyz", 503, 15)
    assert loop.time() - cut_at < 10
    problems = not_ready["problems"]
    assert isinstance(problems, list) and any("database" in str(p) for p in problems), problems
    # Still alive: a restart would not bring the database back.
    assert (await probe(f"{base}/healthz"))[0] == 200

    await relay.start()
    assert (await until(f"{base}/readyz", 200, 30))["ready"] is True


def samples(exposition: str) -> dict[str, float]:
    """'name{labels}' -> value of every sample in a Prometheus text exposition (labels as prometheus-client
    writes them: sorted by name)."""
    found = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


async def test_metrics_show_a_first_sync(
    start_worker: Callable[..., Awaitable[None]], integration_settings: Settings, sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    await first_poll_ahead(pool)
    port = free_port()
    await start_worker(
        integration_settings,
        NMBRS_BASE_URL=f"{sandbox.base_url}/soap/v3/",
        STATUS_PORT=str(port),
        POLL_INTERVAL_S="3600",
    )
    url = f"http://127.0.0.1:{port}/metrics"
    found: dict[str, float] = {}
    async with asyncio.timeout(90):
        while found.get('nmbrs_sync_open_questions{step="employees"}', 0) == 0:
            await asyncio.sleep(0.5)
            with contextlib.suppress(OSError):
                async with ClientSession() as session, session.get(url) as response:
                    assert response.headers["Content-Type"].startswith("text/plain")
                    found = samples(await response.text())
    assert found['nmbrs_sync_polls_total{result="published"}'] == 1
    assert found["nmbrs_sync_poll_last_success_timestamp_seconds"] > 0
    assert found["nmbrs_sync_mass_change_hold_active"] == 0
    assert found['nmbrs_sync_soap_calls_total{operation="List_GetAll",result="ok"}'] >= 1
    handled = sum(v for k, v in found.items() if k.startswith('nmbrs_sync_outcomes_total{consumer="reconciler"'))
    questions = await pool.fetchval("SELECT count(*) FROM pending_decisions WHERE entity = 'employee'")
    assert handled > 0 and found['nmbrs_sync_open_questions{step="employees"}'] == questions
    assert found["nmbrs_sync_oldest_open_question_age_seconds"] > 0
    employee_changes = integration_settings.topics.employee_changes
    consumed = f'nmbrs_sync_events_total{{consumer="reconciler",result="handled",topic="{employee_changes}"}}'
    # Readiness and lag are refreshed every 2 s; the lag is per partition this worker consumes, all caught up.
    try:
        async with asyncio.timeout(15):
            while (
                not any(k.startswith("nmbrs_sync_consumer_lag{") for k in found)
                or any(v for k, v in found.items() if k.startswith("nmbrs_sync_consumer_lag{"))  # all caught up
                or found.get("nmbrs_sync_ready") != 1
                or found.get(consumed, 0) < questions
            ):
                await asyncio.sleep(0.5)
                async with ClientSession() as session, session.get(url) as response:
                    found = samples(await response.text())
    except TimeoutError:
        pytest.fail(f"no lag of 0, readiness or {questions} events within 15 s: {found}")
    assert found['nmbrs_sync_dependency_up{dependency="database"}'] == 1
    assert found['nmbrs_sync_dependency_up{dependency="broker"}'] == 1
    lag = {k: v for k, v in found.items() if k.startswith("nmbrs_sync_consumer_lag{")}
    partitions = integration_settings.kafka_topic_partitions
    employee_lag = [k for k in lag if f'topic="{employee_changes}"' in k]
    assert len(employee_lag) == partitions and all('agent="reconciler"' in k for k in employee_lag), lag
    assert len(lag) == 6 * partitions  # six consumed topics: sync requests, three change streams, decisions, follow-ups

    # A decision's latency, from its decided_at to its outcomes acknowledged.
    nmbrs_id, version = await pool.fetchrow(
        "SELECT nmbrs_id, version FROM pending_decisions WHERE entity = 'employee' ORDER BY nmbrs_id LIMIT 1"
    )
    decision = Decision(
        decision_id=uuid.uuid4(),
        nmbrs_id=nmbrs_id,
        version=version,
        action=DecisionAction.BLOKKEREN,
        decided_by="probe-test",
        decided_at=datetime.now(UTC),
    )
    async with CommandRequests(integration_settings) as requests:
        outcomes = await requests.post_and_wait(decision, timeout_s=30)
    assert [o.kind for o in outcomes if o.kind == "applied"] == ["applied"]
    async with asyncio.timeout(10):
        while found.get("nmbrs_sync_decision_latency_seconds_count", 0) < 1:
            async with ClientSession() as session, session.get(url) as response:
                found = samples(await response.text())
            await asyncio.sleep(0.2)
    assert 0 < found["nmbrs_sync_decision_latency_seconds_sum"] < 30


async def test_a_consumer_stuck_with_messages_waiting_is_not_alive_and_is_again_once_it_moves(
    start_worker: Callable[..., Awaitable[None]], integration_settings: Settings, pool: asyncpg.Pool
) -> None:
    port = free_port()
    await start_worker(integration_settings, STATUS_PORT=str(port), STATUS_BIND="127.0.0.1", WEDGED_AFTER_S="4")
    base = f"http://127.0.0.1:{port}"
    await until(f"{base}/readyz", 200, 90)
    decision = Decision(
        decision_id=uuid.uuid4(),
        nmbrs_id=999_999,
        version=1,
        action=DecisionAction.BLOKKEREN,
        decided_by="probe-test",
        decided_at=datetime.now(UTC),
    )
    # The decision's handler waits on a table lock this test holds: a live actor, stuck on an await.
    async with pool.acquire() as blocker, blocker.transaction():
        await blocker.execute("LOCK TABLE sync_blocks, pending_decisions IN ACCESS EXCLUSIVE MODE")
        async with CommandRequests(integration_settings) as requests:
            await requests.post(decision)
        stuck = await until(f"{base}/healthz", 503, 30)
        assert stuck["wedged_agents"] == ["decisions"] and stuck["dead_agents"] == []
        assert (await probe(f"{base}/readyz"))[0] == 200  # the dependencies answer: it is the consumer
    # The lock is gone: the decision is handled, and the worker is alive again without a restart.
    assert (await until(f"{base}/healthz", 200, 30))["wedged_agents"] == []
