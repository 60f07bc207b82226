"""Commands that the store could not take are refused when they are read, so their sender gets the reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from worker.domain.decisions import Decision
from worker.domain.events import OutcomeKind
from worker.domain.follow_ups import FollowUpCommand
from worker.domain.inbound import describe_validation_error
from worker.service.decisions import rejection_for_malformed

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
COMMAND_ID = uuid.UUID(int=7)


def adjustment(**changes: Any) -> bytes:
    command = {
        "command_id": str(COMMAND_ID),
        "employee_id": 12,
        "command": "leave_adjustment",
        "hours": 8,
        "on": "2026-03-01",
        "issued_by": "hr.anja",
        "issued_at": NOW.isoformat(),
    }
    command.update(changes)
    return json.dumps(command).encode()


def test_a_valid_adjustment_reads_its_date() -> None:
    assert FollowUpCommand.model_validate_json(adjustment()).on == datetime(2026, 3, 1).date()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"on": "2026-13-01"}, "on"),
        ({"employee_id": 2**31}, "employee_id"),
        ({"hours": 1_000_000}, "hours"),
        ({"hours": float("nan")}, "hours"),
        ({"command": "set_manager", "manager_employee_id": 0}, "manager_employee_id"),
    ],
)
def test_a_command_the_store_cannot_take_is_rejected_with_the_field(changes: dict[str, Any], field: str) -> None:
    value = adjustment(**changes)
    with pytest.raises(ValidationError) as error:
        FollowUpCommand.model_validate_json(value)
    reason = describe_validation_error(error.value)
    assert field in reason
    rejected = rejection_for_malformed("command_id", lambda: NOW)(value, reason)
    assert rejected is not None and rejected.kind is OutcomeKind.REJECTED and rejected.causation_id == COMMAND_ID


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"employee_id": True}, "employee_id"),  # was taken for employee 1
        ({"employee_id": "12"}, "employee_id"),
        ({"employee_id": 12.0}, "employee_id"),
        ({"hours": "8"}, "hours"),
        ({"hours": True}, "hours"),
        ({"command": "set_is_manager", "is_manager": 1}, "is_manager"),
        ({"command": "set_is_manager", "is_manager": "true"}, "is_manager"),
        ({"on": 0}, "on"),
        ({"on": "0"}, "on"),  # pydantic reads a string of digits as seconds since 1970
        ({"on": "2026-03-01T00:00:00Z"}, "on"),
        ({"issued_at": "12"}, "issued_at"),
        ({"issued_at": 1_780_000_000}, "issued_at"),
        ({"command_id": 7}, "command_id"),
        ({"issued_by": 7}, "issued_by"),
        ({"schema_version": True}, "schema_version"),
    ],
)
def test_a_value_of_another_type_is_refused_not_converted(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        FollowUpCommand.model_validate_json(adjustment(**changes))
    assert [problem["loc"] for problem in error.value.errors()] == [(field,)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"decided_by": "x" * 201}, "decided_by"),
        ({"note": "x" * 2_001}, "note"),
        ({"decided_by": "hr\x00anja"}, "decided_by"),  # PostgreSQL text cannot hold it
        ({"preview": 1}, "preview"),
        ({"filter": {"company_id": "3"}, "nmbrs_id": None, "action": "blokkeren"}, "filter.company_id"),
    ],
)
def test_a_decision_is_read_strictly_and_its_texts_are_bounded(changes: dict[str, Any], field: str) -> None:
    decision = {
        "decision_id": str(uuid.uuid4()),
        "nmbrs_id": 101,
        "action": "koppelen",
        "target_id": 3,
        "decided_by": "hr.anja",
        "decided_at": NOW.isoformat(),
        **changes,
    }
    with pytest.raises(ValidationError) as error:
        Decision.model_validate_json(json.dumps(decision))
    assert [".".join(str(p) for p in problem["loc"]) for problem in error.value.errors()] == [field]


def test_the_longest_texts_allowed_are_taken() -> None:
    value = adjustment(issued_by="x" * 200, reason="é" * 2_000)
    assert FollowUpCommand.model_validate_json(value).reason == "é" * 2_000


@pytest.mark.parametrize("changes", [{"nmbrs_id": 2**31}, {"target_id": -1}, {"version": 0}])
def test_a_decision_with_ids_out_of_range_is_refused(changes: dict[str, Any]) -> None:
    decision = {
        "decision_id": str(uuid.uuid4()),
        "nmbrs_id": 101,
        "action": "koppelen",
        "target_id": 3,
        "decided_by": "hr.anja",
        "decided_at": NOW.isoformat(),
        **changes,
    }
    with pytest.raises(ValidationError, match=next(iter(changes))):
        Decision.model_validate(decision)
