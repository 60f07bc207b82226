"""One poll's plan, company by company, and the breaker's verdict on it, as pure functions of the stored rows and
what Nmbrs returned (the poller reads the rows and stages the plan; tests/integration/test_poller.py runs it whole)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from tests.builders import nmbrs_employee
from worker.domain.breaker import BreakerPolicy
from worker.domain.changes import ChangeSource, Entity, Op, record_key
from worker.domain.nmbrs_records import CodeRef, CompanySnapshot, NmbrsCompany, NmbrsEmployee
from worker.domain.poll_tally import PollTally
from worker.domain.snapshot_diff import (
    PlannedChange,
    PublishedAhead,
    SnapshotEntry,
    StoredRows,
    employee_fingerprints,
    plan_company,
    plan_one_employee,
    plan_removals,
    plan_shared,
    records_to_read,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
SOURCE = ChangeSource(poll_id=uuid.UUID(int=1), fetched_at=NOW)
NOTHING = StoredRows(snapshot={}, ahead={})


def staff(employee_id: int, company_id: int) -> NmbrsEmployee:
    return nmbrs_employee(employee_id, company_id=company_id, number=str(employee_id))


def company(company_id: int) -> NmbrsCompany:
    return NmbrsCompany(company_id=company_id, name=f"Bedrijf {company_id}")


def fetched(company_id: int, *employees: NmbrsEmployee) -> CompanySnapshot:
    return CompanySnapshot(company=company(company_id), employees=employees, fetched_at=NOW)


def ops(planned: Iterable[PlannedChange], entity: Entity) -> dict[str, Op]:
    return {p.event.key: p.event.op for p in planned if p.event.entity is entity}


def key(employee_id: int) -> str:
    return record_key(Entity.EMPLOYEE, employee_id)


class Stored:
    """The rows a first poll of companies 10 (employees 1, 2) and 20 (employee 3) stored, selected as the store
    selects them."""

    def __init__(self) -> None:
        snapshots = [fetched(10, staff(1, 10), staff(2, 10)), fetched(20, staff(3, 20))]
        tally = PollTally()
        planned = []
        for snapshot in snapshots:
            plan = plan_company(SOURCE, snapshot, NOTHING, NOW)
            tally.add_company(plan)
            planned += plan.planned
        planned += plan_shared(SOURCE, NOTHING, [company(10), company(20)], tally.references, True, NOW)
        self.rows = {p.snapshot.key: p.snapshot for p in planned}

    def company(self, snapshot: CompanySnapshot, ahead: dict[str, PublishedAhead] | None = None) -> StoredRows:
        listed = {key(e.employee_id) for e in snapshot.employees}
        cid = snapshot.company.company_id
        rows = {
            k: e for k, e in self.rows.items() if e.entity is Entity.EMPLOYEE and (e.company_id == cid or k in listed)
        }
        return StoredRows(snapshot=rows, ahead=ahead or {})

    def shared(self) -> StoredRows:
        return StoredRows(snapshot={k: e for k, e in self.rows.items() if e.entity is not Entity.EMPLOYEE}, ahead={})

    def keys(self, keys: Iterable[str]) -> StoredRows:
        return StoredRows(snapshot={k: self.rows[k] for k in keys if k in self.rows}, ahead={})

    def active_by_company(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for entry in self.rows.values():
            if entry.entity is Entity.EMPLOYEE and not entry.deleted and entry.company_id is not None:
                counts[entry.company_id] = counts.get(entry.company_id, 0) + 1
        return counts


def test_the_first_poll_creates_every_company_employee_and_reference_record() -> None:
    plan = plan_company(SOURCE, fetched(10, staff(1, 10)), NOTHING, NOW)
    shared = plan_shared(SOURCE, NOTHING, [company(10)], plan.references, True, NOW)
    assert ops(plan.planned, Entity.EMPLOYEE) == {"employee:1": Op.CREATE}
    assert ops(shared, Entity.COMPANY) == {"company:10": Op.CREATE}
    assert ops(shared, Entity.DEPARTMENT) == {"department:7": Op.CREATE}
    assert ops(shared, Entity.FUNCTION) == {"function:5": Op.CREATE}
    assert plan.fetched == 1 and not plan.missing and not plan.arrived


def test_a_company_that_no_longer_lists_an_employee_plans_no_removal_but_names_it_missing() -> None:
    stored = Stored()
    snapshot = fetched(10, staff(1, 10))
    plan = plan_company(SOURCE, snapshot, stored.company(snapshot), NOW)
    assert plan.planned == [] and plan.missing == {key(2)} and not plan.arrived


def test_reference_data_goes_only_when_every_company_was_fetched() -> None:
    stored = Stored()
    # Nobody uses department 7 any more in the companies that came back.
    companies = [company(10), company(20)]
    assert plan_shared(SOURCE, stored.shared(), companies, {}, False, NOW) == []
    gone = plan_shared(SOURCE, stored.shared(), companies, {}, True, NOW)
    assert ops(gone, Entity.DEPARTMENT) == {"department:7": Op.DELETE}
    assert ops(gone, Entity.FUNCTION) == {"function:5": Op.DELETE}


def test_an_employee_listed_by_another_company_now_is_an_update_there_and_no_removal_candidate() -> None:
    stored = Stored()
    left, joined = fetched(10, staff(1, 10)), fetched(20, staff(3, 20), staff(2, 20))
    tally = PollTally()
    for snapshot in (left, joined):
        tally.add_company(plan_company(SOURCE, snapshot, stored.company(snapshot), NOW))
    moved = plan_company(SOURCE, joined, stored.company(joined), NOW)
    assert ops(moved.planned, Entity.EMPLOYEE) == {key(2): Op.UPDATE} and moved.arrived == {key(2)}
    assert "company_id" in moved.planned[0].event.changed_fields
    assert tally.removal_candidates([]) == []
    assert tally.breaker.moved == 1


def test_employees_stored_under_a_company_nmbrs_no_longer_lists_are_removal_candidates() -> None:
    stored = Stored()
    snapshot = fetched(10, staff(1, 10), staff(2, 10))
    tally = PollTally()
    tally.add_company(plan_company(SOURCE, snapshot, stored.company(snapshot), NOW))
    candidates = tally.removal_candidates([key(3)])  # company 20 is gone from the list
    assert candidates == [key(3)]
    removals = plan_removals(SOURCE, stored.keys(candidates), NOW)
    assert ops(removals, Entity.EMPLOYEE) == {key(3): Op.DELETE}
    assert removals[0].snapshot.deleted and removals[0].event.before == staff(3, 20)


def test_a_removal_only_a_cut_off_poll_announced_is_a_candidate_of_the_company_it_announced_it_under() -> None:
    stored = Stored()
    hired = plan_company(SOURCE, fetched(10, staff(9, 10)), NOTHING, NOW).planned[0].snapshot
    ahead = {key(9): PublishedAhead(op=Op.CREATE, entry=hired)}
    snapshot = fetched(10, staff(1, 10), staff(2, 10))
    plan = plan_company(SOURCE, snapshot, stored.company(snapshot, ahead), NOW)
    assert plan.missing == {key(9)}
    (removal,) = plan_removals(SOURCE, StoredRows(snapshot={}, ahead=ahead), NOW)
    assert removal.event.op is Op.DELETE and removal.event.version == hired.version + 1


def test_a_company_missing_from_the_list_is_removed_and_the_breaker_holds_that() -> None:
    stored = Stored()
    snapshot = fetched(10, staff(1, 10), staff(2, 10))
    tally = PollTally()
    tally.add_company(plan_company(SOURCE, snapshot, stored.company(snapshot), NOW))
    shared = plan_shared(SOURCE, stored.shared(), [company(10)], tally.references, True, NOW)
    tally.add(shared)
    assert ops(shared, Entity.COMPANY) == {"company:20": Op.DELETE}
    verdict = tally.verdict(stored.active_by_company(), {10}, BreakerPolicy())
    assert verdict.tripped and "company 20 is no longer listed by Nmbrs" in verdict.reasons


def test_the_breaker_counts_only_companies_fetched_now() -> None:
    stored = Stored()
    snapshot = fetched(10, staff(1, 10), staff(2, 10))  # company 20 failed
    tally = PollTally()
    tally.add_company(plan_company(SOURCE, snapshot, stored.company(snapshot), NOW))
    verdict = tally.verdict(stored.active_by_company(), {10}, BreakerPolicy())
    assert not verdict.tripped
    assert verdict.counts["previous"] == 2 and verdict.counts["fetched"] == 2 and verdict.counts["dropped"] == 0


def test_the_breaker_holds_a_poll_that_empties_a_company() -> None:
    stored = Stored()
    tally = PollTally()
    for snapshot in (fetched(10, staff(1, 10), staff(2, 10)), fetched(20)):
        tally.add_company(plan_company(SOURCE, snapshot, stored.company(snapshot), NOW))
    candidates = tally.removal_candidates([])
    assert candidates == [key(3)]
    tally.add(plan_removals(SOURCE, stored.keys(candidates), NOW))
    verdict = tally.verdict(stored.active_by_company(), {10, 20}, BreakerPolicy())
    assert verdict.tripped and "all 1 employees of company 20 removed" in verdict.reasons
    assert tally.changes == {"employee:d": 1}


def test_only_rows_stored_under_the_company_itself_can_go_missing_from_it() -> None:
    # Employee 4 is stored under company 10: company 20 not listing it says nothing about it.
    stored = Stored()
    snapshot = fetched(20, staff(3, 20))
    rows = stored.company(snapshot)
    extra = SnapshotEntry.model_validate(rows.snapshot[key(3)].model_dump() | {"key": key(4), "company_id": 10})
    plan = plan_company(SOURCE, snapshot, StoredRows(snapshot={**rows.snapshot, key(4): extra}, ahead={}), NOW)
    assert plan.planned == [] and not plan.missing and not plan.arrived


def test_a_no_change_poll_needs_no_stored_record_and_an_update_needs_its_before() -> None:
    stored = Stored()
    snapshot = fetched(10, staff(1, 10), staff(2, 10).model_copy(update={"last_name": "Bergen"}))
    rows = stored.company(snapshot)
    light = StoredRows(snapshot={k: e.model_copy(update={"record": None}) for k, e in rows.snapshot.items()}, ahead={})
    prints = employee_fingerprints(snapshot)
    assert records_to_read(light, prints) == [key(2)]
    with pytest.raises(ValueError, match="employee:2: its stored record was needed and not read"):
        plan_company(SOURCE, snapshot, light, NOW, prints)
    read = light.with_records({key(2): rows.snapshot[key(2)].stored_record()})
    (update,) = plan_company(SOURCE, snapshot, read, NOW, prints).planned
    assert update.event.op is Op.UPDATE and update.event.changed_fields == ("last_name",)
    assert update.event.before == staff(2, 10)


# --- one employee re-read ("sync this employee now") ----------------------------------------------------------

FULL = SOURCE.model_copy(update={"poll_id": uuid.UUID(int=2), "full": True})


def test_one_employee_re_read_updates_it_and_nobody_else_and_removes_nothing() -> None:
    stored = Stored()
    moved_department = CodeRef(id=8, code="8", description="Expeditie")
    # Company 10 lists employee 1 in another department; employee 2, unchanged, is no part of the re-read.
    now_fetched = fetched(10, staff(1, 10).model_copy(update={"department": moved_department}), staff(2, 10))
    planned = plan_one_employee(FULL, now_fetched, 1, stored.keys([key(1)]), stored.shared(), NOW)
    assert planned is not None
    assert ops(planned, Entity.EMPLOYEE) == {"employee:1": Op.UPDATE}
    (update,) = [p for p in planned if p.event.entity is Entity.EMPLOYEE]
    assert update.event.changed_fields == ("department",) and update.snapshot.version == 2
    # The new department is created; the stored ones are read (a full read), none removed; no company planned.
    assert ops(planned, Entity.DEPARTMENT) == {"department:8": Op.CREATE}
    assert ops(planned, Entity.FUNCTION) == {"function:5": Op.READ}
    assert ops(planned, Entity.COMPANY) == {}
    assert all(p.event.op is not Op.DELETE for p in planned)


def test_one_unchanged_employee_is_read_again_so_the_reconciler_corrects_drift() -> None:
    stored = Stored()
    planned = plan_one_employee(FULL, fetched(20, staff(3, 20)), 3, stored.keys([key(3)]), stored.shared(), NOW)
    assert planned is not None
    (read,) = [p for p in planned if p.event.entity is Entity.EMPLOYEE]
    assert (read.event.op, read.event.version) == (Op.READ, 1)


def test_one_employee_its_company_no_longer_lists_is_left_to_the_next_poll() -> None:
    stored = Stored()
    assert plan_one_employee(FULL, fetched(10, staff(2, 10)), 1, stored.keys([key(1)]), stored.shared(), NOW) is None
