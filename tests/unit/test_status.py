"""Each step's green/red judgement and the counts it shows."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.domain.status import judge

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)
HOLD = {"previous": 28, "fetched": 22, "removed": 0, "ended": 0, "moved": 0, "dropped": 6, "companies_removed": 0}


def test_a_held_poll_shows_the_holds_counts_beside_its_own() -> None:
    reason = "6 of 28 employees fewer fetched than last time (more than 10%)"
    status = judge("poll", {"polls": 1, "soap_calls": 30}, NOW, (reason,), HOLD)
    assert status.status == "red" and status.reasons == (reason,)
    assert status.counts == {"polls": 1, "soap_calls": 30, "previous": 28, "fetched": 22, "dropped": 6}


def test_a_poll_not_held_shows_only_its_own_counts() -> None:
    status = judge("poll", {"polls": 1, "soap_calls": 30}, NOW)
    assert (status.status, status.counts) == ("green", {"polls": 1, "soap_calls": 30})
