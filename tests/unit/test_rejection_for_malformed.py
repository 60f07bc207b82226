"""The rejection of a malformed command never raises, whatever the bytes: it runs on values that did not parse."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from worker.domain.events import OutcomeKind
from worker.domain.inbound import MALFORMED_REASON_MAX, MAX_COMMAND_BYTES
from worker.service.decisions import rejection_for_malformed

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
COMMAND_ID = uuid.UUID(int=7)
reject = rejection_for_malformed("command_id", lambda: NOW)


def command(command_id: Any = str(COMMAND_ID), **fields: Any) -> bytes:
    return json.dumps({"command_id": command_id, "command": "nonsense", **fields}).encode()


def test_a_command_whose_id_reads_is_rejected_to_its_sender() -> None:
    rejected = reject(command(), "command: bad value")
    assert rejected is not None and rejected.kind is OutcomeKind.REJECTED
    assert rejected.causation_id == COMMAND_ID and rejected.reason == "command: bad value"


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError in json.loads
        b'{"command_id": ' * 50_000 + b"1" + b"}" * 50_000,
        b"\xff\xfe not utf-8",
        b"",
        b"null",
        b"[1, 2]",
        b'"a string"',
        b'{"other": 1}',
        b'{"command_id": "1e9"}',
    ],
    ids=["nested-lists", "nested-objects", "not-utf8", "empty", "null", "list", "string", "no-id", "not-a-uuid"],
)
def test_a_value_without_a_readable_id_gets_no_rejection_and_raises_nothing(value: bytes) -> None:
    assert reject(value, "malformed message") is None


@pytest.mark.parametrize(
    "command_id", [True, 7, 12345678901234567890123456789012, None, [str(COMMAND_ID)], {"id": str(COMMAND_ID)}]
)
def test_only_a_string_is_taken_for_the_id(command_id: Any) -> None:
    # str() of the 32-digit number is 32 hex digits: it would have passed for a UUID.
    assert reject(command(command_id), "command_id: not a UUID") is None


def test_a_value_over_the_size_limit_is_not_read() -> None:
    padding = "x" * MAX_COMMAND_BYTES
    assert reject(command(note=padding), "too big") is None
    assert reject(command(note=padding[:1000]), "small enough") is not None


def test_a_long_reason_is_cut() -> None:
    rejected = reject(command(), "e" * 100_000)
    assert rejected is not None and rejected.reason is not None
    assert len(rejected.reason) <= MALFORMED_REASON_MAX + len(" [cut]") and rejected.reason.endswith("[cut]")
