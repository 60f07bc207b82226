"""The HR CLI without I/O: command lines to Decisions, RECORD parsing, the pending listing and exit codes."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime

import pytest

from worker.adapters.hr_queries import CandidateView, PendingQuestionView
from worker.domain.decisions import Decision, DecisionAction
from worker.domain.events import OutcomeKind, outcome_for
from worker.entrypoints import hr_cli
from worker.entrypoints.hr_decision_args import (
    UsageError,
    decision_from_args,
    follow_up_from_args,
    parse_employee_ref,
    parse_record,
)
from worker.entrypoints.hr_views import decide_hint, render_pending, table

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nmbrs-sync")
    hr_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def no_lookup(entity: str, nmbrs_id: int) -> int | None:
    raise AssertionError(f"the version of {entity}:{nmbrs_id} should not have been looked up")


def decide(*argv: str, version: int | None = 7) -> Decision:
    asked: list[tuple[str, int]] = []

    def lookup(entity: str, nmbrs_id: int) -> int | None:
        asked.append((entity, nmbrs_id))
        return version

    decision = decision_from_args(parse("decide", *argv, "--by", "hr"), NOW, lookup)
    assert len(asked) <= 1
    return decision


def test_english_alias_links_an_employee_to_a_person_with_the_current_version() -> None:
    decision = decide("link", "employee:101", "--person", "12", version=3)
    assert decision.action is DecisionAction.KOPPELEN
    assert (decision.entity, decision.nmbrs_id, decision.target_id, decision.version) == ("employee", 101, 12, 3)
    assert decision.key == "employee:101" and decision.filter is None
    assert decision.decided_by == "hr" and decision.decided_at == NOW


def test_a_bare_number_is_an_employee_and_dutch_actions_are_case_insensitive() -> None:
    decision = decide("Aanmaken", "101")
    assert (decision.action, decision.entity, decision.nmbrs_id, decision.version) == (
        DecisionAction.AANMAKEN,
        "employee",
        101,
        7,
    )


def test_a_given_version_is_used_as_is_and_the_database_is_not_asked() -> None:
    args = parse("decide", "blokkeren", "employee:101", "--version", "2", "--by", "hr", "--note", "stagiair")
    decision = decision_from_args(args, NOW, no_lookup)
    assert decision.version == 2 and decision.note == "stagiair"


def test_a_company_is_linked_to_an_organisation() -> None:
    decision = decide("koppelen", "company:4", "--organisation", "9")
    assert (decision.entity, decision.nmbrs_id, decision.target_id) == ("company", 4, 9)
    assert decision.key == "company:4"


def test_every_decision_gets_its_own_id() -> None:
    assert decide("skip", "101").decision_id != decide("skip", "101").decision_id


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("koppelen", "employee:101"), "--person"),
        (("koppelen", "company:4"), "--organisation"),
        (("koppelen", "company:4", "--person", "9"), "--organisation"),
        (("koppelen", "employee:101", "--organisation", "9"), "--person"),
        (("aanmaken", "employee:101", "--person", "9"), "only go with koppelen"),
        (("undo", "employee:101"), "--undo"),
        (("blokkeren", "employee:101", "--undo", str(uuid.uuid4())), "--undo"),
        (("blokkeren",), "RECORD"),
        (("aanmaken", "employee:101", "--company-filter", "1"), "not both"),
        (("aanmaken", "employee:101", "--preview"), "bulk"),
        (("aanmaken", "employee:101", "--situation", "unmatched"), "bulk"),
        (("koppelen", "--company-filter", "1", "--person", "9"), "bulk decision can only be"),
        (("ontblokkeren", "--company-filter", "1"), "bulk decision can only be"),
        (("aanmaken", "--company-filter", "1", "--max-best-score", "1.5"), "max_best_score"),
        (("merge", "employee:101"), "unknown action 'merge'"),
        # A disputed question's best candidate may be the person already: a bulk aanmaken must narrow it down.
        (("aanmaken", "--company-filter", "1"), "needs situation 'unmatched' or a max_best_score"),
        (("aanmaken", "--company-filter", "1", "--situation", "disputed"), "needs situation 'unmatched'"),
        (("blokkeren", "--company-filter", "1", "--version", "3"), "--version belongs to one RECORD"),
        (("blokkeren", "employee:101", "--all-records"), "--all-records only goes with ongedaan_maken"),
        (("blokkeren", "employee:101", "--confirm", str(uuid.uuid4())), "--confirm PREVIEW_ID carries out a preview"),
        (("blokkeren", "--company-filter", "1", "--preview", "--confirm", str(uuid.uuid4())), "without --preview"),
    ],
)
def test_command_lines_that_are_not_a_valid_decision_say_how_to_write_them(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        decision_from_args(parse("decide", *argv, "--by", "hr"), NOW, lambda _e, _n: 1)


def test_person_and_organisation_together_are_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        parse("decide", "koppelen", "employee:1", "--person", "1", "--organisation", "2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("employee:123", ("employee", 123)),
        ("company:4", ("company", 4)),
        ("123", ("employee", 123)),
        (" Employee: 5 ", ("employee", 5)),
    ],
)
def test_record_syntax(text: str, expected: tuple[str, int]) -> None:
    assert parse_record(text) == expected


@pytest.mark.parametrize("text", ["employe:1", "employee:x", "0", "company:", "-3", "person:4", "employee:1:2", ""])
def test_malformed_records_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="RECORD"):
        parse_record(text)


def test_a_bulk_decision_carries_the_filter_and_no_version() -> None:
    decision = decision_from_args(
        parse(
            "decide",
            "create",
            "--company-filter",
            "1",
            "--situation",
            "unmatched",
            "--max-best-score",
            "0.2",
            "--preview",
            "--by",
            "hr",
        ),
        NOW,
        no_lookup,
    )
    assert decision.key == "bulk" and decision.nmbrs_id is None and decision.version is None
    assert decision.filter is not None
    assert (decision.filter.company_id, decision.filter.situation, decision.filter.max_best_score) == (
        1,
        "unmatched",
        0.2,
    )
    assert decision.preview is True and decision.action is DecisionAction.AANMAKEN


def test_undo_and_unblock_answer_no_question_so_no_version_is_looked_up() -> None:
    undone = uuid.uuid4()
    undo = decision_from_args(
        parse("decide", "undo", "employee:101", "--undo", str(undone), "--by", "hr"), NOW, no_lookup
    )
    assert undo.action is DecisionAction.ONGEDAAN_MAKEN and undo.undo_decision_id == undone and undo.version is None
    unblock = decision_from_args(parse("decide", "unblock", "company:4", "--by", "hr"), NOW, no_lookup)
    assert unblock.action is DecisionAction.ONTBLOKKEREN and unblock.version is None


def test_without_by_the_operating_system_user_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "jdevries")
    assert decision_from_args(parse("decide", "skip", "101"), NOW, lambda _e, _n: 1).decided_by == "jdevries"


def question(**changes: object) -> PendingQuestionView:
    data: dict[str, object] = {
        "entity": "employee",
        "nmbrs_id": 101,
        "version": 3,
        "situation": "disputed",
        "name": "Anna van der Berg",
        "number": "17",
        "company_id": 1,
        "company_name": "Bakkerij De Zon B.V.",
        "skipped": False,
        "asked_at": NOW,
        "age_s": 7200.0,
        "candidates": (
            CandidateView(
                crm_id=12,
                name="Anna van der Berg",
                score=1.0,
                flags=("has_login_account",),
                levels={"last_name": "exact", "phone": "missing"},
                explanation="...",
            ),
            CandidateView(
                crm_id=13,
                name="Anna van der Berg",
                score=0.75,
                flags=(),
                levels={"last_name": "exact"},
                explanation="...",
            ),
        ),
    }
    data.update(changes)
    return PendingQuestionView.model_validate(data)


def test_the_pending_listing_shows_red_rows_candidates_and_the_decide_command() -> None:
    text = render_pending([question()])
    row = next(line for line in text.splitlines() if "employee:101" in line and "Anna" in line)
    assert row.startswith("red") and "disputed" in row and "2h" in row and "Bakkerij De Zon B.V. (1)" in row
    best = next(line for line in text.splitlines() if line.strip().startswith("12 "))
    assert "1.00" in best and "has_login_account" in best and "last_name=exact" in best
    assert "phone=missing" not in best  # missing fields are left out
    assert "nmbrs-sync decide koppelen employee:101 --person 12 --version 3" in text
    assert "Koppelen, Aanmaken, Blokkeren or Overslaan" in text


def test_an_unmatched_question_suggests_aanmaken_and_the_search() -> None:
    hint = decide_hint(question(nmbrs_id=102, situation="unmatched", candidates=(), version=1))
    assert hint.startswith("nmbrs-sync decide aanmaken employee:102 --version 1") and "nmbrs-sync search" in hint


def test_no_open_questions_is_green() -> None:
    assert "green" in render_pending([])


def test_columns_line_up_two_spaces_apart_under_a_dashed_rule() -> None:
    lines = table(("a", "long header"), [("wide value", "x"), ("y", "z")]).splitlines()
    assert lines == ["a           long header", "----------  -----------", "wide value  x", "y           z"]


@pytest.mark.parametrize(
    ("kinds", "code"),
    [
        ([OutcomeKind.APPLIED, OutcomeKind.LEAVE_RECALCULATED], 0),
        ([OutcomeKind.PREVIEW], 0),
        ([OutcomeKind.REJECTED], 1),
        ([OutcomeKind.LEAVE_RECALCULATED], 3),  # nothing settled the decision
        ([], 3),
    ],
)
def test_exit_code_follows_the_outcome(kinds: list[OutcomeKind], code: int, capsys: pytest.CaptureFixture[str]) -> None:
    decision = decide("skip", "101")
    outcomes = [outcome_for(decision.decision_id, kind, "employee:101", NOW, f"{kind.value} reason") for kind in kinds]
    args = parse("decide", "skip", "101", "--wait", "2")
    assert hr_cli._report(args, decision, outcomes) == code
    out, err = capsys.readouterr()
    for kind in kinds:
        assert f"{kind.value}: {kind.value} reason" in out
    assert ("may not be running" in err) == (code == 3)


def test_not_waiting_is_success_without_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    decision = decide("skip", "101")
    assert hr_cli._report(parse("decide", "skip", "101", "--wait", "0"), decision, None) == 0
    assert capsys.readouterr().err == ""


def test_the_tasks_employee_is_an_nmbrs_record_or_a_bare_regitijd_id() -> None:
    assert parse_employee_ref("employee:123") == ("nmbrs", 123)
    assert parse_employee_ref("45") == ("regitijd", 45)
    assert parse_employee_ref(None) is None
    for wrong in ("company:4", "x", "0"):
        with pytest.raises(UsageError):
            parse_employee_ref(wrong)


def test_a_followup_command_line_becomes_the_command_or_says_what_is_missing() -> None:
    command = follow_up_from_args(
        parse("followup", "leave_adjustment", "12", "--hours", "-4", "--on", "2026-11-01", "--by", "hr"), 12, NOW
    )
    assert (command.command, command.employee_id, command.hours, command.key) == (
        "leave_adjustment",
        12,
        -4,
        "rt-employee:12",
    )
    assert (
        follow_up_from_args(parse("followup", "set_is_manager", "3", "--is-manager", "no"), 3, NOW).is_manager is False
    )
    with pytest.raises(UsageError, match="needs manager_employee_id"):
        follow_up_from_args(parse("followup", "set_manager", "3"), 3, NOW)
    with pytest.raises(UsageError, match="unknown characteristic"):
        follow_up_from_args(parse("followup", "set_characteristic", "3", "--characteristic", "Baas"), 3, NOW)


def test_a_preview_tells_how_to_answer_exactly_what_it_listed(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("aanmaken", "--company-filter", "4", "--situation", "unmatched", "--preview", "--by", "hr")
    preview = decision_from_args(parse("decide", *argv), NOW, no_lookup)
    listed = outcome_for(
        preview.decision_id, OutcomeKind.PREVIEW, "bulk", NOW, "would aanmaken 1", {"records": ["employee:401"]}
    )
    assert hr_cli._report(parse("decide", *argv), preview, [listed]) == 0
    out = capsys.readouterr().out
    assert "  employee:401" in out
    confirm = f"nmbrs-sync decide aanmaken --company-filter 4 --situation unmatched --confirm {preview.decision_id}"
    assert confirm in out
    run = decision_from_args(parse("decide", *confirm.split()[2:], "--by", "hr"), NOW, no_lookup)
    assert run.confirms == preview.decision_id and run.filter == preview.filter and not run.preview
