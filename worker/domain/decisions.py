"""Human decisions (Koppelen / Aanmaken / Blokkeren / Overslaan, and their undo) and follow-up commands.

Commands, not facts: any HR frontend posts them; the decision consumer validates each against the current
state and either applies it or rejects it with a reason a human understands. Pure rules live here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.domain.events import Command, FreeText, IsoDate, IsoDateTime, Name, Uuid
from worker.domain.target_state import CHARACTERISTICS


class DecisionAction(StrEnum):
    KOPPELEN = "koppelen"
    AANMAKEN = "aanmaken"
    BLOKKEREN = "blokkeren"
    OVERSLAAN = "overslaan"
    ONTBLOKKEREN = "ontblokkeren"
    ONGEDAAN_MAKEN = "ongedaan_maken"


# English names any frontend may post instead of the Dutch ones users see.
ALIASES = {
    "link": DecisionAction.KOPPELEN,
    "create": DecisionAction.AANMAKEN,
    "block": DecisionAction.BLOKKEREN,
    "skip": DecisionAction.OVERSLAAN,
    "unblock": DecisionAction.ONTBLOKKEREN,
    "undo": DecisionAction.ONGEDAAN_MAKEN,
}
# Every name an action may be posted under: the member itself, so that strict parsing takes the Dutch names
# from Python code too.
ACTION_NAMES: dict[str, DecisionAction] = {**{action.value: action for action in DecisionAction}, **ALIASES}
BULK_ACTIONS = frozenset({DecisionAction.AANMAKEN, DecisionAction.BLOKKEREN, DecisionAction.OVERSLAAN})

# Ids and hours as the store keeps them (integer, numeric(8, 2)): a command outside these ranges is rejected
# with its reason when it is read, instead of failing in the database after it was accepted.
StoreId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Hours = Annotated[float, Field(gt=-1_000_000, lt=1_000_000, allow_inf_nan=False)]


class DecisionFilter(BaseModel):
    """Which pending questions a bulk decision answers; every given criterion must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    company_id: StoreId = Field(description="Only records of this Nmbrs company (a bulk never spans companies).")
    situation: Literal["unmatched", "disputed"] | None = None
    max_best_score: float | None = Field(
        None, ge=0, le=1, description="Only records whose best candidate scores at most this (e.g. 0.2)."
    )


class Decision(Command):
    """One human choice, for one record (`nmbrs_id`) or, in bulk, for every pending record a filter selects.
    Key: '<entity>:<nmbrs_id>' for one record, 'bulk' for a filter."""

    event_type: Literal["decision"] = "decision"
    decision_id: Uuid = Field(description="Unique; the same decision twice has one effect.")
    entity: Literal["employee", "company"] = "employee"
    nmbrs_id: StoreId | None = Field(None, description="The Nmbrs employee or company id.")
    filter: DecisionFilter | None = Field(None, description="Bulk: answer every pending record it selects.")
    action: DecisionAction = Field(
        description="koppelen, aanmaken, blokkeren, overslaan, ontblokkeren, "
        "ongedaan_maken (or link, create, block, skip, unblock, undo)"
    )
    target_id: StoreId | None = Field(None, description="koppelen: the RegiCRM person or organisation id.")
    version: StoreId | None = Field(None, description="The pending question's version this answers.")
    undo_decision_id: Uuid | None = Field(None, description="ongedaan_maken: the decision to reverse.")
    undo_all_records: bool = Field(
        False, description="ongedaan_maken of a bulk decision: every record it answered, not only nmbrs_id."
    )
    preview: bool = Field(False, description="Bulk: report what would happen and change nothing.")
    confirms: Uuid | None = Field(
        None,
        description="Bulk: the preview (its decision id) this run carries out: only the records it listed, at the "
        "versions it saw; records changed or gone since are left out and named.",
    )
    decided_by: Name = Field(description="Who decided (a user name).")
    decided_at: IsoDateTime
    note: FreeText | None = Field(None, description="Free text kept with the decision, e.g. why.")

    @field_validator("action", mode="before")
    @classmethod
    def _action_by_name(cls, value: Any) -> Any:
        return ACTION_NAMES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if (self.nmbrs_id is None) == (self.filter is None):
            raise ValueError("give either nmbrs_id (one record) or filter (bulk), not both")
        if self.filter is not None and self.action not in BULK_ACTIONS:
            raise ValueError(f"bulk decisions can only be {', '.join(sorted(BULK_ACTIONS))}")
        if self.action is DecisionAction.KOPPELEN and self.target_id is None:
            raise ValueError("koppelen needs target_id: the RegiCRM person or organisation to link to")
        if self.action is DecisionAction.ONGEDAAN_MAKEN and self.undo_decision_id is None:
            raise ValueError("ongedaan_maken needs undo_decision_id")
        if self.confirms is not None and (self.filter is None or self.preview):
            raise ValueError("confirms goes with a bulk decision that is not itself a preview")
        if self.undo_all_records and self.action is not DecisionAction.ONGEDAAN_MAKEN:
            raise ValueError("undo_all_records only goes with ongedaan_maken")
        if (
            self.filter is not None
            and self.action is DecisionAction.AANMAKEN
            and self.filter.situation != "unmatched"
            and self.filter.max_best_score is None
        ):
            # A disputed question's best candidate may well be the person already: creating it again would
            # make a duplicate card.
            raise ValueError("a bulk aanmaken needs situation 'unmatched' or a max_best_score")
        return self

    @property
    def key(self) -> str:
        return "bulk" if self.nmbrs_id is None else f"{self.entity}:{self.nmbrs_id}"


class PendingQuestion(BaseModel):
    """A stored pending decision, as the rules need it."""

    model_config = ConfigDict(frozen=True)

    version: int
    situation: Literal["unmatched", "disputed"]
    skipped: bool = False


class RecordSituation(BaseModel):
    """What the store knows about one record when a decision arrives."""

    model_config = ConfigDict(frozen=True)

    known: bool = Field(description="Nmbrs sent this record at least once.")
    pending: PendingQuestion | None = None
    linked_to: int | None = None
    blocked: bool = False
    same_human_persons: tuple[int, ...] = Field(
        (), description="Persons other employments of this human (same BSN hash) are linked to."
    )


def rejection(decision: Decision, situation: RecordSituation, target_exists: bool) -> str | None:
    """Why a single-record decision cannot be applied now, in words for the person who made it; None = ok."""
    what = f"Nmbrs {decision.entity} {decision.nmbrs_id}"
    crm_kind = "person" if decision.entity == "employee" else "organisation"
    action = decision.action
    if not situation.known:
        return f"{what} is unknown: it never came from Nmbrs"
    if action is DecisionAction.ONTBLOKKEREN:
        return None if situation.blocked else f"{what} is not blocked"
    if action is DecisionAction.ONGEDAAN_MAKEN:
        return None
    if situation.blocked:
        return f"{what} is blocked; unblock it (ontblokkeren) first"
    if situation.linked_to is not None:
        return (
            f"{what} is already linked to {crm_kind} {situation.linked_to}; undo that decision (ongedaan_maken) first"
        )
    if situation.pending is None:
        return f"{what} has no open question"
    if decision.version is not None and decision.version != situation.pending.version:
        return (
            f"stale: the question for {what} was version {decision.version}, a newer Nmbrs change made it "
            f"version {situation.pending.version}; look again and decide on the new version"
        )
    if action is DecisionAction.KOPPELEN and not target_exists:
        return f"{crm_kind} {decision.target_id} does not exist in RegiCRM"
    same = situation.same_human_persons
    if same and action in (DecisionAction.AANMAKEN, DecisionAction.KOPPELEN) and decision.target_id not in same:
        # One human, one person (rule 4): another employment of this human is linked already.
        persons = " or ".join(f"person {p}" for p in same)
        return (
            f"the same human (BSN) is already linked to {persons} through another employment: koppelen to it, "
            "or correct the BSN in Nmbrs if it is wrong (the question is then asked anew)"
        )
    return None


class FollowUpCommand(Command):
    """A change to locally owned data (never touched by the sync). Key: 'rt-employee:<employee_id>'."""

    event_type: Literal["follow_up"] = "follow_up"
    command_id: Uuid
    employee_id: StoreId = Field(description="The RegiTijd employee id.")
    command: Literal[
        "set_manager", "set_is_manager", "leave_adjustment", "overtime_payout", "set_characteristic",
        "remove_characteristic", "link_time_category", "unlink_time_category",
    ]  # fmt: skip
    manager_employee_id: StoreId | None = None
    is_manager: bool | None = None
    hours: Hours | None = Field(None, description="leave_adjustment (may be negative) or overtime_payout.")
    on: IsoDate | None = Field(None, description="Date of the adjustment or payout (YYYY-MM-DD).")
    characteristic: Name | None = Field(None, description=f"One of: {', '.join(CHARACTERISTICS)}.")
    time_category: Name | None = Field(None, description="Code of the time-writing category.")
    reason: FreeText | None = Field(None, description="Free text kept with the change, e.g. why.")
    issued_by: Name = Field(description="Who issued it (a user name).")
    issued_at: IsoDateTime

    @model_validator(mode="after")
    def _has_its_argument(self) -> FollowUpCommand:
        needs = {
            "set_manager": "manager_employee_id", "set_is_manager": "is_manager", "leave_adjustment": "hours",
            "overtime_payout": "hours", "set_characteristic": "characteristic",
            "remove_characteristic": "characteristic", "link_time_category": "time_category",
            "unlink_time_category": "time_category",
        }  # fmt: skip
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
