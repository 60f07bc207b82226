"""Kafka adapter (aiokafka): connection settings, explicit topic creation, readiness, a plain producer."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, KafkaTimeoutError

from worker.config import Settings
from worker.contracts import TOPIC_CONTRACTS, topic_config
from worker.domain.events import Message

log = logging.getLogger(__name__)


def kafka_error_is_transient(error: BaseException) -> bool:
    """Whether a broker error is worth another try (aiokafka marks the ones that are)."""
    return isinstance(error, KafkaError) and (bool(error.retriable) or isinstance(error, KafkaTimeoutError))


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """aiokafka connection arguments: bootstrap servers plus TLS/SASL when configured."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # enforced by Settings
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return kwargs


def ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return context


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)

    def described(self) -> str:
        settings = [f"{self.partitions} partitions"] + [f"{key}={value}" for key, value in self.config.items()]
        return f"{self.name} ({', '.join(settings)})"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the product owns, with the configuration the worker gives it when it creates it."""
    return [
        TopicSpec(
            getattr(settings.topics, contract.topic_field),
            1 if contract.one_partition else settings.kafka_topic_partitions,
            topic_config(contract, settings),
        )
        for contract in TOPIC_CONTRACTS
    ]


TOPICS_VISIBLE_TIMEOUT_S = 60.0


class TopicsNotReady(RuntimeError):
    """Topics are missing or differ from the configuration; the message names each."""


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None, create: bool = True) -> list[str]:
    """Create missing topics with their partition counts and configuration; return the names created now.
    With `create` false (TOPICS_ENSURE=false: topics are managed elsewhere) a missing topic is an error.

    An existing topic with another partition count is an error: faust tables and per-key order both
    depend on the count, so it must not differ silently.
    """
    specs = topic_specs(settings) if specs is None else specs
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        existing = {
            meta["topic"]: len(meta["partitions"])
            for meta in await admin.describe_topics([s.name for s in specs])
            if meta["error_code"] == 0
        }
        wrong = [
            f"{s.name} has {existing[s.name]} partitions, configured {s.partitions}"
            for s in specs
            if s.name in existing and existing[s.name] != s.partitions
        ]
        if wrong:
            raise TopicsNotReady("topic partition counts differ from the configuration: " + "; ".join(wrong))
        for difference in await _config_drift(admin, [s for s in specs if s.name in existing]):
            # Not changed here: the topic may be managed elsewhere on purpose (a platform's retention policy).
            log.warning("topic configuration differs from what nmbrs-sync creates: %s", difference)
        missing = [s for s in specs if s.name not in existing]
        if missing and not create:
            raise TopicsNotReady(
                "TOPICS_ENSURE is false but these topics do not exist: " + "; ".join(s.described() for s in missing)
            )
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        num_partitions=s.partitions,
                        replication_factor=settings.kafka_replication_factor,
                        topic_configs=s.config,
                    )
                    for s in missing
                ]
            )
            log.info("created topics: %s", ", ".join(s.name for s in missing))
            await _wait_until_visible(admin, [s.name for s in missing])
        return [s.name for s in missing]
    finally:
        await admin.close()


async def _config_drift(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> list[str]:
    """'topic: key is X, nmbrs-sync sets Y' for each setting of an existing topic that differs from its spec."""
    if not specs:
        return []
    wanted = {spec.name: spec.config for spec in specs}
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted])
    differences = []
    # A resource: (error_code, error_message, type, name, [(key, value, read_only, is_default, ...), ...]).
    for resource in (resource for response in responses for resource in response.resources):
        actual = {entry[0]: entry[1] for entry in resource[4]}
        differences += [
            f"{resource[3]}: {key} is {actual.get(key)}, nmbrs-sync sets {value}"
            for key, value in wanted.get(resource[3], {}).items()
            if actual.get(key) != value
        ]
    return differences


async def delete_topics_with_prefix(settings: Settings, prefixes: Iterable[str]) -> list[str]:
    """Delete every topic whose name starts with one of `prefixes`; return the names deleted.

    For the throwaway topics of tests and benchmarks: a development broker would otherwise keep thousands
    of them, and its start-up time grows with every partition it has to load.
    """
    wanted = tuple(prefixes)
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if name.startswith(wanted))
        for start in range(0, len(names), 500):
            await admin.delete_topics(names[start : start + 500])
        await _wait_until_gone(admin, names)
        return names
    finally:
        await admin.close()


async def _wait_until_gone(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until the broker no longer lists the deleted topics: the controller accepts a deletion before the
    broker's metadata drops the topic, and a topic of the same name created meanwhile would clash with it."""
    deadline = time.monotonic() + TOPICS_VISIBLE_TIMEOUT_S
    while lingering := set(names) & set(await admin.list_topics()):
        if time.monotonic() > deadline:
            still = ", ".join(sorted(lingering))
            raise RuntimeError(f"topics still listed {TOPICS_VISIBLE_TIMEOUT_S:.0f} s after deleting them: {still}")
        await asyncio.sleep(0.1)


async def _wait_until_visible(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until the broker describes every new topic with a leader for each partition. A consumer that
    subscribes earlier (a cold broker takes seconds) ignores the topic as missing and is assigned nothing
    until its metadata is next refreshed, minutes later."""
    deadline = time.monotonic() + TOPICS_VISIBLE_TIMEOUT_S
    while True:
        described = await admin.describe_topics(names)
        visible = {
            meta["topic"]
            for meta in described
            if meta["error_code"] == 0 and meta["partitions"] and all(p["leader"] >= 0 for p in meta["partitions"])
        }
        waiting = sorted(set(names) - visible)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"topics not usable {TOPICS_VISIBLE_TIMEOUT_S:.0f} s after creating them: {', '.join(waiting)}"
            )
        await asyncio.sleep(0.2)


async def wait_until_ready(settings: Settings, timeout_s: float) -> None:
    """Return once the cluster answers an admin request; raise TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as error:
            last_error = error
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise TimeoutError(f"Kafka at {settings.kafka_bootstrap_servers} not ready: {last_error!r}")


class GroupLag:
    """How far the consumer group is behind on partitions, from the broker's own numbers: the end offsets
    (a consumer of no group, which only asks) minus the group's committed offsets (an admin client)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Made on first use: aiokafka needs the running loop.
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None

    async def behind(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Messages not committed yet per partition; a partition never committed counts from its first offset."""
        admin, offsets = await self._clients()
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        committed = await admin.list_consumer_group_offsets(self._settings.kafka_app_id, partitions=wanted)
        ends = await offsets.end_offsets(wanted)
        never = [tp for tp in wanted if tp not in committed or committed[tp].offset < 0]
        starts = await offsets.beginning_offsets(never) if never else {}
        return {
            (tp.topic, tp.partition): max(0, ends[tp] - (starts[tp] if tp in starts else committed[tp].offset))
            for tp in wanted
        }

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            admin = AIOKafkaAdminClient(**client_kwargs(self._settings), request_timeout_ms=5000)
            offsets = AIOKafkaConsumer(**client_kwargs(self._settings), group_id=None, enable_auto_commit=False)
            try:
                await admin.start()
                await offsets.start()
            except BaseException:
                await admin.close()
                await offsets.stop()
                raise
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self._offsets is not None:
            await self._offsets.stop()


class KafkaPublisher:
    """Publishes envelopes and waits for the broker's acknowledgement (acks=all, idempotent producer)."""

    def __init__(self, settings: Settings) -> None:
        self._producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", enable_idempotence=True)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def unreachable(self, timeout_s: float) -> str | None:
        """Why no broker answers a metadata request within `timeout_s`, or None when one does."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._producer.client.fetch_all_metadata()
        except TimeoutError:
            return f"Kafka did not answer within {timeout_s:g} s"
        except (KafkaError, OSError) as error:
            return f"Kafka: {type(error).__name__}"
        return None

    async def publish(self, topic: str, key: str, message: Message) -> None:
        await self._producer.send_and_wait(topic, message.model_dump_json().encode(), key=key.encode())

    async def publish_many(self, items: list[tuple[str, str, Message]]) -> None:
        """Send everything, then wait for every acknowledgement (batched, unlike one-by-one waits)."""
        await self.publish_bodies([(topic, key, message.model_dump_json().encode()) for topic, key, message in items])

    async def publish_bodies(self, items: list[tuple[str, str, bytes]]) -> None:
        """publish_many for messages serialised already: (topic, key, body)."""
        futures = [await self._producer.send(topic, body, key=key.encode()) for topic, key, body in items]
        await asyncio.gather(*futures)

    async def __aenter__(self) -> KafkaPublisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
