"""Follow-up commands: changes HR makes to locally owned data after Koppelen or Aanmaken ("gegevens aanvullen").

Any frontend posts them; the decision consumer judges each against the store's facts and applies or rejects it.
Pure rules live here.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.domain.events import Command, FreeText, Hours, IsoDate, IsoDateTime, Name, StoreId, Uuid
from worker.domain.target_state import CHARACTERISTICS


class FollowUpCommand(Command):
    """A change to locally owned data (never touched by the sync). Key: 'rt-employee:<employee_id>'."""

    event_type: Literal["follow_up"] = "follow_up"
    command_id: Uuid
    employee_id: StoreId = Field(description="The RegiTijd employee id.")
    command: Literal[
        "set_manager",
        "set_is_manager",
        "leave_adjustment",
        "overtime_payout",
        "set_characteristic",
        "remove_characteristic",
        "link_time_category",
        "unlink_time_category",
        "mark_task_done",
    ]
    manager_employee_id: StoreId | None = None
    is_manager: bool | None = None
    hours: Hours | None = Field(None, description="leave_adjustment (may be negative) or overtime_payout.")
    on: IsoDate | None = Field(None, description="Date of the adjustment or payout (YYYY-MM-DD).")
    characteristic: Name | None = Field(None, description=f"One of: {', '.join(CHARACTERISTICS)}.")
    time_category: Name | None = Field(None, description="Code of the time-writing category.")
    task: Literal["account", "roles"] | None = Field(
        None,
        description="mark_task_done: a follow-up task done outside RegiTijd (the login account and its roles are "
        "made in RegiCRM's account screen), so that it leaves the list.",
    )
    reason: FreeText | None = Field(None, description="Free text kept with the change, e.g. why.")
    issued_by: Name = Field(description="Who issued it (a user name).")
    issued_at: IsoDateTime

    @model_validator(mode="after")
    def _has_its_argument(self) -> FollowUpCommand:
        needs = {
            "set_manager": "manager_employee_id",
            "set_is_manager": "is_manager",
            "leave_adjustment": "hours",
            "overtime_payout": "hours",
            "set_characteristic": "characteristic",
            "remove_characteristic": "characteristic",
            "link_time_category": "time_category",
            "unlink_time_category": "time_category",
            "mark_task_done": "task",
        }
        field = needs[self.command]
        if getattr(self, field) is None:
            raise ValueError(f"{self.command} needs {field}")
        if self.command in ("leave_adjustment", "overtime_payout") and self.on is None:
            raise ValueError(f"{self.command} needs 'on' (the date)")
        if self.characteristic is not None and self.characteristic not in CHARACTERISTICS:
            raise ValueError(f"unknown characteristic {self.characteristic!r}; allowed: {', '.join(CHARACTERISTICS)}")
        if self.command == "overtime_payout" and (self.hours or 0) < 0:
            raise ValueError("overtime_payout hours cannot be negative")
        return self

    @property
    def key(self) -> str:
        return f"rt-employee:{self.employee_id}"


# Follow-up tasks shown for each new or newly linked employee ("gegevens aanvullen").
TASKS = {
    "manager": "no manager set (the manager approves the hours)",
    "account": "no login account",
    "roles": "account has no roles",
    "time_category": "no time-writing category linked (cannot write time)",
    "personeelslid": "characteristic RegiPersoneel: Personeelslid missing (every employee has it)",
    "characteristics": "no characteristics for the other Regi applications besides RegiPersoneel",
}


class FollowUpFacts(BaseModel):
    """What the store holds that a follow-up command is judged by."""

    model_config = ConfigDict(frozen=True)

    employee_id: int
    person_id: int
    manager_exists: bool = Field(description="The command's manager is a RegiTijd employee.")
    category_id: int | None = Field(description="The command's time-writing category, if it exists.")
    has_contract: bool = Field(description="The employee has a contract on the day of the command.")


def follow_up_rejection(command: FollowUpCommand, facts: FollowUpFacts | None, today: date) -> str | None:
    """Why a follow-up command cannot be applied (`facts` None: its employee does not exist); None = ok."""
    if facts is None:
        return f"RegiTijd employee {command.employee_id} does not exist"
    if command.command == "set_manager":
        if command.manager_employee_id == facts.employee_id:
            return "an employee cannot be their own manager"
        if not facts.manager_exists:
            return f"manager {command.manager_employee_id} is not a RegiTijd employee"
    if command.command in ("link_time_category", "unlink_time_category"):
        if facts.category_id is None:
            return f"time-writing category {command.time_category!r} does not exist"
        if command.command == "link_time_category" and not facts.has_contract:
            return (
                f"employee {facts.employee_id} has no active contract on {today}: an employee needs a contract to "
                "write time"
            )
    return None


# What an applied follow-up command did, for its outcome.
_FOLLOW_UP_RESULTS = {
    "set_manager": "manager set to employee {c.manager_employee_id}",
    "set_is_manager": "is manager: {c.is_manager}",
    "leave_adjustment": "leave adjustment of {c.hours} h on {c.on} booked",
    "overtime_payout": "overtime payout of {c.hours} h on {c.on} booked",
    "set_characteristic": "characteristic {c.characteristic!r} set",
    "remove_characteristic": "characteristic {c.characteristic!r} removed",
    "link_time_category": "time-writing category {c.time_category!r} linked",
    "unlink_time_category": "time-writing category {c.time_category!r} unlinked",
    "mark_task_done": "task {c.task!r} marked done",
}


def follow_up_result(command: FollowUpCommand) -> str:
    return _FOLLOW_UP_RESULTS[command.command].format(c=command)
