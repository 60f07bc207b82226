"""What the web app says: every text from the catalogue, outcomes in words, values as Dutch readers expect."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.domain.decisions import DecisionAction
from worker.domain.employee_history import HistoryKind
from worker.domain.events import CompanyFetch, Outcome, OutcomeKind, PollReport, outcome_for
from worker.domain.matching import Level
from worker.domain.status import StepStatus
from worker.domain.web_access import Role
from worker.entrypoints.web.catalogue import catalogue
from worker.entrypoints.web.presenting import (
    AnsweredBy,
    SyncStep,
    age_text,
    decision_result,
    shown,
    step_reasons,
    sync_steps,
)

WEB = Path(__file__).resolve().parents[2] / "worker" / "entrypoints" / "web"
NOW = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
t = catalogue()


def sources() -> list[Path]:
    return [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]


def test_every_literal_text_key_is_in_the_catalogue() -> None:
    used = {
        key for path in sources() for key in re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""", path.read_text())
    }
    assert used, "the pattern found no t(...) call: the test would pass whatever the templates say"
    assert sorted(used - set(t.texts)) == []


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("action", [a.value for a in DecisionAction]),
        ("situation", ["unmatched", "disputed"]),
        ("level", [level.value for level in Level]),
        ("role", [r.value for r in Role]),
        ("status", ["green", "red"]),
        ("poll", ["published", "held", "planned", "failed"]),
        ("entity", ["employee", "company"]),
        ("result", ["applied", "rejected", "previewed"]),
        ("history_kind", [k.value for k in HistoryKind]),
    ],
)
def test_every_value_a_template_names_by_prefix_has_a_text(prefix: str, values: list[str]) -> None:
    assert [v for v in values if f"{prefix}.{v}" not in t.texts] == []


def outcome(kind: OutcomeKind, subject: str = "employee:7", **details: object) -> Outcome:
    return outcome_for(uuid.uuid4(), kind, subject, NOW, "why", dict(details), part=str(details))


def test_an_applied_koppelen_names_both_sides_and_shows_the_leave_and_tasks() -> None:
    outcomes = [
        outcome(OutcomeKind.APPLIED),
        outcome(
            OutcomeKind.LEAVE_RECALCULATED,
            employee_id=3,
            before={"leave_total": "10.00"},
            after={"leave_total": "84.22", "statutory": "64.00", "extra": "20.22", "overtime": "0"},
        ),
        outcome(OutcomeKind.FOLLOW_UP, employee_id=3, tasks=["manager", "time_category"]),
    ]
    result = decision_result(outcomes, t, action="koppelen", subject="Anna de Jong", target="A. de Jong")
    assert result.status == "applied"
    assert result.message == "Anna de Jong is gekoppeld aan A. de Jong."
    (leave,) = result.leave
    assert (leave.total, leave.statutory, leave.before_total) == ("84.22", "64.00", "10.00")
    assert result.tasks == (t("task.manager"), t("task.time_category"))


def test_a_rejection_by_someone_who_answered_first_says_who() -> None:
    rejected = [outcome(OutcomeKind.REJECTED)]
    first = AnsweredBy("hanna", "aanmaken", datetime(2026, 12, 3, 14, 2, tzinfo=UTC))
    result = decision_result(rejected, t, first, action="koppelen")
    assert result.status == "rejected" and result.message.startswith("Al beantwoord door hanna (Aanmaken, 14:02)")
    assert result.reason == "why"
    assert decision_result(rejected, t, None).message == t("result.rejected")


def test_a_bulk_reports_its_own_outcome_not_the_first_record_and_a_preview_says_nothing_changed() -> None:
    records = ["employee:1", "employee:2", "employee:3"]
    applied = [
        outcome(OutcomeKind.APPLIED, "employee:1"),
        outcome(OutcomeKind.APPLIED, "bulk", records=records, action="overslaan"),
    ]
    assert decision_result(applied, t, action="overslaan").message == "Overslaan uitgevoerd voor 3 vragen."
    preview = [outcome(OutcomeKind.PREVIEW, "bulk", records=records)]
    assert "nog niets gewijzigd" in decision_result(preview, t, action="overslaan").message


def test_no_settling_outcome_yet_is_waiting() -> None:
    assert decision_result([outcome(OutcomeKind.LEAVE_RECALCULATED)], t).status == "waiting"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "zojuist"),
        (60, "1 minuut"),
        (61 * 5, "5 minuten"),
        (3 * 3600, "3 uur"),
        (86400, "1 dag"),
        (5 * 86400, "5 dagen"),
    ],
)
def test_ages(seconds: float, text: str) -> None:
    assert age_text(seconds, t) == text


def test_values_are_shown_day_first_and_coded_values_in_words() -> None:
    assert shown("birthday", "1987-09-30", t) == "30-09-1987"
    assert shown("gender", "female", t) == "vrouw"
    assert shown("last_name", None, t) == "–"
    assert shown("last_name", "Jong", t) == "Jong"


def test_step_reasons_come_from_the_counts_and_poll_reasons_as_they_are() -> None:
    red = StepStatus(step="employees", status="red", counts={"pending": 31}, reasons=("31 waiting",), updated_at=NOW)
    assert step_reasons(red, t) == [t("reason.pending", n=31)]
    poll = StepStatus(step="poll", status="red", counts={}, reasons=("company 3 failed",), updated_at=NOW)
    assert step_reasons(poll, t) == ["company 3 failed"]
    green = StepStatus(step="leave", status="green", counts={"not_calculated": 0}, updated_at=NOW)
    assert step_reasons(green, t) == []


# --- the steps of "sync this employee now" -------------------------------------------------------------------

ASKED_AT = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
CHANGE = uuid.uuid4()


def one_employee_report(result: str = "published", ok: bool = True, **fields: object) -> PollReport:
    values: dict[str, object] = {
        "poll_id": uuid.uuid4(),
        "full": False,
        "dry_run": False,
        "result": result,
        "status": "green" if ok else "red",
        "companies": (CompanyFetch(company_id=1, name="Zon B.V.", ok=ok, employees=20, soap_calls=13),),
        "employee_id": 101,
        "soap_calls": 14,
        "started_at": ASKED_AT,
        "finished_at": ASKED_AT,
    }
    return PollReport.model_validate(values | fields)


def states(steps: list[SyncStep]) -> list[tuple[str, str]]:
    return [(s.key, s.state) for s in steps]


def test_the_steps_wait_for_the_poll_and_then_for_the_reconciler() -> None:
    waiting = sync_steps("hanna", ASKED_AT, None, (), 0, t)
    assert states(waiting) == [("requested", "done"), ("fetched", "waiting")]
    assert "hanna" in waiting[0].lines[0] and "04-12-2026 10:30" in waiting[0].lines[0]  # Dutch time
    report = one_employee_report(changes={"employee:u": 1}, event_ids=(CHANGE,))
    processing = sync_steps("hanna", ASKED_AT, report, (), 0, t)
    assert states(processing)[-1] == ("processed", "waiting")
    assert processing[1].lines == ("Zon B.V.: 20 medewerkers gelezen met 14 aanroepen",)
    assert processing[2].lines[0].startswith("Gewijzigd in Nmbrs")
    applied = outcome_for(
        CHANGE, OutcomeKind.APPLIED, "employee:101", ASKED_AT, "x", {"changed_fields": ["function_id"]}
    )
    done = sync_steps("hanna", ASKED_AT, report, (applied,), 1, t)
    assert states(done)[-1] == ("processed", "done") and done[-1].lines == ("Bijgewerkt: Functie",)


def test_a_failed_fetch_stops_at_the_fetch_with_its_reason() -> None:
    report = one_employee_report("failed", ok=False, reasons=("company 1 (Zon B.V.) not fetched: 2004",))
    steps = sync_steps("hanna", ASKED_AT, report, (), 0, t)
    assert states(steps) == [("requested", "done"), ("fetched", "failed")]
    assert steps[-1].lines == ("company 1 (Zon B.V.) not fetched: 2004",)


def test_an_unchanged_employee_that_raises_a_question_links_to_it_and_leaves_reference_outcomes_out() -> None:
    report = one_employee_report(changes={"employee:r": 1, "function:r": 1}, event_ids=(CHANGE, uuid.uuid4()))
    asked = outcome_for(CHANGE, OutcomeKind.NEEDS_DECISION, "employee:101", ASKED_AT, "no match", {})
    reference = outcome_for(CHANGE, OutcomeKind.APPLIED, "function:5", ASKED_AT, "x", {"changed_fields": []})
    steps = sync_steps("hanna", ASKED_AT, report, (asked, reference), 2, t)
    assert steps[2].lines == ("Ongewijzigd in Nmbrs: opnieuw doorgegeven, zodat lokale afwijkingen worden hersteld",)
    assert steps[-1].question and steps[-1].lines == ("Vraag gesteld: kies Koppelen, Aanmaken, Blokkeren of Overslaan",)
