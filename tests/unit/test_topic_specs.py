"""The configuration the worker gives the topics it creates: what production clusters expect of them."""

from __future__ import annotations

from worker.adapters.kafka import topic_specs
from worker.config import load_settings
from worker.contracts import DAY_MS


def test_every_topic_gets_the_durability_settings_and_the_special_ones_their_policy() -> None:
    settings = load_settings(
        _env_file=None, kafka_replication_factor=3, kafka_min_insync_replicas=2, kafka_dead_letter_retention_days=30
    )
    specs = {spec.name: spec for spec in topic_specs(settings)}
    topics = settings.topics
    assert set(specs) == set(topics.model_dump().values())
    assert all(spec.config["min.insync.replicas"] == "2" for spec in specs.values())
    assert specs[topics.decisions_needed].config["cleanup.policy"] == "compact"
    assert specs[topics.status].config["cleanup.policy"] == "compact" and specs[topics.status].partitions == 1
    assert specs[topics.dead_letter].config["retention.ms"] == str(30 * DAY_MS)
    # The event streams keep the broker's retention and are never compacted: each change counts, not the latest.
    for name in (topics.employee_changes, topics.decisions, topics.outcomes):
        assert set(specs[name].config) == {"min.insync.replicas"}, name
        assert specs[name].partitions == settings.kafka_topic_partitions
