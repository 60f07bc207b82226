"""What the HR CLI prints, from query results and outcomes alone: status, lists, what was posted and caused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from worker.adapters.crm_search import OrganisationHit, PersonHit, SearchResult
from worker.adapters.hr_queries import BlockView, DecisionView, EmployeeTasks
from worker.domain.decisions import Decision, DecisionAction, DecisionFilter
from worker.domain.events import OutcomeKind, outcome_for
from worker.domain.status import StepStatus, judge
from worker.entrypoints.hr_views import (
    age,
    confirm_hint,
    describe,
    render_blocked,
    render_decisions,
    render_outcomes,
    render_search,
    render_status,
    render_tasks,
)

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)


def step(name: str, status: str, **counts: int) -> StepStatus:
    reasons = (f"{counts.get('pending', 0)} waiting for a decision",) if status == "red" else ()
    return StepStatus.model_validate(
        {"step": name, "status": status, "counts": counts, "reasons": reasons, "updated_at": NOW}
    )


def decision(**fields: object) -> Decision:
    data: dict[str, object] = {
        "decision_id": uuid.uuid4(),
        "action": DecisionAction.OVERSLAAN,
        "nmbrs_id": 101,
        "decided_by": "hr",
        "decided_at": NOW,
    }
    return Decision.model_validate({**data, **fields}, strict=False)


@pytest.mark.parametrize(
    ("seconds", "shown"), [(59, "0m"), (3599, "59m"), (3600, "1h"), (47 * 3600, "47h"), (48 * 3600, "2d")]
)
def test_ages_are_minutes_then_hours_up_to_two_days_then_days(seconds: float, shown: str) -> None:
    assert age(seconds) == shown


def test_status_names_the_red_steps_with_their_counts_and_the_open_tasks() -> None:
    text = render_status([step("employees", "red", pending=3, linked=2), step("departments", "green")], 2)
    lines = text.splitlines()
    assert lines[0].split() == ["step", "status", "counts", "reasons"]
    employees = next(line for line in lines if line.startswith("employees"))
    assert employees.split()[1] == "red" and "pending=3 linked=2" in employees and "waiting for a decision" in employees
    assert "red: employees (see 'nmbrs-sync pending')" in lines
    assert lines[-1] == "2 employee(s) with open follow-up tasks (see 'nmbrs-sync tasks')"


def test_status_all_green_and_no_tasks_says_so_and_nothing_more() -> None:
    assert render_status([step("employees", "green", linked=2)], 0).splitlines()[-2:] == ["", "all steps green"]


def test_a_decision_is_described_with_its_dutch_name_target_and_version() -> None:
    link = decision(action=DecisionAction.KOPPELEN, target_id=12, version=3)
    assert describe(link) == "Koppelen: employee:101 -> person 12 (version 3)"
    company = decision(action=DecisionAction.KOPPELEN, entity="company", nmbrs_id=4, target_id=9)
    assert describe(company) == "Koppelen: company:4 -> organisation 9"
    undone = uuid.uuid4()
    undo = decision(action=DecisionAction.ONGEDAAN_MAKEN, undo_decision_id=undone, undo_all_records=True)
    assert describe(undo) == f"Ongedaan maken: employee:101 (undo {undone}, every record)"


def test_a_bulk_decision_is_described_by_its_filter() -> None:
    bulk = decision(
        action=DecisionAction.AANMAKEN,
        nmbrs_id=None,
        preview=True,
        filter=DecisionFilter(company_id=4, situation="unmatched", max_best_score=0.2),
    )
    assert describe(bulk) == (
        "Aanmaken: every open employee question of company 4, situation unmatched, best score <= 0.2 (preview)"
    )


def test_the_confirm_hint_repeats_the_filter_of_the_preview() -> None:
    preview = decision(
        action=DecisionAction.BLOKKEREN,
        nmbrs_id=None,
        preview=True,
        filter=DecisionFilter(company_id=4, max_best_score=0.3),
    )
    assert confirm_hint(preview) == (
        "to answer exactly these: nmbrs-sync decide blokkeren --company-filter 4 --max-best-score 0.3 "
        f"--confirm {preview.decision_id}"
    )


def test_outcomes_are_one_line_each_with_the_records_a_preview_would_answer() -> None:
    cause = uuid.uuid4()
    text = render_outcomes(
        [
            outcome_for(
                cause,
                OutcomeKind.PREVIEW,
                "bulk",
                NOW,
                "would aanmaken 2",
                {"records": ["employee:401", "employee:402"]},
            ),
            outcome_for(cause, OutcomeKind.LEAVE_RECALCULATED, "employee:401", NOW),
        ]
    )
    assert text.splitlines() == [
        "preview: would aanmaken 2",
        "  employee:401",
        "  employee:402",
        "leave_recalculated: employee:401",
    ]


def test_search_lists_persons_and_organisations_with_how_to_link_them() -> None:
    result = SearchResult(
        text="zon",
        persons=(
            PersonHit(
                person_id=7,
                name="Anna van der Berg",
                email_private="anna@thuis.nl",
                username="anna",
                has_login_account=True,
                is_blue_employee=False,
                linked_nmbrs_employee_ids=(101,),
            ),
        ),
        organisations=(OrganisationHit(organisation_id=3, name="Bakkerij De Zon B.V.", linked_nmbrs_company_ids=()),),
        more_persons=True,
    )
    text = render_search(result)
    assert text.splitlines()[0] == "persons (1, more match: add a first name, birthday or e-mail)"
    anna = next(line for line in text.splitlines() if line.startswith("7 "))
    assert "anna@thuis.nl" in anna and "has_login_account" in anna and "employee:101" in anna
    assert "organisations (1)" in text and "--organisation ORGANISATION" in text
    assert render_search(SearchResult(text="xyz", persons=(), organisations=())) == "nothing found for 'xyz'"


def test_tasks_explain_only_the_tasks_listed() -> None:
    tasks = EmployeeTasks(employee_id=5, nmbrs_employee_id=120, person_id=9, name="Kees Jansen", tasks=("manager",))
    text = render_tasks([tasks], None)
    assert "Kees Jansen" in text and text.splitlines()[-1].startswith("manager: ")
    assert sum(":" in line for line in text.splitlines()) == 1


@pytest.mark.parametrize(
    ("employee", "said"),
    [
        (None, "any active Nmbrs employee"),
        (("nmbrs", 120), "Nmbrs employee 120 (or it is not"),
        (("regitijd", 5), "RegiTijd employee 5 (or it is not"),
    ],
)
def test_no_open_tasks_names_whom_it_looked_for(employee: tuple[str, int] | None, said: str) -> None:
    assert said in render_tasks([], employee)


def test_decisions_and_blocks_list_their_ids_and_say_when_there_are_none() -> None:
    made = DecisionView(
        decision_id="d-1",
        decided_at=NOW,
        decided_by="hr",
        action="blokkeren",
        record="employee:1",
        result="applied",
        undone_by="d-2",
    )
    row = render_decisions([made]).splitlines()[2].split()
    assert row[:3] == ["d-1", "2026-11-28", "09:00"] and row[-2:] == ["yes", "-"]
    assert render_decisions([]) == "no decisions yet"
    block = BlockView(record="employee:1", name=None, blocked_at=NOW, blocked_by="hr")
    text = render_blocked([block])
    assert text.splitlines()[2].split() == ["employee:1", "-", "2026-11-28", "hr", "-"]
    assert "nmbrs-sync decide ontblokkeren RECORD" in text
    assert render_blocked([]) == "no blocked records"


def test_status_of_a_held_poll_shows_the_holds_counts_in_the_counts_column() -> None:
    reason = "6 of 28 employees fewer fetched than last time (more than 10%)"
    held = judge("poll", {"polls": 1}, NOW, (reason,), {"previous": 28, "fetched": 22, "dropped": 6})
    (poll,) = [line for line in render_status([held], 0).splitlines() if line.startswith("poll")]
    assert poll.split(None, 2)[2] == f"polls=1 previous=28 fetched=22 dropped=6  {reason}"
