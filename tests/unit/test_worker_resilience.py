"""The worker rides out a database or broker that is away: timers go on, connections are waited for."""

from __future__ import annotations

import asyncio
import socket

import pytest

from worker.config import Settings
from worker.entrypoints.worker_app import Resources, keeps_running


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_timer_body_that_meets_a_refused_connection_lets_the_next_tick_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Seen from outside: the status timer raised ConnectionRefusedError while PostgreSQL restarted, faust
    # crashed the whole worker and it never came back.
    ticks: list[int] = []

    @keeps_running("status publish")
    async def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) < 3:
            raise ConnectionRefusedError(111, "Connect call failed")

    for _ in range(4):
        await tick()
    assert ticks == [0, 1, 2, 3]
    assert caplog.text.count("status publish failed (ConnectionRefusedError") == 2


async def test_a_shutdown_still_cancels_a_timer_body() -> None:
    @keeps_running("status publish")
    async def tick() -> None:
        await asyncio.sleep(10)

    task = asyncio.ensure_future(tick())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_agents_wait_for_a_database_that_is_not_there_yet_instead_of_crashing() -> None:
    settings = Settings(database_url=f"postgresql://u:p@127.0.0.1:{closed_port()}/db", _env_file=None)  # type: ignore[call-arg]
    resources = Resources(settings)
    # Still waiting after a second (retrying with backoff), not raising ConnectionRefusedError.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(resources.pool(), timeout=1.0)


async def test_agents_wait_for_a_broker_that_is_not_there_yet_instead_of_crashing() -> None:
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{closed_port()}", _env_file=None)  # type: ignore[call-arg]
    resources = Resources(settings)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(resources.publisher(), timeout=2.0)
