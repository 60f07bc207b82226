"""The fault suite's short form, so CI guards it: every scenario small, on a PostgreSQL, Kafka and sandbox of the
suite's own (started once per session, never the shared stack), asserting nothing lost, doubled or needing a hand;
and a proof that the comparison sees what it must (a check that cannot fail would guard nothing)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.chaos.harness import SHORT, Harness, Stage
from tests.chaos.scenarios import SCENARIOS, run_scenario

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
async def chaos() -> AsyncIterator[Harness]:
    async with Harness(SHORT) as harness:
        yield harness


async def test_the_comparison_counts_a_lost_change_and_a_doubled_effect(chaos: Harness) -> None:
    stage = Stage(chaos, "proof")  # no worker: nothing repairs what the test does
    await stage.open()
    try:
        assert (await stage.compare()).lost == []
        # A value the store lost (as if a change had not been applied) ...
        first, last = (
            await stage.fetch("SELECT min(nmbrs_id), max(nmbrs_id) FROM sync_links WHERE entity = 'employee'")
        )[0].values()
        await stage.fetch(
            """UPDATE rt_contract_periods SET hours_per_week = hours_per_week + 1 WHERE employee_id =
                             (SELECT regitijd_id FROM sync_links WHERE entity = 'employee' AND nmbrs_id = $1)""",
            first,
        )
        comparison = await stage.compare()
        assert len(comparison.lost) == 1 and f"employee:{first} contracts" in comparison.lost[0], comparison.lost
        # ... a change in Nmbrs the store never got ...
        await stage.sandbox_calls([("PATCH", f"employees/{last}", {"hours_per_week": 13})])
        assert len((await stage.compare()).lost) == 2
        # ... and an effect that happened twice.
        await stage.fetch("""INSERT INTO audit_log (causation_id, subject, action, before, after, actor)
                             SELECT causation_id, subject, action, before, after, actor FROM audit_log
                             WHERE causation_id IS NOT NULL LIMIT 1""")
        assert (await stage.compare()).doubled == {
            "audit_rows": 1,
            "persons_per_human": 0,
            "rt_employees_without_link": 0,
            "created_persons": 0,
        }
    finally:
        await stage.close()


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario_loses_nothing_doubles_nothing_and_needs_no_hand(chaos: Harness, name: str) -> None:
    result = await run_scenario(chaos, name)
    assert result["failures"] == [], json.dumps(result, indent=1)
