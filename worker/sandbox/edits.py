"""What a hire, a change or a move does to the histories Nmbrs keeps, applied to the sandbox's dataset.

The body formats are those of the admin API (see worker/sandbox/admin_api.py). These functions raise
ValidationError, KeyError or ValueError for a body that does not fit, and SoapFault for an unknown company.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from worker.domain.naamstelling import NameUsage
from worker.sandbox.dataset import (
    Address,
    Assignment,
    Company,
    Contract,
    Employee,
    Employment,
    LabourAgreementAssignment,
    PersonalInfo,
    Schedule,
)
from worker.sandbox.state import SandboxState


def new_employee(state: SandboxState, body: dict[str, Any]) -> Employee:
    """The short hire form: one record in each history, starting on `start`."""
    start = date.fromisoformat(body["start"])
    company = state.company(int(body["company_id"]))
    created = datetime.combine(state.dataset.reference_date, datetime.min.time())
    highest = max(state.by_id, default=0)
    record = highest * 10  # record ids: above any employee id
    hours = float(body.get("hours_per_week", 40))
    function = body.get("function", {"id": 1, "code": 1, "description": "Medewerker"})
    department = body.get("department", {"id": 1, "code": 1, "description": "Algemeen"})
    agreement = next((a for a in company.labour_agreements if a.default), None) or next(
        iter(company.labour_agreements), None
    )
    numbers = [e.number for e in state.by_company.get(company.id, [])]
    return Employee(
        id=max(100_000, highest) + 1,
        company_id=company.id,
        number=max([0, *numbers]) + 1,
        bsn=body.get("bsn", ""),
        personal_info=[
            PersonalInfo(
                id=record + 1,
                start_year=start.year,
                start_period=start.month,
                created=created,
                first_name=body.get("first_name"),
                prefix=body.get("prefix"),
                last_name=body["last_name"],
                partner_prefix=body.get("partner_prefix"),
                partner_last_name=body.get("partner_last_name"),
                name_usage=body.get("name_usage", NameUsage.OWN),
                gender=body.get("gender", "undefined"),
                email_work=body.get("email_work"),
            )
        ],
        employments=[Employment(employment_id=record + 2, created=created, start=start, initial_start=start)],
        functions=[_assignment(record + 3, function, start, created)],
        departments=[_assignment(record + 4, department, start, created)],
        contracts=[
            Contract(contract_id=record + 5, created=created, start=start, indefinite=True, hours_per_week=hours)
        ],
        schedules=[_schedule(record + 6, hours, start, created)],
        addresses=[_address(record + 7, body["address"], start, created)] if body.get("address") else [],
        labour_agreements=(
            [
                LabourAgreementAssignment(
                    start_year=start.year, start_period=start.month, labour_agreement_id=agreement.id
                )
            ]
            if agreement
            else []
        ),
    )


def change_employee(state: SandboxState, employee: Employee, body: dict[str, Any], as_of: date) -> int | None:
    """Apply each change in `body` from `as_of`; returns the new employee's id when it moved company.

    Only a move touches the state's indexes (it adds the new employee), so they hold also when a change
    fails half-way.
    """
    created = datetime.now().replace(microsecond=0)
    record = max(
        [
            0,
            *(r.record_id for r in employee.functions + employee.departments),
            *(s.id for s in employee.schedules),
            *(a.id for a in employee.addresses),
        ]
    )
    if "function" in body:
        employee.functions.append(_assignment(record + 1, body["function"], as_of, created))
    if "department" in body:
        employee.departments.append(_assignment(record + 2, body["department"], as_of, created))
    if "hours_per_week" in body:
        hours = float(body["hours_per_week"])
        employee.schedules.append(_schedule(record + 3, hours, as_of, created))
        for contract in employee.contracts:
            if contract.start <= as_of and (contract.end is None or contract.end >= as_of):
                contract.hours_per_week = hours
    if "labour_agreement_id" in body:
        employee.labour_agreements.append(
            LabourAgreementAssignment(
                start_year=as_of.year,
                start_period=as_of.month,
                labour_agreement_id=int(body["labour_agreement_id"]),
            )
        )
    if "personal_info" in body:
        latest = employee.current_personal_info()
        update = {"id": latest.id + 1_000_000, "start_year": as_of.year, "start_period": as_of.month}
        changed = latest.model_copy(update={**update, "created": created})
        employee.personal_info.append(PersonalInfo.model_validate({**changed.model_dump(), **body["personal_info"]}))
    if "address" in body:
        _move_house(employee, _address(record + 4, body["address"], as_of, created))
    if "end" in body:
        end = date.fromisoformat(body["end"])
        _open_end(employee.employments, end)
        _open_end(employee.contracts, end)
    if "company_id" in body and int(body["company_id"]) != employee.company_id:
        return _move(state, employee, state.company(int(body["company_id"])), as_of)
    return None


def _assignment(record_id: int, ref: dict[str, Any], start: date, created: datetime) -> Assignment:
    return Assignment(
        record_id=record_id,
        ref_id=int(ref["id"]),
        code=int(ref.get("code", ref["id"])),
        description=ref["description"],
        start_year=start.year,
        start_period=start.month,
        created=created,
    )


def _address(record_id: int, address: dict[str, Any], start: date, created: datetime) -> Address:
    """A home address from `start` (the short form: street, house_number, postal_code, city, ...)."""
    return Address.model_validate(
        {"id": record_id, "start_year": start.year, "start_period": start.month, "created": created, **address}
    )


def _schedule(record_id: int, hours: float, start: date, created: datetime) -> Schedule:
    week1 = [round(hours / 5, 2)] * 5 + [0.0, 0.0]
    return Schedule(id=record_id, created=created, start=start, week1=week1, parttime_percentage=hours / 40 * 100)


def _open_end(records: list[Any], end: date) -> None:
    for record in records:
        if record.end is None or record.end > end:
            record.end = end
            if isinstance(record, Contract):
                record.indefinite = False


def _move_house(employee: Employee, new: Address) -> None:
    """A new home address: the open home addresses end with the period before it starts."""
    year, period = (new.start_year, new.start_period - 1) if new.start_period > 1 else (new.start_year - 1, 12)
    for address in employee.addresses:
        if address.type == new.type and address.end_year is None:
            address.end_year, address.end_period = year, period
    employee.addresses.append(new)


def _home_address(employee: Employee) -> dict[str, Any] | None:
    """The latest home address as the short form, to carry over to a new employment."""
    homes = [a for a in employee.addresses if a.type == "HomeAddress"]
    latest = max(homes, key=lambda a: (a.start_year, a.start_period, a.created), default=None)
    if latest is None:
        return None
    return latest.model_dump(include={"street", "house_number", "house_number_addition", "postal_code", "city"})


def _move(state: SandboxState, employee: Employee, target: Company, as_of: date) -> int:
    """A move to another company is, in Nmbrs, an end here and a new employee there (same BSN)."""
    _open_end(employee.employments, as_of - timedelta(days=1))
    _open_end(employee.contracts, as_of - timedelta(days=1))
    person = employee.current_personal_info()
    hours = employee.schedules[-1].hours_per_week() if employee.schedules else 40.0
    new = new_employee(
        state,
        {
            "company_id": target.id,
            "start": as_of.isoformat(),
            "first_name": person.first_name,
            "prefix": person.prefix,
            "last_name": person.last_name,
            "partner_prefix": person.partner_prefix,
            "partner_last_name": person.partner_last_name,
            "name_usage": person.name_usage,
            "gender": person.gender,
            "hours_per_week": hours,
            "bsn": employee.bsn,
            "address": _home_address(employee),
            **({"function": _ref(employee.functions[-1])} if employee.functions else {}),
            **({"department": _ref(employee.departments[-1])} if employee.departments else {}),
        },
    )
    state.add_employee(new)
    return new.id


def _ref(assignment: Assignment) -> dict[str, Any]:
    return {"id": assignment.ref_id, "code": assignment.code, "description": assignment.description}
