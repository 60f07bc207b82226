"""The decision consumer's pure rules: rejections, the plan of a decision, bulk selection, undo, blue warning."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from tests.builders import HASH_ANNA, NOW, nmbrs_employee
from worker.domain.changes import CompanyChanged, EmployeeChanged, Op
from worker.domain.decisions import (
    BlockRecord,
    BlueEmployee,
    Decision,
    DecisionAction,
    DecisionFilter,
    LinkRecord,
    PendingRecord,
    Rejection,
    SkipQuestion,
    StoredDecision,
    UnblockRecord,
    UndoDecision,
    UndoPlan,
    link_plan,
    linked_reason,
    plan_decision,
    plan_undo,
    previewed_versions,
    re_ask_event,
    rejection,
    select_for_bulk,
)
from worker.domain.follow_ups import FollowUpCommand, FollowUpFacts, follow_up_rejection, follow_up_result
from worker.domain.nmbrs_records import NmbrsCompany
from worker.domain.organisation_matching import RegiTijdCompany
from worker.domain.reconcile import Apply, ClearPending, Link, LinkedRecord, RecalculateLeave, RecordState, StoredRecord

ANNA = nmbrs_employee().model_dump(mode="json")
OPEN = RecordState(pending_version=3, stored=StoredRecord(data=ANNA, version=3))
EARLIER = uuid.uuid4()


def decision(action: str, nmbrs_id: int | None = 101, **fields: Any) -> Decision:
    return Decision(
        decision_id=uuid.uuid4(), nmbrs_id=nmbrs_id, action=action, decided_by="hr.anja", decided_at=NOW, **fields
    )


def linked_to(crm_id: int, **state: Any) -> RecordState:
    return RecordState(link=LinkedRecord(crm_id=crm_id, regitijd_id=None, local={}, synced=None), **state)


# --- rejections ------------------------------------------------------------------------------------------


def test_a_record_nmbrs_never_sent_is_unknown_whatever_the_action() -> None:
    for action in ("koppelen", "blokkeren", "ontblokkeren", "ongedaan_maken"):
        extra = {"target_id": 7} if action == "koppelen" else {"undo_decision_id": EARLIER}
        reason = rejection(decision(action, **extra), RecordState(), target_exists=True)
        assert reason == "Nmbrs employee 101 is unknown: it never came from Nmbrs"


def test_a_linked_record_without_stored_data_is_known() -> None:
    assert rejection(decision("ongedaan_maken", undo_decision_id=EARLIER), linked_to(7), True) is None


def test_only_a_blocked_record_can_be_unblocked() -> None:
    assert rejection(decision("ontblokkeren"), OPEN, True) == "Nmbrs employee 101 is not blocked"
    assert rejection(decision("ontblokkeren"), OPEN.model_copy(update={"blocked": True}), True) is None


def test_a_blocked_record_takes_no_other_decision() -> None:
    blocked = OPEN.model_copy(update={"blocked": True})
    assert rejection(decision("overslaan"), blocked, True) == (
        "Nmbrs employee 101 is blocked; unblock it (ontblokkeren) first"
    )


def test_a_linked_record_must_be_undone_first() -> None:
    reason = rejection(decision("aanmaken"), linked_to(9, stored=OPEN.stored), True)
    assert reason == "Nmbrs employee 101 is already linked to person 9; undo that decision (ongedaan_maken) first"
    company = decision("koppelen", entity="company", target_id=4)
    assert "already linked to organisation 9" in (rejection(company, linked_to(9, stored=OPEN.stored), True) or "")


def test_a_record_without_an_open_question_takes_no_answer() -> None:
    known = RecordState(stored=StoredRecord(data=ANNA, version=2))
    assert rejection(decision("overslaan"), known, True) == "Nmbrs employee 101 has no open question"


def test_an_answer_to_an_older_version_of_the_question_is_stale() -> None:
    reason = rejection(decision("koppelen", target_id=7, version=2), OPEN, True)
    assert reason is not None and reason.startswith("stale: the question for Nmbrs employee 101 was version 2")
    assert "made it version 3" in reason
    assert rejection(decision("koppelen", target_id=7, version=3), OPEN, True) is None
    assert rejection(decision("koppelen", target_id=7), OPEN, True) is None  # no version: the current one


def test_koppelen_needs_an_existing_target() -> None:
    assert rejection(decision("koppelen", target_id=7), OPEN, False) == "person 7 does not exist in RegiCRM"
    assert rejection(decision("overslaan"), OPEN, False) is None  # only Koppelen has a target


def test_one_human_goes_to_the_person_its_other_employment_is_linked_to() -> None:
    same = OPEN.model_copy(update={"linked_persons_for_bsn": (11, 12)})
    reason = rejection(decision("koppelen", target_id=7), same, True)
    assert reason is not None and reason.startswith("the same human (BSN) is already linked to person 11 or person 12")
    assert rejection(decision("aanmaken"), same, True) == reason
    assert rejection(decision("koppelen", target_id=12), same, True) is None
    assert rejection(decision("blokkeren"), same, True) is None


# --- the plan of one decision ------------------------------------------------------------------------------


def test_koppelen_and_aanmaken_link_with_the_stored_data_at_its_version() -> None:
    link = plan_decision(decision("koppelen", target_id=7), OPEN, True)
    assert link == LinkRecord(crm_id=7, data=ANNA, version=3, reason="Koppelen by hr.anja")
    create = plan_decision(decision("create"), OPEN, True)
    assert create == LinkRecord(crm_id=None, data=ANNA, version=3, reason="Aanmaken by hr.anja")


def test_blokkeren_keeps_the_note_and_the_data_overslaan_and_ontblokkeren_the_record() -> None:
    assert plan_decision(decision("blokkeren", note="test"), OPEN, True) == BlockRecord(note="test", data=ANNA)
    assert plan_decision(decision("overslaan"), OPEN, True) == SkipQuestion()
    blocked = RecordState(blocked=True, stored=StoredRecord(data=ANNA, version=None))
    assert plan_decision(decision("ontblokkeren"), blocked, True) == UnblockRecord(data=ANNA)
    undo = plan_decision(decision("ongedaan_maken", undo_decision_id=EARLIER), OPEN, True)
    assert undo == UndoDecision()


def test_a_rejected_decision_plans_nothing() -> None:
    rejected = plan_decision(decision("koppelen", target_id=7), OPEN, False)
    assert rejected == Rejection("person 7 does not exist in RegiCRM")


def test_a_decided_link_writes_every_field_and_calculates_an_employees_leave() -> None:
    plan = link_plan(nmbrs_employee(), 7, "hr.anja", "Koppelen by hr.anja")
    link, clear, apply, leave = plan.actions
    assert link == Link(crm_id=7, linked_by="hr.anja", reason="Koppelen by hr.anja")
    assert clear == ClearPending()
    assert isinstance(apply, Apply) and apply.regitijd_id is None and apply.changed == tuple(sorted(apply.values))
    assert leave == RecalculateLeave(fields=("employment_start",))
    company = link_plan(NmbrsCompany(company_id=1, name="Zon"), 4, "hr.anja", "Aanmaken by hr.anja")
    assert [type(a) for a in company.actions] == [Link, ClearPending, Apply]


def test_a_record_asked_again_is_a_snapshot_read_with_an_id_of_its_own() -> None:
    event = re_ask_event("employee", 101, ANNA, 4, EARLIER, NOW)
    assert isinstance(event, EmployeeChanged) and event.op is Op.READ and event.version == 4
    assert event.key == "employee:101" and event.after == nmbrs_employee()
    assert re_ask_event("employee", 101, ANNA, 4, EARLIER, NOW).event_id == event.event_id
    assert re_ask_event("employee", 101, ANNA, 4, uuid.uuid4(), NOW).event_id != event.event_id
    company = re_ask_event("company", 1, {"company_id": 1, "name": "Zon"}, 1, EARLIER, NOW)
    assert isinstance(company, CompanyChanged) and company.key == "company:1"


# --- a company linked to an organisation that has a RegiTijd company -----------------------------------------

ZON = {"company_id": 1, "name": "Bakkerij de Zon"}
OPEN_COMPANY = RecordState(pending_version=2, stored=StoredRecord(data=ZON, version=2))


def test_koppelen_of_a_company_takes_over_the_organisations_regitijd_company_of_the_same_name() -> None:
    companies = [RegiTijdCompany(company_id=3, name="Oud"), RegiTijdCompany(company_id=8, name="bakkerij de zon ")]
    step = plan_decision(decision("koppelen", 1, entity="company", target_id=4), OPEN_COMPANY, True, companies)
    assert isinstance(step, LinkRecord) and step.adopt == RegiTijdCompany(company_id=8, name="bakkerij de zon ")


def test_koppelen_of_a_company_takes_over_the_oldest_when_no_name_agrees() -> None:
    companies = [RegiTijdCompany(company_id=8, name="Zon Noord"), RegiTijdCompany(company_id=3, name="Zon BV")]
    step = plan_decision(decision("koppelen", 1, entity="company", target_id=4), OPEN_COMPANY, True, companies)
    assert isinstance(step, LinkRecord) and step.adopt == RegiTijdCompany(company_id=3, name="Zon BV")


def test_a_company_link_creates_a_regitijd_company_only_when_the_organisation_has_none() -> None:
    step = plan_decision(decision("koppelen", 1, entity="company", target_id=4), OPEN_COMPANY, True, [])
    assert isinstance(step, LinkRecord) and step.adopt is None
    created = plan_decision(decision("aanmaken", 1, entity="company"), OPEN_COMPANY, True)
    assert isinstance(created, LinkRecord) and created.adopt is None


def test_a_company_link_that_takes_one_over_writes_that_one_and_says_so() -> None:
    plan = link_plan(NmbrsCompany(company_id=1, name="Zon"), 4, "hr.anja", "Koppelen by hr.anja", regitijd_id=8)
    (apply,) = [a for a in plan.actions if isinstance(a, Apply)]
    assert apply.regitijd_id == 8
    assert linked_reason("company", 4, [], RegiTijdCompany(company_id=8, name="Zon")) == (
        "linked to organisation 4; the organisation's existing RegiTijd company 8 (Zon) is linked to it, "
        "no second one created"
    )


def test_undoing_a_company_link_that_took_one_over_gives_it_back() -> None:
    effect = {"linked": {"1": ZON}, "crm_id": 4, "adopted_company": {"company_id": 8, "name": "Zon"}}
    plan = plan_undo(undo_of(1, entity="company"), applied(effect, 1, entity="company"), "company", 1)
    assert isinstance(plan, UndoPlan)
    assert plan.reversals[0].adopted_company == RegiTijdCompany(company_id=8, name="Zon")


# --- the blue-employee warning -----------------------------------------------------------------------------


def test_koppelen_to_a_person_with_blue_employees_warns_to_end_them_by_hand() -> None:
    reason = linked_reason(
        "employee", 7, [BlueEmployee(employee_id=31, company="Zon"), BlueEmployee(employee_id=32, company=None)]
    )
    assert reason == (
        "linked to person 7; warning: this person also has a manual (blue) RegiTijd employee 31 (Zon), "
        "32 (no company), which the sync leaves unchanged: if it is this same employment, end it by hand"
    )


def test_koppelen_without_blue_employees_does_not_warn() -> None:
    assert linked_reason("employee", 7, []) == "linked to person 7"
    assert linked_reason("company", 4, []) == "linked to organisation 4"


# --- bulk ------------------------------------------------------------------------------------------------


def pending(nmbrs_id: int, version: int = 1, human: tuple[int, ...] = ()) -> PendingRecord:
    return PendingRecord(
        nmbrs_id=nmbrs_id, version=version, bsn_hash=HASH_ANNA if human else None, human_ids=human or (nmbrs_id,)
    )


def ids(records: tuple[PendingRecord, ...]) -> list[int]:
    return [r.nmbrs_id for r in records]


def test_a_bulk_answers_every_question_found() -> None:
    found = [pending(1), pending(2, human=(2, 3)), pending(3, human=(2, 3))]
    selection = select_for_bulk("employee", DecisionAction.BLOKKEREN, found, None)
    assert ids(selection.selected) == [1, 2, 3] and selection.left_out == () and selection.changed == ()
    assert selection.note() == ""


def test_a_bulk_aanmaken_leaves_out_humans_with_open_employments_it_does_not_answer() -> None:
    # 2 has an employment (9) the filter does not find; 3 and 4 belong together and are both found.
    found = [pending(1), pending(2, human=(2, 9)), pending(3, human=(3, 4)), pending(4, human=(3, 4))]
    selection = select_for_bulk("employee", DecisionAction.AANMAKEN, found, None)
    assert ids(selection.selected) == [1, 3, 4]
    assert selection.left_out == ("employee:2",)
    assert selection.note() == (
        "; left out 1 whose human has other open employments the filter does not select: employee:2"
    )
    # Blokkeren answers one employment at a time: nothing is taken along, nothing left out.
    assert ids(select_for_bulk("employee", DecisionAction.BLOKKEREN, found, None).selected) == [1, 2, 3, 4]


def test_a_dropped_employment_drops_the_rest_of_its_human_until_nothing_more_drops() -> None:
    # The preview saw 5 at version 1; it is at 2 now: 5 is left out, so is 6 (its human), then 7 (6's).
    found = [pending(5, version=2, human=(5, 6)), pending(6, human=(5, 6, 7)), pending(7, human=(6, 7)), pending(8)]
    previewed = {"employee:5": 1, "employee:6": 1, "employee:7": 1, "employee:8": 1}
    selection = select_for_bulk("employee", DecisionAction.AANMAKEN, found, previewed)
    assert ids(selection.selected) == [8]
    assert selection.left_out == ("employee:6", "employee:7") and selection.changed == ("employee:5",)


def test_a_confirmed_preview_answers_only_what_it_listed_at_the_version_it_saw() -> None:
    found = [pending(1), pending(2), pending(10, version=2), pending(11)]  # 11 is new since the preview
    previewed = {"employee:1": 1, "employee:10": 1, "employee:2": 1, "employee:9": 1}  # 9 was answered since
    selection = select_for_bulk("employee", DecisionAction.OVERSLAAN, found, previewed)
    assert ids(selection.selected) == [1, 2]
    assert selection.changed == ("employee:9", "employee:10")  # by number, not as text
    assert selection.note() == "; left out 2 changed or answered since the preview: employee:9, employee:10"


BULK_FILTER = DecisionFilter(company_id=1, situation="unmatched")


def preview_row(**changes: Any) -> StoredDecision:
    effect = {"preview": ["employee:1"], "versions": {"employee:1": 1}, "filter": BULK_FILTER.model_dump(mode="json")}
    return StoredDecision.model_validate(
        {
            "entity": "employee",
            "nmbrs_id": None,
            "action": "aanmaken",
            "result": "previewed",
            "effect": effect,
            **changes,
        }
    )


def test_a_bulk_carries_out_the_versions_of_the_preview_it_confirms() -> None:
    confirm = decision("aanmaken", None, filter=BULK_FILTER, confirms=EARLIER)
    assert previewed_versions(confirm, preview_row(), carried_out=False) == {"employee:1": 1}


@pytest.mark.parametrize(
    ("preview", "carried_out", "reason"),
    [
        (None, False, "decision {} is not a preview"),
        (preview_row(result="applied"), False, "decision {} is not a preview"),
        (preview_row(action="blokkeren"), False, "preview {} was of another action or filter: preview this one again"),
        (
            preview_row(effect={"versions": {}, "filter": {"company_id": 2}}),
            False,
            "preview {} was of another action or filter: preview this one again",
        ),
        (preview_row(), True, "preview {} was carried out already: preview again"),
    ],
)
def test_a_bulk_refuses_to_confirm_what_is_no_such_preview(
    preview: StoredDecision | None, carried_out: bool, reason: str
) -> None:
    confirm = decision("aanmaken", None, filter=BULK_FILTER, confirms=EARLIER)
    assert previewed_versions(confirm, preview, carried_out) == Rejection(reason.format(EARLIER))


# --- undo ------------------------------------------------------------------------------------------------


def undo_of(nmbrs_id: int = 101, **fields: Any) -> Decision:
    return decision("ongedaan_maken", nmbrs_id, undo_decision_id=EARLIER, **fields)


def applied(effect: dict[str, Any], nmbrs_id: int | None = 101, **changes: Any) -> StoredDecision:
    return StoredDecision.model_validate(
        {
            "entity": "employee",
            "nmbrs_id": nmbrs_id,
            "action": "koppelen",
            "result": "applied",
            "effect": effect,
            **changes,
        }
    )


LINK = {"linked": {"101": ANNA, "205": ANNA}, "crm_id": 7, "card": {"before": {"last_name": "B"}, "after": {}}}


def test_undoing_a_link_takes_back_every_employment_linked_and_the_card() -> None:
    undo = undo_of()
    plan = plan_undo(undo, applied(LINK), "employee", 101)
    assert isinstance(plan, UndoPlan) and plan.whole
    (reversal,) = plan.reversals
    assert (reversal.entity, reversal.nmbrs_id, reversal.crm_id) == ("employee", 101, 7)
    assert list(reversal.linked) == ["101", "205"]
    assert reversal.card == LINK["card"] and not reversal.blocked and not reversal.skipped
    assert plan.effect == {**LINK, "undone_by": str(undo.decision_id)}


def test_an_employment_linked_along_is_undone_through_the_decision_that_linked_it() -> None:
    plan = plan_undo(undo_of(205), applied(LINK), "employee", 205)
    assert isinstance(plan, UndoPlan) and [r.nmbrs_id for r in plan.reversals] == [101]


@pytest.mark.parametrize(
    ("earlier", "nmbrs_id", "reason"),
    [
        (None, 101, "decision {} is unknown"),
        (applied(LINK, result="rejected"), 101, "decision {} was not applied or is already undone"),
        (applied(LINK, undone_by=uuid.uuid4()), 101, "decision {} was not applied or is already undone"),
        (applied(LINK), 102, "decision {} was not about employee 102"),
        (
            applied({"unblocked": True}, action="ontblokkeren"),
            101,
            "decision {} (ontblokkeren) cannot be undone; decide again",
        ),
    ],
)
def test_undo_refuses_what_it_cannot_take_back(earlier: StoredDecision | None, nmbrs_id: int, reason: str) -> None:
    assert plan_undo(undo_of(nmbrs_id), earlier, "employee", nmbrs_id) == Rejection(reason.format(EARLIER))


BULK = {
    "records": {"employee:1": {"blocked": True}, "employee:2": {"blocked": True}, "employee:3": {"skipped": True}},
}


def test_a_bulk_is_undone_record_by_record_and_marked_undone_when_nothing_is_left() -> None:
    first = undo_of(2)
    plan = plan_undo(first, applied(BULK, None, action="blokkeren"), "employee", 2)
    assert isinstance(plan, UndoPlan) and not plan.whole
    assert [(r.nmbrs_id, r.blocked) for r in plan.reversals] == [(2, True)]
    assert plan.effect["records"]["employee:2"] == {"blocked": True, "undone_by": str(first.decision_id)}
    assert "undone_by" not in plan.effect["records"]["employee:1"]
    # The rest of it, on request: the record undone before stays as it was.
    rest = undo_of(1, undo_all_records=True)
    after_first = applied(plan.effect, None, action="blokkeren")
    whole = plan_undo(rest, after_first, "employee", 1)
    assert isinstance(whole, UndoPlan) and whole.whole
    assert [(r.nmbrs_id, r.blocked, r.skipped) for r in whole.reversals] == [(1, True, False), (3, False, True)]
    assert whole.effect["records"]["employee:2"]["undone_by"] == str(first.decision_id)
    # And that record once more: nothing of it is left to undo.
    again = plan_undo(undo_of(2), after_first, "employee", 2)
    assert again == Rejection(f"employee:2 of decision {EARLIER} is already undone")


# --- follow-up commands ------------------------------------------------------------------------------------

FACTS = FollowUpFacts(employee_id=21, person_id=11, manager_exists=True, category_id=3, has_contract=True)


def command(name: str, **fields: Any) -> FollowUpCommand:
    return FollowUpCommand(
        command_id=uuid.uuid4(), employee_id=21, command=name, issued_by="hr", issued_at=NOW, **fields
    )


def test_follow_up_commands_are_rejected_with_their_reason() -> None:
    today = date(2026, 11, 28)
    assert follow_up_rejection(command("set_is_manager", is_manager=True), None, today) == (
        "RegiTijd employee 21 does not exist"
    )
    own = command("set_manager", manager_employee_id=21)
    assert follow_up_rejection(own, FACTS, today) == "an employee cannot be their own manager"
    stranger = command("set_manager", manager_employee_id=99)
    no_manager = FACTS.model_copy(update={"manager_exists": False})
    assert follow_up_rejection(stranger, no_manager, today) == "manager 99 is not a RegiTijd employee"
    link = command("link_time_category", time_category="REG")
    assert follow_up_rejection(link, FACTS.model_copy(update={"category_id": None}), today) == (
        "time-writing category 'REG' does not exist"
    )
    no_contract = FACTS.model_copy(update={"has_contract": False})
    assert follow_up_rejection(link, no_contract, today) == (
        "employee 21 has no active contract on 2026-11-28: an employee needs a contract to write time"
    )
    # Unlinking needs no contract; the other commands none of these facts.
    assert follow_up_rejection(command("unlink_time_category", time_category="REG"), no_contract, today) is None
    assert follow_up_rejection(stranger, FACTS, today) is None
    assert (
        follow_up_rejection(
            command("set_characteristic", characteristic="RegiPersoneel: Personeelslid"), no_manager, today
        )
        is None
    )


def test_an_applied_follow_up_command_says_what_it_did() -> None:
    assert follow_up_result(command("leave_adjustment", hours=-8, on=date(2026, 3, 1))) == (
        "leave adjustment of -8.0 h on 2026-03-01 booked"
    )
    assert follow_up_result(command("overtime_payout", hours=4, on=date(2026, 3, 1))) == (
        "overtime payout of 4.0 h on 2026-03-01 booked"
    )
    assert follow_up_result(command("unlink_time_category", time_category="REG")) == (
        "time-writing category 'REG' unlinked"
    )
    assert follow_up_result(command("set_manager", manager_employee_id=5)) == "manager set to employee 5"
