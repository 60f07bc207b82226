"""Malformed and unanswerable decisions and follow-up commands, as a careless or hostile frontend would post them.

Every message is either malformed (it must be dead-lettered, and answered at most with a 'rejected' outcome for
the subject 'malformed') or well-formed about records that do not exist (it must be rejected). The wrong-typed
ones are otherwise valid commands for a real RegiTijd employee: accepted by a lax parser ("employee_id": true
read as 1), they would be applied, which shows in their outcome.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEPTH = 100_000
HUGE = 300_000
# Wrong values per field type: none of them is the type, nor something pydantic's lax mode may fairly convert
# (numeric strings, 1.0 for an int, "yes" for a bool); a bool for an int is the classic slip.
WRONG: dict[str, tuple[Any, ...]] = {
    "int": (True, False, "abc", 1.5, [], {}, ""),
    "bool": ("maybe", 2, 1.5, [], {}),
    "str": (123, True, [], {}),
    "uuid": ("not-a-uuid", 123, True, []),
    "datetime": ("yesterday", True, "2026-13-45T00:00:00Z", "2026-11-01T10:00:00", []),
    "enum": ("nope", 1, True, None, []),
}
# Numbers out of the range of a store id, or of hours (leave may be negative, so -1 hours is no extreme).
EXTREME_IDS = ("2147483648", "9223372036854775808", "1" + "0" * 40, "-1", "0", "1e308", "1e400", "NaN")
EXTREME_HOURS = ("1000000", "-1000000", "1e308", "1e400", "-1e400", "NaN", "Infinity")
FOLLOW_UP_FIELDS = {
    "command_id": "uuid",
    "employee_id": "int",
    "command": "enum",
    "is_manager": "bool",
    "issued_by": "str",
    "issued_at": "datetime",
}
DECISION_FIELDS = {
    "decision_id": "uuid",
    "entity": "enum",
    "nmbrs_id": "int",
    "action": "enum",
    "decided_by": "str",
    "decided_at": "datetime",
    "version": "int",
    "preview": "bool",
    "undo_all_records": "bool",
}
UNKNOWN_EMPLOYEE = 50_000_000  # a RegiTijd employee id far above any this suite creates
UNKNOWN_RECORD = 900_000  # an Nmbrs employee id no dataset has (the generator counts from 100,001)


@dataclass(frozen=True)
class Fuzz:
    topic: str  # 'decisions' or 'followup_commands' (the Topics field)
    key: bytes | None
    value: bytes | None
    ident: str | None  # the command's id when it can be read, for its outcome
    malformed: bool
    label: str


class FuzzMaker:
    """`count` messages over the kinds below (weights), half of each kind to each topic."""

    def __init__(self, rng: random.Random, employee_id: int, now: str) -> None:
        self.rng, self.employee_id, self.now = rng, employee_id, now
        self.kinds: list[tuple[Callable[[str], Fuzz], int]] = [
            (self.random_bytes, 15),
            (self.truncated, 18),
            (self.wrong_type, 30),
            (self.extreme, 10),
            (self.tombstone, 5),
            (self.wrong_key, 8),
            (self.unknown_ids, 8),
            (self.nested, 3),
            (self.huge, 2),
        ]

    def messages(self, count: int) -> list[Fuzz]:
        makers = [maker for maker, weight in self.kinds for _ in range(weight)]
        return [makers[i % len(makers)](("decisions", "followup_commands")[i % 2]) for i in range(count)]

    # --- bodies ---------------------------------------------------------------------------------------------

    def body(self, topic: str, real: bool = False) -> dict[str, Any]:
        """A valid command: for the real employee (`real`, follow-ups) or about a record that does not exist."""
        if topic == "decisions":
            return {
                "decision_id": str(uuid.uuid4()),
                "entity": "employee",
                "action": "blokkeren",
                "nmbrs_id": UNKNOWN_RECORD + self.rng.randrange(90_000),
                "decided_by": "chaos-fuzz",
                "decided_at": self.now,
            }
        employee_id = self.employee_id if real else UNKNOWN_EMPLOYEE + self.rng.randrange(1_000_000)
        return {
            "command_id": str(uuid.uuid4()),
            "employee_id": employee_id,
            "command": "set_is_manager",
            "is_manager": False,
            "issued_by": "chaos-fuzz",
            "issued_at": self.now,
        }

    def message(
        self,
        topic: str,
        body: dict[str, Any],
        label: str,
        malformed: bool = True,
        raw: str | None = None,
        key: bytes | None = b"fuzz",
    ) -> Fuzz:
        """`raw` replaces the placeholder value '@RAW@' in the JSON text (numbers JSON cannot carry, nesting)."""
        text = json.dumps(body)
        if raw is not None:
            text = text.replace('"@RAW@"', raw)
        ident = body.get("decision_id", body.get("command_id"))
        return Fuzz(topic, key, text.encode(), ident if isinstance(ident, str) else None, malformed, label)

    # --- the kinds ------------------------------------------------------------------------------------------

    def random_bytes(self, topic: str) -> Fuzz:
        return Fuzz(topic, b"fuzz", self.rng.randbytes(self.rng.randrange(0, 2000)), None, True, "random bytes")

    def truncated(self, topic: str) -> Fuzz:
        text = json.dumps(self.body(topic)).encode()
        return Fuzz(topic, b"fuzz", text[: self.rng.randrange(1, len(text))], None, True, "truncated")

    def wrong_type(self, topic: str) -> Fuzz:
        fields = DECISION_FIELDS if topic == "decisions" else FOLLOW_UP_FIELDS
        name = self.rng.choice(sorted(fields))
        wrong = self.rng.choice(WRONG[fields[name]])
        return self.message(topic, {**self.body(topic, real=True), name: wrong}, f"{name}: {json.dumps(wrong)}")

    def extreme(self, topic: str) -> Fuzz:
        name = "nmbrs_id" if topic == "decisions" else self.rng.choice(("employee_id", "hours"))
        body = self.body(topic, real=True)
        if name == "hours":
            body.update(command="leave_adjustment", on="2026-11-01")
        raw = self.rng.choice(EXTREME_HOURS if name == "hours" else EXTREME_IDS)
        return self.message(topic, {**body, name: "@RAW@"}, f"{name}: {raw[:20]}", raw=raw)

    def tombstone(self, topic: str) -> Fuzz:
        return Fuzz(topic, self.rng.randbytes(8), None, None, True, "tombstone")

    def wrong_key(self, topic: str) -> Fuzz:
        key = self.rng.choice((None, self.rng.randbytes(16), b"employee:1", b"bulk", b"\xff\xfe", b"k" * 10_000))
        return self.message(topic, self.body(topic), "wrong key", malformed=False, key=key)

    def unknown_ids(self, topic: str) -> Fuzz:
        body = self.body(topic)
        if topic == "decisions":
            body.update(
                self.rng.choice(
                    (
                        {"action": "koppelen", "target_id": 2_000_000_000},
                        {"action": "ongedaan_maken", "undo_decision_id": str(uuid.uuid4())},
                        {"action": "aanmaken", "version": 7},
                    )
                )
            )
        return self.message(topic, body, "unknown ids", malformed=False)

    def nested(self, topic: str) -> Fuzz:
        name = "nmbrs_id" if topic == "decisions" else "employee_id"
        raw = self.rng.choice(("[" * DEPTH + "]" * DEPTH, '{"a":' * DEPTH + "1" + "}" * DEPTH))
        return self.message(topic, {**self.body(topic, real=True), name: "@RAW@"}, f"nested {DEPTH} deep", raw=raw)

    def huge(self, topic: str) -> Fuzz:
        """Huge strings: a well-formed name (rejected: unknown record), a huge wrong action or command, and now and
        then one of quotes whose dead letter (every quote escaped once more) is too big for the broker."""
        by, what = ("decided_by", "action") if topic == "decisions" else ("issued_by", "command")
        roll = self.rng.random()
        if roll < 0.45:
            return self.message(topic, {**self.body(topic), by: "x" * HUGE}, f"huge {by}", malformed=False)
        text = '"' * 500_000 if roll > 0.9 else "x" * HUGE
        return self.message(topic, {**self.body(topic, real=True), what: text}, f"huge {what}")
