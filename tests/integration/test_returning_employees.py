"""Employees removed from Nmbrs (their RegiTijd employees deactivated) who come back: present in Nmbrs means active
in RegiTijd again, on every path of a batch (set-based, one at a time) and also when nothing else changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.builders import company_change, department_change, employee_change, nmbrs_employee
from tests.support import RECONCILE_NOW, TARGET_TABLES
from worker.adapters.target_store_load import load_target_state
from worker.domain.changes import ChangeEvent, Op
from worker.domain.events import Outcome, OutcomeKind
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import ContractPeriod, EmploymentPeriod, NmbrsEmployee
from worker.domain.target_state import OrganisationState, PersonState, TargetState
from worker.service.reconciler import handle_change, handle_changes

AUTO = MatchPolicy(auto_link_min_score=0.9)
EMPLOYEES = 16
FIRST_ID = 6000
IDS = [FIRST_ID + i for i in range(EMPLOYEES)]


def person(index: int) -> PersonState:
    # Distinct first letters of the surname: each person is the one clear candidate of its employee.
    surname = "".join(chr(ord("a") + (index // 26**k) % 26) for k in range(3)).capitalize() + "stra"
    return PersonState(
        ref=f"p{index}",
        first_name="Kim",
        last_name=surname,
        birthday=date(1970, 1, 1) + timedelta(days=index * 97),
        email_work=f"kim{index}@zon.nl",
        organisation="org",
    )


def employee(index: int) -> NmbrsEmployee:
    p = person(index)
    return nmbrs_employee(
        FIRST_ID + index,
        first_name=p.first_name,
        prefix=None,
        last_name=p.last_name,
        birthday=p.birthday,
        email_work=p.email_work,
        bsn_hash=f"{index:064x}",
    )


def returned(index: int) -> NmbrsEmployee:
    """The employee as it comes back; each kind takes another path through a batch."""
    before = employee(index)
    match index % 4:
        case 0:  # the same values: nothing to write but the activation (set-based)
            return before
        case 1:  # the same values with a corrected BSN: the one-at-a-time path
            return before.model_copy(update={"bsn_hash": f"{index + 1000:064x}"})
        case 2:  # back with an employment that ended (set-based, leave recalculated)
            ended = (EmploymentPeriod(employment_id=1, start=date(2026, 1, 1), end=date(2026, 10, 31)),)
            return before.model_copy(update={"employments": ended})
        case _:  # back with other hours (set-based, leave recalculated)
            hours = (ContractPeriod(contract_id=1, start=date(2026, 1, 1), hours_per_week=Decimal(24)),)
            return before.model_copy(update={"contracts": hours})


async def run(pool: asyncpg.Pool, events: Sequence[ChangeEvent[Any]]) -> list[Outcome]:
    return await handle_changes(events, pool, AUTO, lambda: RECONCILE_NOW)


@pytest.fixture
async def removed(pool: asyncpg.Pool) -> asyncpg.Pool:
    """EMPLOYEES employees linked to their persons (version 1), then all removed from Nmbrs (version 2)."""
    await pool.execute(f"TRUNCATE {TARGET_TABLES}, rt_employment_periods RESTART IDENTITY CASCADE")
    async with pool.acquire() as connection:
        await load_target_state(
            connection,
            TargetState(
                organisations=(OrganisationState(ref="org", name="Bakkerij De Zon B.V.", kvk_number="88721495"),),
                persons=tuple(person(i) for i in range(EMPLOYEES)),
            ),
        )
    linked = await run(pool, [company_change(), *(employee_change(employee(i)) for i in range(EMPLOYEES))])
    assert [o.kind for o in linked].count(OutcomeKind.AUTO_LINKED) == EMPLOYEES + 1
    await run(pool, [employee_change(None, Op.DELETE, employee(i), 2) for i in range(EMPLOYEES)])
    assert await pool.fetchval("SELECT count(*) FROM rt_employees WHERE active") == 0
    return pool


async def persons_by_employee(pool: asyncpg.Pool) -> dict[int, int]:
    rows = await pool.fetch("SELECT nmbrs_id, crm_id FROM sync_links WHERE entity = 'employee' ORDER BY nmbrs_id")
    return {row["nmbrs_id"]: row["crm_id"] for row in rows}


async def assert_all_back(pool: asyncpg.Pool, persons_before: dict[int, int], expected: list[NmbrsEmployee]) -> None:
    """Every employee active with the employment end Nmbrs has, once, on the person it had before."""
    rows = await pool.fetch(
        "SELECT nmbrs_employee_id, person_id, active, employment_end FROM rt_employees ORDER BY nmbrs_employee_id"
    )
    assert [r["nmbrs_employee_id"] for r in rows] == IDS  # one RegiTijd employee per Nmbrs id
    ends = {e.employee_id: max(e.employments, key=lambda p: p.start).end for e in expected}
    assert {r["nmbrs_employee_id"]: (r["active"], r["employment_end"]) for r in rows} == {
        i: (True, ends[i]) for i in IDS
    }
    # One person per human: the one it was linked to before, and no card was added.
    assert {r["nmbrs_employee_id"]: r["person_id"] for r in rows} == persons_before == await persons_by_employee(pool)
    assert len(set(persons_before.values())) == EMPLOYEES
    assert await pool.fetchval("SELECT count(*) FROM crm_persons") == EMPLOYEES


async def test_employees_back_in_nmbrs_are_active_again_on_every_path(removed: asyncpg.Pool) -> None:
    persons_before = await persons_by_employee(removed)
    back = [employee_change(returned(i), Op.CREATE, version=3) for i in range(EMPLOYEES)]
    half = EMPLOYEES // 2
    # One batch whose runs of set-based writes are cut by events of the one-at-a-time path (a reference, a
    # corrected BSN); then the rest one event per batch.
    mixed = [*back[:3], department_change(Op.CREATE, 7, "Productie"), *back[3:half]]
    outcomes = await run(removed, mixed)
    for event in back[half:]:
        outcomes += await handle_change(event, removed, AUTO, lambda: RECONCILE_NOW)

    applied = [o for o in outcomes if o.kind is OutcomeKind.APPLIED and o.subject.startswith("employee:")]
    assert len(applied) == EMPLOYEES and all(o.details.get("reactivated") for o in applied)
    await assert_all_back(removed, persons_before, [returned(i) for i in range(EMPLOYEES)])
    assert await removed.fetchval("SELECT count(*) FROM audit_log WHERE action = 'reactivate'") == EMPLOYEES
    # Active once more, a later unchanged read writes nothing.
    reread = await run(removed, [employee_change(returned(i), Op.READ, version=3) for i in range(EMPLOYEES)])
    assert {o.reason for o in reread if o.kind is OutcomeKind.APPLIED} == {"already up to date"}


async def test_employees_back_with_the_same_values_are_active_again(removed: asyncpg.Pool) -> None:
    persons_before = await persons_by_employee(removed)
    outcomes = await run(removed, [employee_change(employee(i), Op.CREATE, version=3) for i in range(EMPLOYEES)])
    assert [o.reason for o in outcomes] == ["back in Nmbrs: reactivated in RegiTijd"] * EMPLOYEES
    await assert_all_back(removed, persons_before, [employee(i) for i in range(EMPLOYEES)])


async def test_removed_and_back_within_one_batch_ends_active(removed: asyncpg.Pool) -> None:
    persons_before = await persons_by_employee(removed)
    await run(removed, [employee_change(employee(i), Op.CREATE, version=3) for i in range(EMPLOYEES)])
    # Removed and back again in the same batch: each return follows its own removal.
    events: list[ChangeEvent[Any]] = []
    for i in range(EMPLOYEES):
        events += [employee_change(None, Op.DELETE, employee(i), 4), employee_change(returned(i), Op.CREATE, version=5)]
    await run(removed, events)
    await assert_all_back(removed, persons_before, [returned(i) for i in range(EMPLOYEES)])


async def test_a_change_older_than_the_removal_does_not_bring_the_employee_back(removed: asyncpg.Pool) -> None:
    # The create of version 1 again (a second poller after a lost lock): the removal of version 2 is newer.
    outcomes = await run(removed, [employee_change(employee(0), Op.CREATE, version=1)])
    assert [o.kind for o in outcomes] == [OutcomeKind.STALE]
    assert await removed.fetchval("SELECT active FROM rt_employees WHERE nmbrs_employee_id = $1", FIRST_ID) is False


async def test_a_removed_employment_hands_the_person_card_to_the_one_that_stays(removed: asyncpg.Pool) -> None:
    # Found by the fault suite: a human employed twice loses the later-starting employment (a company removed);
    # the card kept that employment's e-mail until the employment that stays changed.
    pool = removed
    staying = employee(0).model_copy(update={"employee_id": FIRST_ID + 100, "email_work": "kim0@staying.nl"})
    leaving = employee(0).model_copy(
        update={
            "email_work": "kim0@leaving.nl",
            "employments": (EmploymentPeriod(employment_id=1, start=date(2026, 6, 1)),),
        }
    )
    await run(pool, [employee_change(staying, version=1)])
    await run(pool, [employee_change(leaving, Op.CREATE, version=3)])
    card = "SELECT p.email_work FROM crm_persons p JOIN sync_links k ON k.crm_id = p.person_id WHERE k.nmbrs_id = $1"
    assert await pool.fetchval(card, FIRST_ID) == "kim0@leaving.nl"  # the later start is the primary one
    await run(pool, [employee_change(None, Op.DELETE, leaving, 4)])
    assert await pool.fetchval(card, FIRST_ID) == "kim0@staying.nl"
