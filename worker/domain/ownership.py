"""Field ownership: which fields Nmbrs owns (overwritten by every sync) and which stay local (never touched).

The RegiTijd/RegiCRM side keeps, per synced record, the Nmbrs-owned values it last wrote ("synced").
A local value that differs from what the sync last wrote was edited by hand since: the next sync
overwrites it (Nmbrs owns it) and reports the drift, naming the field, the local and the Nmbrs value.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from worker.domain.naamstelling import display_surname
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee

# Person data (RegiCRM persoonskaart): name and contact data are owned by Nmbrs.
PERSON_FIELDS: tuple[str, ...] = (
    "first_name",
    "initials",
    "prefix",
    "last_name",
    "birthday",
    "gender",
    "email_work",
    "email_private",
    "phone_work",
    "phone_mobile",
    "phone_private",
)
# Employment data (RegiTijd medewerker): function, department, CAO, company, contract, schedule, dates.
EMPLOYEE_FIELDS: tuple[str, ...] = (
    "number",
    "nmbrs_company_id",
    "function_id",
    "department_id",
    "labour_agreement_id",
    "employment_start",
    "employment_end",
    "employments",
    "contracts",
    "schedules",
)
NMBRS_OWNED_EMPLOYEE_FIELDS = PERSON_FIELDS + EMPLOYEE_FIELDS
# Never written by the sync (domain.md, rule 8): they are entered in RegiTijd/RegiCRM by hand.
LOCAL_EMPLOYEE_FIELDS: tuple[str, ...] = (
    "manager_employee_id",
    "is_manager",
    "leave_adjustments",
    "leave_taken",
    "overtime",
    "overtime_payouts",
    "characteristics",
    "account",
    "roles",
    "time_categories",
)
# A change in any of these changes the leave entitlement.
LEAVE_FIELDS = frozenset(
    {"employment_start", "employment_end", "employments", "contracts", "schedules", "labour_agreement_id"}
)

CENTS = Decimal("0.01")

NMBRS_OWNED_COMPANY_FIELDS: tuple[str, ...] = ("name", "kvk_number", "email", "phone", "website")


# Fields holding the Nmbrs id of a reference (rt_departments, rt_functions, rt_labour_agreements): people know
# these by name, so messages say what they stand for, not the id.
REFERENCE_LABELS: dict[str, str] = {
    "department_id": "department",
    "function_id": "function",
    "labour_agreement_id": "CAO",
}


def reference_names(employee: NmbrsEmployee) -> dict[str, str]:
    """The names of the employee's references, by the field employee_values keeps their id in."""
    refs = {
        "department_id": employee.department,
        "function_id": employee.function,
        "labour_agreement_id": employee.labour_agreement,
    }
    return {field: ref.description for field, ref in refs.items() if ref is not None}


class FieldDrift(BaseModel):
    """A Nmbrs-owned field someone edited locally, about to be overwritten with the Nmbrs value."""

    model_config = ConfigDict(frozen=True)

    field: str
    local_value: Any
    nmbrs_value: Any


def employee_values(employee: NmbrsEmployee) -> dict[str, Any]:
    """The Nmbrs-owned values of an employee in the shape the target store keeps them (JSON types)."""
    data = employee.model_dump(mode="json")
    latest = max(employee.employments, key=lambda period: period.start, default=None)
    values: dict[str, Any] = {name: data[name] for name in PERSON_FIELDS}
    # The card carries the surname the employee goes by (the naamstelling), as Nmbrs and Dutch HR print it.
    surname = display_surname(
        employee.name_usage, employee.prefix, employee.last_name, employee.partner_prefix, employee.partner_last_name
    )
    values.update(prefix=surname.prefix or None, last_name=surname.last_name)
    values.update(
        number=employee.number,
        nmbrs_company_id=employee.company_id,
        function_id=employee.function.id if employee.function else None,
        department_id=employee.department.id if employee.department else None,
        labour_agreement_id=employee.labour_agreement.id if employee.labour_agreement else None,
        employment_start=latest.start.isoformat() if latest else None,
        employment_end=latest.end.isoformat() if latest and latest.end else None,
        employments=[
            {"employment_id": e["employment_id"], "start": e["start"], "end": e["end"]}
            for e in sorted(data["employments"], key=lambda e: (e["start"], e["employment_id"]))
        ],
        contracts=[
            {
                "contract_id": c["contract_id"],
                "start": c["start"],
                "end": c["end"],
                "hours_per_week": hours_text(c["hours_per_week"]),
            }
            for c in sorted(data["contracts"], key=lambda c: (c["start"], c["contract_id"]))
        ],
        schedules=[
            {
                "start": s["start"],
                "hours_per_week": hours_text(s["hours_per_week"]),
                "parttime_percentage": hours_text(s["parttime_percentage"]),
            }
            for s in sorted(data["schedules"], key=lambda s: s["start"])
        ],
    )
    return values


def hours_text(value: Decimal | str | None) -> str | None:
    """Hours as text with two decimals ('32.00'): the form the store keeps, so equal values compare equal.
    Halves round away from zero, as PostgreSQL rounds into numeric(6, 2) ('36.125' is stored as 36.13)."""
    return None if value is None else str(Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP))


def company_values(company: NmbrsCompany) -> dict[str, Any]:
    data = company.model_dump(mode="json")
    return {name: data[name] for name in NMBRS_OWNED_COMPANY_FIELDS}


def differing_fields(current: dict[str, Any], incoming: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(name for name in incoming if current.get(name) != incoming[name]))


def detect_drift(
    synced: dict[str, Any] | None, local: dict[str, Any], incoming: dict[str, Any]
) -> tuple[FieldDrift, ...]:
    """Fields edited locally since the last sync that the incoming Nmbrs value will overwrite.

    Without a record of what the sync last wrote (a record linked by hand from existing data) any
    difference counts: the local value is not Nmbrs', and it is about to be replaced.
    """
    drifts = []
    for name, nmbrs_value in incoming.items():
        local_value = local.get(name)
        if local_value == nmbrs_value:
            continue
        if synced is None or synced.get(name) != local_value:
            drifts.append(FieldDrift(field=name, local_value=local_value, nmbrs_value=nmbrs_value))
    return tuple(drifts)
