"""Leave glue: read one employee's leave inputs from RegiTijd, store the calculated result."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import asyncpg

from worker.domain.leave import (
    CaoLeave,
    EmploymentPeriod,
    HoursPeriod,
    LeaveAdjustment,
    LeaveInput,
    LeaveResult,
    LeaveTaken,
    OvertimeEntry,
    OvertimePayout,
    leave_balance,
)


async def load_leave_input(connection: asyncpg.Connection, employee_id: int, as_of: date) -> LeaveInput:
    employee = await connection.fetchrow(
        """SELECT e.employment_start, e.employment_end, l.description, l.extra_leave_hours_fulltime,
                  l.fulltime_hours_per_week
           FROM rt_employees e LEFT JOIN rt_labour_agreements l ON l.nmbrs_id = e.labour_agreement_id
           WHERE e.employee_id = $1""",
        employee_id,
    )
    if employee is None:
        raise LookupError(f"no RegiTijd employee {employee_id}")
    schedules = await connection.fetch(
        "SELECT start_date, hours_per_week FROM rt_schedule_periods WHERE employee_id = $1 ORDER BY start_date",
        employee_id,
    )
    contracts = await connection.fetch(
        """SELECT start_date, end_date, hours_per_week FROM rt_contract_periods
           WHERE employee_id = $1 AND hours_per_week IS NOT NULL ORDER BY start_date""",
        employee_id,
    )
    # The schedule (rooster) is the finer source of hours; contracts carry them when there is no schedule.
    by_start: dict[date, HoursPeriod] = {}
    if schedules:
        for row in schedules:
            by_start[row["start_date"]] = HoursPeriod(start=row["start_date"], hours_per_week=row["hours_per_week"])
    else:
        for row in contracts:
            by_start[row["start_date"]] = HoursPeriod(
                start=row["start_date"], end=row["end_date"], hours_per_week=row["hours_per_week"]
            )
    cao = CaoLeave()
    if employee["description"] is not None:
        cao = CaoLeave(
            name=employee["description"],
            extra_hours_fulltime=employee["extra_leave_hours_fulltime"],
            fulltime_hours_per_week=employee["fulltime_hours_per_week"],
        )
    periods = await connection.fetch(
        "SELECT start_date, end_date FROM rt_employment_periods WHERE employee_id = $1 ORDER BY start_date",
        employee_id,
    )
    # Nmbrs employees carry every period of service (a rehire has several); a blue employee only the one.
    employments = tuple(EmploymentPeriod(start=p["start_date"], end=p["end_date"]) for p in periods)
    if not employments and employee["employment_start"] is not None:
        employments = (EmploymentPeriod(start=employee["employment_start"], end=employee["employment_end"]),)

    async def rows(sql: str) -> list[asyncpg.Record]:
        return list(await connection.fetch(sql, employee_id))

    return LeaveInput(
        employee_id=employee_id,
        as_of=as_of,
        employments=employments,
        hours_periods=tuple(by_start.values()),
        cao=cao,
        adjustments=tuple(
            LeaveAdjustment(booked_on=r["booked_on"], hours=r["hours"], reason=r["reason"])
            for r in await rows("SELECT booked_on, hours, reason FROM rt_leave_adjustments WHERE employee_id = $1")
        ),
        leave_taken=tuple(
            LeaveTaken(taken_on=r["taken_on"], hours=r["hours"])
            for r in await rows("SELECT taken_on, hours FROM rt_leave_taken WHERE employee_id = $1")
        ),
        overtime_worked=tuple(
            OvertimeEntry(on=r["worked_on"], hours=r["hours"])
            for r in await rows("SELECT worked_on, hours FROM rt_overtime WHERE employee_id = $1")
        ),
        overtime_paid_out=tuple(
            OvertimePayout(on=r["paid_on"], hours=r["hours"])
            for r in await rows("SELECT paid_on, hours FROM rt_overtime_payouts WHERE employee_id = $1")
        ),
    )


def balance_summary(result: LeaveResult | None) -> dict[str, Any] | None:
    """The figures an outcome shows (the full calculation stays in the store)."""
    if result is None:
        return None
    return {
        "as_of": result.as_of.isoformat(),
        "leave_total": str(result.balance.total),
        "statutory": str(result.balance.statutory),
        "extra": str(result.balance.extra),
        "overtime": str(result.overtime.balance),
    }


async def recalculate_leave(
    connection: asyncpg.Connection, employee_id: int, as_of: date, causation_id: uuid.UUID
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Recalculate and store one employee's leave; returns the (before, after) summaries."""
    # Serialises recalculations of one employee (a change and a follow-up command lock different keys),
    # so a stale calculation never overwrites a newer one.
    await connection.execute("SELECT 1 FROM rt_employees WHERE employee_id = $1 FOR UPDATE", employee_id)
    stored = await connection.fetchval("SELECT result FROM rt_leave_balances WHERE employee_id = $1", employee_id)
    before = balance_summary(LeaveResult.model_validate_json(stored)) if stored else None
    result = leave_balance(await load_leave_input(connection, employee_id, as_of))
    await connection.execute(
        """INSERT INTO rt_leave_balances (employee_id, as_of, result, causation_id, computed_at)
           VALUES ($1, $2, $3::jsonb, $4, now())
           ON CONFLICT (employee_id) DO UPDATE SET as_of = EXCLUDED.as_of, result = EXCLUDED.result,
               causation_id = EXCLUDED.causation_id, computed_at = now()""",
        employee_id,
        as_of,
        result.model_dump_json(),
        causation_id,
    )
    after = balance_summary(result)
    assert after is not None
    return before, after
