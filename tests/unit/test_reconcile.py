"""Reconciliation decisions and field ownership, without I/O."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from tests.builders import HASH_ANNA, NOW, company_change, department_change, employee_change, nmbrs_employee
from worker.domain.changes import ChangeSource, EmployeeChanged, Op
from worker.domain.events import OutcomeKind
from worker.domain.matching import MatchPolicy
from worker.domain.naamstelling import NameUsage
from worker.domain.nmbrs_records import (
    ContractPeriod,
    EmploymentPeriod,
    NmbrsEmployee,
)
from worker.domain.organisation_matching import OrganisationCandidate, RegiTijdCompany
from worker.domain.ownership import (
    LOCAL_EMPLOYEE_FIELDS,
    NMBRS_OWNED_EMPLOYEE_FIELDS,
    company_values,
    detect_drift,
    employee_values,
    hours_text,
)
from worker.domain.person_scoring import PersonCandidate
from worker.domain.reconcile import (
    Apply,
    ClearPending,
    Deactivate,
    Link,
    LinkedRecord,
    RecalculateLeave,
    RecordBsnHash,
    RecordState,
    SavePending,
    UpsertReference,
    reconcile_company,
    reconcile_employee,
    reconcile_reference,
)

SOURCE = ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW)
POLICY = MatchPolicy()


def change(after: NmbrsEmployee | None, op: Op = Op.UPDATE, before: NmbrsEmployee | None = None) -> EmployeeChanged:
    before = before or (nmbrs_employee() if op in (Op.UPDATE, Op.DELETE) else None)
    return employee_change(after, op, before, version=3)


def linked(
    local: dict[str, object] | None = None,
    synced: dict[str, object] | None = None,
    local_names: dict[str, str] | None = None,
) -> RecordState:
    values = employee_values(nmbrs_employee())
    return RecordState(
        link=LinkedRecord(
            crm_id=11,
            regitijd_id=21,
            local=local or values,
            synced=synced if synced is not None else values,
            bsn_hash=HASH_ANNA,
            local_names=local_names or {},
        )
    )


def test_a_bsn_corrected_in_nmbrs_updates_the_link_hash() -> None:
    corrected = nmbrs_employee(bsn_hash="cd" * 32)
    plan = reconcile_employee(change(corrected, op=Op.UPDATE), linked(), [], POLICY)
    assert plan.actions[-1] == RecordBsnHash(bsn_hash="cd" * 32)
    unchanged = reconcile_employee(change(nmbrs_employee(), op=Op.UPDATE), linked(), [], POLICY)
    assert not [a for a in unchanged.actions if isinstance(a, RecordBsnHash)]


def test_a_change_older_than_the_version_handled_is_ignored() -> None:
    state = linked().model_copy(update={"applied_version": 6})
    old = change(nmbrs_employee(last_name="Oud"))  # version 1
    plan = reconcile_employee(old.model_copy(update={"version": 5}), state, [], POLICY)
    assert plan.situation == "ignored" and plan.actions == ()
    assert plan.outcomes[0].kind is OutcomeKind.STALE and "older than version 6" in plan.outcomes[0].reason
    # The same version again (a full reconciliation's read) is handled: it repairs drift.
    assert reconcile_employee(old.model_copy(update={"version": 6}), state, [], POLICY).situation == "linked"
    asked = RecordState(pending_version=3)
    assert reconcile_employee(old.model_copy(update={"version": 2}), asked, [], POLICY).situation == "ignored"


def person(person_id: int, **fields: object) -> PersonCandidate:
    return PersonCandidate.model_validate({"person_id": person_id, **fields})


def test_linked_employee_gets_the_changed_nmbrs_fields_applied() -> None:
    plan = reconcile_employee(change(nmbrs_employee(last_name="Bergh")), linked(), [], POLICY)
    assert plan.situation == "linked"
    (apply,) = [a for a in plan.actions if isinstance(a, Apply)]
    assert apply.changed == ("last_name",) and apply.values["last_name"] == "Bergh"
    assert [o.kind for o in plan.outcomes] == [OutcomeKind.APPLIED]


def test_payroll_owned_field_edited_locally_is_overwritten_and_reported_as_drift() -> None:
    synced = employee_values(nmbrs_employee())
    local = {**synced, "function_id": 99}  # someone changed the function in RegiTijd
    plan = reconcile_employee(change(nmbrs_employee(), op=Op.READ), linked(local=local, synced=synced), [], POLICY)
    (apply,) = [a for a in plan.actions if isinstance(a, Apply)]
    assert apply.values["function_id"] == 5
    (drift,) = [o for o in plan.outcomes if o.kind is OutcomeKind.DRIFT]
    assert drift.details == {"field": "function_id", "local_value": 99, "nmbrs_value": 5, "nmbrs_name": "Bakker"}


def test_drift_of_a_department_or_function_names_it_and_keeps_the_ids_in_the_details() -> None:
    synced = employee_values(nmbrs_employee())
    named = linked({**synced, "department_id": 2, "function_id": 9}, synced, {"department_id": "Verkoop"})
    plan = reconcile_employee(change(nmbrs_employee(), op=Op.READ), named, [], POLICY)
    function, department = (o for o in plan.outcomes if o.kind is OutcomeKind.DRIFT)
    assert department.reason == (
        "department was edited locally ('Verkoop'); Nmbrs owns it and its value 'Productie' was written back"
    )
    assert department.details == {
        "field": "department_id",
        "local_value": 2,
        "nmbrs_value": 7,
        "local_name": "Verkoop",
        "nmbrs_name": "Productie",
    }
    # A local id the store has no name for is shown as it is.
    assert function.reason == "function was edited locally (9); Nmbrs owns it and its value 'Bakker' was written back"


def test_drift_of_another_field_shows_its_values() -> None:
    synced = employee_values(nmbrs_employee())
    plan = reconcile_employee(
        change(nmbrs_employee(), op=Op.READ), linked(local={**synced, "number": "X9"}, synced=synced), [], POLICY
    )
    (drift,) = [o for o in plan.outcomes if o.kind is OutcomeKind.DRIFT]
    assert (
        drift.reason
        == f"number was edited locally ('X9'); Nmbrs owns it and its value {synced['number']!r} was written back"
    )


def test_an_unchanged_linked_employee_plans_no_write() -> None:
    plan = reconcile_employee(change(nmbrs_employee(), op=Op.READ), linked(), [], POLICY)
    assert plan.actions == () and plan.outcomes[0].reason == "already up to date"


def test_contract_hours_change_triggers_leave_recalculation() -> None:
    more_hours = (ContractPeriod(contract_id=1, start=date(2020, 1, 1), hours_per_week=Decimal("36")),)
    plan = reconcile_employee(change(nmbrs_employee(contracts=more_hours)), linked(), [], POLICY)
    assert RecalculateLeave(fields=("contracts",)) in plan.actions


def test_a_marriage_in_nmbrs_is_an_ordinary_name_change_of_a_linked_employee_never_a_question() -> None:
    married = nmbrs_employee(partner_prefix="de", partner_last_name="Groot", name_usage=NameUsage.PARTNER_THEN_OWN)
    plan = reconcile_employee(change(married), linked(), [], POLICY)
    assert plan.situation == "linked" and not [a for a in plan.actions if isinstance(a, SavePending)]
    (apply,) = [a for a in plan.actions if isinstance(a, Apply)]
    # The card follows the naamstelling: partner's name (with its own tussenvoegsel) then the own one.
    assert apply.changed == ("last_name", "prefix")
    assert (apply.values["prefix"], apply.values["last_name"]) == ("de", "Groot-van der Berg")
    # A divorce back to the own name is the same kind of change.
    divorced = reconcile_employee(change(nmbrs_employee(), before=married), linked(synced=apply.values), [], POLICY)
    (back,) = [a for a in divorced.actions if isinstance(a, Apply)]
    assert (back.values["prefix"], back.values["last_name"]) == ("van der", "Berg")


def test_a_name_change_does_not_recalculate_leave() -> None:
    plan = reconcile_employee(change(nmbrs_employee(last_name="Bergh")), linked(), [], POLICY)
    assert not [a for a in plan.actions if isinstance(a, RecalculateLeave)]


def test_a_leaver_gets_an_end_date_and_nothing_is_deleted() -> None:
    ended = (EmploymentPeriod(employment_id=1, start=date(2020, 1, 1), end=date(2026, 12, 31)),)
    plan = reconcile_employee(change(nmbrs_employee(employments=ended)), linked(), [], POLICY)
    (apply,) = [a for a in plan.actions if isinstance(a, Apply)]
    assert apply.values["employment_end"] == "2026-12-31"
    assert not [a for a in plan.actions if isinstance(a, Deactivate)]


def test_removal_from_nmbrs_deactivates_the_linked_employee() -> None:
    plan = reconcile_employee(change(None, op=Op.DELETE), linked(), [], POLICY)
    assert plan.situation == "removed" and plan.actions == (
        Deactivate(regitijd_id=21, reason="Nmbrs employee 101 removed from Nmbrs"),
    )


def test_what_a_change_does_names_the_record_by_its_nmbrs_id() -> None:
    gone = reconcile_employee(change(None, op=Op.DELETE), linked(), [], POLICY)
    assert gone.outcomes[0].reason == "Nmbrs employee 101 removed from Nmbrs: deactivated in RegiTijd, nothing deleted"
    blocked = reconcile_employee(change(nmbrs_employee()), RecordState(blocked=True), [], POLICY)
    assert blocked.outcomes[0].reason == "Nmbrs employee 101 is blocked (Blokkeren): ignored"
    company = reconcile_company(company_change(), RecordState(blocked=True), [], POLICY)
    assert company.outcomes[0].reason == "Nmbrs company 1 is blocked (Blokkeren): ignored"


def removed(state: RecordState) -> RecordState:
    """`state` after its removal from Nmbrs deactivated the RegiTijd record (values as they were)."""
    assert state.link is not None
    return state.model_copy(update={"link": state.link.model_copy(update={"active": False})})


def test_a_removed_employee_back_with_the_same_values_is_reactivated() -> None:
    plan = reconcile_employee(change(nmbrs_employee(), op=Op.CREATE), removed(linked()), [], POLICY)
    # Nothing to write but the activation: only an Apply, so the batch writes it set-based.
    (apply,) = plan.actions
    assert isinstance(apply, Apply) and apply.reactivate and apply.regitijd_id == 21 and apply.changed == ()
    assert plan.outcomes[0].reason == "back in Nmbrs: reactivated in RegiTijd"
    assert plan.outcomes[0].details == {"changed_fields": [], "reactivated": True}


def test_a_removed_employee_back_with_other_values_is_reactivated_with_them() -> None:
    ended = (EmploymentPeriod(employment_id=1, start=date(2026, 1, 1), end=date(2026, 12, 31)),)
    corrected = nmbrs_employee(employments=ended, bsn_hash="cd" * 32)
    plan = reconcile_employee(change(corrected, op=Op.CREATE), removed(linked()), [], POLICY)
    (apply,) = [a for a in plan.actions if isinstance(a, Apply)]
    # An ended employment is written as for any present employee: active, with its end date.
    assert apply.reactivate and apply.values["employment_end"] == "2026-12-31"
    assert "employment_end" in apply.changed and RecordBsnHash(bsn_hash="cd" * 32) in plan.actions
    assert plan.outcomes[0].reason.startswith("back in Nmbrs: reactivated in RegiTijd; Nmbrs-owned fields applied")


def test_an_active_employee_is_not_reactivated_and_a_removed_one_only_when_back() -> None:
    plan = reconcile_employee(change(nmbrs_employee(last_name="Bergh")), linked(), [], POLICY)
    assert not [a for a in plan.actions if isinstance(a, Apply) and a.reactivate]
    again = reconcile_employee(change(None, op=Op.DELETE), removed(linked()), [], POLICY)
    assert again.actions == (Deactivate(regitijd_id=21, reason="Nmbrs employee 101 removed from Nmbrs"),)


def test_a_removed_company_back_with_the_same_values_is_reactivated() -> None:
    event = company_change()
    assert event.after is not None
    values = company_values(event.after)
    state = RecordState(link=LinkedRecord(crm_id=1, regitijd_id=2, local=values, synced=values, active=False))
    (apply,) = reconcile_company(event, state, [], POLICY).actions
    assert isinstance(apply, Apply) and apply.reactivate and apply.changed == ()


def test_blocked_employee_is_ignored() -> None:
    plan = reconcile_employee(
        change(nmbrs_employee()), RecordState(blocked=True), [person(1, last_name="Berg")], POLICY
    )
    assert plan.situation == "blocked" and plan.actions == ()
    assert plan.outcomes[0].kind is OutcomeKind.BLOCKED


def test_second_employment_of_a_linked_human_is_linked_automatically_with_the_reason() -> None:
    state = RecordState(linked_persons_for_bsn=(11,))
    candidate = person(11, last_name="Berg", prefix="van der", bsn_hash="ab" * 32, linked_nmbrs_employee_ids=(6,))
    plan = reconcile_employee(change(nmbrs_employee(), op=Op.CREATE), state, [candidate], POLICY)
    assert plan.situation == "auto_linked"
    link = plan.actions[0]
    assert isinstance(link, Link) and link.crm_id == 11 and "BSN" in link.reason
    apply = next(a for a in plan.actions if isinstance(a, Apply))
    assert apply.regitijd_id is None and apply.crm_id == 11  # a new RegiTijd employee for the same person
    assert plan.outcomes[0].kind is OutcomeKind.AUTO_LINKED


def test_fuzzy_matches_ask_a_human_with_scored_candidates() -> None:
    candidates = [
        person(1, first_name="Anna", prefix="van der", last_name="Berg", birthday=date(1980, 4, 2)),
        person(2, first_name="Anne", last_name="Bergen"),
    ]
    plan = reconcile_employee(change(nmbrs_employee(), op=Op.CREATE), RecordState(), candidates, POLICY)
    assert plan.situation == "needs_decision"
    (pending,) = plan.actions
    assert isinstance(pending, SavePending) and pending.situation == "disputed" and pending.version == 3
    assert pending.candidates[0].person_id == 1 and pending.candidates[0].comparisons
    assert plan.outcomes[0].details["candidates"][0] == 1


def test_no_candidate_is_an_unmatched_question() -> None:
    plan = reconcile_employee(change(nmbrs_employee(), op=Op.CREATE), RecordState(), [], POLICY)
    assert isinstance(plan.actions[0], SavePending) and plan.actions[0].situation == "unmatched"


def test_a_removed_unlinked_employee_withdraws_its_question() -> None:
    plan = reconcile_employee(change(None, op=Op.DELETE), RecordState(pending_version=2), [], POLICY)
    assert plan.actions == (ClearPending(),)


def test_ownership_never_lists_a_local_field_as_nmbrs_owned() -> None:
    assert not set(NMBRS_OWNED_EMPLOYEE_FIELDS) & set(LOCAL_EMPLOYEE_FIELDS)
    assert set(employee_values(nmbrs_employee())) == set(NMBRS_OWNED_EMPLOYEE_FIELDS)


def test_hours_round_as_postgresql_stores_them() -> None:
    # A half rounded to even ('36.12') would differ from the stored 36.13 and look like a local edit.
    assert [hours_text(h) for h in ("36.125", "36.135", "-1.005", Decimal(40), None)] == [
        "36.13",
        "36.14",
        "-1.01",
        "40.00",
        None,
    ]


def test_drift_is_only_reported_for_fields_edited_since_the_last_sync() -> None:
    synced = {"last_name": "Berg", "email_work": "a@x.nl"}
    local = {"last_name": "Berg", "email_work": "typo@x.nl"}
    incoming = {"last_name": "Bergh", "email_work": "a@x.nl"}
    (drift,) = detect_drift(synced, local, incoming)
    assert drift.field == "email_work" and drift.local_value == "typo@x.nl"


def test_company_with_a_unique_kvk_match_is_linked_automatically() -> None:
    organisation = OrganisationCandidate(organisation_id=4, name="Bakkerij de Zon", kvk_number="88721495")
    plan = reconcile_company(company_change(), RecordState(), [organisation], POLICY)
    assert plan.situation == "auto_linked" and isinstance(plan.actions[0], Link) and plan.actions[0].crm_id == 4


def test_a_company_linked_automatically_takes_over_the_organisations_regitijd_company() -> None:
    organisation = OrganisationCandidate(
        organisation_id=4,
        name="Bakkerij de Zon",
        kvk_number="88721495",
        unlinked_companies=(RegiTijdCompany(company_id=8, name="Bakkerij de Zon"),),
    )
    plan = reconcile_company(company_change(), RecordState(), [organisation], POLICY)
    (apply,) = [a for a in plan.actions if isinstance(a, Apply)]
    assert apply.regitijd_id == 8 and plan.outcomes[0].details["regitijd_id"] == 8
    assert plan.outcomes[0].reason.endswith(
        "; the organisation's existing RegiTijd company 8 (Bakkerij de Zon) is linked to it, no second one created"
    )


def test_company_without_kvk_match_needs_a_decision() -> None:
    organisation = OrganisationCandidate(organisation_id=4, name="Bakkerij de Zon")
    plan = reconcile_company(company_change(), RecordState(), [organisation], POLICY)
    assert plan.situation == "needs_decision"


def test_reference_data_is_upserted_and_deactivated_when_gone() -> None:
    created, removed = department_change(Op.CREATE, 7, "ICT"), department_change(Op.DELETE, 7, "ICT")
    assert reconcile_reference(created).actions == (
        UpsertReference(kind="department", nmbrs_id=7, code="7", description="ICT", active=True),
    )
    assert reconcile_reference(removed).actions[0].active is False  # type: ignore[union-attr]
