"""The decision store: what the decision consumer reads and writes besides the reconciler's plans (asyncpg).

The decisions kept with their effect (for ongedaan_maken and a bulk's preview), blocks and skipped questions,
the questions a bulk answers, and the locally owned data follow-up commands change. Everything runs inside the
caller's transaction; the rules that judge what is read here live in worker/domain/decisions.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any, NamedTuple

from worker.adapters.database import Connection
from worker.adapters.hr_queries import open_tasks
from worker.domain.changes import LinkedEntity
from worker.domain.decisions import BlueEmployee, Decision, DecisionFilter, PendingRecord, StoredDecision
from worker.domain.follow_ups import FollowUpCommand, FollowUpFacts
from worker.domain.organisation_matching import RegiTijdCompany
from worker.domain.reconcile import StoredRecord

_RECORD_TABLES = {"employee": ("rt_employees", "employee_id"), "company": ("rt_companies", "company_id")}


class Snapshot(NamedTuple):
    """A record's latest snapshot, removed from Nmbrs or not."""

    version: int
    deleted: bool
    data: dict[str, Any]


class PostgresDecisionStore:
    """The decision store on one connection; the caller owns the transaction (one unit of work)."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    # --- decisions kept ---------------------------------------------------------------------------------

    async def record_decision(
        self, decision: Decision, result: str, reason: str | None, effect: dict[str, Any]
    ) -> None:
        await self.db.execute(
            """INSERT INTO decisions (decision_id, entity, nmbrs_id, action, decided_by, decided_at, result, reason,
                                      effect) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)""",
            decision.decision_id,
            decision.entity,
            decision.nmbrs_id,
            decision.action.value,
            decision.decided_by,
            decision.decided_at,
            result,
            reason,
            json.dumps(effect),
        )

    async def decision_to_undo(self, decision_id: uuid.UUID) -> StoredDecision | None:
        """The decision, locked against a second undo at the same time."""
        row = await self.db.fetchrow(
            """SELECT entity, nmbrs_id, action, result, effect, undone_by FROM decisions
               WHERE decision_id = $1 FOR UPDATE""",
            decision_id,
        )
        return None if row is None else StoredDecision(**{**row, "effect": json.loads(row["effect"])})

    async def mark_undone(
        self, decision_id: uuid.UUID, effect: dict[str, Any], undone_by: uuid.UUID, whole: bool
    ) -> None:
        """Keep what an undo reversed in the decision's `effect`; `whole`: nothing of it is left."""
        await self.db.execute(
            """UPDATE decisions SET effect = $3::jsonb, undone_by = CASE WHEN $4 THEN $2::uuid END
               WHERE decision_id = $1""",
            decision_id,
            undone_by,
            json.dumps(effect),
            whole,
        )

    async def preview(self, decision_id: uuid.UUID) -> tuple[StoredDecision | None, bool]:
        """The decision (a bulk's preview), and whether an applied bulk confirmed it already."""
        row = await self.db.fetchrow(
            """SELECT entity, nmbrs_id, action, result, effect,
                      EXISTS (SELECT 1 FROM decisions WHERE result = 'applied' AND effect ->> 'confirms' = $2)
                          AS carried_out
               FROM decisions WHERE decision_id = $1""",
            decision_id,
            str(decision_id),
        )
        if row is None:
            return None, False
        preview = StoredDecision(**{**row, "effect": json.loads(row["effect"])})
        return preview, row["carried_out"]

    # --- records --------------------------------------------------------------------------------------------

    async def pending_for_bulk(self, entity: LinkedEntity, selection: DecisionFilter) -> list[PendingRecord]:
        """The open questions `selection` finds, each with the open employments of its human."""
        # Skipped questions (Overslaan) are hidden from HR until the next sync: a bulk does not answer them either.
        where = ["entity = $1", "NOT skipped", "company_id = $2"]
        args: list[Any] = [entity, selection.company_id]
        if selection.situation is not None:
            args.append(selection.situation)
            where.append(f"situation = ${len(args)}")
        if selection.max_best_score is not None:
            args.append(selection.max_best_score)
            where.append(f"coalesce((candidates -> 0 ->> 'score')::float, 0) <= ${len(args)}")
        rows = await self.db.fetch(
            f"""SELECT q.nmbrs_id, q.version, q.record ->> 'bsn_hash' AS bsn_hash, coalesce(h.ids, '{{}}') AS human_ids
                FROM pending_decisions q
                -- The open employments of each human, grouped once (not looked up per question: a first import has
                -- thousands): answering one would take the others along (one human, one person).
                LEFT JOIN (SELECT record ->> 'bsn_hash' AS bsn_hash, array_agg(nmbrs_id) AS ids FROM pending_decisions
                           WHERE entity = 'employee' AND record ->> 'bsn_hash' IS NOT NULL GROUP BY 1) AS h
                       ON h.bsn_hash = q.record ->> 'bsn_hash'
                WHERE {" AND ".join(where)} ORDER BY q.nmbrs_id""",
            *args,
        )
        return [PendingRecord(**row) for row in rows]

    async def question(self, entity: LinkedEntity, nmbrs_id: int) -> StoredRecord | None:
        """The record's open question: its Nmbrs data and version."""
        row = await self.db.fetchrow(
            "SELECT record, version FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
        )
        return None if row is None else StoredRecord(data=json.loads(row["record"]), version=row["version"])

    async def open_employments(self, bsn_hash: str, but: int) -> list[int]:
        """The employees with an open question whose BSN hash is `bsn_hash`, but `but`."""
        rows = await self.db.fetch(
            """SELECT nmbrs_id FROM pending_decisions
               WHERE entity = 'employee' AND nmbrs_id <> $1 AND record ->> 'bsn_hash' = $2 ORDER BY nmbrs_id""",
            but,
            bsn_hash,
        )
        return [row["nmbrs_id"] for row in rows]

    async def snapshot(self, entity: LinkedEntity, nmbrs_id: int) -> Snapshot | None:
        row = await self.db.fetchrow(
            "SELECT version, deleted, record FROM nmbrs_snapshots WHERE key = $1", f"{entity}:{nmbrs_id}"
        )
        return None if row is None else Snapshot(row["version"], row["deleted"], json.loads(row["record"]))

    async def linked_regitijd_id(self, entity: LinkedEntity, nmbrs_id: int) -> int | None:
        regitijd_id: int | None = await self.db.fetchval(
            "SELECT regitijd_id FROM sync_links WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
        )
        return regitijd_id

    async def blue_employees(self, person_id: int) -> list[BlueEmployee]:
        """The person's active manual ('blue') RegiTijd employees, with their company's name."""
        rows = await self.db.fetch(
            """SELECT e.employee_id, c.name AS company FROM rt_employees e
               LEFT JOIN rt_companies c ON c.company_id = e.company_id
               WHERE e.person_id = $1 AND e.source = 'manual' AND e.active ORDER BY e.employee_id""",
            person_id,
        )
        return [BlueEmployee(**row) for row in rows]

    async def open_tasks(self, employee_id: int) -> tuple[str, ...]:
        """The employee's open follow-up tasks (see domain TASKS)."""
        found = await open_tasks(self.db, employee_id)
        return found[0].tasks if found else ()

    async def block(
        self,
        entity: LinkedEntity,
        nmbrs_id: int,
        actor: str,
        note: str | None,
        decision_id: uuid.UUID,
        data: dict[str, Any] | None,
    ) -> None:
        """Blokkeren: the record is ignored by every later sync; its question is withdrawn."""
        await self.db.execute(
            """INSERT INTO sync_blocks (entity, nmbrs_id, blocked_by, reason, decision_id, record)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
            entity,
            nmbrs_id,
            actor,
            note,
            decision_id,
            json.dumps(data),
        )
        await self.db.execute("DELETE FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id)

    async def unblock(self, entity: LinkedEntity, nmbrs_id: int) -> None:
        await self.db.execute("DELETE FROM sync_blocks WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id)

    async def remove_block(
        self, entity: LinkedEntity, nmbrs_id: int, decision_id: uuid.UUID | None
    ) -> tuple[bool, dict[str, Any] | None]:
        """Undo a block: only the one `decision_id` made. Whether there was one, and the data it kept."""
        row = await self.db.fetchrow(
            """DELETE FROM sync_blocks WHERE entity = $1 AND nmbrs_id = $2 AND decision_id IS NOT DISTINCT FROM $3
               RETURNING record""",
            entity,
            nmbrs_id,
            decision_id,
        )
        return row is not None, json.loads(row["record"]) if row is not None and row["record"] else None

    async def set_skipped(self, entity: LinkedEntity, nmbrs_id: int, skipped: bool) -> None:
        await self.db.execute(
            "UPDATE pending_decisions SET skipped = $3 WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id, skipped
        )

    async def unlink(self, entity: LinkedEntity, nmbrs_id: int, adopted: RegiTijdCompany | None = None) -> int | None:
        """Undo a link: the RegiTijd record it became is deactivated, not deleted; a company it took over
        (`adopted`) goes back to its organisation as it was, active for its manual employees. Returns the
        record's id."""
        regitijd_id: int | None = await self.db.fetchval(
            "DELETE FROM sync_links WHERE entity = $1 AND nmbrs_id = $2 RETURNING regitijd_id", entity, nmbrs_id
        )
        if adopted is not None and adopted.company_id == regitijd_id:
            await self.db.execute(
                """UPDATE rt_companies SET nmbrs_company_id = NULL, name = $2, nmbrs_synced = NULL,
                       nmbrs_version = NULL, active = true
                   WHERE company_id = $1""",
                regitijd_id,
                adopted.name,
            )
        elif regitijd_id is not None:
            table, column = _RECORD_TABLES[entity]
            await self.db.execute(f"UPDATE {table} SET active = false WHERE {column} = $1", regitijd_id)
        return regitijd_id

    # --- follow-up commands (locally owned data) --------------------------------------------------------------

    async def follow_up_facts(self, command: FollowUpCommand, today: date) -> FollowUpFacts | None:
        """What `command` is judged by; None when its employee does not exist."""
        row = await self.db.fetchrow(
            """SELECT e.employee_id, e.person_id,
                      EXISTS (SELECT 1 FROM rt_employees m WHERE m.employee_id = $2) AS manager_exists,
                      (SELECT category_id FROM rt_time_categories WHERE code = $3) AS category_id,
                      EXISTS (SELECT 1 FROM rt_contract_periods c WHERE c.employee_id = e.employee_id
                              AND c.start_date <= $4 AND (c.end_date IS NULL OR c.end_date >= $4)) AS has_contract
               FROM rt_employees e WHERE e.employee_id = $1""",
            command.employee_id,
            command.manager_employee_id,
            command.time_category,
            today,
        )
        return None if row is None else FollowUpFacts(**row)

    async def apply_follow_up(self, command: FollowUpCommand, facts: FollowUpFacts) -> None:
        employee_id, person_id = facts.employee_id, facts.person_id
        match command.command:
            case "set_manager":
                await self.db.execute(
                    "UPDATE rt_employees SET manager_employee_id = $2 WHERE employee_id = $1",
                    employee_id,
                    command.manager_employee_id,
                )
            case "set_is_manager":
                await self.db.execute(
                    "UPDATE rt_employees SET is_manager = $2 WHERE employee_id = $1", employee_id, command.is_manager
                )
            case "leave_adjustment":
                await self.db.execute(
                    "INSERT INTO rt_leave_adjustments (employee_id, booked_on, hours, reason) VALUES ($1, $2, $3, $4)",
                    employee_id,
                    command.on,
                    command.hours,
                    command.reason,
                )
            case "overtime_payout":
                await self.db.execute(
                    "INSERT INTO rt_overtime_payouts (employee_id, paid_on, hours) VALUES ($1, $2, $3)",
                    employee_id,
                    command.on,
                    command.hours,
                )
            case "set_characteristic":
                await self.db.execute(
                    "INSERT INTO crm_characteristics VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    person_id,
                    command.characteristic,
                )
            case "remove_characteristic":
                await self.db.execute(
                    "DELETE FROM crm_characteristics WHERE person_id = $1 AND characteristic = $2",
                    person_id,
                    command.characteristic,
                )
            case "link_time_category":
                await self.db.execute(
                    "INSERT INTO rt_employee_time_categories VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    employee_id,
                    facts.category_id,
                )
            case "unlink_time_category":
                await self.db.execute(
                    "DELETE FROM rt_employee_time_categories WHERE employee_id = $1 AND category_id = $2",
                    employee_id,
                    facts.category_id,
                )
            case "mark_task_done":
                await self.db.execute(
                    """INSERT INTO rt_tasks_done (employee_id, task, done_by, done_at, command_id)
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (employee_id, task) DO NOTHING""",
                    employee_id,
                    command.task,
                    command.issued_by,
                    command.issued_at,
                    command.command_id,
                )
