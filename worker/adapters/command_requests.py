"""Request and wait over Kafka (aiokafka): post a decision or follow-up command as any frontend does, then
read the outcomes it caused from the outcomes topic. Shared by the HR CLI and the HR web app.

    async with CommandRequests(settings) as requests:
        outcomes = await requests.post_and_wait(decision, timeout_s=10)

Nothing is committed and no consumer group is joined, so the worker's own groups are not disturbed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from worker.adapters.kafka import KafkaPublisher, client_kwargs
from worker.config import Settings
from worker.domain.decisions import Decision
from worker.domain.events import Outcome, SyncRequested, settles
from worker.domain.follow_ups import FollowUpCommand

FrontendCommand = Decision | FollowUpCommand | SyncRequested

# After the settling outcome, how long to keep reading for the outcomes published right behind it (leave,
# tasks): the worker publishes a command's outcomes in one batch, so they arrive together or within milliseconds.
STRAGGLERS_S = 0.1


class BrokerUnavailable(Exception):
    """Kafka cannot take the command or show its outcomes (unreachable, or the topics are missing)."""


class CommandRequests:
    """Posts frontend commands on their topics and waits for their outcomes; one producer for its lifetime.

    Each wait reads with a watcher of its own, so concurrent requests (a web app's) do not take each other's
    outcomes. Every error of the broker is raised as BrokerUnavailable.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._publisher = KafkaPublisher(settings)

    async def __aenter__(self) -> CommandRequests:
        with self._broker_errors():
            await self._publisher.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._publisher.stop()

    async def post(self, command: FrontendCommand) -> None:
        """Publish `command` keyed by its subject, once the broker acknowledged it; wait for nothing."""
        topics = self._settings.topics
        if isinstance(command, SyncRequested):
            topic, key = topics.sync_requests, "sync"
        else:
            topic, key = (topics.decisions if isinstance(command, Decision) else topics.followup_commands), command.key
        with self._broker_errors():
            await self._publisher.publish(topic, key, command)

    async def post_and_wait(
        self, command: FrontendCommand, timeout_s: float, *, on_posted: Callable[[], None] | None = None
    ) -> list[Outcome]:
        """Post `command`, then return the outcomes it caused within `timeout_s` seconds: up to the one that
        settles it (see events.settles) and those right behind it, or, when the worker did not answer in time,
        whatever came (none settling it). `on_posted` runs once the command is on its topic, before waiting."""
        watcher = OutcomeWatcher(self._settings)
        with self._broker_errors():
            try:
                # Positioned before posting: an outcome faster than us cannot slip by unseen.
                await watcher.start()
                await self.post(command)
                if on_posted is not None:
                    on_posted()
                return await watcher.outcomes_of(command_id(command), timeout_s, settling_subject(command))
            finally:
                await watcher.stop()

    @contextmanager
    def _broker_errors(self) -> Iterator[None]:
        try:
            yield
        except (KafkaError, OSError) as error:
            servers = self._settings.kafka_bootstrap_servers
            raise BrokerUnavailable(f"cannot post to Kafka at {servers}: {error!r}") from error


def settling_subject(command: FrontendCommand) -> str | None:
    """The subject of the outcome that settles `command` (see events.settles): a decision's key, 'bulk' for one
    by filter; any subject for the other commands."""
    return command.key if isinstance(command, Decision) else None


def command_id(command: FrontendCommand) -> uuid.UUID:
    """The id its outcomes carry as their causation id."""
    if isinstance(command, SyncRequested):
        return command.event_id
    return command.decision_id if isinstance(command, Decision) else command.command_id


class OutcomeWatcher:
    """Reads the outcomes topic from its end offsets at start() (no consumer group: nothing is committed,
    and the worker's own groups are not disturbed)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.topics.outcomes
        self._consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
        self._started = False

    async def start(self) -> None:
        admin = AIOKafkaAdminClient(**client_kwargs(self._settings))
        await admin.start()
        try:
            (meta,) = await admin.describe_topics([self._topic])
        finally:
            await admin.close()
        if meta["error_code"] != 0:
            raise OSError(
                f"topic {self._topic} is not available (error {meta['error_code']}): run 'nmbrs-sync topics ensure'"
            )
        partitions = [TopicPartition(self._topic, p["partition"]) for p in meta["partitions"]]
        await self._consumer.start()
        self._started = True
        self._consumer.assign(partitions)
        for partition, offset in (await self._consumer.end_offsets(partitions)).items():
            self._consumer.seek(partition, offset)

    async def stop(self) -> None:
        if self._started:
            await self._consumer.stop()

    async def outcomes_of(self, causation_id: uuid.UUID, timeout_s: float, subject: str | None = None) -> list[Outcome]:
        """Outcomes caused by `causation_id` until one (about `subject`) settles it, plus those right behind it, or
        what came until timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        found: list[Outcome] = []
        while (remaining := deadline - loop.time()) > 0:
            found += await self._read(causation_id, min(remaining, 1.0))
            if any(settles(o, subject) for o in found):
                # A command's outcomes are published one after the other: collect the rest of them.
                found += await self._read(causation_id, STRAGGLERS_S)
                break
        return found

    async def _read(self, causation_id: uuid.UUID, timeout_s: float) -> list[Outcome]:
        batch = await self._consumer.getmany(timeout_ms=max(1, int(timeout_s * 1000)))
        found: list[Outcome] = []
        for records in batch.values():
            for record in records:
                try:
                    outcome = Outcome.model_validate_json(record.value or b"")
                except ValidationError:
                    continue  # not ours to judge: the topic's other producers are checked elsewhere
                if outcome.causation_id == causation_id:
                    found.append(outcome)
        return found
