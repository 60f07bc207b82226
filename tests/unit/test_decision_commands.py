"""Commands that the store could not take are refused when they are read, so their sender gets the reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from worker.domain.decisions import Decision, FollowUpCommand
from worker.domain.events import OutcomeKind
from worker.entrypoints.consuming import describe_validation_error
from worker.entrypoints.decisions import rejection_for_malformed

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
COMMAND_ID = uuid.UUID(int=7)


def adjustment(**changes: Any) -> bytes:
    command = {"command_id": str(COMMAND_ID), "employee_id": 12, "command": "leave_adjustment", "hours": 8,
               "on": "2026-03-01", "issued_by": "hr.anja", "issued_at": NOW.isoformat()}  # fmt: skip
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


@pytest.mark.parametrize("changes", [{"nmbrs_id": 2**31}, {"target_id": -1}, {"version": 0}])
def test_a_decision_with_ids_out_of_range_is_refused(changes: dict[str, Any]) -> None:
    decision = {"decision_id": str(uuid.uuid4()), "nmbrs_id": 101, "action": "koppelen", "target_id": 3,
                "decided_by": "hr.anja", "decided_at": NOW.isoformat(), **changes}  # fmt: skip
    with pytest.raises(ValidationError, match=next(iter(changes))):
        Decision.model_validate(decision)
