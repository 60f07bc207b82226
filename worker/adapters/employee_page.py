"""Read-only queries behind the HR web app's employee page: one RegiTijd employee with what the sync owns, what
is kept locally, the RegiCRM card, the open follow-up tasks and the pick lists their controls need (asyncpg).

The page sends no SQL of its own anywhere: changes go out as follow-up commands, as every frontend's do.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from pydantic import Field

from worker.adapters import crm_search
from worker.adapters.hr_queries import EmployeeTasks, FrozenView, open_tasks, person_name
from worker.domain.events import Outcome, PollReport
from worker.domain.leave import LeaveResult
from worker.domain.target_state import CHARACTERISTICS


class Period(FrozenView):
    start: date
    end: date | None = None
    hours_per_week: Decimal | None = None


class TimeCategory(FrozenView):
    code: str
    name: str


class TaskDone(FrozenView):
    task: str
    done_by: str
    done_at: datetime


class ColleagueHit(FrozenView):
    """A RegiTijd employee found by name (type-ahead for the employee page and for choosing a manager)."""

    employee_id: int
    person_id: int
    name: str
    company_name: str | None = None
    number: str | None = None
    active: bool
    blue: bool = Field(description="Entered by hand in RegiTijd ('blauw'): never touched by the sync.")


class PersonOnlyHit(FrozenView):
    """A RegiCRM person without a RegiTijd employee: found, shown, but there is no employee page to open."""

    person_id: int
    name: str
    organisation_name: str | None = None


class EmployeeSearch(FrozenView):
    text: str
    employees: tuple[ColleagueHit, ...]
    persons: tuple[PersonOnlyHit, ...]
    more: bool = Field(description="More match than shown: type more of the name.")


class EmployeeDetail(FrozenView):
    employee_id: int
    person_id: int
    name: str
    blue: bool = Field(description="Entered by hand in RegiTijd ('blauw'): never touched by the sync.")
    active: bool
    nmbrs_employee_id: int | None
    # Owned by Nmbrs: written by every sync, a local edit is overwritten (and reported as drift).
    number: str | None
    company_name: str | None
    function: str | None
    department: str | None
    labour_agreement: str | None
    employment_start: date | None
    employment_end: date | None
    contracts: tuple[Period, ...]
    schedules: tuple[Period, ...]
    # Kept locally: the sync never changes these.
    manager_employee_id: int | None
    manager_name: str | None
    is_manager: bool
    characteristics: tuple[str, ...]
    time_categories: tuple[TimeCategory, ...]
    account_username: str | None
    account_roles: tuple[str, ...]
    tasks_done: tuple[TaskDone, ...]
    card: dict[str, Any] = Field(description="The RegiCRM person card, field by field.")
    organisation_name: str | None
    linked_by: str | None = Field(description="'auto' or the user whose decision linked the Nmbrs record.")
    linked_at: datetime | None
    question_open: bool = Field(description="The Nmbrs record has an open question (Vragen).")
    has_contract_today: bool
    tasks: EmployeeTasks | None = Field(description="The open follow-up tasks; None when there are none.")
    all_characteristics: tuple[str, ...] = CHARACTERISTICS
    all_time_categories: tuple[TimeCategory, ...] = ()


CARD_FIELDS = (
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
    "postcode",
)


async def employee_detail(connection: asyncpg.Connection, employee_id: int, today: date) -> EmployeeDetail | None:
    """Everything the employee page shows of RegiTijd employee `employee_id`; None when there is no such one."""
    row = await connection.fetchrow(
        f"""SELECT e.*, {", ".join(f"p.{f}" for f in CARD_FIELDS)}, o.name AS organisation_name,
                   c.name AS company_name, f.description AS function, d.description AS department,
                   l.description AS labour_agreement,
                   mp.first_name AS m_first, mp.prefix AS m_prefix, mp.last_name AS m_last,
                   a.username, a.roles, s.linked_by, s.linked_at,
                   EXISTS (SELECT 1 FROM pending_decisions q WHERE q.entity = 'employee'
                           AND q.nmbrs_id = e.nmbrs_employee_id) AS question_open,
                   EXISTS (SELECT 1 FROM rt_contract_periods k WHERE k.employee_id = e.employee_id
                           AND k.start_date <= $2 AND (k.end_date IS NULL OR k.end_date >= $2)) AS has_contract
            FROM rt_employees e
            JOIN crm_persons p ON p.person_id = e.person_id
            LEFT JOIN crm_organisations o ON o.organisation_id = p.organisation_id
            LEFT JOIN rt_companies c ON c.company_id = e.company_id
            LEFT JOIN rt_functions f ON f.nmbrs_id = e.function_id
            LEFT JOIN rt_departments d ON d.nmbrs_id = e.department_id
            LEFT JOIN rt_labour_agreements l ON l.nmbrs_id = e.labour_agreement_id
            LEFT JOIN rt_employees m ON m.employee_id = e.manager_employee_id
            LEFT JOIN crm_persons mp ON mp.person_id = m.person_id
            LEFT JOIN crm_accounts a ON a.person_id = e.person_id
            LEFT JOIN sync_links s ON s.entity = 'employee' AND s.nmbrs_id = e.nmbrs_employee_id
            WHERE e.employee_id = $1""",
        employee_id,
        today,
    )
    if row is None:
        return None
    contracts = await connection.fetch(
        """SELECT start_date AS start, end_date AS end, hours_per_week FROM rt_contract_periods
           WHERE employee_id = $1 ORDER BY start_date""",
        employee_id,
    )
    schedules = await connection.fetch(
        """SELECT start_date AS start, hours_per_week FROM rt_schedule_periods WHERE employee_id = $1
           ORDER BY start_date""",
        employee_id,
    )
    characteristics = await connection.fetch(
        "SELECT characteristic FROM crm_characteristics WHERE person_id = $1 ORDER BY characteristic", row["person_id"]
    )
    categories = await connection.fetch("SELECT category_id, code, name FROM rt_time_categories ORDER BY code")
    linked = {
        r["category_id"]
        for r in await connection.fetch(
            "SELECT category_id FROM rt_employee_time_categories WHERE employee_id = $1", employee_id
        )
    }
    done = await connection.fetch(
        "SELECT task, done_by, done_at FROM rt_tasks_done WHERE employee_id = $1 ORDER BY done_at", employee_id
    )
    tasks = await open_tasks(connection, employee_id)
    manager = row["manager_employee_id"]
    return EmployeeDetail(
        employee_id=employee_id,
        person_id=row["person_id"],
        name=person_name(row["first_name"], row["prefix"], row["last_name"]),
        blue=row["source"] == "manual",
        active=row["active"],
        nmbrs_employee_id=row["nmbrs_employee_id"],
        number=row["number"],
        company_name=row["company_name"],
        function=row["function"],
        department=row["department"],
        labour_agreement=row["labour_agreement"],
        employment_start=row["employment_start"],
        employment_end=row["employment_end"],
        contracts=tuple(Period(**r) for r in contracts),
        schedules=tuple(Period(**r) for r in schedules),
        manager_employee_id=manager,
        manager_name=person_name(row["m_first"], row["m_prefix"], row["m_last"]) if manager else None,
        is_manager=row["is_manager"],
        characteristics=tuple(r["characteristic"] for r in characteristics),
        time_categories=tuple(
            TimeCategory(code=r["code"], name=r["name"]) for r in categories if r["category_id"] in linked
        ),
        account_username=row["username"],
        account_roles=tuple(row["roles"] or ()),
        tasks_done=tuple(TaskDone(**r) for r in done),
        card={f: row[f] for f in CARD_FIELDS},
        organisation_name=row["organisation_name"],
        linked_by=row["linked_by"],
        linked_at=row["linked_at"],
        question_open=row["question_open"],
        has_contract_today=row["has_contract"],
        tasks=tasks[0] if tasks else None,
        all_time_categories=tuple(TimeCategory(code=r["code"], name=r["name"]) for r in categories),
    )


async def find_employees(connection: asyncpg.Connection, text: str, limit: int = 10) -> EmployeeSearch:
    """RegiTijd employees (and RegiCRM persons without one) by name, as the RegiCRM search reads a name: accents,
    tussenvoegsels, initials, dates and e-mail addresses."""
    found = await crm_search.search(connection, text, limit=limit)
    person_ids = [p.person_id for p in found.persons]
    rows = await connection.fetch(
        """SELECT e.employee_id, e.person_id, e.number, e.active, e.source, c.name AS company_name
           FROM rt_employees e LEFT JOIN rt_companies c ON c.company_id = e.company_id
           WHERE e.person_id = ANY($1::int[]) ORDER BY e.active DESC, e.employee_id""",
        person_ids,
    )
    by_person: dict[int, list[asyncpg.Record]] = {}
    for r in rows:
        by_person.setdefault(r["person_id"], []).append(r)
    employees: list[ColleagueHit] = []
    persons: list[PersonOnlyHit] = []
    for hit in found.persons:  # in the search's order: best match first
        for r in by_person.get(hit.person_id, ()):
            employees.append(
                ColleagueHit(
                    employee_id=r["employee_id"],
                    person_id=hit.person_id,
                    name=hit.name,
                    company_name=r["company_name"],
                    number=r["number"],
                    active=r["active"],
                    blue=r["source"] == "manual",
                )
            )
        if hit.person_id not in by_person:
            persons.append(
                PersonOnlyHit(person_id=hit.person_id, name=hit.name, organisation_name=hit.organisation_name)
            )
    return EmployeeSearch(text=text, employees=tuple(employees), persons=tuple(persons), more=found.more_persons)


class StoredLeave(FrozenView):
    """The employee's leave as last calculated: the whole calculation (years, segments, adjustments) and when."""

    result: LeaveResult
    computed_at: datetime


async def employee_leave(connection: asyncpg.Connection, employee_id: int) -> StoredLeave | None:
    """The stored calculation of RegiTijd employee `employee_id`; None when it was never calculated (a blue
    employee without contracts, or one only just loaded)."""
    row = await connection.fetchrow(
        "SELECT result, computed_at FROM rt_leave_balances WHERE employee_id = $1", employee_id
    )
    if row is None:
        return None
    return StoredLeave(result=LeaveResult.model_validate_json(row["result"]), computed_at=row["computed_at"])


class EmployeeSync(FrozenView):
    """A "sync this employee now" request as far as it got: the request, the poll run it caused (its report) and
    the reconciler's outcomes of the change events that run published."""

    request_id: uuid.UUID
    nmbrs_employee_id: int
    status: str = Field(description="The request's: pending, running, done or failed.")
    requested_by: str
    requested_at: datetime
    report: PollReport | None
    outcomes: tuple[Outcome, ...]
    handled: int = Field(description="How many of the run's events the reconciler handled.")


async def employee_sync(connection: asyncpg.Connection, request_id: uuid.UUID) -> EmployeeSync | None:
    """The one-employee request `request_id`; None when there is none (or it is a poll of the domain)."""
    request = await connection.fetchrow(
        """SELECT r.request_id, r.employee_id, r.status, r.requested_by, r.requested_at,
                  (SELECT summary FROM poll_runs p WHERE p.request_id = r.request_id AND p.status <> 'running'
                   ORDER BY started_at DESC LIMIT 1) AS summary
           FROM sync_requests r WHERE r.request_id = $1 AND r.employee_id IS NOT NULL""",
        request_id,
    )
    if request is None:
        return None
    report = PollReport.model_validate_json(request["summary"]) if request["summary"] else None
    rows = await connection.fetch(
        "SELECT outcomes FROM processed_events WHERE consumer = 'reconciler' AND event_id = ANY($1::uuid[])",
        list(report.event_ids) if report else [],
    )
    return EmployeeSync(
        request_id=request["request_id"],
        nmbrs_employee_id=request["employee_id"],
        status=request["status"],
        requested_by=request["requested_by"],
        requested_at=request["requested_at"],
        report=report,
        outcomes=tuple(Outcome.model_validate(o) for row in rows for o in json.loads(row["outcomes"])),
        handled=len(rows),
    )
