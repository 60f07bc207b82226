"""End to end through the real broker and database: a worker process consumes, writes once, publishes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from worker.config import Settings
from worker.domain.events import SyncRequested

TopicReader = Callable[..., Awaitable[list[dict[str, Any]]]]
REPO = Path(__file__).resolve().parents[2]
WorkerStarter = Callable[..., Awaitable[None]]


@pytest.fixture
async def worker(start_worker: WorkerStarter, integration_settings: Settings) -> Settings:
    """A worker process that only consumes (no Nmbrs polling)."""
    await start_worker(integration_settings, POLL_ENABLED="false")
    return integration_settings


def sync_request(requested_by: str = "test") -> SyncRequested:
    return SyncRequested(event_id=uuid.uuid4(), full=True, requested_by=requested_by, requested_at=datetime.now(UTC))


async def rows_for(url: str, request_id: uuid.UUID) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM sync_requests WHERE request_id = $1", request_id))
    finally:
        await connection.close()


async def test_event_delivered_twice_has_exactly_one_effect_and_one_outcome_id(
    worker: Settings, producer: AIOKafkaProducer, migrated_database: str, read_topic: TopicReader
) -> None:
    request = sync_request()
    payload = request.model_dump_json().encode()
    await producer.send_and_wait(worker.topics.sync_requests, payload, key=b"sync")
    await producer.send_and_wait(worker.topics.sync_requests, payload, key=b"sync")

    outcomes = await read_topic(worker.topics.outcomes, count=2)

    assert await rows_for(migrated_database, request.event_id) == 1
    assert {o["causation_id"] for o in outcomes} == {str(request.event_id)}
    assert {o["kind"] for o in outcomes} == {"accepted"}
    # The redelivery re-publishes the stored outcome with the same id, so consumers can deduplicate it.
    assert len({o["outcome_id"] for o in outcomes}) == 1


async def test_malformed_event_is_dead_lettered_and_the_agent_goes_on(
    worker: Settings, producer: AIOKafkaProducer, migrated_database: str, read_topic: TopicReader
) -> None:
    await producer.send_and_wait(
        worker.topics.sync_requests, b'{"event_type": "sync_requested", "full": 1}', key=b"sync"
    )
    await producer.send_and_wait(worker.topics.sync_requests, b"\xff\xfe not json", key=b"sync")
    valid = sync_request("after-the-bad-ones")
    await producer.send_and_wait(worker.topics.sync_requests, valid.model_dump_json().encode(), key=b"sync")

    letters = await read_topic(worker.topics.dead_letter, count=2)
    outcomes = await read_topic(worker.topics.outcomes, count=1)

    assert all(letter["reason"].startswith("malformed message") for letter in letters)
    assert "event_id" in letters[0]["reason"] and "requested_by" in letters[0]["reason"]
    assert letters[1]["value_encoding"] == "base64"
    assert outcomes[0]["causation_id"] == str(valid.event_id)
    assert await rows_for(migrated_database, valid.event_id) == 1


def test_worker_module_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker.entrypoints.cli", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "sync-now" in result.stdout


async def test_a_malformed_decision_is_dead_lettered_and_its_sender_gets_a_rejection(
    worker: Settings, producer: AIOKafkaProducer, read_topic: TopicReader
) -> None:
    decision_id = uuid.uuid4()
    bad = {
        "decision_id": str(decision_id),
        "action": "koppelen",
        "nmbrs_id": 5,
        "decided_by": "hr",
        "decided_at": datetime.now(UTC).isoformat(),
    }  # koppelen without target_id
    await producer.send_and_wait(worker.topics.decisions, json.dumps(bad).encode(), key=b"employee:5")

    (letter,) = await read_topic(worker.topics.dead_letter, 1)
    (outcome,) = await read_topic(worker.topics.outcomes, 1)
    assert "koppelen needs target_id" in letter["reason"]
    assert outcome["kind"] == "rejected" and outcome["causation_id"] == str(decision_id)
    assert "koppelen needs target_id" in outcome["reason"]
