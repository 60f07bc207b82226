"""Reconciliation scenarios against the real PostgreSQL: every situation, written through the target store."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import asyncpg
import pytest

from tests.builders import HASH_ANNA, NOW, company_change, department_change, employee_change, nmbrs_employee
from tests.support import STATE
from worker.adapters.leave_store import recalculate_leave
from worker.adapters.target_sql import SYNC_WRITER_SQL
from worker.adapters.target_store import PostgresTargetStore, human_key
from worker.adapters.target_store_load import load_target_state
from worker.domain.changes import EmployeeChanged, Op
from worker.domain.events import Outcome, OutcomeKind
from worker.domain.matching import MatchPolicy
from worker.domain.naamstelling import NameUsage
from worker.domain.nmbrs_records import CodeRef, ContractPeriod, EmploymentPeriod, LabourAgreementRef, NmbrsEmployee
from worker.domain.reconcile import reconcile_employee
from worker.domain.target_state import parse_target_file

Handle = Callable[..., Awaitable[list[Outcome]]]


employee = nmbrs_employee
_versions: dict[str, int] = {}


def event(after: NmbrsEmployee | None, op: Op = Op.CREATE, before: NmbrsEmployee | None = None) -> EmployeeChanged:
    """A change with the next version of its record, as successive polls would publish."""
    key = f"employee:{(after or before).employee_id}"  # type: ignore[union-attr]
    _versions[key] = _versions.get(key, 0) + 1
    return employee_change(after, op, before, _versions[key])


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [o.kind.value for o in outcomes]


AUTO = MatchPolicy(auto_link_min_score=0.9)


async def link_anna(handle: Handle, employee_id: int = 101) -> list[Outcome]:
    """Link via the definite rule: the person with the login account wins among the duplicates."""
    return await handle(event(employee(employee_id)), AUTO)


async def test_an_unmatched_employee_becomes_a_stored_question(handle: Handle, db: asyncpg.Pool) -> None:
    outcomes = await handle(
        event(
            employee(
                102,
                first_name="Zeger",
                prefix=None,
                last_name="Quist",
                birthday=date(1990, 1, 1),
                email_work=None,
                bsn_hash=None,
            )
        )
    )
    assert kinds(outcomes) == ["needs_decision"]
    row = await db.fetchrow("SELECT situation, version, candidates FROM pending_decisions WHERE nmbrs_id = 102")
    assert row["situation"] == "unmatched" and row["version"] == outcomes[0].details["version"]


async def test_fuzzy_matches_are_asked_with_explained_candidates_by_default(handle: Handle, db: asyncpg.Pool) -> None:
    outcomes = await handle(event(employee()))
    assert kinds(outcomes) == ["needs_decision"]
    candidates = json.loads(await db.fetchval("SELECT candidates FROM pending_decisions WHERE nmbrs_id = 101"))
    assert candidates[0]["has_login_account"] is True and candidates[0]["comparisons"]
    anna = await db.fetchval("SELECT person_id FROM crm_persons WHERE external_ref = 'anna'")
    assert outcomes[0].details["candidates"][0] == anna  # the card with the login account first
    assert await db.fetchval("SELECT count(*) FROM rt_employees WHERE source = 'nmbrs'") == 0


async def test_the_definite_rule_links_and_creates_the_regitijd_employee(handle: Handle, db: asyncpg.Pool) -> None:
    outcomes = await link_anna(handle)
    assert kinds(outcomes) == ["auto_linked", "leave_recalculated"]
    row = await db.fetchrow(
        """SELECT e.*, p.external_ref FROM rt_employees e JOIN crm_persons p USING (person_id)
           WHERE e.nmbrs_employee_id = 101"""
    )
    assert row["external_ref"] == "anna" and row["source"] == "nmbrs"
    assert row["function_id"] == 5 and row["department_id"] == 7 and row["employment_start"] == date(2026, 1, 1)
    assert await db.fetchval(
        "SELECT hours_per_week FROM rt_contract_periods WHERE employee_id = $1", row["employee_id"]
    ) == Decimal("40.00")
    leave = outcomes[1].details["after"]
    assert leave["statutory"] == "160.00"  # full year 2026 at 40 h: 4 x 40


async def test_an_auto_link_keeps_the_card_it_overwrote_in_the_audit(handle: Handle, db: asyncpg.Pool) -> None:
    anna = await db.fetchval("SELECT person_id FROM crm_persons WHERE external_ref = 'anna'")
    await db.execute("UPDATE crm_persons SET phone_mobile = '06-99887766' WHERE person_id = $1", anna)
    await link_anna(handle)
    before = json.loads(
        await db.fetchval("SELECT before FROM audit_log WHERE subject = 'employee:101' AND action = 'link'")
    )
    assert before["card"]["phone_mobile"] == "06-99887766"  # Nmbrs has no mobile number: the link cleared it
    assert await db.fetchval("SELECT phone_mobile FROM crm_persons WHERE person_id = $1", anna) is None


async def test_second_employment_of_the_same_human_links_to_the_same_person(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle)
    outcomes = await handle(event(employee(205, company_id=2, function=CodeRef(id=6, code="6", description="Verkoop"))))
    assert outcomes[0].kind is OutcomeKind.AUTO_LINKED and "BSN" in (outcomes[0].reason or "")
    persons = await db.fetch("SELECT DISTINCT person_id FROM rt_employees WHERE nmbrs_employee_id IN (101, 205)")
    assert len(persons) == 1


async def test_a_linked_employee_gets_nmbrs_changes_and_locally_edited_fields_are_reported_as_drift(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await link_anna(handle)
    await db.execute("INSERT INTO rt_functions (nmbrs_id, code, description) VALUES (99, '99', 'Lokaal')")
    await db.execute("UPDATE rt_employees SET function_id = 99 WHERE nmbrs_employee_id = 101")
    outcomes = await handle(event(employee(last_name="Bergh"), op=Op.UPDATE, before=employee()))
    assert sorted(kinds(outcomes)) == ["applied", "drift"]
    drift = next(o for o in outcomes if o.kind is OutcomeKind.DRIFT)
    assert drift.details["field"] == "function_id" and drift.details["local_value"] == 99
    assert drift.details["nmbrs_value"] == 5
    # Named as the store knows the functions; the ids stay in the details.
    assert (
        drift.reason == "function was edited locally ('Lokaal'); Nmbrs owns it and its value 'Bakker' was written back"
    )
    assert (drift.details["local_name"], drift.details["nmbrs_name"]) == ("Lokaal", "Bakker")
    assert await db.fetchval("SELECT function_id FROM rt_employees WHERE nmbrs_employee_id = 101") == 5
    assert await db.fetchval("SELECT last_name FROM crm_persons WHERE external_ref = 'anna'") == "Bergh"


async def test_the_sync_never_touches_locally_owned_fields(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle)
    employee_id = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    blue = await db.fetchval("SELECT employee_id FROM rt_employees WHERE source = 'manual'")
    await db.execute(
        "UPDATE rt_employees SET manager_employee_id = $2, is_manager = true WHERE employee_id = $1", employee_id, blue
    )
    await db.execute(
        "INSERT INTO rt_leave_adjustments (employee_id, booked_on, hours) VALUES ($1, '2026-03-01', 8)", employee_id
    )
    await db.execute(
        """INSERT INTO crm_characteristics
           VALUES ((SELECT person_id FROM crm_persons WHERE external_ref = 'anna'), 'RegiAct: Uitvoerder')"""
    )
    outcomes = await handle(event(employee(first_name="Annie"), op=Op.READ))
    assert OutcomeKind.APPLIED in [o.kind for o in outcomes]
    row = await db.fetchrow(
        "SELECT manager_employee_id, is_manager FROM rt_employees WHERE employee_id = $1", employee_id
    )
    assert row["manager_employee_id"] == blue and row["is_manager"] is True
    assert await db.fetchval("SELECT count(*) FROM rt_leave_adjustments WHERE employee_id = $1", employee_id) == 1
    assert (
        await db.fetchval("SELECT count(*) FROM crm_characteristics WHERE characteristic = 'RegiAct: Uitvoerder'") == 1
    )
    assert await db.fetchval("SELECT count(*) FROM crm_accounts WHERE username = 'anna'") == 1


async def test_blue_employees_are_offered_flagged_and_never_changed(handle: Handle, db: asyncpg.Pool) -> None:
    before = await db.fetchrow("SELECT * FROM rt_employees WHERE source = 'manual'")
    piet = employee(
        150,
        first_name="Piet",
        prefix=None,
        last_name="Smit",
        birthday=date(1975, 1, 1),
        email_work=None,
        bsn_hash="b2" * 32,
    )
    outcomes = await handle(event(piet), AUTO)
    assert kinds(outcomes) == ["needs_decision"]  # never auto-linked to a blue employee's person
    candidates = await db.fetchval("SELECT candidates FROM pending_decisions WHERE nmbrs_id = 150")
    assert "blue_employee" in candidates
    assert dict(await db.fetchrow("SELECT * FROM rt_employees WHERE source = 'manual'")) == dict(before)


async def test_a_leaver_gets_an_end_date_and_removal_deactivates_without_deleting(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await link_anna(handle)
    ended = employee(employments=(EmploymentPeriod(employment_id=1, start=date(2026, 1, 1), end=date(2026, 6, 30)),))
    outcomes = await handle(event(ended, op=Op.UPDATE, before=employee()))
    assert kinds(outcomes) == ["applied", "leave_recalculated"]
    assert outcomes[1].details["after"]["statutory"] != outcomes[1].details["before"]["statutory"]
    row = await db.fetchrow("SELECT employment_end, active FROM rt_employees WHERE nmbrs_employee_id = 101")
    assert row["employment_end"] == date(2026, 6, 30) and row["active"] is True

    await handle(event(None, op=Op.DELETE, before=ended))
    row = await db.fetchrow("SELECT employment_end, active FROM rt_employees WHERE nmbrs_employee_id = 101")
    assert row["active"] is False and row["employment_end"] == date(2026, 6, 30)


async def test_a_company_move_ends_one_employment_and_links_the_new_one_to_the_same_person(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await link_anna(handle)
    ended = employee(employments=(EmploymentPeriod(employment_id=1, start=date(2026, 1, 1), end=date(2026, 10, 31)),))
    moved = employee(310, company_id=2, employments=(EmploymentPeriod(employment_id=9, start=date(2026, 11, 1)),))
    await handle(event(ended, op=Op.UPDATE, before=employee()))
    outcomes = await handle(event(moved))
    assert outcomes[0].kind is OutcomeKind.AUTO_LINKED
    rows = await db.fetch(
        "SELECT nmbrs_employee_id, person_id, employment_end FROM rt_employees WHERE source = 'nmbrs' ORDER BY 1"
    )
    assert [r["nmbrs_employee_id"] for r in rows] == [101, 310] and rows[0]["person_id"] == rows[1]["person_id"]
    assert rows[0]["employment_end"] == date(2026, 10, 31) and rows[1]["employment_end"] is None


async def test_a_blocked_employee_is_ignored(handle: Handle, db: asyncpg.Pool) -> None:
    await db.execute("INSERT INTO sync_blocks (entity, nmbrs_id, blocked_by) VALUES ('employee', 101, 'hr')")
    outcomes = await handle(event(employee()), AUTO)
    assert kinds(outcomes) == ["blocked"]
    assert await db.fetchval("SELECT count(*) FROM sync_links") == 0


async def test_redelivery_has_no_second_effect_and_repeats_the_same_outcomes(handle: Handle, db: asyncpg.Pool) -> None:
    change = event(employee())
    first = await handle(change, AUTO)
    again = await handle(change, AUTO)
    assert [o.outcome_id for o in again] == [o.outcome_id for o in first]
    assert await db.fetchval("SELECT count(*) FROM rt_employees WHERE nmbrs_employee_id = 101") == 1
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE subject = 'employee:101' AND action = 'link'") == 1


async def test_a_replayed_older_change_does_not_write_old_data_back(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle)
    newer = event(employee(last_name="Bergh"), Op.UPDATE, employee())
    assert kinds(await handle(newer)) == ["applied"]
    # The first change again under another id: a dead letter replayed, or a second poller after a lost lock.
    replayed = employee_change(employee(last_name="Oud"), Op.UPDATE, employee(), version=newer.version - 1)
    outcomes = await handle(replayed)
    assert kinds(outcomes) == ["stale"] and f"older than version {newer.version}" in (outcomes[0].reason or "")
    assert await db.fetchval("SELECT last_name FROM crm_persons WHERE external_ref = 'anna'") == "Bergh"
    assert await db.fetchval("SELECT nmbrs_version FROM rt_employees WHERE nmbrs_employee_id = 101") == newer.version


async def test_a_newer_change_replaces_the_pending_question_with_a_new_version(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await handle(event(employee()))
    first = await db.fetchval("SELECT version FROM pending_decisions WHERE nmbrs_id = 101")
    await handle(event(employee(email_work="anna.b@zon.nl"), op=Op.UPDATE, before=employee()))
    assert await db.fetchval("SELECT version FROM pending_decisions WHERE nmbrs_id = 101") == first + 1
    assert await db.fetchval("SELECT count(*) FROM pending_decisions") == 1


async def test_a_company_links_by_kvk_and_employees_synced_earlier_get_their_company(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await link_anna(handle)
    assert await db.fetchval("SELECT company_id FROM rt_employees WHERE nmbrs_employee_id = 101") is None
    outcomes = await handle(company_change())
    assert outcomes[0].kind is OutcomeKind.AUTO_LINKED and "KvK" in (outcomes[0].reason or "")
    company_id = await db.fetchval("SELECT company_id FROM rt_companies WHERE nmbrs_company_id = 1")
    assert await db.fetchval("SELECT company_id FROM rt_employees WHERE nmbrs_employee_id = 101") == company_id
    # The organisation had a RegiTijd company already (Piet's blue employee's): it is that one, not a second.
    assert (outcomes[0].reason or "").endswith(
        f"RegiTijd company {company_id} (Bakkerij De Zon B.V.) is linked to it, no second one created"
    )
    assert await db.fetchval("SELECT count(*) FROM rt_companies") == 1
    assert await db.fetchval("SELECT company_id FROM rt_employees WHERE source = 'manual'") == company_id


async def test_reference_data_is_created_and_deactivated_automatically(handle: Handle, db: asyncpg.Pool) -> None:
    await handle(department_change(Op.CREATE, 8, "Winkel"))
    assert await db.fetchval("SELECT active FROM rt_departments WHERE nmbrs_id = 8") is True
    await handle(department_change(Op.DELETE, 8, "Winkel"))
    assert await db.fetchval("SELECT active FROM rt_departments WHERE nmbrs_id = 8") is False


async def test_extra_statutory_leave_comes_from_the_cao_settings(handle: Handle, db: asyncpg.Pool) -> None:
    outcomes = await handle(event(employee(labour_agreement=LabourAgreementRef(id=2, description="Bakkerij"))), AUTO)
    leave = outcomes[-1].details["after"]
    # 16 h/year at 38 h full time, working 40 h: 16 x 40 / 38 = 16.84 for the full year 2026.
    assert leave["extra"] == "16.84" and leave["statutory"] == "160.00"


async def test_a_cao_change_keeps_the_extra_leave_earned_under_the_old_cao(handle: Handle, db: asyncpg.Pool) -> None:
    bakkerij = employee(labour_agreement=LabourAgreementRef(id=2, description="Bakkerij"))
    await handle(event(bakkerij), AUTO)
    outcomes = await handle(event(employee(labour_agreement=None), Op.UPDATE, bakkerij))
    change = await db.fetchrow("SELECT changed_on, from_id, to_id FROM rt_labour_agreement_changes")
    assert tuple(change) == (date(2026, 11, 28), 2, None)  # dated with the reconciler's clock
    # 2026 earns Bakkerij's 16 h a year (at 38 h full time, working 40 h) up to the change, nothing after it.
    days = (change["changed_on"] - date(2026, 1, 1)).days
    expected = (Decimal(16 * 40) / 38 * days / 365).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert outcomes[-1].details["after"]["extra"] == str(expected) != "0.00"


async def test_a_cao_change_set_locally_first_is_still_remembered(handle: Handle, db: asyncpg.Pool) -> None:
    bakkerij = employee(labour_agreement=LabourAgreementRef(id=2, description="Bakkerij"))
    await handle(event(bakkerij), AUTO)
    assert await db.fetchval("SELECT count(*) FROM rt_labour_agreement_changes") == 0  # a first write is no change
    # HR already set the new CAO (none) in RegiTijd, then Nmbrs changes it too: nothing differs locally.
    await db.execute("UPDATE rt_employees SET labour_agreement_id = NULL WHERE nmbrs_employee_id = 101")
    await handle(event(employee(labour_agreement=None), Op.UPDATE, bakkerij))
    assert tuple(await db.fetchrow("SELECT from_id, to_id FROM rt_labour_agreement_changes")) == (2, None)


async def test_changing_a_caos_leave_settings_recalculates_its_employees(handle: Handle, db: asyncpg.Pool) -> None:
    await handle(event(employee(labour_agreement=LabourAgreementRef(id=2, description="Bakkerij"))), AUTO)
    doubled = parse_target_file(
        STATE.replace('extra_leave_hours_fulltime: "16"', 'extra_leave_hours_fulltime: "32"'), "state.yaml"
    )
    async with db.acquire() as connection:
        report = await load_target_state(connection, doubled, as_of=NOW.date())
    assert report.leave_recalculated == 1
    stored = json.loads(await db.fetchval("SELECT result FROM rt_leave_balances"))
    assert stored["years"][-1]["entitlement"]["extra"] == "33.68"  # 32 x 40 / 38 for 2026, was 16.84


async def test_a_bsn_linked_to_two_persons_is_not_linked_automatically(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle, 101)
    duplicate = await db.fetchval("SELECT person_id FROM crm_persons WHERE external_ref = 'anna-duplicate'")
    await db.execute(
        """INSERT INTO sync_links (entity, nmbrs_id, crm_id, bsn_hash, linked_by, reason)
           VALUES ('employee', 150, $1, $2, 'hr', 'linked by hand to the other card')""",
        duplicate,
        "a1" * 32,
    )
    outcomes = await handle(event(employee(205, company_id=2)))
    assert kinds(outcomes) == ["needs_decision"]


async def test_a_bsn_corrected_in_nmbrs_no_longer_pulls_its_old_owner_onto_the_person(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await link_anna(handle, 101)
    corrected = employee(101, bsn_hash="c0" * 32)  # the BSN was typed wrongly and is corrected in Nmbrs
    assert kinds(await handle(event(corrected, Op.UPDATE, employee(101)))) == ["applied"]
    assert await db.fetchval("SELECT bsn_hash FROM sync_links WHERE nmbrs_id = 101") == "c0" * 32
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE subject = 'employee:101' AND action = 'bsn_changed'")
    # The old BSN's real owner, hired later, is not linked to Anna's card for it: only the refreshed hash tells
    # them apart (same surname and birthday; another first name and e-mail).
    owner = employee(300, first_name="Femke", email_work="femke@zon.nl")
    assert kinds(await handle(event(owner))) == ["needs_decision"]
    assert await db.fetchval("SELECT count(*) FROM sync_links WHERE nmbrs_id = 300") == 0


async def test_the_person_a_bsn_points_at_is_offered_even_when_nothing_else_agrees(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await link_anna(handle, 101)
    anna = await db.fetchval("SELECT crm_id FROM sync_links WHERE nmbrs_id = 101")
    stranger = employee(
        300,
        first_name="Fatima",
        prefix=None,
        last_name="el Amrani",
        birthday=date(1990, 1, 1),
        email_work="fatima@zon.nl",
    )  # Anna's BSN (hash), typed for a new hire by mistake
    (asked,) = await handle(event(stranger))
    assert asked.kind is OutcomeKind.NEEDS_DECISION and anna in asked.details["candidates"]
    assert "correct the BSN in Nmbrs" in (asked.reason or "")


async def test_a_rehire_keeps_every_period_of_service_for_the_leave_calculation(
    handle: Handle, db: asyncpg.Pool
) -> None:
    periods = (
        EmploymentPeriod(employment_id=1, start=date(2025, 1, 1), end=date(2025, 6, 30)),
        EmploymentPeriod(employment_id=2, start=date(2026, 3, 1)),
    )
    contract = (ContractPeriod(contract_id=1, start=date(2025, 1, 1), hours_per_week=Decimal("40")),)
    await handle(event(employee(employments=periods, contracts=contract)), AUTO)
    employee_id = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    assert await db.fetchval("SELECT count(*) FROM rt_employment_periods WHERE employee_id = $1", employee_id) == 2
    await db.execute(
        "INSERT INTO rt_leave_taken (employee_id, taken_on, hours) VALUES ($1, '2025-05-01', 16)", employee_id
    )
    # The 16 h of May 2025 come out of the 2025 entitlement (79.34 h for January to June), which expired
    # on 1 July 2026; 2026 gives 4 x 40 x 306/365 = 134.14 h. Without the first period they would have no
    # entitlement to come from and the balance would be 118.14.
    outcomes = await handle(
        event(
            employee(employments=periods, contracts=contract, first_name="Annie"),
            op=Op.UPDATE,
            before=employee(employments=periods, contracts=contract),
        )
    )
    assert "leave_recalculated" not in kinds(outcomes)  # a name change does not touch leave
    async with db.acquire() as connection:
        _, after = await recalculate_leave(connection, employee_id, date(2026, 11, 28), uuid.uuid4())
    assert after["leave_total"] == "134.14"


async def test_two_employments_of_one_human_do_not_fight_over_the_person_card(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle, 101)  # since 1 January, anna@zon.nl
    later = (EmploymentPeriod(employment_id=9, start=date(2026, 6, 1)),)
    second = await handle(event(employee(205, company_id=2, email_work="anna@techniek.nl", employments=later)))
    assert second[0].kind is OutcomeKind.AUTO_LINKED
    # The employment that started last shows on the person card...
    assert await db.fetchval("SELECT email_work FROM crm_persons WHERE external_ref = 'anna'") == "anna@techniek.nl"
    # ...and a full reconciliation of the other one neither overwrites it nor calls it a local edit.
    again = await handle(event(employee(101), op=Op.READ))
    assert "drift" not in kinds(again)
    assert await db.fetchval("SELECT email_work FROM crm_persons WHERE external_ref = 'anna'") == "anna@techniek.nl"


# Local period edits: a trigger counts them (migration 0008) and only then are the period lists read.
LOCAL_PERIOD_EDITS = {
    "contract hours changed": (
        "contracts",
        "UPDATE rt_contract_periods SET hours_per_week = 32 WHERE employee_id = $1",
    ),
    "contract added": ("contracts", "INSERT INTO rt_contract_periods VALUES ($1, 2, '2027-01-01', NULL, 20)"),
    "schedule added": ("schedules", "INSERT INTO rt_schedule_periods VALUES ($1, '2026-03-01', 24, 60)"),
    "employment deleted": ("employments", "DELETE FROM rt_employment_periods WHERE employee_id = $1"),
    "contracts truncated": ("contracts", "TRUNCATE rt_contract_periods"),
}


# Anna's periods as Nmbrs has them (see tests.builders): what a local edit is overwritten with.
WRITTEN_BACK = {
    "contracts": (
        "rt_contract_periods",
        "contract_id, start_date, end_date, hours_per_week",
        [(1, date(2026, 1, 1), None, Decimal("40.00"))],
    ),
    "schedules": ("rt_schedule_periods", "start_date", []),
    "employments": ("rt_employment_periods", "employment_id, start_date, end_date", [(1, date(2026, 1, 1), None)]),
}


async def anna_employee_id(db: asyncpg.Pool) -> int:
    employee_id: int = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    return employee_id


async def period_edits(db: asyncpg.Pool) -> tuple[int, int]:
    """Anna's (local period edits counted, counted edits the sync has seen)."""
    row = await db.fetchrow(
        """SELECT coalesce(p.edits, 0) AS edits, e.period_edits_seen FROM rt_employees e
           LEFT JOIN rt_period_edits p USING (employee_id) WHERE e.nmbrs_employee_id = 101"""
    )
    return row["edits"], row["period_edits_seen"]


@pytest.mark.parametrize("field, statement", LOCAL_PERIOD_EDITS.values(), ids=LOCAL_PERIOD_EDITS.keys())
async def test_a_local_period_edit_is_reported_as_drift_and_written_back(
    handle: Handle, db: asyncpg.Pool, field: str, statement: str
) -> None:
    await link_anna(handle)
    await db.execute(statement, *([await anna_employee_id(db)] if "$1" in statement else []))
    # A change of another field: the periods themselves did not change in Nmbrs.
    outcomes = await handle(event(employee(last_name="Bergh"), op=Op.UPDATE, before=employee()))
    assert [o.details["field"] for o in outcomes if o.kind is OutcomeKind.DRIFT] == [field]
    table, columns, nmbrs_rows = WRITTEN_BACK[field]
    rows = await db.fetch(f"SELECT {columns} FROM {table} WHERE employee_id = $1", await anna_employee_id(db))
    assert [tuple(row) for row in rows] == nmbrs_rows
    edits, seen = await period_edits(db)
    assert edits == seen  # written back: nothing unseen is left


async def test_the_syncs_own_period_writes_are_not_counted_as_local_edits(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle)
    before = await period_edits(db)
    longer = (ContractPeriod(contract_id=1, start=date(2026, 1, 1), hours_per_week=Decimal("36")),)
    outcomes = await handle(event(employee(contracts=longer), op=Op.UPDATE, before=employee()))
    assert "drift" not in kinds(outcomes)
    edits, seen = await period_edits(db)
    assert edits == seen and edits == before[0]
    assert await db.fetchval(
        "SELECT hours_per_week FROM rt_contract_periods WHERE employee_id = $1", await anna_employee_id(db)
    ) == Decimal("36.00")


async def test_a_period_edit_made_while_a_change_is_applied_is_compared_with_the_next_change(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await link_anna(handle)
    employee_id = await anna_employee_id(db)
    changed = employee(last_name="Bergh")
    async with db.acquire() as connection, connection.transaction():
        store = PostgresTargetStore(connection, today=NOW.date())
        state = await store.record_state("employee", 101, changed.bsn_hash)
        # Someone edits a contract after the sync read the state, before it writes the employee.
        await db.execute("UPDATE rt_contract_periods SET hours_per_week = 32 WHERE employee_id = $1", employee_id)
        plan = reconcile_employee(event(changed, op=Op.UPDATE, before=employee()), state, (), MatchPolicy())
        await store.execute(plan, "employee", 101, changed, uuid.uuid4())
    edits, seen = await period_edits(db)
    assert edits > seen  # not marked as seen: the sync never read it
    outcomes = await handle(event(employee(last_name="Berg"), op=Op.UPDATE, before=changed))
    drift = [o for o in outcomes if o.kind is OutcomeKind.DRIFT]
    assert [d.details["field"] for d in drift] == ["contracts"]
    assert await db.fetchval(
        "SELECT hours_per_week FROM rt_contract_periods WHERE employee_id = $1", employee_id
    ) == Decimal("40.00")


async def test_period_lists_without_unseen_edits_are_not_read_back(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle)
    async with db.acquire() as connection, connection.transaction():
        # A write announced as the sync's is not counted: the next change takes the lists as the sync wrote them.
        await connection.execute(SYNC_WRITER_SQL)
        await connection.execute(
            "UPDATE rt_contract_periods SET hours_per_week = 32 WHERE employee_id = $1", await anna_employee_id(db)
        )
    outcomes = await handle(event(employee(last_name="Bergh"), op=Op.UPDATE, before=employee()))
    assert "drift" not in kinds(outcomes)
    assert await db.fetchval(
        "SELECT hours_per_week FROM rt_contract_periods WHERE employee_id = $1", await anna_employee_id(db)
    ) == Decimal("32.00")


async def test_an_employee_change_waits_for_a_link_of_its_company_in_flight(handle: Handle, db: asyncpg.Pool) -> None:
    await link_anna(handle)  # company 1 is not linked yet: no RegiTijd company
    organisation = await db.fetchval("SELECT organisation_id FROM crm_organisations LIMIT 1")
    async with db.acquire() as link, link.transaction():
        # A link of company 1 (a decision, or its own change event) gives its employees the company...
        await PostgresTargetStore(link, today=NOW.date()).lock_record("company:1")
        company_id = await link.fetchval(
            "INSERT INTO rt_companies (organisation_id, nmbrs_company_id, name) VALUES ($1, 1, 'Zon') "
            "RETURNING company_id",
            organisation,
        )
        await link.execute("UPDATE rt_employees SET company_id = $1 WHERE nmbrs_employee_id = 101", company_id)
        # ...while a change of one of them comes in. It must not write the company it could not see yet.
        change = asyncio.create_task(handle(event(employee(last_name="Bergh"), op=Op.UPDATE, before=employee())))
        await asyncio.sleep(0.5)
        assert not change.done()
    await change
    assert await db.fetchval("SELECT company_id FROM rt_employees WHERE nmbrs_employee_id = 101") == company_id


async def test_one_humans_employments_are_judged_one_after_the_other(handle: Handle, db: asyncpg.Pool) -> None:
    anna = await db.fetchval("SELECT person_id FROM crm_persons WHERE external_ref = 'anna'")
    async with db.acquire() as other, other.transaction():
        # A Koppelen of employment 101 (or another worker) is linking Anna's human...
        await PostgresTargetStore(other, today=NOW.date()).lock_record(human_key(HASH_ANNA))
        await other.execute(
            """INSERT INTO sync_links (entity, nmbrs_id, crm_id, bsn_hash, linked_by, reason)
               VALUES ('employee', 101, $1, $2, 'hr.anja', 'Koppelen')""",
            anna,
            HASH_ANNA,
        )
        # ...while her employment 205 comes in: it waits, instead of being judged without that link.
        second = asyncio.create_task(handle(event(employee(205, company_id=2))))
        await asyncio.sleep(0.5)
        assert not second.done()
    outcomes = await second
    assert outcomes[0].kind is OutcomeKind.AUTO_LINKED and outcomes[0].details["person_id"] == anna


@pytest.mark.parametrize("last_name", ["Yılmaz", "Şahin", "Łukasik", "Dvořák", "Trần", "Mu\u0308ller"])
async def test_a_card_with_any_latin_diacritics_is_offered_as_a_candidate(
    handle: Handle, db: asyncpg.Pool, last_name: str
) -> None:
    person = await db.fetchval(
        "INSERT INTO crm_persons (first_name, last_name) VALUES ('Emre', $1) RETURNING person_id", last_name
    )
    outcomes = await handle(
        event(
            employee(
                first_name="Emre",
                prefix=None,
                last_name=last_name,
                email_work=None,
                birthday=date(1977, 7, 7),
                bsn_hash=None,
            )
        )
    )
    assert outcomes[0].kind is OutcomeKind.NEEDS_DECISION and person in outcomes[0].details["candidates"]


async def test_a_card_with_the_married_name_or_a_typed_tussenvoegsel_is_the_one_linked(
    handle: Handle, db: asyncpg.Pool
) -> None:
    async def card(first_name: str, prefix: str | None, last_name: str, birthday: date) -> int:
        return int(
            await db.fetchval(
                """INSERT INTO crm_persons (first_name, prefix, last_name, birthday, organisation_id)
                   SELECT $1, $2, $3, $4, organisation_id FROM crm_organisations WHERE external_ref = 'org-zon'
                   RETURNING person_id""",
                first_name,
                prefix,
                last_name,
                birthday,
            )
        )

    married = await card("Sanne", "de", "Groot-Visser", date(1984, 5, 6))
    await card("Sanne", None, "Visscher", date(1990, 1, 1))  # a look-alike of the own name
    abbreviated = await card("Jan", "v.d.", "Meer", date(1979, 3, 3))
    sanne = nmbrs_employee(
        130,
        first_name="Sanne",
        prefix=None,
        last_name="Visser",
        partner_prefix="de",
        partner_last_name="Groot",
        name_usage=NameUsage.PARTNER_THEN_OWN,
        birthday=date(1984, 5, 6),
        email_work=None,
        bsn_hash=None,
    )
    outcomes = await handle(event(sanne))
    assert kinds(outcomes) == ["needs_decision"]  # by default a fuzzy match is asked: its explanation says why
    candidates = json.loads(await db.fetchval("SELECT candidates FROM pending_decisions WHERE nmbrs_id = 130"))
    assert candidates[0]["person_id"] == married
    surname = next(c for c in candidates[0]["comparisons"] if c["field"] == "last_name")
    assert surname["level"] == "exact" and "the partner's name then the own" in surname["note"]

    jan = nmbrs_employee(
        131,
        first_name="Jan",
        prefix="van der",
        last_name="Meer",
        birthday=date(1979, 3, 3),
        email_work=None,
        bsn_hash=None,
    )
    assert kinds(await handle(event(jan))) == ["needs_decision"]
    candidates = json.loads(await db.fetchval("SELECT candidates FROM pending_decisions WHERE nmbrs_id = 131"))
    assert candidates[0]["person_id"] == abbreviated
    surname = next(c for c in candidates[0]["comparisons"] if c["field"] == "last_name")
    assert surname["level"] == "exact" and "tussenvoegsel 'v.d.' read as 'van der'" in surname["note"]
