"""Shared fixtures. Integration fixtures talk to the real Kafka and PostgreSQL started by `./dev test`."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiokafka.errors import KafkaError

from tests.support import database_url_for_tests, unique_topics
from worker.adapters.kafka import delete_topics_with_prefix
from worker.adapters.migrations import migrate
from worker.config import Settings


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
async def throwaway_topics() -> AsyncIterator[list[Settings]]:
    """The settings of every test that may have created topics; at the end of the session, the topics of
    their prefixes are deleted, so the development broker does not collect them run after run."""
    used: list[Settings] = []
    yield used
    if used:
        try:
            await delete_topics_with_prefix(used[0], (f"{settings.kafka_app_id}." for settings in used))
        except (KafkaError, OSError) as error:
            warnings.warn(f"test topics left on the broker: {error!r}", stacklevel=1)


@pytest.fixture
def integration_settings(run_id: str, throwaway_topics: list[Settings]) -> Iterator[Settings]:
    settings = Settings(
        kafka_app_id=f"test-{run_id}",
        topics=unique_topics(f"test-{run_id}"),
        database_url=database_url_for_tests(),
        kafka_topic_partitions=2,
        status_port=0,
        _env_file=None,  # type: ignore[call-arg]
    )
    throwaway_topics.append(settings)
    yield settings


@pytest.fixture(scope="session")
async def migrated_database() -> AsyncIterator[str]:
    """The test database, emptied and migrated once per session."""
    url = database_url_for_tests()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        await migrate(connection)
    finally:
        await connection.close()
    yield url


@pytest.fixture
async def pool(migrated_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(migrated_database, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()
