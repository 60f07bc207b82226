"""The shell around every consumer: parse, handle with retries, publish outcomes, dead-letter the rest.

Failure policy (never log and carry on):
- a value that does not parse goes to the dead-letter topic with the validation errors, whatever the parser
  raises (a hostile or broken sender must not crash the agent on its message again and again); so does a
  tombstone, and a value above the consumer's size limit (`ConsumerContext.max_value_bytes`: 256 KiB for
  commands, 1 MiB for change events), which is not parsed at all;
- infrastructure errors (database or broker unreachable) are retried with capped backoff for as long as
  it takes, holding the partition so per-record order is kept;
- any other handler error is a bug for this message: it goes to the dead-letter topic with the error, and
  the agent goes on with the next message;
- outcomes and (cut) dead letters are published until the broker takes them, whatever the error: the
  batch a message came with is acknowledged once the shell returns, also when it raises, so giving up
  would lose the batch. A broker that refuses for good (a missing write permission) holds the partition,
  and says so in the log, until it is fixed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from pydantic import ValidationError

from worker.adapters import metrics
from worker.adapters.database import database_error_is_transient
from worker.adapters.kafka import kafka_error_is_transient
from worker.domain.events import DeadLetter, Message, Outcome, OutcomeKind
from worker.domain.inbound import MAX_COMMAND_BYTES, cut_reason, describe_validation_error

log = logging.getLogger(__name__)

DEAD_LETTER_VALUE_MAX = 10_000  # characters of the original kept when the whole dead letter is refused

M = TypeVar("M", bound=Message)
T = TypeVar("T")


def is_transient(error: BaseException, attempt: int = 0) -> bool:
    """Whether `error` (met `attempt` times before) is worth another try: each adapter knows its own errors."""
    return (
        kafka_error_is_transient(error)
        or database_error_is_transient(error, attempt)
        or isinstance(error, OSError | asyncio.TimeoutError)
    )


class EventSink(Protocol):
    """Where outcomes and dead letters go; both return once the broker acknowledged everything."""

    async def publish(self, topic: str, key: str, message: Message) -> None: ...

    async def publish_many(self, items: list[tuple[str, str, Message]]) -> None: ...


@dataclass(frozen=True)
class RawMessage:
    """A consumed record, independent of the Kafka client that read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class ConsumerContext:
    """What every consumer needs besides its handler."""

    name: str
    sink: EventSink
    outcomes_topic: str
    dead_letter_topic: str
    max_backoff_s: float = 30.0
    # For commands: the outcome that tells the sender its malformed command was rejected (if it can be
    # addressed at all, i.e. its id could be read). Whatever it raises is logged and ignored.
    rejection_for_malformed: Callable[[bytes, str], Outcome | None] | None = None
    # A bigger value is dead-lettered unparsed: MAX_COMMAND_BYTES, or MAX_CHANGE_EVENT_BYTES for change events.
    max_value_bytes: int = MAX_COMMAND_BYTES
    # Outcomes of these kinds also go to a topic of their own (e.g. needs_decision for HR frontends).
    copies: dict[OutcomeKind, str] = field(default_factory=dict)


def backoff_delay(attempt: int, cap_s: float) -> float:
    """Exponential backoff with full jitter: spreads retries of many workers after a shared outage."""
    return random.uniform(0, min(cap_s, 0.1 * 2**attempt))


async def with_retries(operation: Callable[[], Awaitable[T]], what: str, cap_s: float, every_error: bool = False) -> T:
    """Run `operation` until it succeeds, retrying infrastructure errors only (`every_error`: any error)."""
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as error:
            if not every_error and not is_transient(error, attempt):
                raise
            delay = backoff_delay(attempt, cap_s)
            log.warning(
                "%s failed (%s: %s); retry %d in %.2f s",
                what,
                type(error).__name__,
                error,
                attempt + 1,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1


def _as_text(data: bytes | None) -> tuple[str, str]:
    if data is None:
        return "", "utf-8"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


MESSAGE_IDS = ("event_id", "decision_id", "command_id", "request_id")


def log_ids(raw: RawMessage, context: ConsumerContext, parsed: object = None) -> dict[str, object]:
    """The `extra=` of a log line about one message: where it is and, once parsed, the ids it carries."""
    ids: dict[str, object] = {
        "consumer": context.name,
        "topic": raw.topic,
        "partition": raw.partition,
        "offset": raw.offset,
    }
    ids.update({name: value for name in MESSAGE_IDS if (value := getattr(parsed, name, None)) is not None})
    # A change event's key, or a decision's entity and record: 'employee:123' -> employee_id 123.
    record = getattr(parsed, "key", None)
    if record is None and (nmbrs_id := getattr(parsed, "nmbrs_id", None)) is not None:
        record = f"{getattr(parsed, 'entity', 'employee')}:{nmbrs_id}"
    entity, _, number = str(record).partition(":")
    if entity in ("employee", "company") and number:
        ids[f"{entity}_id"] = number
    return ids


def dead_letter_for(raw: RawMessage, consumer: str, reason: str, failed_at: datetime) -> DeadLetter:
    value, encoding = _as_text(raw.value)
    key, _ = _as_text(raw.key)
    return DeadLetter(
        consumer=consumer,
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=key or None,
        value=value,
        value_encoding=encoding,
        reason=reason,
        failed_at=failed_at,
    )


async def consume_one(
    raw: RawMessage,
    context: ConsumerContext,
    parse: Callable[[bytes], M],
    handle: Callable[[M], Awaitable[list[Outcome]]],
    published: Callable[[M], Awaitable[None]] | None = None,
) -> list[Outcome]:
    """Handle one consumed record completely; returns the outcomes published (empty if dead-lettered).
    `published` is told once the broker acknowledged the outcomes (a redelivery need not send them again)."""
    parsed = await _parse_or_dead_letter(raw, context, parse)
    if parsed is None:
        return []
    try:
        outcomes = await with_retries(
            lambda: handle(parsed), f"{context.name} offset {raw.offset}", context.max_backoff_s
        )
    except Exception as error:  # a bug for this message: keep it, with the reason, and go on
        log.exception(
            "%s could not handle %s[%d]@%d",
            context.name,
            raw.topic,
            raw.partition,
            raw.offset,
            extra=log_ids(raw, context, parsed),
        )
        await _dead_letter(raw, context, f"handler failed: {type(error).__name__}: {error}")
        return []
    await _publish(outcomes, context)
    _count_handled([raw], context)
    if published is not None:
        try:
            await published(parsed)
        except Exception as error:  # costs a re-publish on redelivery, nothing more
            log.warning(
                "%s could not mark %s[%d]@%d published (%s: %s)",
                context.name,
                raw.topic,
                raw.partition,
                raw.offset,
                type(error).__name__,
                error,
            )
    return outcomes


async def consume_batch(
    raws: list[RawMessage],
    context: ConsumerContext,
    parse: Callable[[bytes], M],
    handle_batch: Callable[[list[M]], Awaitable[list[Outcome]]],
) -> list[Outcome]:
    """Handle consumed records as one batch (one transaction); returns the outcomes published.

    Malformed records are dead-lettered and the rest handled without them. When the batch fails for any
    other reason than the infrastructure, its transaction left nothing behind: the records are then
    handled one by one, so only the one that fails is dead-lettered.
    """
    batch: list[tuple[RawMessage, M]] = []
    for raw in raws:
        parsed = await _parse_or_dead_letter(raw, context, parse)
        if parsed is not None:
            batch.append((raw, parsed))
    if not batch:
        return []
    first, last = batch[0][0], batch[-1][0]
    try:
        outcomes = await with_retries(
            lambda: handle_batch([message for _, message in batch]),
            f"{context.name} batch of {len(batch)} from {first.topic}[{first.partition}]@{first.offset}",
            context.max_backoff_s,
        )
    except Exception:
        log.exception(
            "%s could not handle a batch of %d (%s@%d .. %s@%d); handling them one by one",
            context.name,
            len(batch),
            first.topic,
            first.offset,
            last.topic,
            last.offset,
        )
        outcomes = []
        for raw, _ in batch:
            outcomes += await consume_one(raw, context, parse, lambda message: handle_batch([message]))
        return outcomes
    await _publish(outcomes, context)
    _count_handled([raw for raw, _ in batch], context)
    return outcomes


def _count_handled(raws: list[RawMessage], context: ConsumerContext) -> None:
    for raw in raws:
        metrics.EVENTS.labels(context.name, raw.topic, metrics.HANDLED).inc()


async def _parse_or_dead_letter(raw: RawMessage, context: ConsumerContext, parse: Callable[[bytes], M]) -> M | None:
    if raw.value is None:
        reason = "malformed message: no value (a tombstone)"
    elif len(raw.value) > context.max_value_bytes:
        reason = f"message too large: {len(raw.value)} bytes (limit {context.max_value_bytes})"
    else:
        try:
            return parse(raw.value)
        except ValidationError as error:
            reason = describe_validation_error(error)
        except Exception as error:  # RecursionError, UnicodeError, OverflowError, MemoryError ...: malformed too
            reason = cut_reason(f"malformed message: {type(error).__name__}: {error}")
    await _dead_letter(raw, context, reason)
    if context.rejection_for_malformed is None:
        return None
    try:
        rejected = context.rejection_for_malformed(raw.value or b"", reason)
    except Exception:  # the dead letter is written: the sender only goes without its answer
        log.exception(
            "%s: no rejection for the malformed %s[%d]@%d", context.name, raw.topic, raw.partition, raw.offset
        )
        return None
    if rejected:
        await _publish([rejected], context)
    return None


async def _dead_letter(raw: RawMessage, context: ConsumerContext, reason: str) -> None:
    letter = dead_letter_for(raw, context.name, reason, datetime.now(UTC))
    metrics.DEAD_LETTERS.labels(context.name, metrics.reason_class(reason)).inc()
    metrics.EVENTS.labels(context.name, raw.topic, metrics.DEAD_LETTERED).inc()
    log.warning(
        "dead-lettered %s[%d]@%d: %s", raw.topic, raw.partition, raw.offset, reason, extra=log_ids(raw, context)
    )
    try:
        await with_retries(
            lambda: context.sink.publish(context.dead_letter_topic, letter.key or "", letter),
            "dead-letter publish",
            context.max_backoff_s,
        )
    except Exception as error:
        # Refused for good (a value near the broker's size limit grows when wrapped): a dead letter with the
        # value cut still tells why and where the original is. Nothing may escape for a bad message: the
        # batch it came with would be acknowledged unhandled.
        log.error(
            "dead letter of %s[%d]@%d refused (%s); sending it cut",
            raw.topic,
            raw.partition,
            raw.offset,
            type(error).__name__,
        )
        cut = letter.model_copy(
            update={
                "value": letter.value[:DEAD_LETTER_VALUE_MAX],
                "reason": f"{reason} [value cut to {DEAD_LETTER_VALUE_MAX} characters: the broker refused the"
                f" whole dead letter ({type(error).__name__}); the original is at"
                f" {raw.topic}[{raw.partition}]@{raw.offset}]",
            }
        )
        await with_retries(
            lambda: context.sink.publish(context.dead_letter_topic, cut.key or "", cut),
            "cut dead-letter publish",
            context.max_backoff_s,
            every_error=True,
        )


async def _publish(outcomes: list[Outcome], context: ConsumerContext) -> None:
    if not outcomes:
        return
    # One round trip for all of them: the acknowledgements are awaited together.
    batch: list[tuple[str, str, Message]] = [(context.outcomes_topic, o.subject, o) for o in outcomes]
    batch += [(context.copies[o.kind], o.subject, o) for o in outcomes if o.kind in context.copies]
    await with_retries(
        lambda: context.sink.publish_many(batch), "outcome publish", context.max_backoff_s, every_error=True
    )
    for outcome in outcomes:
        metrics.OUTCOMES.labels(context.name, outcome.kind.value).inc()
