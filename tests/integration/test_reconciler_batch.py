"""The batched reconciler against the real PostgreSQL: a batch has exactly the effect of its events handled
one at a time, in order, and a redelivered batch has none."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from tests.builders import HASH_ANNA, company_change, department_change, employee_change, nmbrs_employee
from tests.support import RECONCILE_NOW, STATE, TARGET_TABLES
from worker.adapters.target_store_load import load_target_state
from worker.domain.changes import ChangeEvent, Op
from worker.domain.events import Outcome, OutcomeKind
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import CodeRef, ContractPeriod, EmploymentPeriod, NmbrsEmployee
from worker.domain.target_state import parse_target_file
from worker.service.reconciler import handle_change, handle_changes

AUTO = MatchPolicy(auto_link_min_score=0.9)
# The common starting state plus one more person, whose employee links by the definite rule.
BATCH_STATE = STATE.replace(
    "blue_employees:",
    "  - {ref: daan, first_name: Daan, last_name: Visser, birthday: 1985-05-05, email_work: daan@zon.nl,"
    " organisation: org-zon}\nblue_employees:",
)
# Compared after each run; serial ids and clock columns (*_at) are left out: they differ by construction.
COMPARED = {
    "sync_links": "entity, nmbrs_id, crm_id, regitijd_id, bsn_hash, linked_by, reason",
    "pending_decisions": "entity, nmbrs_id, version, situation, record, candidates",
    "crm_persons": "*",
    "crm_organisations": "*",
    "rt_companies": "*",
    "rt_employees": "*",
    "rt_employment_periods": "*",
    "rt_contract_periods": "*",
    "rt_schedule_periods": "*",
    "rt_departments": "*",
    "rt_functions": "*",
    "rt_leave_balances": "employee_id, as_of, result, causation_id",
    "audit_log": "causation_id, subject, action, before, after, actor",
    "processed_events": "consumer, event_id, outcomes",
}


def scenario() -> list[ChangeEvent[Any]]:
    """Every path in one stream: links to decide, runs of linked updates cut by a repeated record, by a
    second employment of one human and by events that take the one-at-a-time path."""
    anna = nmbrs_employee(101)
    second = nmbrs_employee(205, company_id=1, number="18", email_work="anna.b@zon.nl")
    zeger = nmbrs_employee(
        102,
        first_name="Zeger",
        prefix=None,
        last_name="Quist",
        birthday=date(1990, 1, 1),
        email_work="zeger@zon.nl",
        bsn_hash="b2" * 32,
    )
    blocked = nmbrs_employee(150, first_name="Bas", prefix=None, last_name="Blok", bsn_hash="c3" * 32)
    anna_sales = anna.model_copy(update={"department": CodeRef(id=9, code="9", description="Verkoop")})
    second_32h = second.model_copy(
        update={"contracts": (ContractPeriod(contract_id=1, start=date(2026, 1, 1), hours_per_week=Decimal(32)),)}
    )
    anna_chef = anna_sales.model_copy(update={"function": CodeRef(id=8, code="8", description="Chef")})
    anna_left = anna_chef.model_copy(
        update={"employments": (EmploymentPeriod(employment_id=1, start=date(2026, 1, 1), end=date(2026, 6, 30)),)}
    )
    zeger_renamed = zeger.model_copy(update={"last_name": "Quist-Jansen"})
    blocked_renamed = blocked.model_copy(update={"last_name": "Blokker"})
    daan = nmbrs_employee(
        170,
        first_name="Daan",
        prefix=None,
        last_name="Visser",
        birthday=date(1985, 5, 5),
        email_work="daan@zon.nl",
        bsn_hash="e5" * 32,
    )
    daan_32h, daan_24h = (
        daan.model_copy(
            update={"contracts": (ContractPeriod(contract_id=1, start=date(2026, 1, 1), hours_per_week=Decimal(h)),)}
        )
        for h in (32, 24)
    )

    def update(after: NmbrsEmployee, before: NmbrsEmployee, version: int) -> ChangeEvent[Any]:
        return employee_change(after, Op.UPDATE, before, version)

    return [
        company_change(),
        employee_change(anna),
        employee_change(second),
        employee_change(zeger),
        employee_change(blocked),
        employee_change(daan),
        update(blocked_renamed, blocked, 2),  # set-based (and opens a window of several events)
        update(daan_32h, daan, 2),
        update(daan_24h, daan_32h, 3),  # the same record right after, in the same window: a new run
        update(anna_sales, anna, 2),
        update(second_32h, second, 2),  # the same human as the event before: a new run
        update(anna_chef, anna_sales, 3),  # the same record as two events before
        department_change(Op.CREATE, 9, "Verkoop"),
        update(anna_left, anna_chef, 4),
        update(zeger_renamed, zeger, 2),  # still a question: replaced by a new version
        employee_change(None, Op.DELETE, second_32h, 3),
        update(blocked_renamed.model_copy(update={"first_name": "Bastiaan"}), blocked_renamed, 3),
    ]


async def reset(pool: asyncpg.Pool) -> None:
    await pool.execute(f"TRUNCATE {TARGET_TABLES}, rt_employment_periods RESTART IDENTITY CASCADE")
    async with pool.acquire() as connection:
        await load_target_state(connection, parse_target_file(BATCH_STATE, "state.yaml"))
    await pool.execute("INSERT INTO sync_blocks (entity, nmbrs_id, blocked_by) VALUES ('employee', 150, 'hr')")


async def contents(pool: asyncpg.Pool) -> dict[str, list[str]]:
    found = {}
    for table, columns in COMPARED.items():
        rows = await pool.fetch(f"SELECT {columns} FROM {table}")
        found[table] = sorted(repr(sorted((k, v) for k, v in row.items() if not k.endswith("_at"))) for row in rows)
    return found


def comparable(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in outcomes]


async def test_a_batch_has_the_effect_of_its_events_one_at_a_time(pool: asyncpg.Pool) -> None:
    events = scenario()

    await reset(pool)
    one_by_one: list[Outcome] = []
    for event in events:
        one_by_one += await handle_change(event, pool, AUTO, lambda: RECONCILE_NOW)
    expected = await contents(pool)

    await reset(pool)
    batched = await handle_changes(events, pool, AUTO, lambda: RECONCILE_NOW)
    assert comparable(batched) == comparable(one_by_one)
    assert await contents(pool) == expected

    # The scenario really went through every path (else the comparison proves little).
    kinds = [o.kind for o in batched]
    assert {
        OutcomeKind.AUTO_LINKED,
        OutcomeKind.NEEDS_DECISION,
        OutcomeKind.BLOCKED,
        OutcomeKind.LEAVE_RECALCULATED,
    } <= set(kinds)
    person = await pool.fetchval("SELECT crm_id FROM sync_links WHERE nmbrs_id = 205")
    assert person == await pool.fetchval("SELECT crm_id FROM sync_links WHERE nmbrs_id = 101")
    assert await pool.fetchval("SELECT bsn_hash FROM sync_links WHERE nmbrs_id = 205") == HASH_ANNA
    row = await pool.fetchrow(
        "SELECT function_id, department_id, employment_end FROM rt_employees WHERE nmbrs_employee_id = 101"
    )
    assert (row["function_id"], row["department_id"], row["employment_end"]) == (8, 9, date(2026, 6, 30))
    assert await pool.fetchval("SELECT active FROM rt_employees WHERE nmbrs_employee_id = 205") is False
    assert await pool.fetchval("SELECT version FROM pending_decisions WHERE nmbrs_id = 102") == 2
    hours = await pool.fetch(
        "SELECT c.hours_per_week FROM rt_contract_periods c JOIN rt_employees e USING (employee_id)"
        " WHERE e.nmbrs_employee_id = 170"
    )
    assert [r["hours_per_week"] for r in hours] == [Decimal(24)]


async def test_a_redelivered_batch_repeats_its_outcomes_and_changes_nothing(pool: asyncpg.Pool) -> None:
    events = scenario()
    await reset(pool)
    first = await handle_changes(events, pool, AUTO, lambda: RECONCILE_NOW)
    after_first = await contents(pool)

    # Redelivered after a crash between commit and acknowledgement, with a new event behind it.
    extra = employee_change(
        nmbrs_employee(
            160,
            first_name="Nieuw",
            prefix=None,
            last_name="Persoon",
            bsn_hash="d4" * 32,
            birthday=date(2001, 1, 1),
            email_work=None,
        )
    )
    again = await handle_changes([*events, extra], pool, AUTO, lambda: RECONCILE_NOW)
    assert comparable(again[: len(first)]) == comparable(first)
    assert [o.kind for o in again[len(first) :]] == [OutcomeKind.NEEDS_DECISION]
    now = await contents(pool)
    assert {t: rows for t, rows in now.items() if t not in ("pending_decisions", "processed_events")} == {
        t: rows for t, rows in after_first.items() if t not in ("pending_decisions", "processed_events")
    }


async def test_an_event_repeated_inside_one_batch_is_handled_once(pool: asyncpg.Pool) -> None:
    await reset(pool)
    create = employee_change(nmbrs_employee(101))
    outcomes = await handle_changes([create, create], pool, AUTO, lambda: RECONCILE_NOW)
    assert [o.kind for o in outcomes] == [OutcomeKind.AUTO_LINKED, OutcomeKind.LEAVE_RECALCULATED]
    assert await pool.fetchval("SELECT count(*) FROM rt_employees WHERE nmbrs_employee_id = 101") == 1


async def test_each_event_is_judged_by_its_own_bsn_hash_when_its_record_changes_twice_in_a_batch(
    pool: asyncpg.Pool,
) -> None:
    # Anna (101) is linked; 205 first arrives with another human's BSN hash, then with Anna's (corrected).
    ans = nmbrs_employee(205, first_name="Ans", email_work="ans@zon.nl", bsn_hash="f6" * 32)
    events = [employee_change(ans), employee_change(ans.model_copy(update={"bsn_hash": HASH_ANNA}), Op.UPDATE, ans, 2)]

    link_anna = employee_change(nmbrs_employee(101))

    async def linked_anna() -> None:
        await reset(pool)
        await handle_change(link_anna, pool, AUTO, lambda: RECONCILE_NOW)

    await linked_anna()
    one_by_one: list[Outcome] = []
    for event in events:
        one_by_one += await handle_change(event, pool, MatchPolicy(), lambda: RECONCILE_NOW)
    expected = await contents(pool)

    await linked_anna()
    batched = await handle_changes(events, pool, MatchPolicy(), lambda: RECONCILE_NOW)
    assert comparable(batched) == comparable(one_by_one)
    assert await contents(pool) == expected
    # The create was not linked on the strength of the hash it did not have yet.
    assert batched[0].kind is not OutcomeKind.AUTO_LINKED
