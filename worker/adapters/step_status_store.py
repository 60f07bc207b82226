"""Each sync step's status (green/red with counts), computed from the store and kept for the screens (asyncpg)."""

from __future__ import annotations

import json
from datetime import date, datetime

import asyncpg

from worker.domain.status import StepStatus, judge

STEP_COUNTS_SQL = {
    "companies": """SELECT
        (SELECT count(*) FROM sync_links WHERE entity = 'company') AS linked,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'company' AND NOT skipped) AS pending,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'company' AND skipped) AS skipped,
        (SELECT count(*) FROM sync_blocks WHERE entity = 'company') AS blocked""",
    "departments": "SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS inactive "
    "FROM rt_departments",
    "functions": "SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) AS inactive "
    "FROM rt_functions",
    "labour_agreements": "SELECT count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE NOT active) "
    "AS inactive FROM rt_labour_agreements",
    "employees": """SELECT
        (SELECT count(*) FROM sync_links WHERE entity = 'employee') AS linked,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'employee' AND NOT skipped) AS pending,
        (SELECT count(*) FROM pending_decisions WHERE entity = 'employee' AND skipped) AS skipped,
        (SELECT count(*) FROM sync_blocks WHERE entity = 'employee') AS blocked,
        (SELECT count(*) FROM rt_employees WHERE source = 'manual') AS manual""",
    "contracts": """SELECT count(*) AS active_employees,
        count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM rt_contract_periods c WHERE c.employee_id = e.employee_id
            AND c.start_date <= $1 AND (c.end_date IS NULL OR c.end_date >= $1))) AS without_contract
        FROM rt_employees e WHERE e.source = 'nmbrs' AND e.active
          AND (e.employment_end IS NULL OR e.employment_end >= $1) AND e.employment_start <= $1""",
    "leave": """SELECT count(*) AS employees,
        count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM rt_leave_balances b WHERE b.employee_id = e.employee_id))
            AS not_calculated
        FROM rt_employees e WHERE e.source = 'nmbrs' AND e.active""",
}


async def step_statuses(connection: asyncpg.Connection, today: date, at: datetime) -> list[StepStatus]:
    """Every step's status, computed fresh from the store and the last poll."""
    statuses = []
    last_poll = await connection.fetchrow(
        "SELECT status, summary FROM poll_runs WHERE status <> 'running' AND employee_id IS NULL"
        " ORDER BY started_at DESC LIMIT 1"
    )
    poll_summary = json.loads(last_poll["summary"]) if last_poll else {}
    poll_counts = {"polls": int(last_poll is not None), "soap_calls": poll_summary.get("soap_calls", 0)}
    poll_reasons = tuple(poll_summary.get("reasons", ())) if last_poll and poll_summary.get("status") == "red" else ()
    held = last_poll is not None and last_poll["status"] == "held"
    statuses.append(judge("poll", poll_counts, at, poll_reasons, poll_summary.get("breaker_counts") if held else None))
    for step, sql in STEP_COUNTS_SQL.items():
        row = await connection.fetchrow(sql, *((today,) if "$1" in sql else ()))
        statuses.append(judge(step, {key: int(value or 0) for key, value in dict(row or {}).items()}, at))
    return statuses


async def store_step_statuses(connection: asyncpg.Connection, statuses: list[StepStatus]) -> None:
    await connection.executemany(
        """INSERT INTO step_status (step, status, counts, updated_at) VALUES ($1, $2, $3::jsonb, $4)
           ON CONFLICT (step) DO UPDATE SET status = EXCLUDED.status, counts = EXCLUDED.counts,
               updated_at = EXCLUDED.updated_at""",
        [(s.step, s.status, json.dumps(s.counts), s.updated_at) for s in statuses],
    )


async def oldest_open_question_age_s(connection: asyncpg.Connection, at: datetime) -> float:
    """Seconds the oldest question not skipped has waited at `at`; 0 when none waits."""
    oldest = await connection.fetchval("SELECT min(created_at) FROM pending_decisions WHERE NOT skipped")
    return max(0.0, (at - oldest).total_seconds()) if oldest is not None else 0.0


async def poll_outcome(connection: asyncpg.Connection) -> tuple[datetime | None, bool]:
    """When the last poll that published finished (None: none yet), and whether the breaker holds one now: the
    latest poll that published or was held was held. From the database, so every replica reports the same,
    whichever of them polled."""
    last_published = await connection.fetchval(
        "SELECT finished_at FROM poll_runs WHERE status = 'published' AND employee_id IS NULL"
        " ORDER BY started_at DESC LIMIT 1"
    )
    latest = await connection.fetchval(
        "SELECT status FROM poll_runs WHERE status IN ('published', 'held') AND employee_id IS NULL"
        " ORDER BY started_at DESC LIMIT 1"
    )
    return last_published, latest == "held"
