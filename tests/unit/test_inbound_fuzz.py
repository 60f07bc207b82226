"""Whatever a frontend posts, the consumer shell survives it: thousands of malformed commands, each dead-lettered
in milliseconds with its reason, none of them handled, nothing raised (the real parsers and the real rejection).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from worker.domain import inbound
from worker.domain.decisions import Decision
from worker.domain.events import Message, Outcome, OutcomeKind, SyncRequested
from worker.domain.follow_ups import FollowUpCommand
from worker.entrypoints import consuming
from worker.entrypoints.consuming import ConsumerContext, RawMessage, consume_one
from worker.service.decisions import rejection_for_malformed

SEED = 14
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
RAW = "\x00raw\x00"  # stands for a JSON literal json.dumps cannot write (1e400, NaN, a 5,000-digit number)


class RecordingSink:
    def __init__(self) -> None:
        self.published: list[tuple[str, str, Message]] = []

    async def publish(self, topic: str, key: str, message: Message) -> None:
        self.published.append((topic, key, message))

    async def publish_many(self, items: list[tuple[str, str, Message]]) -> None:
        self.published.extend(items)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consuming, "backoff_delay", lambda attempt, cap: 0.0)


@dataclass(frozen=True)
class Template:
    """A valid message; which of its fields (dotted paths) may be null, and which may be left out, while it
    stays valid."""

    model: type[BaseModel]
    id_field: str
    fields: dict[str, Any]
    nullable: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()


def templates() -> list[Template]:
    at, defaults = NOW.isoformat(), {"schema_version", "event_type"}
    decision = {
        "schema_version": 1,
        "event_type": "decision",
        "decision_id": str(uuid.UUID(int=1)),
        "entity": "employee",
        "decided_by": "hr.anja",
        "decided_at": at,
    }
    follow_up = {
        "schema_version": 1,
        "event_type": "follow_up",
        "command_id": str(uuid.UUID(int=2)),
        "employee_id": 12,
        "issued_by": "hr.anja",
        "issued_at": at,
        "reason": "jubileum",
    }
    decision_defaults, follow_up_may = frozenset({*defaults, "entity"}), frozenset({*defaults, "reason"})
    return [
        Template(
            Decision,
            "decision_id",
            {**decision, "nmbrs_id": 101, "action": "koppelen", "target_id": 3, "version": 2, "note": "same person"},
            frozenset({"version", "note"}),
            decision_defaults | {"version", "note"},
        ),
        Template(
            Decision,
            "decision_id",
            {
                **decision,
                "filter": {"company_id": 3, "situation": "disputed", "max_best_score": 0.2},
                "action": "aanmaken",
                "preview": True,
            },
            frozenset({"filter.situation"}),
            decision_defaults | {"filter.situation", "preview"},
        ),
        Template(
            Decision,
            "decision_id",
            {
                **decision,
                "nmbrs_id": 101,
                "action": "ongedaan_maken",
                "undo_decision_id": str(uuid.UUID(int=3)),
                "undo_all_records": True,
            },
            frozenset(),
            decision_defaults | {"undo_all_records"},
        ),
        Template(
            FollowUpCommand,
            "command_id",
            {**follow_up, "command": "leave_adjustment", "hours": -8.5, "on": "2026-03-01"},
            frozenset({"reason"}),
            follow_up_may,
        ),
        Template(
            FollowUpCommand,
            "command_id",
            {**follow_up, "command": "set_manager", "manager_employee_id": 7},
            frozenset({"reason"}),
            follow_up_may,
        ),
        Template(
            FollowUpCommand,
            "command_id",
            {**follow_up, "command": "set_is_manager", "is_manager": False},
            frozenset({"reason"}),
            follow_up_may,
        ),
        Template(
            FollowUpCommand,
            "command_id",
            {**follow_up, "command": "set_characteristic", "characteristic": "RegiPersoneel: Personeelslid"},
            frozenset({"reason"}),
            follow_up_may,
        ),
        Template(
            FollowUpCommand,
            "command_id",
            {**follow_up, "command": "link_time_category", "time_category": "ADM-01"},
            frozenset({"reason"}),
            follow_up_may,
        ),
        Template(
            SyncRequested,
            "event_id",
            {
                "schema_version": 1,
                "event_type": "sync_requested",
                "event_id": str(uuid.UUID(int=4)),
                "full": True,
                "dry_run": False,
                "release_hold": False,
                "requested_by": "schedule",
                "requested_at": at,
            },
            frozenset(),
            frozenset({*defaults, "full", "dry_run", "release_hold"}),
        ),
    ]


# What kind of value each field holds, for telling a wrong value from a merely different one.
KIND = {
    **dict.fromkeys(["decision_id", "command_id", "event_id", "undo_decision_id"], "uuid"),
    **dict.fromkeys(["nmbrs_id", "target_id", "version", "employee_id", "manager_employee_id", "company_id"], "id"),
    "schema_version": "int",
    **dict.fromkeys(["preview", "undo_all_records", "is_manager", "full", "dry_run", "release_hold"], "bool"),
    **dict.fromkeys(["decided_by", "issued_by", "requested_by", "time_category"], "name"),
    **dict.fromkeys(["note", "reason"], "free text"),
    **dict.fromkeys(["event_type", "entity", "action", "command", "characteristic", "situation"], "choice"),
    **dict.fromkeys(["decided_at", "issued_at", "requested_at", "on"], "time"),
    "hours": "hours",
    "max_best_score": "score",
    "filter": "object",
}
TEXT_MAX = {"name": 200, "free text": 2_000}
# One value of every JSON type, and the values lax parsing would take for another type ("12", 1.0, 0, 1).
WRONG: tuple[Any, ...] = (True, False, "x", "12", "", 1.5, 1.0, 12, 0, 1, -3, None, [], [1], {}, {"a": 1})
EXTREME = {
    "id": (
        "2147483648",
        "-1",
        "0",
        "1" + "0" * 40,
        "1" + "0" * 5000,
        "1e308",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "-0.0",
        "12.0",
        "1e1",
    ),
    "int": ("1" + "0" * 5000, "1e400", "NaN", "12.0"),
    "hours": (
        "1000000",
        "-1000000",
        "1e308",
        "-1e308",
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "-Infinity",
        "1" + "0" * 5000,
    ),
    "score": ("-0.01", "1.0000001", "1e400", "NaN", "-Infinity"),
}
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82")


def fits(kind: str, value: Any) -> bool:
    """Whether `value` (not null) is of the field's type and in its range: replacing the field by it is no error."""
    if kind == "int":
        return type(value) is int
    if kind == "id":
        return type(value) is int and value >= 1
    if kind == "hours":
        return type(value) in (int, float)
    if kind == "score":
        return type(value) in (int, float) and 0 <= value <= 1
    if kind == "bool":
        return type(value) is bool
    if kind == "name":
        return type(value) is str and value != ""
    if kind == "free text":
        return type(value) is str
    return False  # no value of WRONG is a UUID, a date, a valid choice or a bulk filter


def encode(fields: dict[str, Any], raw: str | None = None) -> bytes:
    text = json.dumps(fields, ensure_ascii=False)
    return (text if raw is None else text.replace(json.dumps(RAW), raw)).encode()


def paths(fields: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    for name, value in fields.items():
        yield (name,)
        if isinstance(value, dict):
            yield from ((name, *rest) for rest in paths(value))


def replaced(fields: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    head, *rest = path
    return {**fields, head: replaced(fields[head], tuple(rest), value) if rest else value}


def dropped(fields: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    head, *rest = path
    if rest:
        return {**fields, head: dropped(fields[head], tuple(rest))}
    return {name: value for name, value in fields.items() if name != head}


def deep(depth: int, rng: random.Random) -> str:
    return rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[{" * depth])


def wrong(template: Template, path: tuple[str, ...]) -> list[Any]:
    """The values of WRONG that make the message invalid in this field."""
    nullable = ".".join(path) in template.nullable
    return [v for v in WRONG if not (fits(KIND[path[-1]], v) or (v is None and nullable))]


def malformed(template: Template, rng: random.Random) -> Iterator[tuple[str, bytes | None]]:
    """Labelled values that are each invalid, derived from one valid message."""
    fields, valid = template.fields, encode(template.fields)
    for path in paths(fields):
        where, kind = ".".join(path), KIND[path[-1]]
        for value in wrong(template, path):
            yield f"wrong type {where}={value!r}", encode(replaced(fields, path, value))
        for raw in EXTREME.get(kind, ()):
            yield f"extreme {where}={raw[:12]}", encode(replaced(fields, path, RAW), raw)
        if kind in TEXT_MAX:
            too_long = TEXT_MAX[kind] + 1
            for text in ("x" * too_long, "é" * too_long, "a\x00b", "x" * 100_000, "x" * 300_000):
                yield f"bad text {where} ({len(text)} characters)", encode(replaced(fields, path, text))
            for bad in INVALID_UTF8:
                yield f"invalid UTF-8 in {where} {bad!r}", encode(replaced(fields, path, "@@")).replace(b"@@", bad)
        if where not in template.optional:
            extra = {f"unknown_{i}": rng.choice(WRONG) for i in range(rng.randint(1, 5))}
            yield f"missing {where}, unknown fields", encode({**dropped(fields, path), **extra})
        yield f"nested {where}", encode(replaced(fields, path, RAW), deep(100_000, rng))
    for bad in INVALID_UTF8:
        yield f"invalid UTF-8 after the value {bad!r}", valid + bad
    for cut in range(len(valid)):
        yield f"truncated at {cut}", valid[:cut]
    yield "unknown field nested deep", encode({**fields, "extension": RAW}, deep(100_000, rng))
    yield "unknown field too large", encode({**fields, "extension": "x" * inbound.MAX_COMMAND_BYTES})
    if "filter" in fields:
        yield (
            "thousands of unknown filter fields",
            encode(replaced(fields, ("filter",), {**fields["filter"], **{f"f{i}": i for i in range(20_000)}})),
        )
    yield "tombstone", None
    yield "not an object", json.dumps([fields]).encode()
    for _ in range(50):  # several fields wrong at once
        mutated = fields
        for path in rng.sample([(name,) for name in fields], 3):
            mutated = replaced(mutated, path, rng.choice(wrong(template, path)))
        yield "three fields wrong", encode(mutated)


def garbage(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Values no template would produce: random bytes, random text, JSON that is not a command."""
    for _ in range(300):
        yield "random bytes", rng.randbytes(rng.randint(0, 300))
    for _ in range(100):
        yield "random text", "".join(rng.choice('{}[]":,0123456789.eE-+truefalsn \\u') for _ in range(80)).encode()
    for value in (b"", b" ", b"null", b"true", b"0", b"1e400", b'"decision"', b"[]", b"{}", b"\xef\xbb\xbf{}"):
        yield "bare JSON value", value


def messages() -> list[tuple[str, Template, bytes | None]]:
    rng = random.Random(SEED)
    found: list[tuple[str, Template, bytes | None]] = []
    for template in templates():
        found += [(label, template, value) for label, value in malformed(template, rng)]
        found += [(label, template, value) for label, value in garbage(rng)]
    return found


KEYS: tuple[bytes | None, ...] = (None, b"", b"bulk", b"employee:101", b"\xff\xfe", b"k" * 10_000)


@dataclass
class Run:
    sink: RecordingSink
    handled: list[Any]
    handle: Callable[[Any], Awaitable[list[Outcome]]]


def recorder() -> Run:
    handled: list[Any] = []

    async def handle(message: Any) -> list[Outcome]:
        handled.append(message)
        return []

    return Run(RecordingSink(), handled, handle)


def context(run: Run, template: Template) -> ConsumerContext:
    # As the worker wires them: commands answer a malformed message to its sender when its id reads.
    reject = None if template.model is SyncRequested else rejection_for_malformed(template.id_field, lambda: NOW)
    return ConsumerContext(
        name="fuzz", sink=run.sink, outcomes_topic="out", dead_letter_topic="dlq", rejection_for_malformed=reject
    )


async def test_every_template_is_valid_so_the_fuzz_derives_from_messages_that_are_handled() -> None:
    run = recorder()
    for template in templates():
        extended = {**template.fields, "added_later": {"any": ["thing"]}}  # unknown fields are ignored
        for offset, value in enumerate((encode(template.fields), encode(extended))):
            message = RawMessage("in", 0, offset, b"k", value)
            await consume_one(message, context(run, template), template.model.model_validate_json, run.handle)
    assert len(run.handled) == 2 * len(templates()) and run.sink.published == []


async def test_thousands_of_malformed_commands_are_all_dead_lettered_and_none_is_handled() -> None:
    rng = random.Random(SEED)
    fuzz = messages()
    run = recorder()
    started = time.perf_counter()
    slowest = 0.0
    for offset, (_, template, value) in enumerate(fuzz):
        message = RawMessage("in", rng.randrange(3), offset, rng.choice(KEYS), value)
        began = time.perf_counter()
        await consume_one(message, context(run, template), template.model.model_validate_json, run.handle)
        slowest = max(slowest, time.perf_counter() - began)
    elapsed = time.perf_counter() - started
    letters = [message for topic, _, message in run.sink.published if topic == "dlq"]
    rejections = [message for topic, _, message in run.sink.published if topic == "out"]
    commands = sum(1 for _, template, _ in fuzz if template.model is not SyncRequested)
    print(
        f"\n{len(fuzz)} malformed messages ({commands} decisions and follow-ups) in {elapsed:.2f} s, slowest "
        f"{slowest * 1000:.1f} ms: {len(letters)} dead letters, {len(rejections)} rejections"
    )
    assert commands >= 5_000
    assert run.handled == [], [type(m).__name__ for m in run.handled[:3]]
    assert [letter.offset for letter in letters] == list(range(len(fuzz)))  # type: ignore[attr-defined]
    assert all(letter.reason for letter in letters)  # type: ignore[attr-defined]
    assert rejections, "a malformed command whose id reads is answered"
    assert all(o.kind is OutcomeKind.REJECTED and o.subject == "malformed" for o in rejections)  # type: ignore

    assert elapsed < 60, "a hang guard, not a benchmark"


# --- the cases seen in the field -----------------------------------------------------------------------------


async def test_a_follow_up_with_true_for_employee_id_is_rejected_not_taken_for_employee_1() -> None:
    template = templates()[3]  # the leave adjustment: accepted, it wrote leave for employee 1
    value = encode({**template.fields, "employee_id": True})
    run = recorder()
    await consume_one(
        RawMessage("in", 0, 1, b"rt-employee:1", value),
        context(run, template),
        FollowUpCommand.model_validate_json,
        run.handle,
    )
    assert run.handled == []
    ((_, _, letter), (_, _, rejected)) = run.sink.published
    reason = letter.reason  # type: ignore[attr-defined]
    assert reason == "malformed message: employee_id: Input should be a valid integer"
    assert rejected.kind is OutcomeKind.REJECTED  # type: ignore[attr-defined]
    assert str(rejected.causation_id) == template.fields["command_id"]  # type: ignore[attr-defined]


async def test_a_decided_by_of_500000_characters_is_refused() -> None:
    template = templates()[0]
    with pytest.raises(ValidationError, match="decided_by\n  String should have at most 200 characters"):
        Decision.model_validate_json(encode({**template.fields, "decided_by": "x" * 500_000}))
    run = recorder()
    for offset, length in enumerate((500_000, 100_000)):
        value = encode({**template.fields, "decided_by": "x" * length})
        await consume_one(
            RawMessage("in", 0, offset, b"employee:101", value),
            context(run, template),
            Decision.model_validate_json,
            run.handle,
        )
    assert run.handled == []
    too_large, too_long = [m.reason for t, _, m in run.sink.published if t == "dlq"]  # type: ignore[attr-defined]
    assert too_large.startswith("message too large: 500") and too_large.endswith(" bytes (limit 262144)")
    assert too_long == "malformed message: decided_by: String should have at most 200 characters"


@pytest.mark.parametrize("model", [Decision, FollowUpCommand, SyncRequested])
async def test_a_value_nested_100000_deep_is_dead_lettered_without_recursion_error(model: type[BaseModel]) -> None:
    template = next(t for t in templates() if t.model is model)
    run = recorder()
    lists = b"[" * 100_000 + b"]" * 100_000  # 200 KB: parsed (and read for its id by the rejection)
    objects = b'{"a": ' * 100_000 + b"1" + b"}" * 100_000  # too large to be parsed
    command_ids = f'{{"{template.id_field}": '.encode() * 10_000 + b"1" + b"}" * 10_000
    for offset, value in enumerate((lists, objects, command_ids)):
        await consume_one(
            RawMessage("in", 0, offset, b"k", value), context(run, template), model.model_validate_json, run.handle
        )
    assert run.handled == []
    reasons = [m.reason for t, _, m in run.sink.published if t == "dlq"]  # type: ignore[attr-defined]
    assert "recursion limit" in reasons[0] and "too large" in reasons[1] and "recursion limit" in reasons[2]
