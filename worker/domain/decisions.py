"""Human decisions (Koppelen / Aanmaken / Blokkeren / Overslaan, and their undo); follow-ups are in follow_ups.py.

Commands, not facts: any HR frontend posts them; the decision consumer validates each against the current
state and either applies it or rejects it with a reason a human understands. Pure rules live here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worker.domain.changes import ChangeSource, CompanyChanged, EmployeeChanged, Entity, LinkedEntity, Op
from worker.domain.events import Command, FreeText, IsoDateTime, Name, StoreId, Uuid
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee
from worker.domain.organisation_matching import RegiTijdCompany
from worker.domain.ownership import company_values, employee_values
from worker.domain.reconcile import (
    Apply,
    ClearPending,
    Link,
    Plan,
    RecalculateLeave,
    RecordState,
    adopted_note,
    company_to_adopt,
)


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
_RE_ASK_NAMESPACE = uuid.UUID("0b4c6a8e-7d1f-4f0a-9c52-3e6f1d2a7b94")


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
    entity: LinkedEntity = "employee"
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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


@dataclass(frozen=True)
class Rejection:
    """Why a decision or command cannot be applied, in words for the person who sent it."""

    reason: str


# --- one record: the plan of a decision ----------------------------------------------------------------


class LinkRecord(_Frozen):
    """Koppelen to `crm_id`, or Aanmaken (`crm_id` None: a new card from the Nmbrs data first); the other open
    employments of the same human go along (one human, one person: rule 4)."""

    crm_id: int | None
    data: dict[str, Any] = Field(description="The record's stored Nmbrs data, written and kept for an undo.")
    version: int | None
    reason: str
    adopt: RegiTijdCompany | None = Field(
        None, description="Koppelen of a company: the organisation's RegiTijd company it takes over."
    )


class BlockRecord(_Frozen):
    """Blokkeren: every later sync ignores the record; its question is withdrawn."""

    note: str | None
    data: dict[str, Any] | None = Field(description="Kept with the block: an unblock asks again with it.")


class SkipQuestion(_Frozen):
    """Overslaan: the question is hidden until the next sync."""


class UnblockRecord(_Frozen):
    """Ontblokkeren: the record is reconciled again."""

    data: dict[str, Any] | None = Field(description="Asked again with, when the store has any.")


class UndoDecision(_Frozen):
    """Ongedaan maken: planned once the decision it reverses is loaded (plan_undo)."""


DecisionStep = LinkRecord | BlockRecord | SkipQuestion | UnblockRecord | UndoDecision


def rejection(decision: Decision, state: RecordState, target_exists: bool) -> str | None:
    """Why a single-record decision cannot be applied now, in words for the person who made it; None = ok.
    `state` is loaded with its stored data (RecordState.stored)."""
    what = f"Nmbrs {decision.entity} {decision.nmbrs_id}"
    kind = crm_kind(decision.entity)
    action = decision.action
    if state.stored is None and state.link is None:
        return f"{what} is unknown: it never came from Nmbrs"
    if action is DecisionAction.ONTBLOKKEREN:
        return None if state.blocked else f"{what} is not blocked"
    if action is DecisionAction.ONGEDAAN_MAKEN:
        return None
    if state.blocked:
        return f"{what} is blocked; unblock it (ontblokkeren) first"
    if state.link is not None:
        return f"{what} is already linked to {kind} {state.link.crm_id}; undo that decision (ongedaan_maken) first"
    if state.pending_version is None:
        return f"{what} has no open question"
    if decision.version is not None and decision.version != state.pending_version:
        return (
            f"stale: the question for {what} was version {decision.version}, a newer Nmbrs change made it "
            f"version {state.pending_version}; look again and decide on the new version"
        )
    if action is DecisionAction.KOPPELEN and not target_exists:
        return f"{kind} {decision.target_id} does not exist in RegiCRM"
    same = state.linked_persons_for_bsn
    if same and action in (DecisionAction.AANMAKEN, DecisionAction.KOPPELEN) and decision.target_id not in same:
        # One human, one person (rule 4): another employment of this human is linked already.
        persons = " or ".join(f"person {p}" for p in same)
        return (
            f"the same human (BSN) is already linked to {persons} through another employment: koppelen to it, "
            "or correct the BSN in Nmbrs if it is wrong (the question is then asked anew)"
        )
    return None


def plan_decision(
    decision: Decision, state: RecordState, target_exists: bool, companies: Sequence[RegiTijdCompany] = ()
) -> DecisionStep | Rejection:
    """What a single-record decision does to the record in `state` (see rejection), or why it cannot.
    `companies`: Koppelen of a company: the target organisation's RegiTijd companies no Nmbrs company has."""
    if reason := rejection(decision, state, target_exists):
        return Rejection(reason)
    data, version = (state.stored.data, state.stored.version) if state.stored is not None else (None, None)
    match decision.action:
        case DecisionAction.KOPPELEN | DecisionAction.AANMAKEN:
            assert data is not None  # an open question keeps its data
            koppelen = decision.action is DecisionAction.KOPPELEN
            crm_id = decision.target_id if koppelen else None
            adopt = company_to_adopt(data["name"], companies) if koppelen and decision.entity == "company" else None
            reason = f"{decision.action.value.capitalize()} by {decision.decided_by}"
            return LinkRecord(crm_id=crm_id, data=data, version=version, reason=reason, adopt=adopt)
        case DecisionAction.BLOKKEREN:
            return BlockRecord(note=decision.note, data=data)
        case DecisionAction.OVERSLAAN:
            return SkipQuestion()
        case DecisionAction.ONTBLOKKEREN:
            return UnblockRecord(data=data)
    return UndoDecision()


def nmbrs_record(entity: LinkedEntity, data: dict[str, Any]) -> NmbrsEmployee | NmbrsCompany:
    return NmbrsEmployee.model_validate(data) if entity == "employee" else NmbrsCompany.model_validate(data)


def link_plan(
    record: NmbrsEmployee | NmbrsCompany, crm_id: int, linked_by: str, reason: str, regitijd_id: int | None = None
) -> Plan:
    """The reconciliation plan of a decided link: link, close the question, write every Nmbrs-owned field (the
    RegiTijd record is created, or `regitijd_id` taken over) and, for an employee, calculate the leave."""
    leave: tuple[RecalculateLeave, ...]
    if isinstance(record, NmbrsEmployee):
        values, leave = employee_values(record), (RecalculateLeave(fields=("employment_start",)),)
    else:
        values, leave = company_values(record), ()
    return Plan(
        situation="linked",
        actions=(
            Link(crm_id=crm_id, linked_by=linked_by, reason=reason),
            ClearPending(),
            Apply(crm_id=crm_id, regitijd_id=regitijd_id, values=values, changed=tuple(sorted(values))),
            *leave,
        ),
    )


def re_ask_event(
    entity: LinkedEntity, nmbrs_id: int, data: dict[str, Any], version: int, decision_id: uuid.UUID, now: datetime
) -> EmployeeChanged | CompanyChanged:
    """The record put through reconciliation again (after an unblock or an undo), as a snapshot read of a full
    reconciliation; its id is the same every time for the same decision and record."""
    read: dict[str, Any] = {
        "event_id": uuid.uuid5(_RE_ASK_NAMESPACE, f"{decision_id}:{entity}:{nmbrs_id}"),
        "key": f"{entity}:{nmbrs_id}",
        "op": Op.READ,
        "version": version,
        "after": nmbrs_record(entity, data),
        "source": ChangeSource(poll_id=decision_id, fetched_at=now),
        "ts": now,
    }
    if entity == "employee":
        return EmployeeChanged(entity=Entity.EMPLOYEE, **read)
    return CompanyChanged(entity=Entity.COMPANY, **read)


class BlueEmployee(_Frozen):
    """A manual ('blue') RegiTijd employee of a person, with its company's name."""

    employee_id: int
    company: str | None


def linked_reason(
    entity: LinkedEntity, crm_id: int, blue: Sequence[BlueEmployee], adopted: RegiTijdCompany | None = None
) -> str:
    """The outcome of a Koppelen: the RegiTijd company it took over (`adopted`), and a warning of the person's
    blue employees: the sync never changes one (rule 9), so when it was this same employment, entered by hand
    before Nmbrs, the person now has it twice and only a human can end the manual one."""
    reason = f"linked to {crm_kind(entity)} {crm_id}" + (adopted_note(adopted) if adopted else "")
    if not blue:
        return reason
    names = ", ".join(f"{b.employee_id} ({b.company or 'no company'})" for b in blue)
    return (
        f"{reason}; warning: this person also has a manual (blue) RegiTijd employee {names}, which the sync leaves"
        " unchanged: if it is this same employment, end it by hand"
    )


def crm_kind(entity: LinkedEntity) -> str:
    return "person" if entity == "employee" else "organisation"


# --- bulk ---------------------------------------------------------------------------------------------------


class PendingRecord(_Frozen):
    """An open question a bulk filter found."""

    nmbrs_id: int
    version: int
    bsn_hash: str | None
    human_ids: tuple[int, ...] = Field((), description="The open employments of its human, itself included.")


class BulkSelection(_Frozen):
    """The records a bulk decision answers, and those it leaves out with the reason."""

    selected: tuple[PendingRecord, ...]
    left_out: tuple[str, ...] = Field((), description="Keys whose human has open employments it does not answer.")
    changed: tuple[str, ...] = Field((), description="Keys a confirmed preview listed, changed or answered since.")

    def note(self) -> str:
        """What was left out, for the outcome."""
        human = "whose human has other open employments the filter does not select"
        groups = ((self.left_out, human), (self.changed, "changed or answered since the preview"))
        return "".join(f"; left out {len(keys)} {why}: {', '.join(keys)}" for keys, why in groups if keys)


def select_for_bulk(
    entity: LinkedEntity, action: DecisionAction, found: Sequence[PendingRecord], previewed: Mapping[str, int] | None
) -> BulkSelection:
    """Which of the questions the filter `found` a bulk answers. `previewed`: the records (key -> version) of the
    preview it confirms: only those, and only at the version the preview saw."""
    key = f"{entity}:{{}}".format
    selected, changed = list(found), []
    if previewed is not None:
        current = {key(row.nmbrs_id): row.version for row in found}
        changed = [k for k, version in previewed.items() if current.get(k) != version]
        selected = [row for row in found if previewed.get(key(row.nmbrs_id)) == row.version]
    dropped: set[int] = set()
    if action is DecisionAction.AANMAKEN:
        # Aanmaken takes the human's other open employments along (one human, one person): only where all of them
        # are answered too, checked until nothing more drops out.
        while True:
            ids = {row.nmbrs_id for row in selected}
            newly = {row.nmbrs_id for row in selected if not set(row.human_ids) - {row.nmbrs_id} <= ids}
            if not newly:
                break
            dropped |= newly
            selected = [row for row in selected if row.nmbrs_id not in newly]
    return BulkSelection(
        selected=tuple(selected),
        left_out=tuple(key(row.nmbrs_id) for row in found if row.nmbrs_id in dropped),
        changed=tuple(sorted(changed, key=lambda k: int(k.partition(":")[2]))),
    )


class StoredDecision(_Frozen):
    """A decision as the store keeps it, with what it did (`effect`)."""

    entity: LinkedEntity
    nmbrs_id: int | None = Field(description="None: a bulk decision.")
    action: str
    result: Literal["applied", "rejected", "previewed"]
    effect: dict[str, Any]
    undone_by: uuid.UUID | None = None


def previewed_versions(
    decision: Decision, preview: StoredDecision | None, carried_out: bool
) -> dict[str, int] | Rejection:
    """The records (key -> version) of the preview a bulk decision confirms (`preview`; `carried_out`: a bulk
    confirmed it already), or why it cannot."""
    assert decision.filter is not None and decision.confirms is not None
    if preview is None or preview.result != "previewed" or "versions" not in preview.effect:
        return Rejection(f"decision {decision.confirms} is not a preview")
    if (preview.entity, preview.action, preview.effect["filter"]) != (
        decision.entity,
        decision.action.value,
        decision.filter.model_dump(mode="json"),
    ):
        return Rejection(f"preview {decision.confirms} was of another action or filter: preview this one again")
    if carried_out:
        return Rejection(f"preview {decision.confirms} was carried out already: preview again")
    versions: dict[str, int] = preview.effect["versions"]
    return versions


# --- undo ---------------------------------------------------------------------------------------------------

REVERSIBLE = ("linked", "blocked", "skipped")  # the effects undo takes back


class Reversal(_Frozen):
    """What undoing one record's effect takes back, in this order; each record linked or unblocked is asked
    again."""

    entity: LinkedEntity
    nmbrs_id: int
    linked: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Nmbrs id -> the data it was linked with: unlinked and asked again."
    )
    crm_id: int | None = None
    card: dict[str, Any] | None = Field(None, description="The card a link wrote over: before and after.")
    blocked: bool = False
    skipped: bool = False
    adopted_company: RegiTijdCompany | None = Field(
        None, description="The organisation's RegiTijd company the link took over, as it was: given back."
    )


class UndoPlan(_Frozen):
    reversals: tuple[Reversal, ...]
    effect: dict[str, Any] = Field(description="The undone decision's effect, its reversed records marked so.")
    whole: bool = Field(description="Nothing of the undone decision is left: it is marked undone.")


def plan_undo(
    decision: Decision, earlier: StoredDecision | None, entity: LinkedEntity, nmbrs_id: int
) -> UndoPlan | Rejection:
    """What ongedaan_maken `decision` (about record `entity`:`nmbrs_id`) takes back of `earlier`, the decision it
    reverses, or why it cannot. A bulk is undone record by record (the one named), or whole on request."""
    undone = decision.undo_decision_id
    if earlier is None:
        return Rejection(f"decision {undone} is unknown")
    if earlier.result != "applied" or earlier.undone_by is not None:
        return Rejection(f"decision {undone} was not applied or is already undone")
    bulk = earlier.nmbrs_id is None  # a bulk decision answered records by filter
    records: dict[str, dict[str, Any]] = (
        earlier.effect.get("records", {}) if bulk else {f"{earlier.entity}:{earlier.nmbrs_id}": earlier.effect}
    )
    named = f"{entity}:{nmbrs_id}"
    if named not in records and entity == earlier.entity:
        # Another employment of the same human, linked along with a record the bulk answered: undone with it.
        named = next((key for key, e in records.items() if str(nmbrs_id) in e.get("linked", {})), named)
    if named not in records:
        return Rejection(f"decision {undone} was not about {entity} {nmbrs_id}")
    # A record undone before stays so.
    chosen = {
        key: e for key, e in records.items() if (decision.undo_all_records or key == named) and not e.get("undone_by")
    }
    if not chosen:
        return Rejection(f"{named} of decision {undone} is already undone")
    if not any(e.get(part) for e in chosen.values() for part in REVERSIBLE):
        # An unblock or an undo has nothing of its own to take back: deciding again is the way.
        return Rejection(f"decision {undone} ({earlier.action}) cannot be undone; decide again")
    marked = {key: {**e, "undone_by": str(decision.decision_id)} if key in chosen else e for key, e in records.items()}
    effect = {**earlier.effect, "records": marked} if bulk else marked[named]
    reversals = tuple(
        Reversal(
            entity=key.partition(":")[0],
            nmbrs_id=int(key.partition(":")[2]),
            linked=e.get("linked", {}),
            crm_id=e.get("crm_id"),
            card=e.get("card") or None,
            blocked=bool(e.get("blocked")),
            skipped=bool(e.get("skipped")),
            adopted_company=e.get("adopted_company"),
        )
        for key, e in chosen.items()
    )
    return UndoPlan(
        reversals=reversals, effect=effect, whole=not bulk or all(e.get("undone_by") for e in marked.values())
    )
