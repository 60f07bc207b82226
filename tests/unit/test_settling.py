"""Which outcome settles a posted command: what the CLI and the web app wait for before they show a result."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from worker.domain.events import Outcome, OutcomeKind, outcome_for, settles

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def outcome(kind: OutcomeKind, subject: str) -> Outcome:
    return outcome_for(uuid.uuid4(), kind, subject, NOW, "why")


def test_a_bulk_is_settled_by_its_own_outcome_not_by_the_first_record_it_answered() -> None:
    assert not settles(outcome(OutcomeKind.APPLIED, "employee:7"), "bulk")
    assert settles(outcome(OutcomeKind.APPLIED, "bulk"), "bulk")
    assert settles(outcome(OutcomeKind.PREVIEW, "bulk"), "bulk")


def test_a_rejection_settles_whatever_its_subject_and_companions_never_do() -> None:
    assert settles(outcome(OutcomeKind.REJECTED, "employee:7"), "bulk")
    assert not settles(outcome(OutcomeKind.LEAVE_RECALCULATED, "employee:7"), "employee:7")
    assert not settles(outcome(OutcomeKind.FOLLOW_UP, "employee:7"), None)


def test_without_a_subject_any_settling_kind_settles() -> None:
    assert settles(outcome(OutcomeKind.ACCEPTED, "sync-request"))
    assert settles(outcome(OutcomeKind.APPLIED, "rt-employee:3"))
