"""Reconciliation decisions: what to do with one Nmbrs change, by the record's sync situation.

Situations (after midPoint): linked, blocked, unlinked-certain (auto-link), unmatched/disputed (ask a
human), removed. The result is a plan of target-store actions and outcomes; the shell executes it in one
transaction. Pure: the caller loads the state and the candidates first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.domain.changes import CompanyChanged, EmployeeChanged, Op, ReferenceChanged
from worker.domain.events import OutcomeKind
from worker.domain.matching import MatchPolicy
from worker.domain.organisation_matching import (
    OrganisationAutoLink,
    OrganisationCandidate,
    RegiTijdCompany,
    ScoredOrganisation,
    decide_organisation_match,
)
from worker.domain.ownership import (
    LEAVE_FIELDS,
    REFERENCE_LABELS,
    FieldDrift,
    company_values,
    detect_drift,
    differing_fields,
    employee_values,
    reference_names,
)
from worker.domain.person_matching import AutoLink, decide_match
from worker.domain.person_scoring import PersonCandidate, ScoredCandidate


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- state the shell loads --------------------------------------------------------------------------


class LinkedRecord(_Frozen):
    """The RegiCRM/RegiTijd side of a linked Nmbrs record."""

    crm_id: int = Field(description="person_id or organisation_id")
    regitijd_id: int | None = Field(description="employee_id or company_id (None: not created yet)")
    local: dict[str, Any] = Field(description="Nmbrs-owned fields as they are now in RegiTijd/RegiCRM.")
    synced: dict[str, Any] | None = Field(description="Nmbrs-owned fields as the sync last wrote them.")
    bsn_hash: str | None = Field(None, description="The employee's BSN hash as the link records it.")
    active: bool = Field(True, description="Whether the RegiTijd record is active (False: deactivated by a removal).")
    local_names: dict[str, str] = Field(
        default_factory=dict,
        description="The store's names of the local reference values, by field (department_id -> 'Verkoop').",
    )


class StoredRecord(_Frozen):
    """The latest Nmbrs data the store holds of a record: its open question's, else its snapshot's (while it is
    in Nmbrs), else its block's. A decision is carried out with it."""

    data: dict[str, Any]
    version: int | None = Field(description="The version of that data (None: a block keeps none).")


class RecordState(_Frozen):
    """What the store knows of one Nmbrs record, for the reconciler and the decision consumer alike."""

    link: LinkedRecord | None = None
    blocked: bool = False
    pending_version: int | None = Field(None, description="The version of the record's open question, if any.")
    applied_version: int | None = Field(None, description="Snapshot version last written to the RegiTijd record.")
    linked_persons_for_bsn: tuple[int, ...] = Field(
        (), description="Persons the other employments of this BSN are linked to (more than one: duplicates)."
    )
    stored: StoredRecord | None = Field(
        None, description="Loaded for decisions only (a change carries its own data); None: the store keeps none."
    )

    @property
    def stored_bsn_hash(self) -> str | None:
        """The BSN hash in the stored data (only employees have one)."""
        return (self.stored.data.get("bsn_hash") or None) if self.stored is not None else None


# --- the plan ----------------------------------------------------------------------------------------


class Apply(_Frozen):
    """Write the Nmbrs-owned values (creating the RegiTijd record when `regitijd_id` is None)."""

    action: Literal["apply"] = "apply"
    crm_id: int
    regitijd_id: int | None
    values: dict[str, Any]
    changed: tuple[str, ...]
    since_synced: tuple[str, ...] = Field(
        (), description="Fields that differ from what the sync last wrote (none for a first write)."
    )
    reactivate: bool = Field(False, description="The inactive RegiTijd record is back in Nmbrs: made active again.")


class Link(_Frozen):
    action: Literal["link"] = "link"
    crm_id: int
    linked_by: str
    reason: str


class SavePending(_Frozen):
    action: Literal["save_pending"] = "save_pending"
    situation: Literal["unmatched", "disputed"]
    version: int
    candidates: tuple[ScoredCandidate, ...] | tuple[ScoredOrganisation, ...]
    reason: str


class ClearPending(_Frozen):
    action: Literal["clear_pending"] = "clear_pending"


class Deactivate(_Frozen):
    action: Literal["deactivate"] = "deactivate"
    regitijd_id: int
    reason: str


class RecordBsnHash(_Frozen):
    """Keep the link's BSN hash equal to the employee's: the same-human rules read it."""

    action: Literal["record_bsn_hash"] = "record_bsn_hash"
    bsn_hash: str | None


class RecalculateLeave(_Frozen):
    action: Literal["recalculate_leave"] = "recalculate_leave"
    fields: tuple[str, ...]


class UpsertReference(_Frozen):
    action: Literal["upsert_reference"] = "upsert_reference"
    kind: Literal["department", "function", "labour_agreement"]
    nmbrs_id: int
    code: str | None
    description: str
    active: bool


Action = Apply | Link | SavePending | ClearPending | Deactivate | RecordBsnHash | RecalculateLeave | UpsertReference


class PlannedOutcome(_Frozen):
    kind: OutcomeKind
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


class Plan(_Frozen):
    situation: Literal["linked", "blocked", "auto_linked", "needs_decision", "removed", "ignored"]
    actions: tuple[Action, ...] = ()
    outcomes: tuple[PlannedOutcome, ...] = ()


def _drift_outcomes(
    drifts: Sequence[FieldDrift], local_names: Mapping[str, str], nmbrs_names: Mapping[str, str]
) -> tuple[PlannedOutcome, ...]:
    """A reference (department, function, CAO) is named in the message by its name, its id kept in the details."""
    outcomes = []
    for d in drifts:
        local_name, nmbrs_name = local_names.get(d.field), nmbrs_names.get(d.field)
        details = {"field": d.field, "local_value": d.local_value, "nmbrs_value": d.nmbrs_value}
        details |= {"local_name": local_name} if local_name is not None else {}
        details |= {"nmbrs_name": nmbrs_name} if nmbrs_name is not None else {}
        local = d.local_value if local_name is None else local_name
        nmbrs = d.nmbrs_value if nmbrs_name is None else nmbrs_name
        outcomes.append(
            PlannedOutcome(
                kind=OutcomeKind.DRIFT,
                reason=f"{REFERENCE_LABELS.get(d.field, d.field)} was edited locally ({local!r}); Nmbrs owns it and "
                f"its value {nmbrs!r} was written back",
                details=details,
            )
        )
    return tuple(outcomes)


def _apply_linked(
    link: LinkedRecord,
    values: dict[str, Any],
    leave_fields: frozenset[str],
    nmbrs_names: Mapping[str, str] = MappingProxyType({}),
) -> Plan:
    """`nmbrs_names`: the names of the incoming reference values, by field (ownership.reference_names)."""
    changed = differing_fields(link.local, values)
    drifts = detect_drift(link.synced, link.local, values)
    actions: list[Action] = []
    # A record present in Nmbrs is active in RegiTijd: one removed and back with the same values has nothing
    # to write but its activation.
    reactivate = link.regitijd_id is not None and not link.active
    if changed or link.regitijd_id is None or link.synced != values or reactivate:
        since_synced = differing_fields(link.synced, values) if link.synced is not None else ()
        actions.append(
            Apply(
                crm_id=link.crm_id,
                regitijd_id=link.regitijd_id,
                values=values,
                changed=changed,
                since_synced=since_synced,
                reactivate=reactivate,
            )
        )
    leave_changed = tuple(sorted(set(changed) & leave_fields))
    if leave_changed or (link.regitijd_id is None and leave_fields):
        actions.append(RecalculateLeave(fields=leave_changed or tuple(sorted(leave_fields))))
    reason = f"Nmbrs-owned fields applied ({', '.join(changed)})" if changed else "already up to date"
    if reactivate:
        reason = "back in Nmbrs: reactivated in RegiTijd" + (f"; {reason}" if changed else "")
    applied = PlannedOutcome(
        kind=OutcomeKind.APPLIED,
        reason=reason,
        details={"changed_fields": list(changed), **({"reactivated": True} if reactivate else {})},
    )
    drift = _drift_outcomes(drifts, link.local_names, nmbrs_names)
    return Plan(situation="linked", actions=tuple(actions), outcomes=(applied, *drift))


def _removed(state: RecordState, what: str) -> Plan:
    actions: list[Action] = []
    if state.pending_version is not None:
        actions.append(ClearPending())
    if state.link is not None and state.link.regitijd_id is not None:
        actions.append(Deactivate(regitijd_id=state.link.regitijd_id, reason=f"{what} removed from Nmbrs"))
    reason = f"{what} removed from Nmbrs: " + (
        "deactivated in RegiTijd, nothing deleted" if state.link else "open question withdrawn"
    )
    return Plan(
        situation="removed",
        actions=tuple(actions),
        outcomes=(PlannedOutcome(kind=OutcomeKind.APPLIED, reason=reason),),
    )


def _blocked(what: str) -> Plan:
    return Plan(
        situation="blocked",
        outcomes=(PlannedOutcome(kind=OutcomeKind.BLOCKED, reason=f"{what} is blocked (Blokkeren): ignored"),),
    )


def _stale(version: int, state: RecordState, what: str) -> Plan | None:
    """A plan ignoring the change when a newer version of its record was already written or asked about."""
    seen = [v for v in (state.applied_version, state.pending_version) if v is not None]
    if not seen or version >= max(seen):
        return None
    return Plan(
        situation="ignored",
        outcomes=(
            PlannedOutcome(
                kind=OutcomeKind.STALE,
                reason=f"{what} version {version} is older than version {max(seen)} already handled: ignored",
                details={"version": version, "handled_version": max(seen)},
            ),
        ),
    )


def reconcile_employee(
    event: EmployeeChanged, state: RecordState, candidates: Sequence[PersonCandidate], policy: MatchPolicy
) -> Plan:
    """Decide what one employee change means for RegiCRM/RegiTijd."""
    if state.blocked:
        return _blocked(f"Nmbrs employee {event.nmbrs_id}")
    if stale := _stale(event.version, state, f"Nmbrs employee {event.nmbrs_id}"):
        return stale
    if event.op is Op.DELETE or event.after is None:
        return _removed(state, f"Nmbrs employee {event.nmbrs_id}")
    employee = event.after
    values = employee_values(employee)
    if state.link is not None:
        plan = _apply_linked(state.link, values, LEAVE_FIELDS, reference_names(employee))
        if employee.bsn_hash == state.link.bsn_hash:
            return plan
        # A BSN corrected in Nmbrs: a stale hash on the link would pull the BSN's real owner onto this person.
        return plan.model_copy(update={"actions": (*plan.actions, RecordBsnHash(bsn_hash=employee.bsn_hash))})
    decision = decide_match(employee, candidates, policy, state.linked_persons_for_bsn)
    if isinstance(decision, AutoLink):
        return _auto_link(
            state,
            values,
            LEAVE_FIELDS,
            decision.person_id,
            decision.reason,
            {"person_id": decision.person_id, "rule": decision.rule},
        )
    return _ask(
        event.version,
        decision.situation,
        decision.candidates,
        decision.reason,
        [c.person_id for c in decision.candidates],
    )


def reconcile_company(
    event: CompanyChanged,
    state: RecordState,
    candidates: Sequence[OrganisationCandidate],
    policy: MatchPolicy,
) -> Plan:
    """Companies follow the employee rules: link to a RegiCRM organisation, or ask (Koppelen/Aanmaken)."""
    if state.blocked:
        return _blocked(f"Nmbrs company {event.nmbrs_id}")
    if stale := _stale(event.version, state, f"Nmbrs company {event.nmbrs_id}"):
        return stale
    if event.op is Op.DELETE or event.after is None:
        return _removed(state, f"Nmbrs company {event.nmbrs_id}")
    values = company_values(event.after)
    if state.link is not None:
        return _apply_linked(state.link, values, frozenset())
    decision = decide_organisation_match(event.after, candidates, policy)
    if isinstance(decision, OrganisationAutoLink):
        organisation = next(c for c in candidates if c.organisation_id == decision.organisation_id)
        adopt = company_to_adopt(event.after.name, organisation.unlinked_companies)
        details: dict[str, Any] = {"organisation_id": decision.organisation_id, "rule": decision.rule}
        if adopt is not None:
            details["regitijd_id"] = adopt.company_id
        return _auto_link(
            state,
            values,
            frozenset(),
            decision.organisation_id,
            decision.reason + (adopted_note(adopt) if adopt else ""),
            details,
            regitijd_id=adopt.company_id if adopt else None,
        )
    return _ask(
        event.version,
        decision.situation,
        decision.candidates,
        decision.reason,
        [c.organisation_id for c in decision.candidates],
    )


def _auto_link(
    state: RecordState,
    values: dict[str, Any],
    leave_fields: frozenset[str],
    crm_id: int,
    reason: str,
    details: dict[str, Any],
    regitijd_id: int | None = None,
) -> Plan:
    """Link without asking, then write the record as for any linked one (creating the RegiTijd side, or taking
    over `regitijd_id`: see company_to_adopt)."""
    link = LinkedRecord(crm_id=crm_id, regitijd_id=regitijd_id, local={}, synced=None)
    applied = _apply_linked(link, values, leave_fields)
    actions: list[Action] = [Link(crm_id=crm_id, linked_by="auto", reason=reason)]
    if state.pending_version is not None:
        actions.append(ClearPending())
    outcome = PlannedOutcome(kind=OutcomeKind.AUTO_LINKED, reason=reason, details=details)
    return Plan(situation="auto_linked", actions=(*actions, *applied.actions), outcomes=(outcome,))


def company_to_adopt(name: str, unlinked: Sequence[RegiTijdCompany]) -> RegiTijdCompany | None:
    """The RegiTijd company an Nmbrs company linked to an organisation takes over, rather than getting a second one
    of the same name beside it: of the organisation's companies no Nmbrs company has, the one of the same name,
    else the oldest (the one `target load` gives the organisation's blue employees)."""
    same = [c for c in unlinked if c.name.strip().casefold() == name.strip().casefold()]
    return min(same or unlinked, key=lambda c: c.company_id, default=None)


def adopted_note(company: RegiTijdCompany) -> str:
    """What a link that took over `company` adds to its outcome."""
    return (
        f"; the organisation's existing RegiTijd company {company.company_id} ({company.name}) is linked to it, "
        "no second one created"
    )


def _ask(
    version: int,
    situation: Literal["unmatched", "disputed"],
    candidates: tuple[ScoredCandidate, ...] | tuple[ScoredOrganisation, ...],
    reason: str,
    candidate_ids: list[int],
) -> Plan:
    """Store the question (replacing an older version) and tell the frontends."""
    pending = SavePending(situation=situation, version=version, candidates=candidates, reason=reason)
    outcome = PlannedOutcome(
        kind=OutcomeKind.NEEDS_DECISION,
        reason=reason,
        details={"situation": situation, "version": version, "candidates": candidate_ids},
    )
    return Plan(situation="needs_decision", actions=(pending,), outcomes=(outcome,))


def reconcile_reference(event: ReferenceChanged) -> Plan:
    """Departments, functions and CAOs are created, updated or deactivated without asking."""
    record = event.after or event.before
    assert record is not None  # guaranteed by the event's shape validation
    what = f"{record.kind.replace('_', ' ')} {record.description!r}"
    active = event.op is not Op.DELETE
    upsert = UpsertReference(
        kind=record.kind, nmbrs_id=record.id, code=record.code, description=record.description, active=active
    )
    reason = f"{what} up to date" if active else f"{what} no longer used in Nmbrs: inactive"
    return Plan(
        situation="linked" if active else "removed",
        actions=(upsert,),
        outcomes=(PlannedOutcome(kind=OutcomeKind.APPLIED, reason=reason),),
    )
