"""The consumer shell: malformed input is dead-lettered, infrastructure errors retried, bugs kept."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest
from pydantic import TypeAdapter

from worker.domain import inbound
from worker.domain.decisions import Decision, DecisionAction
from worker.domain.events import Message, Outcome, OutcomeKind, SyncRequested, outcome_for
from worker.entrypoints import consuming
from worker.entrypoints.consuming import ConsumerContext, RawMessage, consume_batch, consume_one
from worker.entrypoints.consuming import backoff_delay as real_backoff_delay


class RecordingSink:
    def __init__(self, failures: int = 0) -> None:
        self.published: list[tuple[str, str, Message]] = []
        self.failures = failures

    async def publish(self, topic: str, key: str, message: Message) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("broker connection reset")
        self.published.append((topic, key, message))

    async def publish_many(self, items: list[tuple[str, str, Message]]) -> None:
        for item in items:
            await self.publish(*item)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consuming, "backoff_delay", lambda attempt, cap: 0.0)


def context(sink: RecordingSink) -> ConsumerContext:
    return ConsumerContext(name="test", sink=sink, outcomes_topic="out", dead_letter_topic="dlq")


def raw(value: bytes | None, key: bytes | None = b"sync") -> RawMessage:
    return RawMessage(topic="in", partition=1, offset=42, key=key, value=value)


def valid_request() -> SyncRequested:
    return SyncRequested(event_id=uuid.uuid4(), requested_by="hr", requested_at=datetime.now(UTC))


def accepted(request: SyncRequested) -> list[Outcome]:
    return [outcome_for(request.event_id, OutcomeKind.ACCEPTED, "sync-request", datetime.now(UTC))]


async def test_outcomes_of_a_handled_message_are_published_keyed_by_subject() -> None:
    sink = RecordingSink()
    request = valid_request()

    async def handle(message: SyncRequested) -> list[Outcome]:
        return accepted(message)

    await consume_one(raw(request.model_dump_json().encode()), context(sink), SyncRequested.model_validate_json, handle)
    assert [(topic, key) for topic, key, _ in sink.published] == [("out", "sync-request")]


async def test_malformed_message_goes_to_dead_letter_with_field_names_and_original_bytes() -> None:
    sink = RecordingSink()

    async def handle(message: SyncRequested) -> list[Outcome]:
        raise AssertionError("must not be called")

    await consume_one(raw(b'{"requested_by": ""}'), context(sink), SyncRequested.model_validate_json, handle)
    ((topic, key, letter),) = sink.published
    assert topic == "dlq" and key == "sync"
    assert "event_id" in letter.reason and "requested_by" in letter.reason  # type: ignore[attr-defined]
    assert letter.value == '{"requested_by": ""}' and letter.offset == 42  # type: ignore[attr-defined]


async def test_binary_garbage_is_kept_base64_encoded_in_the_dead_letter() -> None:
    sink = RecordingSink()
    await consume_one(raw(b"\xff\x00\xfe"), context(sink), SyncRequested.model_validate_json, None)  # type: ignore[arg-type]
    ((_, _, letter),) = sink.published
    assert letter.value_encoding == "base64" and letter.value == "/wD+"  # type: ignore[attr-defined]


async def test_infrastructure_errors_are_retried_until_the_handler_succeeds() -> None:
    sink = RecordingSink()
    request = valid_request()
    calls = 0

    async def flaky(message: SyncRequested) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise asyncpg.CannotConnectNowError("database starting up")
        return accepted(message)

    outcomes = await consume_one(
        raw(request.model_dump_json().encode()), context(sink), SyncRequested.model_validate_json, flaky
    )
    assert calls == 3 and len(outcomes) == 1 and sink.published[0][0] == "out"


async def test_a_handler_bug_dead_letters_the_message_with_the_error_instead_of_dropping_it() -> None:
    sink = RecordingSink()
    request = valid_request()

    async def buggy(message: SyncRequested) -> list[Outcome]:
        raise KeyError("company_id")

    outcomes = await consume_one(
        raw(request.model_dump_json().encode()), context(sink), SyncRequested.model_validate_json, buggy
    )
    ((topic, _, letter),) = sink.published
    assert outcomes == [] and topic == "dlq"
    assert letter.reason == "handler failed: KeyError: 'company_id'"  # type: ignore[attr-defined]


async def test_outcome_publish_is_retried_when_the_broker_is_briefly_away() -> None:
    sink = RecordingSink(failures=2)
    request = valid_request()

    async def handle(message: SyncRequested) -> list[Outcome]:
        return accepted(message)

    await consume_one(raw(request.model_dump_json().encode()), context(sink), SyncRequested.model_validate_json, handle)
    assert len(sink.published) == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    for attempt in range(12):
        samples = [real_backoff_delay(attempt, 5.0) for _ in range(200)]
        ceiling = min(5.0, 0.1 * 2**attempt)
        assert all(0 <= delay <= ceiling for delay in samples)
        assert max(samples) > ceiling / 2  # jitter spreads over the whole window


async def test_an_error_that_can_never_succeed_is_dead_lettered_not_retried_forever() -> None:
    from aiokafka.errors import MessageSizeTooLargeError

    sink = RecordingSink()
    calls = 0

    async def too_large(message: SyncRequested) -> list[Outcome]:
        nonlocal calls
        calls += 1
        raise MessageSizeTooLargeError()

    await consume_one(
        raw(valid_request().model_dump_json().encode()), context(sink), SyncRequested.model_validate_json, too_large
    )
    assert calls == 1 and [topic for topic, _, _ in sink.published] == ["dlq"]


async def test_only_a_malformed_command_gets_a_rejection_for_its_sender() -> None:
    sink = RecordingSink()
    rejected = []

    def reject(value: bytes, reason: str) -> Outcome | None:
        rejected.append(reason)
        return None

    ctx = ConsumerContext(
        name="t", sink=sink, outcomes_topic="out", dead_letter_topic="dlq", rejection_for_malformed=reject
    )

    async def buggy(message: SyncRequested) -> list[Outcome]:
        raise KeyError("x")

    await consume_one(raw(valid_request().model_dump_json().encode()), ctx, SyncRequested.model_validate_json, buggy)
    assert rejected == []
    await consume_one(raw(b"{}"), ctx, SyncRequested.model_validate_json, buggy)
    assert rejected and rejected[0].startswith("malformed message")


async def never_called(message: SyncRequested) -> list[Outcome]:
    raise AssertionError("a malformed message must not reach the handler")


async def test_a_value_above_the_size_limit_is_dead_lettered_without_being_parsed() -> None:
    sink = RecordingSink()
    parsed: list[int] = []

    def parse(value: bytes) -> SyncRequested:
        parsed.append(len(value))
        return SyncRequested.model_validate_json(value)

    async def handle(message: SyncRequested) -> list[Outcome]:
        return accepted(message)

    limit = inbound.MAX_COMMAND_BYTES
    request = valid_request().model_dump_json().encode()
    at_limit, above = b" " * (limit - len(request)) + request, b" " * (limit + 1 - len(request)) + request
    assert len(await consume_one(raw(at_limit), context(sink), parse, handle)) == 1
    assert await consume_one(raw(above), context(sink), parse, never_called) == []
    assert parsed == [limit]
    letter = sink.published[-1][2]
    assert letter.reason == f"message too large: {limit + 1} bytes (limit {limit})"  # type: ignore[attr-defined]
    # Change events may be bigger: their consumer has a limit of its own.
    roomy = replace(context(sink), max_value_bytes=inbound.MAX_CHANGE_EVENT_BYTES)
    assert len(await consume_one(raw(above), roomy, parse, handle)) == 1


async def test_a_tombstone_is_dead_lettered_as_such() -> None:
    sink = RecordingSink()
    await consume_one(raw(None), context(sink), SyncRequested.model_validate_json, never_called)
    ((topic, _, letter),) = sink.published
    assert topic == "dlq" and letter.reason == "malformed message: no value (a tombstone)"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "error",
    [
        RecursionError("maximum recursion depth exceeded"),
        ValueError("Exceeds the limit (4300 digits) for integer string conversion"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        OverflowError("int too large to convert to float"),
        MemoryError(),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_whatever_a_parser_raises_dead_letters_the_message_and_the_batch_goes_on(error: Exception) -> None:
    sink = RecordingSink()
    requests = [valid_request() for _ in range(2)]

    def parse(value: bytes) -> SyncRequested:
        if value == b"bad":
            raise error
        return SyncRequested.model_validate_json(value)

    async def handle_batch(messages: list[SyncRequested]) -> list[Outcome]:
        return [o for m in messages for o in accepted(m)]

    batch = [RawMessage(topic="in", partition=0, offset=9, key=b"k", value=b"bad"), *raws(requests)]
    outcomes = await consume_batch(batch, context(sink), parse, handle_batch)
    assert len(outcomes) == 2
    ((_, _, letter),) = [item for item in sink.published if item[0] == "dlq"]
    assert letter.reason.startswith(f"malformed message: {type(error).__name__}")  # type: ignore[attr-defined]


async def test_a_rejection_that_raises_leaves_the_dead_letter_and_raises_nothing() -> None:
    sink = RecordingSink()

    def old_rejection(value: bytes, reason: str) -> Outcome | None:
        json.loads(value)  # what the decisions agent did: RecursionError on deep nesting
        return None

    ctx = replace(context(sink), rejection_for_malformed=old_rejection)
    await consume_one(raw(b"[" * 100_000 + b"]" * 100_000), ctx, SyncRequested.model_validate_json, never_called)
    ((topic, _, letter),) = sink.published
    assert topic == "dlq" and "recursion limit" in letter.reason  # type: ignore[attr-defined]


async def test_the_reason_of_a_value_with_thousands_of_errors_is_bounded() -> None:
    sink = RecordingSink()
    value = json.dumps([{"requested_by": i} for i in range(5_000)]).encode()
    adapter: TypeAdapter[list[SyncRequested]] = TypeAdapter(list[SyncRequested])
    await consume_one(raw(value), context(sink), adapter.validate_json, never_called)  # type: ignore[arg-type]
    reason = sink.published[0][2].reason  # type: ignore[attr-defined]
    assert len(reason) <= inbound.MALFORMED_REASON_MAX + len(" [cut]")
    assert reason.count(": ") <= inbound.MALFORMED_PROBLEMS_MAX + 1 and reason.endswith(" more")


# --- batches ---------------------------------------------------------------------------------------


def raws(requests: list[SyncRequested], malformed_at: int | None = None) -> list[RawMessage]:
    values = [r.model_dump_json().encode() for r in requests]
    if malformed_at is not None:
        values.insert(malformed_at, b'{"requested_by": ""}')
    return [RawMessage(topic="in", partition=0, offset=i, key=b"k", value=v) for i, v in enumerate(values)]


async def test_a_batch_is_handled_in_one_call_and_its_outcomes_published_in_order() -> None:
    sink = RecordingSink()
    requests = [valid_request() for _ in range(3)]
    calls: list[int] = []

    async def handle_batch(messages: list[SyncRequested]) -> list[Outcome]:
        calls.append(len(messages))
        return [o for m in messages for o in accepted(m)]

    outcomes = await consume_batch(
        raws(requests, malformed_at=1), context(sink), SyncRequested.model_validate_json, handle_batch
    )
    assert calls == [3]  # the malformed one left out, the rest in one call
    assert [o.causation_id for o in outcomes] == [r.event_id for r in requests]
    topics = [topic for topic, _, _ in sink.published]
    assert topics == ["dlq", "out", "out", "out"]
    assert sink.published[0][2].offset == 1  # type: ignore[attr-defined]


async def test_a_batch_that_fails_is_handled_one_by_one_so_only_the_culprit_is_dead_lettered() -> None:
    sink = RecordingSink()
    requests = [valid_request() for _ in range(3)]
    culprit = requests[1].event_id
    calls: list[int] = []

    async def handle_batch(messages: list[SyncRequested]) -> list[Outcome]:
        calls.append(len(messages))
        if any(m.event_id == culprit for m in messages):
            raise KeyError("company_id")
        return [o for m in messages for o in accepted(m)]

    outcomes = await consume_batch(raws(requests), context(sink), SyncRequested.model_validate_json, handle_batch)
    assert calls == [3, 1, 1, 1]
    assert [o.causation_id for o in outcomes] == [requests[0].event_id, requests[2].event_id]
    letters = [message for topic, _, message in sink.published if topic == "dlq"]
    assert [letter.offset for letter in letters] == [1]  # type: ignore[attr-defined]


async def test_a_batch_waits_out_infrastructure_errors_as_a_whole() -> None:
    sink = RecordingSink()
    requests = [valid_request() for _ in range(2)]
    calls = 0

    async def flaky(messages: list[SyncRequested]) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise asyncpg.CannotConnectNowError("database starting up")
        return [o for m in messages for o in accepted(m)]

    outcomes = await consume_batch(raws(requests), context(sink), SyncRequested.model_validate_json, flaky)
    assert calls == 3 and len(outcomes) == 2
    assert all(topic == "out" for topic, _, _ in sink.published)


async def test_a_dead_letter_the_broker_refuses_whole_is_sent_cut_and_the_batch_goes_on() -> None:
    from aiokafka.errors import MessageSizeTooLargeError

    class SizeLimitedSink(RecordingSink):
        async def publish(self, topic: str, key: str, message: Message) -> None:
            if len(message.model_dump_json()) > 20_000:
                raise MessageSizeTooLargeError()
            await super().publish(topic, key, message)

    sink = SizeLimitedSink()
    requests = [valid_request() for _ in range(2)]
    huge = RawMessage(topic="in", partition=0, offset=7, key=b"k", value=b'{"requested_by": "' + b"x" * 50_000)
    handled: list[int] = []

    async def handle_batch(messages: list[SyncRequested]) -> list[Outcome]:
        handled.append(len(messages))
        return [o for m in messages for o in accepted(m)]

    outcomes = await consume_batch(
        [huge, *raws(requests)], context(sink), SyncRequested.model_validate_json, handle_batch
    )
    assert handled == [2] and len(outcomes) == 2
    ((_, _, letter),) = [item for item in sink.published if item[0] == "dlq"]
    assert len(letter.value) == consuming.DEAD_LETTER_VALUE_MAX  # type: ignore[attr-defined]
    assert "the original is at in[0]@7" in letter.reason  # type: ignore[attr-defined]


class RefusingSink(RecordingSink):
    """A broker that refuses every publish for a while with an error no retry is said to cure (a missing
    write permission, a fenced producer), then takes them again."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def publish(self, topic: str, key: str, message: Message) -> None:
        from aiokafka.errors import TopicAuthorizationFailedError

        if self.refusals:
            self.refusals -= 1
            raise TopicAuthorizationFailedError()
        await super().publish(topic, key, message)


async def test_a_batch_is_never_given_up_when_the_broker_refuses_its_dead_letter_or_outcomes() -> None:
    # The batch is acknowledged once the shell returns, also when it raises: giving up would lose it.
    sink = RefusingSink(refusals=5)
    requests = [valid_request() for _ in range(3)]
    handled: list[int] = []

    async def handle_batch(messages: list[SyncRequested]) -> list[Outcome]:
        handled.append(len(messages))
        return [o for m in messages for o in accepted(m)]

    outcomes = await consume_batch(
        [raw(b"not json"), *raws(requests)], context(sink), SyncRequested.model_validate_json, handle_batch
    )
    assert handled == [3] and len(outcomes) == 3
    assert [topic for topic, _, _ in sink.published] == ["dlq", "out", "out", "out"]
    sink.refusals = 4  # now only the outcomes are refused
    again = await consume_batch(raws(requests), context(sink), SyncRequested.model_validate_json, handle_batch)
    assert len(again) == 3 and [topic for topic, _, _ in sink.published[4:]] == ["out", "out", "out"]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.DiskFullError("could not extend file"),
        asyncpg.OutOfMemoryError("out of memory"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ReadOnlySQLTransactionError("cannot execute UPDATE in a read-only transaction"),
        asyncpg.IdleInTransactionSessionTimeoutError("idle-in-transaction timeout"),
    ],
)
async def test_a_database_incident_is_waited_out_not_dead_lettered(error: Exception) -> None:
    sink = RecordingSink()
    calls = 0

    async def during_incident(messages: list[SyncRequested]) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise error
        return [o for m in messages for o in accepted(m)]

    requests = [valid_request() for _ in range(2)]
    outcomes = await consume_batch(raws(requests), context(sink), SyncRequested.model_validate_json, during_incident)
    assert calls == 3 and len(outcomes) == 2 and not [t for t, _, _ in sink.published if t == "dlq"]


async def test_a_statement_timeout_sends_the_batch_one_by_one_instead_of_holding_the_partition() -> None:
    sink = RecordingSink()
    requests = [valid_request() for _ in range(2)]
    slow = requests[1].event_id

    async def times_out_with_the_slow_one(messages: list[SyncRequested]) -> list[Outcome]:
        if any(m.event_id == slow for m in messages):
            raise asyncpg.QueryCanceledError("canceling statement due to statement timeout")
        return [o for m in messages for o in accepted(m)]

    outcomes = await consume_batch(
        raws(requests), context(sink), SyncRequested.model_validate_json, times_out_with_the_slow_one
    )
    assert len(outcomes) == 1 and [topic for topic, _, _ in sink.published] == ["out", "dlq"]


async def test_a_single_cancel_by_an_operator_is_retried_not_dead_lettered() -> None:
    sink = RecordingSink()
    calls = 0

    async def cancelled_once(messages: list[SyncRequested]) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncpg.QueryCanceledError("canceling statement due to user request")
        return [o for m in messages for o in accepted(m)]

    outcomes = await consume_batch(
        raws([valid_request()]), context(sink), SyncRequested.model_validate_json, cancelled_once
    )
    assert calls == 2 and len(outcomes) == 1 and [t for t, _, _ in sink.published] == ["out"]


async def test_the_published_hook_hears_of_a_message_only_after_its_outcomes_were_acknowledged() -> None:
    sink, request, heard = RecordingSink(failures=2), valid_request(), []

    async def handle(message: SyncRequested) -> list[Outcome]:
        return accepted(message)

    async def published(message: SyncRequested) -> None:
        heard.append((message.event_id, len(sink.published)))

    parse = SyncRequested.model_validate_json
    await consume_one(raw(request.model_dump_json().encode()), context(sink), parse, handle, published)
    assert heard == [(request.event_id, 1)]  # after the retried publish went through
    await consume_one(raw(b"{not json"), context(sink), parse, handle, published)
    assert len(heard) == 1  # a dead letter has nothing to mark


async def test_a_failing_published_hook_costs_nothing_but_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    sink, request = RecordingSink(), valid_request()

    async def handle(message: SyncRequested) -> list[Outcome]:
        return accepted(message)

    async def published(message: SyncRequested) -> None:
        raise asyncpg.PostgresConnectionError("server closed the connection")

    parse = SyncRequested.model_validate_json
    outcomes = await consume_one(raw(request.model_dump_json().encode()), context(sink), parse, handle, published)
    assert len(outcomes) == 1 and len(sink.published) == 1
    assert "could not mark" in caplog.text


async def test_log_lines_about_a_message_carry_where_it_is_and_the_ids_it_holds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = valid_request()

    async def buggy(message: SyncRequested) -> list[Outcome]:
        raise KeyError("company_id")

    with caplog.at_level("WARNING", logger="worker.entrypoints.consuming"):
        await consume_one(
            raw(request.model_dump_json().encode()), context(RecordingSink()), SyncRequested.model_validate_json, buggy
        )
    failed, dead_lettered = caplog.records
    assert (failed.consumer, failed.topic, failed.partition, failed.offset) == ("test", "in", 1, 42)  # type: ignore[attr-defined]
    assert failed.event_id == request.event_id  # type: ignore[attr-defined]
    assert dead_lettered.offset == 42  # type: ignore[attr-defined]


def test_a_decision_or_change_event_names_its_record_as_employee_or_company_id() -> None:
    where = raw(b"{}")
    decision = Decision(
        decision_id=uuid.uuid4(),
        entity="company",
        nmbrs_id=7,
        action=DecisionAction.BLOKKEREN,
        decided_by="hr",
        decided_at=datetime.now(UTC),
    )
    ids = consuming.log_ids(where, context(RecordingSink()), decision)
    assert ids["decision_id"] == decision.decision_id and ids["company_id"] == "7" and "employee_id" not in ids
    change = type("Change", (), {"key": "employee:123", "event_id": uuid.UUID(int=1)})()
    assert consuming.log_ids(where, context(RecordingSink()), change)["employee_id"] == "123"
