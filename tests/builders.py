"""Test data builders shared by unit and integration tests: Nmbrs records and change events."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from worker.domain.changes import (
    ChangeSource,
    CompanyChanged,
    EmployeeChanged,
    Entity,
    Op,
    ReferenceChanged,
    ReferenceRecord,
)
from worker.domain.nmbrs_records import CodeRef, ContractPeriod, EmploymentPeriod, NmbrsCompany, NmbrsEmployee

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)
HASH_ANNA = "a1" * 32


def nmbrs_employee(employee_id: int = 101, **changes: object) -> NmbrsEmployee:
    """Anna van der Berg, 40 h/week since 1 January 2026 at company 1; override any field."""
    data: dict[str, object] = {
        "employee_id": employee_id,
        "company_id": 1,
        "number": "17",
        "first_name": "Anna",
        "prefix": "van der",
        "last_name": "Berg",
        "birthday": date(1980, 4, 2),
        "email_work": "anna@zon.nl",
        "bsn_hash": HASH_ANNA,
        "function": CodeRef(id=5, code="5", description="Bakker"),
        "department": CodeRef(id=7, code="7", description="Productie"),
        "employments": (EmploymentPeriod(employment_id=1, start=date(2026, 1, 1)),),
        "contracts": (ContractPeriod(contract_id=1, start=date(2026, 1, 1), hours_per_week=Decimal("40")),),
    }
    data.update(changes)
    return NmbrsEmployee.model_validate(data)


def employee_change(
    after: NmbrsEmployee | None, op: Op = Op.CREATE, before: NmbrsEmployee | None = None, version: int = 1
) -> EmployeeChanged:
    """A change event as the poller publishes it; `changed_fields` is derived from before and after."""
    record = after or before
    assert record is not None
    changed = [name for name in NmbrsEmployee.model_fields if getattr(before, name, None) != getattr(after, name, None)]
    fields = tuple(sorted(changed)) if before and after else ()
    return EmployeeChanged(
        event_id=uuid.uuid4(),
        entity=Entity.EMPLOYEE,
        key=f"employee:{record.employee_id}",
        op=op,
        version=version,
        before=before if op in (Op.UPDATE, Op.DELETE) else None,
        after=after,
        changed_fields=fields or (("record",) if op is Op.UPDATE else ()),
        source=ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW),
        ts=NOW,
    )


def company_change(op: Op = Op.CREATE, version: int = 1, **fields: object) -> CompanyChanged:
    """Bakkerij De Zon B.V. (Nmbrs company 1, KvK 88721495); override any field."""
    company = NmbrsCompany.model_validate(
        {"company_id": 1, "name": "Bakkerij De Zon B.V.", "kvk_number": "88721495", **fields}
    )
    return CompanyChanged(
        event_id=uuid.uuid4(),
        entity=Entity.COMPANY,
        key="company:1",
        op=op,
        version=version,
        after=company,
        source=ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW),
        ts=NOW,
    )


def department_change(op: Op, department_id: int = 7, description: str = "Productie") -> ReferenceChanged:
    """A department created (op c) or no longer used (op d)."""
    record = ReferenceRecord(kind="department", id=department_id, code=str(department_id), description=description)
    return ReferenceChanged(
        event_id=uuid.uuid4(),
        entity=Entity.DEPARTMENT,
        key=f"department:{department_id}",
        op=op,
        version=1 if op is Op.CREATE else 2,
        before=record if op is Op.DELETE else None,
        after=None if op is Op.DELETE else record,
        source=ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW),
        ts=NOW,
    )
