"""Leave glue: read one employee's leave inputs from RegiTijd, store the calculated result."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
from pydantic_core import from_json

from worker.domain.leave import (
    CaoLeave,
    EarlierCao,
    EmploymentPeriod,
    HoursPeriod,
    LeaveAdjustment,
    LeaveInput,
    LeaveResult,
    LeaveTaken,
    OvertimeEntry,
    OvertimePayout,
    hours_from,
    leave_balance,
)


async def load_leave_input(connection: asyncpg.Connection, employee_id: int, as_of: date) -> LeaveInput:
    return (await load_leave_inputs(connection, [employee_id], as_of))[employee_id]


def _by_employee(rows: list[asyncpg.Record]) -> dict[int, list[asyncpg.Record]]:
    grouped: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        grouped.setdefault(row["employee_id"], []).append(row)
    return grouped


async def load_leave_inputs(
    connection: asyncpg.Connection, employee_ids: list[int], as_of: date
) -> dict[int, LeaveInput]:
    """The leave inputs of many employees, a statement per table for all of them (a change batch
    recalculates hundreds at once)."""
    ids = sorted(set(employee_ids))
    employees = {
        row["employee_id"]: row
        for row in await connection.fetch(
            """SELECT e.employee_id, e.employment_start, e.employment_end, l.description,
                      l.extra_leave_hours_fulltime, l.fulltime_hours_per_week
               FROM rt_employees e LEFT JOIN rt_labour_agreements l ON l.nmbrs_id = e.labour_agreement_id
               WHERE e.employee_id = ANY($1::int[])""",
            ids,
        )
    }
    missing = [employee_id for employee_id in ids if employee_id not in employees]
    if missing:
        raise LookupError(f"no RegiTijd employee {', '.join(map(str, missing))}")

    async def rows(sql: str) -> dict[int, list[asyncpg.Record]]:
        return _by_employee(list(await connection.fetch(sql, ids)))

    schedules = await rows(
        """SELECT employee_id, start_date, hours_per_week FROM rt_schedule_periods
           WHERE employee_id = ANY($1::int[]) ORDER BY employee_id, start_date"""
    )
    contracts = await rows(
        """SELECT employee_id, start_date, end_date, hours_per_week FROM rt_contract_periods
           WHERE employee_id = ANY($1::int[]) AND hours_per_week IS NOT NULL ORDER BY employee_id, start_date"""
    )
    periods = await rows(
        """SELECT employee_id, start_date, end_date FROM rt_employment_periods
           WHERE employee_id = ANY($1::int[]) ORDER BY employee_id, start_date"""
    )
    adjustments = await rows(
        "SELECT employee_id, booked_on, hours, reason FROM rt_leave_adjustments WHERE employee_id = ANY($1::int[])"
    )
    cao_changes = await rows(
        """SELECT employee_id, changed_on, from_id FROM rt_labour_agreement_changes
           WHERE employee_id = ANY($1::int[]) ORDER BY employee_id, changed_on"""
    )
    earlier_ids = sorted({r["from_id"] for found in cao_changes.values() for r in found if r["from_id"] is not None})
    # Most employees never changed CAO: no round trip for them on the recalculation path of every change.
    earlier_caos = (
        {
            r["nmbrs_id"]: _cao_leave(r)
            for r in await connection.fetch(
                """SELECT nmbrs_id, description, extra_leave_hours_fulltime, fulltime_hours_per_week
                   FROM rt_labour_agreements WHERE nmbrs_id = ANY($1::int[])""",
                earlier_ids,
            )
        }
        if earlier_ids
        else {}
    )
    taken = await rows("SELECT employee_id, taken_on, hours FROM rt_leave_taken WHERE employee_id = ANY($1::int[])")
    worked = await rows("SELECT employee_id, worked_on, hours FROM rt_overtime WHERE employee_id = ANY($1::int[])")
    paid = await rows("SELECT employee_id, paid_on, hours FROM rt_overtime_payouts WHERE employee_id = ANY($1::int[])")
    return {
        employee_id: _leave_input(
            employees[employee_id],
            as_of,
            schedules.get(employee_id, []),
            contracts.get(employee_id, []),
            periods.get(employee_id, []),
            tuple(
                # The old CAO applied up to the day before the change (a CAO no longer known: none).
                EarlierCao(until=r["changed_on"] - timedelta(days=1), cao=earlier_caos.get(r["from_id"], CaoLeave()))
                for r in cao_changes.get(employee_id, [])
            ),
            LeaveHistory(
                adjustments=tuple(
                    LeaveAdjustment(booked_on=r["booked_on"], hours=r["hours"], reason=r["reason"])
                    for r in adjustments.get(employee_id, [])
                ),
                leave_taken=tuple(
                    LeaveTaken(taken_on=r["taken_on"], hours=r["hours"]) for r in taken.get(employee_id, [])
                ),
                overtime_worked=tuple(
                    OvertimeEntry(on=r["worked_on"], hours=r["hours"]) for r in worked.get(employee_id, [])
                ),
                overtime_paid_out=tuple(
                    OvertimePayout(on=r["paid_on"], hours=r["hours"]) for r in paid.get(employee_id, [])
                ),
            ),
        )
        for employee_id in ids
    }


@dataclass(frozen=True)
class LeaveHistory:
    """What was booked against an employee's leave and overtime."""

    adjustments: tuple[LeaveAdjustment, ...]
    leave_taken: tuple[LeaveTaken, ...]
    overtime_worked: tuple[OvertimeEntry, ...]
    overtime_paid_out: tuple[OvertimePayout, ...]


def _cao_leave(row: asyncpg.Record) -> CaoLeave:
    """A labour agreement's leave settings (rt_labour_agreements: description and the two leave columns)."""
    return CaoLeave(
        name=row["description"],
        extra_hours_fulltime=row["extra_leave_hours_fulltime"],
        fulltime_hours_per_week=row["fulltime_hours_per_week"],
    )


def _leave_input(
    employee: asyncpg.Record,
    as_of: date,
    schedules: list[asyncpg.Record],
    contracts: list[asyncpg.Record],
    periods: list[asyncpg.Record],
    earlier_caos: tuple[EarlierCao, ...],
    history: LeaveHistory,
) -> LeaveInput:
    # One period per start date (the last row wins, as the lists are ordered by start).
    schedule_periods = {
        r["start_date"]: HoursPeriod(start=r["start_date"], hours_per_week=r["hours_per_week"]) for r in schedules
    }
    contract_periods = {
        r["start_date"]: HoursPeriod(start=r["start_date"], end=r["end_date"], hours_per_week=r["hours_per_week"])
        for r in contracts
    }
    cao = _cao_leave(employee) if employee["description"] is not None else CaoLeave()
    # Nmbrs employees carry every period of service (a rehire has several); a blue employee only the one.
    employments = tuple(EmploymentPeriod(start=p["start_date"], end=p["end_date"]) for p in periods)
    if not employments and employee["employment_start"] is not None:
        employments = (EmploymentPeriod(start=employee["employment_start"], end=employee["employment_end"]),)
    return LeaveInput(
        employee_id=employee["employee_id"],
        as_of=as_of,
        employments=employments,
        hours_periods=hours_from(tuple(schedule_periods.values()), tuple(contract_periods.values())),
        cao=cao,
        earlier_caos=earlier_caos,
        adjustments=history.adjustments,
        leave_taken=history.leave_taken,
        overtime_worked=history.overtime_worked,
        overtime_paid_out=history.overtime_paid_out,
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
    return (await recalculate_leave_many(connection, {employee_id: causation_id}, as_of))[employee_id]


async def recalculate_leave_many(
    connection: asyncpg.Connection, causations: dict[int, uuid.UUID], as_of: date
) -> dict[int, tuple[dict[str, Any] | None, dict[str, Any]]]:
    """Recalculate and store the leave of each employee in `causations` (employee id -> the event that
    caused it); returns the (before, after) summaries per employee."""
    ids = sorted(causations)
    # Serialises recalculations of one employee (a change and a follow-up command lock different keys),
    # so a stale calculation never overwrites a newer one. In id order: two batches never deadlock.
    await connection.execute(
        "SELECT 1 FROM rt_employees WHERE employee_id = ANY($1::int[]) ORDER BY employee_id FOR UPDATE", ids
    )
    # The summary of the stored result, read in SQL: parsing whole results would cost more than the new
    # calculation. The keys and texts are those of balance_summary (JSON numbers are Decimal strings).
    stored = {
        row["employee_id"]: from_json(row["summary"])
        for row in await connection.fetch(
            """SELECT employee_id, json_build_object(
                   'as_of', result ->> 'as_of', 'leave_total', result -> 'balance' ->> 'total',
                   'statutory', result -> 'balance' ->> 'statutory', 'extra', result -> 'balance' ->> 'extra',
                   'overtime', result -> 'overtime' ->> 'balance') AS summary
               FROM rt_leave_balances WHERE employee_id = ANY($1::int[])""",
            ids,
        )
    }
    inputs = await load_leave_inputs(connection, ids, as_of)
    results = {employee_id: leave_balance(inputs[employee_id]) for employee_id in ids}
    await connection.execute(
        """INSERT INTO rt_leave_balances (employee_id, as_of, result, causation_id, computed_at)
           SELECT employee_id, $2, result::jsonb, causation_id, now()
           FROM unnest($1::int[], $3::text[], $4::uuid[]) AS v(employee_id, result, causation_id)
           ON CONFLICT (employee_id) DO UPDATE SET as_of = EXCLUDED.as_of, result = EXCLUDED.result,
               causation_id = EXCLUDED.causation_id, computed_at = now()""",
        ids,
        as_of,
        [results[employee_id].model_dump_json() for employee_id in ids],
        [causations[employee_id] for employee_id in ids],
    )
    summaries = {}
    for employee_id in ids:
        after = balance_summary(results[employee_id])
        assert after is not None
        summaries[employee_id] = (stored.get(employee_id), after)
    return summaries
