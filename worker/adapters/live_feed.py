"""One tail of the outcomes and status topics for a frontend process (aiokafka): it wakes the requests that
wait for their outcome and feeds the live page updates.

One consumer for the whole process, read from the end offsets at start without a consumer group (nothing is
committed and the worker's groups are not disturbed): a web app with many users opens one Kafka connection,
not one per click.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from worker.adapters.command_requests import STRAGGLERS_S
from worker.adapters.kafka import client_kwargs
from worker.config import Settings
from worker.domain.events import Outcome, PollReport, settles
from worker.domain.status import StepStatus

log = logging.getLogger(__name__)

# A subscriber that stops reading (a browser tab asleep) loses its oldest items, never blocks the feed.
SUBSCRIBER_BACKLOG = 200


@dataclass(frozen=True)
class FeedItem:
    kind: Literal["outcome", "status", "poll"]
    key: str
    outcome: Outcome | None = None
    status: StepStatus | None = None
    poll: PollReport | None = None


@dataclass
class OutcomeWaiter:
    # The outcome that settles the command: a bulk decision also publishes an outcome per record before its own.
    subject: str | None = None
    found: list[Outcome] = field(default_factory=list)
    settled: asyncio.Event = field(default_factory=asyncio.Event)


class FeedUnavailable(Exception):
    """The broker cannot be read (unreachable, or the topics are missing)."""


class LiveFeed:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topics = {settings.topics.outcomes: "outcome", settings.topics.status: "status"}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: dict[uuid.UUID, OutcomeWaiter] = {}
        self._subscribers: set[asyncio.Queue[FeedItem]] = set()

    async def start(self) -> None:
        try:
            partitions = await self._partitions()
            consumer = AIOKafkaConsumer(**client_kwargs(self._settings), group_id=None, enable_auto_commit=False)
            await consumer.start()
        except (KafkaError, OSError) as error:
            raise FeedUnavailable(
                f"cannot read Kafka at {self._settings.kafka_bootstrap_servers}: {error!r}"
            ) from error
        consumer.assign(partitions)
        for partition, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(partition, offset)
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(consumer), name="live-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(**client_kwargs(self._settings))
        await admin.start()
        try:
            described = await admin.describe_topics(list(self._topics))
        finally:
            await admin.close()
        partitions = []
        for meta in described:
            if meta["error_code"] != 0:
                raise OSError(f"topic {meta['topic']} is not available: run 'nmbrs-sync topics ensure'")
            partitions += [TopicPartition(meta["topic"], p["partition"]) for p in meta["partitions"]]
        return partitions

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=1000)
            except KafkaError as error:  # the broker away: aiokafka reconnects, we keep asking
                log.warning("live feed: %s; reading again", error)
                await asyncio.sleep(1)
                continue
            for records in batch.values():
                for record in records:
                    item = self._item(record.topic, (record.key or b"").decode("utf-8", "replace"), record.value)
                    if item is not None:
                        self._dispatch(item)

    def _item(self, topic: str, key: str, value: bytes | None) -> FeedItem | None:
        try:
            if self._topics[topic] == "outcome":
                return FeedItem("outcome", key, outcome=Outcome.model_validate_json(value or b""))
            if key.startswith("step:"):
                return FeedItem("status", key, status=StepStatus.model_validate_json(value or b""))
            if key == "poll":
                return FeedItem("poll", key, poll=PollReport.model_validate_json(value or b""))
        except ValidationError:
            pass  # not ours to judge: the topics' producers are checked elsewhere
        return None

    def _dispatch(self, item: FeedItem) -> None:
        if item.outcome is not None and (waiter := self._waiters.get(item.outcome.causation_id)) is not None:
            waiter.found.append(item.outcome)
            if settles(item.outcome, waiter.subject):
                waiter.settled.set()
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)

    @contextlib.contextmanager
    def expecting(self, causation_id: uuid.UUID, subject: str | None = None) -> Iterator[OutcomeWaiter]:
        """Collect the outcomes of `causation_id` from now on, until one about `subject` (if given) settles it;
        enter it before posting the command."""
        waiter = self._waiters[causation_id] = OutcomeWaiter(subject)
        try:
            yield waiter
        finally:
            del self._waiters[causation_id]

    async def outcomes(self, waiter: OutcomeWaiter, timeout_s: float) -> list[Outcome]:
        """The outcomes collected by `waiter` until one settles its command (plus those right behind it), or
        what came within `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.settled.wait(), timeout_s)
            await asyncio.sleep(STRAGGLERS_S)
        return list(waiter.found)

    async def subscribe(self) -> AsyncIterator[FeedItem]:
        """Every item from now on, for as long as the caller reads."""
        queue: asyncio.Queue[FeedItem] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)
