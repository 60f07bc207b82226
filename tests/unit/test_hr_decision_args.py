"""Decision arguments without I/O: action words and when the open question's version must be looked up."""

from __future__ import annotations

import argparse

import pytest

from worker.domain.decisions import DecisionAction
from worker.entrypoints import hr_cli
from worker.entrypoints.hr_decision_args import UsageError, needs_version, parse_action


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nmbrs-sync")
    hr_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["decide", *argv])


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("Ongedaan maken", DecisionAction.ONGEDAAN_MAKEN),
        ("ongedaan-maken", DecisionAction.ONGEDAAN_MAKEN),
        ("undo", DecisionAction.ONGEDAAN_MAKEN),
        (" BLOCK ", DecisionAction.BLOKKEREN),
        ("overslaan", DecisionAction.OVERSLAAN),
    ],
)
def test_actions_are_dutch_or_english_in_any_case_and_spacing(text: str, action: DecisionAction) -> None:
    assert parse_action(text) is action


def test_an_unknown_action_lists_the_words_that_are_known() -> None:
    with pytest.raises(UsageError, match=r"koppelen, .*, link"):
        parse_action("merge")


@pytest.mark.parametrize(
    ("argv", "record"),
    [
        (("skip", "employee:101"), ("employee", 101)),
        (("koppelen", "company:4", "--organisation", "9"), ("company", 4)),
        (("skip", "employee:101", "--version", "2"), None),  # given: used as is
        (("unblock", "employee:101"), None),  # answers no question
        (("undo", "employee:101"), None),
        (("aanmaken", "--company-filter", "1"), None),  # a bulk answers each at its current version
    ],
)
def test_the_version_is_looked_up_only_for_one_record_answering_its_question(
    argv: tuple[str, ...], record: tuple[str, int] | None
) -> None:
    assert needs_version(parse(*argv)) == record


def test_a_malformed_record_is_a_usage_error_before_any_lookup() -> None:
    with pytest.raises(UsageError, match="RECORD"):
        needs_version(parse("skip", "person:4"))
