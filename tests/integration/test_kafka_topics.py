"""Topic administration against the real broker: explicit creation and the clean-up of throwaway topics."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support import unique_topics, worker_env
from worker.adapters.kafka import GroupLag, TopicsNotReady, client_kwargs, delete_topics_with_prefix, ensure_topics
from worker.config import Settings
from worker.entrypoints.cli import main


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


async def _configs(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    finally:
        await admin.close()
    # Each resource: (error_code, error_message, type, name, [(key, value, read_only, is_default, sensitive), ...]).
    return {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }


async def _set_on_the_topic(settings: Settings, name: str, key: str) -> bool:
    """Whether `key` was given to the topic itself rather than inherited from the broker's default."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    (resource,) = response.resources
    # (key, value, read_only, config_source, sensitive, synonyms); source 1 is DYNAMIC_TOPIC_CONFIG.
    return any(entry[0] == key and entry[3] == 1 for entry in resource[4])


async def test_created_topics_carry_their_policies_and_a_managed_cluster_is_checked_not_changed(
    integration_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = integration_settings.model_copy(update={"kafka_dead_letter_retention_days": 45})
    topics = settings.topics
    try:
        with pytest.raises(TopicsNotReady, match=rf"TOPICS_ENSURE is false .*{topics.decisions_needed} \("):
            await ensure_topics(settings, create=False)
        # The command says so without a traceback, and exits with the code of a refused start.
        for name, value in worker_env(settings, TOPICS_ENSURE="false").items():
            monkeypatch.setenv(name, value)
        assert await asyncio.to_thread(main, ["topics", "ensure"]) == 3
        assert "TOPICS_ENSURE is false but these topics do not exist" in capsys.readouterr().err
        assert not set(topics.model_dump().values()) & await _names(settings)  # nothing was created

        await ensure_topics(settings)
        configs = await _configs(settings, [topics.decisions_needed, topics.dead_letter, topics.employee_changes])
        assert configs[topics.decisions_needed]["cleanup.policy"] == "compact"
        assert configs[topics.dead_letter]["retention.ms"] == str(45 * 86_400_000)
        assert configs[topics.dead_letter]["cleanup.policy"] == "delete"
        assert configs[topics.employee_changes]["cleanup.policy"] == "delete"
        assert all(config["min.insync.replicas"] == "1" for config in configs.values())
        assert await _set_on_the_topic(settings, topics.employee_changes, "min.insync.replicas")  # not the default
        assert await ensure_topics(settings, create=False) == []  # present now: the check passes

        # A topic made before (or by someone else) with other settings is named in a warning, not changed.
        # On the logger itself: the CLI run above configured logging anew, without pytest's root handler.
        kafka_log = logging.getLogger("worker.adapters.kafka")
        kafka_log.addHandler(caplog.handler)
        monkeypatch.setattr(kafka_log, "level", logging.WARNING)
        longer = settings.model_copy(update={"kafka_dead_letter_retention_days": 60})
        assert await ensure_topics(longer) == []
        (warning,) = [r.getMessage() for r in caplog.records if "differs" in r.getMessage()]
        assert f"{topics.dead_letter}: retention.ms is {45 * 86_400_000}, nmbrs-sync sets {60 * 86_400_000}" in warning
        assert (await _configs(settings, [topics.dead_letter]))[topics.dead_letter]["retention.ms"] == str(
            45 * 86_400_000
        )
        kafka_log.removeHandler(caplog.handler)
    finally:
        await delete_topics_with_prefix(settings, [f"{settings.kafka_app_id}."])


async def test_lag_is_what_the_group_has_not_committed_counted_from_the_first_offset_before_any_commit(
    integration_settings: Settings,
) -> None:
    settings = integration_settings
    topic = settings.topics.decisions
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**client_kwargs(settings))
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, b"{}", partition=0, key=str(n).encode())
    finally:
        await producer.stop()
    lag = GroupLag(settings)
    try:
        assert await lag.behind([(topic, 0), (topic, 1)]) == {(topic, 0): 3, (topic, 1): 0}
        group = AIOKafkaConsumer(**client_kwargs(settings), group_id=settings.kafka_app_id, enable_auto_commit=False)
        await group.start()
        try:
            group.assign([TopicPartition(topic, 0)])
            await group.commit({TopicPartition(topic, 0): 1})
        finally:
            await group.stop()
        assert await lag.behind([(topic, 0)]) == {(topic, 0): 2}
    finally:
        await lag.close()
        await delete_topics_with_prefix(settings, [f"{settings.kafka_app_id}."])
