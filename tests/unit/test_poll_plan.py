"""One poll's plan and the breaker's verdict on it, as pure functions of the snapshot and what Nmbrs returned."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.builders import nmbrs_employee
from worker.domain.breaker import BreakerPolicy, judge_poll
from worker.domain.changes import ChangeSource, Entity, Op, record_key
from worker.domain.nmbrs_records import CompanySnapshot, NmbrsCompany, NmbrsEmployee
from worker.domain.snapshot_diff import PlannedChange, SnapshotEntry, plan_poll

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
SOURCE = ChangeSource(poll_id=uuid.UUID(int=1), fetched_at=NOW)


def staff(employee_id: int, company_id: int) -> NmbrsEmployee:
    return nmbrs_employee(employee_id, company_id=company_id, number=str(employee_id))


def company(company_id: int) -> NmbrsCompany:
    return NmbrsCompany(company_id=company_id, name=f"Bedrijf {company_id}")


def fetched(company_id: int, *employees: NmbrsEmployee) -> CompanySnapshot:
    return CompanySnapshot(company=company(company_id), employees=employees, fetched_at=NOW)


def stored(planned: list[PlannedChange]) -> dict[str, SnapshotEntry]:
    return {p.snapshot.key: p.snapshot for p in planned}


def ops(planned: list[PlannedChange], entity: Entity) -> dict[str, Op]:
    return {p.event.key: p.event.op for p in planned if p.event.entity is entity}


def first_poll() -> dict[str, SnapshotEntry]:
    snapshots = [fetched(10, staff(1, 10), staff(2, 10)), fetched(20, staff(3, 20))]
    return stored(plan_poll(SOURCE, {}, {}, [company(10), company(20)], snapshots, NOW))


def test_the_first_poll_creates_every_company_employee_and_reference_record() -> None:
    planned = plan_poll(SOURCE, {}, {}, [company(10)], [fetched(10, staff(1, 10))], NOW)
    assert ops(planned, Entity.COMPANY) == {"company:10": Op.CREATE}
    assert ops(planned, Entity.EMPLOYEE) == {"employee:1": Op.CREATE}
    assert ops(planned, Entity.DEPARTMENT) == {"department:7": Op.CREATE}
    assert ops(planned, Entity.FUNCTION) == {"function:5": Op.CREATE}


def test_a_company_whose_fetch_failed_removes_none_of_its_employees_nor_shared_reference_data() -> None:
    previous = first_poll()
    # Company 20 is listed but failed to fetch; company 10 now has employee 1 only.
    planned = plan_poll(SOURCE, previous, {}, [company(10), company(20)], [fetched(10, staff(1, 10))], NOW)
    assert planned == []


def test_employees_and_reference_data_go_only_when_every_company_was_fetched() -> None:
    previous = first_poll()
    planned = plan_poll(SOURCE, previous, {}, [company(10), company(20)], [fetched(10), fetched(20)], NOW)
    assert ops(planned, Entity.EMPLOYEE) == {record_key(Entity.EMPLOYEE, n): Op.DELETE for n in (1, 2, 3)}
    assert ops(planned, Entity.DEPARTMENT) == {"department:7": Op.DELETE}


def test_a_company_missing_from_the_list_is_removed_and_the_breaker_holds_that() -> None:
    previous = first_poll()
    snapshots = [fetched(10, staff(1, 10), staff(2, 10))]
    planned = plan_poll(SOURCE, previous, {}, [company(10)], snapshots, NOW)
    assert ops(planned, Entity.COMPANY) == {"company:20": Op.DELETE}
    verdict = judge_poll(previous, snapshots, planned, BreakerPolicy())
    assert verdict.tripped and "company 20 is no longer listed by Nmbrs" in verdict.reasons


def test_the_breaker_counts_only_companies_fetched_now() -> None:
    previous = first_poll()
    snapshots = [fetched(10, staff(1, 10), staff(2, 10))]  # company 20 failed
    planned = plan_poll(SOURCE, previous, {}, [company(10), company(20)], snapshots, NOW)
    verdict = judge_poll(previous, snapshots, planned, BreakerPolicy())
    assert not verdict.tripped
    assert verdict.counts["previous"] == 2 and verdict.counts["fetched"] == 2 and verdict.counts["dropped"] == 0


def test_the_breaker_holds_a_poll_that_empties_a_company() -> None:
    previous = first_poll()
    snapshots = [fetched(10, staff(1, 10), staff(2, 10)), fetched(20)]
    planned = plan_poll(SOURCE, previous, {}, [company(10), company(20)], snapshots, NOW)
    verdict = judge_poll(previous, snapshots, planned, BreakerPolicy())
    assert verdict.tripped and "all 1 employees of company 20 removed" in verdict.reasons
