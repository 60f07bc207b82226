"""The history of one RegiTijd employee, read from every table that records a change (asyncpg); merged, deduplicated
and worded by worker/domain/employee_history.py.

Every query is indexed: the audit log by (subject, at), the outcomes by the subjects they name (migration 0021),
the decisions by their record or their id, the rest by primary key. Run it inside one repeatable-read transaction
(hr_queries.read_only_connection) so that the sources agree with each other.
"""

from __future__ import annotations

import json
import uuid

import asyncpg

from worker.domain.employee_history import (
    AuditRecord,
    DecisionRecord,
    HistoryEntry,
    HistorySources,
    LeaveBalanceRecord,
    LinkRecord,
    StoredOutcome,
    build_history,
    history_subjects,
    referenced_ids,
)
from worker.domain.events import Outcome

# The expression migration 0021 indexes: a query must name it exactly as written there to use the index.
OUTCOME_SUBJECTS_SQL = "jsonb_path_query_array(p.outcomes, '$[*].subject')"
# Where the summaries find the names of the reference ids the sync wrote.
_NAME_SOURCES = {
    "function_id": "SELECT nmbrs_id AS id, description AS name FROM rt_functions WHERE nmbrs_id = ANY($1::int[])",
    "department_id": "SELECT nmbrs_id AS id, description AS name FROM rt_departments WHERE nmbrs_id = ANY($1::int[])",
    "labour_agreement_id": """SELECT nmbrs_id AS id, description AS name FROM rt_labour_agreements
                              WHERE nmbrs_id = ANY($1::int[])""",
    "nmbrs_company_id": """SELECT nmbrs_company_id AS id, name FROM rt_companies
                           WHERE nmbrs_company_id = ANY($1::int[])""",
}


async def employee_history(connection: asyncpg.Connection, employee_id: int) -> list[HistoryEntry] | None:
    """Every change of RegiTijd employee `employee_id` in time order; None when there is no such employee (an
    employee always has at least the entry that created it, unless the audit log was emptied)."""
    employee = await connection.fetchrow(
        """SELECT e.nmbrs_employee_id, e.person_id,
                  (SELECT a.account_id FROM crm_accounts a WHERE a.person_id = e.person_id) AS account_id
           FROM rt_employees e WHERE e.employee_id = $1""",
        employee_id,
    )
    if employee is None:
        return None
    nmbrs_id: int | None = employee["nmbrs_employee_id"]  # None: a blue employee, never in Nmbrs
    subjects = history_subjects(employee_id, nmbrs_id, employee["person_id"], employee["account_id"])
    audit = [
        AuditRecord(
            **{**row, "before": _json(row["before"]), "after": _json(row["after"])},
        )
        for row in await connection.fetch(
            """SELECT audit_id, at, causation_id, subject, action, before, after, actor FROM audit_log
               WHERE subject = ANY($1::text[]) ORDER BY at, audit_id""",
            subjects,
        )
    ]
    outcomes = [
        StoredOutcome(
            consumer=row["consumer"],
            processed_at=row["processed_at"],
            outcome=Outcome.model_validate_json(row["outcome"]),
        )
        for row in await connection.fetch(
            f"""SELECT p.consumer, p.processed_at, o.outcome
                FROM processed_events p, jsonb_array_elements(p.outcomes) WITH ORDINALITY AS o(outcome, position)
                WHERE {OUTCOME_SUBJECTS_SQL} ?| $1::text[] AND o.outcome ->> 'subject' = ANY($1::text[])
                ORDER BY p.processed_at, p.event_id, o.position""",
            subjects,
        )
    ]
    causes = {row.causation_id for row in audit if row.causation_id} | {s.outcome.causation_id for s in outcomes}
    # The record's own decisions, and those that caused a row here (a bulk has no record; a Koppelen of another
    # employment of the same human links this one along).
    decisions = [
        DecisionRecord(**row)
        for row in await connection.fetch(
            """SELECT decision_id, nmbrs_id, action, decided_by, received_at, result, reason, undone_by,
                      CASE WHEN action = 'ongedaan_maken' THEN (effect ->> 'undid')::uuid END AS undid
               FROM decisions WHERE (entity = 'employee' AND nmbrs_id = $1) OR decision_id = ANY($2::uuid[])
               ORDER BY received_at, decision_id""",
            nmbrs_id,
            list(causes),
        )
    ]
    link = (
        await connection.fetchrow(
            """SELECT crm_id, linked_at, linked_by, reason FROM sync_links
               WHERE entity = 'employee' AND nmbrs_id = $1""",
            nmbrs_id,
        )
        if nmbrs_id is not None
        else None
    )
    # As balance_summary (leave_store) words it, read in SQL rather than parsing the whole calculation.
    balance = await connection.fetchrow(
        """SELECT computed_at, causation_id, json_build_object(
               'as_of', result ->> 'as_of', 'leave_total', result -> 'balance' ->> 'total',
               'statutory', result -> 'balance' ->> 'statutory', 'extra', result -> 'balance' ->> 'extra',
               'overtime', result -> 'overtime' ->> 'balance') AS summary
           FROM rt_leave_balances WHERE employee_id = $1""",
        employee_id,
    )
    # The only follow-up whose sender the store keeps: a task marked done.
    actors: dict[uuid.UUID, str] = {
        row["command_id"]: row["done_by"]
        for row in await connection.fetch(
            "SELECT command_id, done_by FROM rt_tasks_done WHERE employee_id = $1", employee_id
        )
    }
    names: dict[str, dict[int, str]] = {}
    for field, ids in referenced_ids(audit).items():
        if ids:
            rows = await connection.fetch(_NAME_SOURCES[field], sorted(ids))
            names[field] = {row["id"]: row["name"] for row in rows}
    return build_history(
        HistorySources(
            employee_id=employee_id,
            nmbrs_id=nmbrs_id,
            audit=tuple(audit),
            outcomes=tuple(outcomes),
            decisions=tuple(decisions),
            link=LinkRecord(**link) if link is not None else None,
            leave_balance=(
                LeaveBalanceRecord(
                    computed_at=balance["computed_at"],
                    causation_id=balance["causation_id"],
                    summary=json.loads(balance["summary"]),
                )
                if balance is not None
                else None
            ),
            actors=actors,
            reference_names=names,
        )
    )


def _json(text: str | None) -> object:
    return None if text is None else json.loads(text)
