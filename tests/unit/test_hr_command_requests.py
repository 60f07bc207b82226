"""Request and wait without a broker: which topic and key a command goes to, the watcher positioned before the
post, and broker errors said in words (the watcher's reading itself is tested against Kafka)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from aiokafka.errors import KafkaConnectionError

from worker.adapters import command_requests
from worker.adapters.command_requests import BrokerUnavailable, CommandRequests, FrontendCommand
from worker.config import Settings
from worker.domain.decisions import Decision, DecisionAction
from worker.domain.events import Message, Outcome, OutcomeKind, outcome_for
from worker.domain.follow_ups import FollowUpCommand

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)
DECISION = Decision(
    decision_id=uuid.uuid4(), nmbrs_id=101, action=DecisionAction.OVERSLAAN, decided_by="hr", decided_at=NOW
)
FOLLOW_UP = FollowUpCommand(
    command_id=uuid.uuid4(),
    employee_id=12,
    command="leave_adjustment",
    hours=8,
    on=date(2026, 11, 1),
    issued_by="hr",
    issued_at=NOW,
)


class Broker:
    """What the fakes did, in order, and what they are to fail with."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.published: list[tuple[str, str, Message]] = []
        self.answers: list[Outcome] = []
        self.subjects: list[str | None] = []
        self.failure: Exception | None = None


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    broker = Broker()

    class FakePublisher:
        def __init__(self, _settings: Settings) -> None: ...

        async def start(self) -> None:
            if broker.failure is not None:
                raise broker.failure
            broker.log.append("publisher started")

        async def stop(self) -> None:
            broker.log.append("publisher stopped")

        async def publish(self, topic: str, key: str, message: Message) -> None:
            broker.log.append("published")
            broker.published.append((topic, key, message))

    class FakeWatcher:
        def __init__(self, _settings: Settings) -> None: ...

        async def start(self) -> None:
            broker.log.append("watcher started")

        async def stop(self) -> None:
            broker.log.append("watcher stopped")

        async def outcomes_of(
            self, causation_id: uuid.UUID, timeout_s: float, subject: str | None = None
        ) -> list[Outcome]:
            broker.log.append(f"waited {timeout_s:g} s")
            broker.subjects.append(subject)
            return [o for o in broker.answers if o.causation_id == causation_id]

    monkeypatch.setattr(command_requests, "KafkaPublisher", FakePublisher)
    monkeypatch.setattr(command_requests, "OutcomeWatcher", FakeWatcher)
    return broker


@pytest.fixture
def settings() -> Settings:
    return Settings(kafka_bootstrap_servers="broker:9092", _env_file=None)


@pytest.mark.parametrize(
    ("command", "topic", "key"),
    [(DECISION, "nmbrs-sync.decisions", "employee:101"), (FOLLOW_UP, "nmbrs-sync.followup-commands", "rt-employee:12")],
)
async def test_each_command_goes_to_its_own_topic_keyed_by_its_subject(
    broker: Broker, settings: Settings, command: FrontendCommand, topic: str, key: str
) -> None:
    async with CommandRequests(settings) as requests:
        await requests.post(command)
    assert broker.published == [(topic, key, command)]
    assert broker.log == ["publisher started", "published", "publisher stopped"]


async def test_the_watcher_is_positioned_before_the_post_and_returns_only_its_own_outcomes(
    broker: Broker, settings: Settings
) -> None:
    mine = outcome_for(FOLLOW_UP.command_id, OutcomeKind.APPLIED, FOLLOW_UP.key, NOW, "done")
    broker.answers = [outcome_for(uuid.uuid4(), OutcomeKind.APPLIED, FOLLOW_UP.key, NOW, "someone else's"), mine]
    async with CommandRequests(settings) as requests:
        outcomes = await requests.post_and_wait(FOLLOW_UP, 5, on_posted=lambda: broker.log.append("announced"))
    assert outcomes == [mine]
    assert broker.log == [
        "publisher started",
        "watcher started",
        "published",
        "announced",
        "waited 5 s",
        "watcher stopped",
        "publisher stopped",
    ]
    assert broker.subjects == [None]  # a follow-up settles with any subject


async def test_a_decision_waits_for_the_outcome_about_its_own_subject(broker: Broker, settings: Settings) -> None:
    async with CommandRequests(settings) as requests:
        await requests.post_and_wait(DECISION, 5)
    assert broker.subjects == [DECISION.key]


async def test_a_broker_that_cannot_be_reached_is_said_in_words(broker: Broker, settings: Settings) -> None:
    broker.failure = KafkaConnectionError("Unable to bootstrap from broker:9092")
    with pytest.raises(BrokerUnavailable, match="cannot post to Kafka at broker:9092: KafkaConnectionError"):
        async with CommandRequests(settings) as requests:
            await requests.post(DECISION)
    assert broker.published == []
