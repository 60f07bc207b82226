"""Topic administration against the real broker: explicit creation and the clean-up of throwaway topics."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from tests.support import unique_topics
from worker.adapters.kafka import client_kwargs, delete_topics_with_prefix, ensure_topics
from worker.config import Settings


async def _names(settings: Settings) -> set[str]:
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_deleting_by_prefix_removes_those_topics_only(integration_settings: Settings) -> None:
    doomed = integration_settings
    kept = doomed.model_copy(update={"topics": unique_topics(f"{doomed.kafka_app_id}-kept")})
    created = await ensure_topics(doomed) + await ensure_topics(kept)
    assert set(created) <= await _names(doomed)

    deleted = await delete_topics_with_prefix(doomed, [f"{doomed.kafka_app_id}."])

    assert set(deleted) == set(doomed.topics.model_dump().values())
    remaining = await _names(doomed)
    assert not remaining & set(deleted)
    assert set(kept.topics.model_dump().values()) <= remaining
    await delete_topics_with_prefix(kept, [f"{doomed.kafka_app_id}-kept."])
