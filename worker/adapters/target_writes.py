"""Writes of the target store: a reconciliation Plan carried out on RegiCRM/RegiTijd, employees set-based."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, cast

from worker.adapters.database import Connection
from worker.adapters.target_cards import Cards
from worker.adapters.target_sql import (
    PERIOD_TABLES,
    PERSON_TYPES,
    PRIMARY_SQL,
    SYNC_WRITER_SQL,
    AuditRow,
    as_columns,
    db_value,
    insert_rows,
    json_text,
    to_date,
    unnest,
    write_audit,
)
from worker.domain.changes import LinkedEntity
from worker.domain.nmbrs_records import CodeRef, LabourAgreementRef, NmbrsEmployee
from worker.domain.ownership import PERSON_FIELDS
from worker.domain.reconcile import (
    Apply,
    ClearPending,
    Deactivate,
    Link,
    Plan,
    RecordBsnHash,
    SavePending,
    UpsertReference,
)

REFERENCE_FIELDS = frozenset({"function_id", "department_id", "labour_agreement_id"})
REFERENCE_TABLES = {
    "department": "rt_departments",
    "function": "rt_functions",
    "labour_agreement": "rt_labour_agreements",
}


# rt_employees columns the sync writes, with their types (writes go through unnest of one array per column).
EMPLOYEE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "text"),
    ("company_id", "int"),
    ("function_id", "int"),
    ("department_id", "int"),
    ("labour_agreement_id", "int"),
    ("employment_start", "date"),
    ("employment_end", "date"),
    ("nmbrs_synced", "jsonb"),
)


def _employee_columns(values: dict[str, Any], company_ids: dict[int, int]) -> tuple[Any, ...]:
    """The rt_employees columns (EMPLOYEE_COLUMNS order) for Nmbrs-owned `values`; `company_ids` maps Nmbrs
    company ids to RegiTijd ones (absent: the company is not linked yet)."""
    return (
        values["number"],
        company_ids.get(values["nmbrs_company_id"]),
        values["function_id"],
        values["department_id"],
        values["labour_agreement_id"],
        to_date(values["employment_start"]),
        to_date(values["employment_end"]),
        json_text(values),
    )


@dataclass(frozen=True)
class EmployeeApply:
    """One employee's Apply with what it came from."""

    action: Apply
    nmbrs_id: int
    employee: NmbrsEmployee
    causation_id: uuid.UUID
    version: int | None = None  # the change's snapshot version; None (a decision) keeps the one written


class TargetWriter:
    """Carries out plans on one connection; the caller owns the transaction (one unit of work)."""

    def __init__(self, connection: Connection, today: date, period_edits_read: dict[int, int], cards: Cards) -> None:
        """`today`: the Dutch calendar date of the work (a CAO change is dated with it). `period_edits_read`:
        RegiTijd employee id -> its count of local period edits when its state was read (see migration 0008):
        what a write of the employee records as seen."""
        self.db = connection
        self.today = today
        self.cards = cards
        self._period_edits_read = period_edits_read
        # Done once per transaction before employee writes (a store serves one transaction; after a rollback
        # to a savepoint it must not write again, as the decision consumer never does).
        self._companies_locked: set[int] = set()
        self._writing_as_sync = False

    async def execute(
        self,
        plan: Plan,
        entity: str,
        nmbrs_id: int,
        record: Any,
        causation_id: uuid.UUID,
        actor: str = "sync",
        version: int | None = None,
    ) -> list[int]:
        """Carry out the plan's store actions; returns the RegiTijd ids whose leave must be recalculated.
        `version`: the record's snapshot version, remembered on the RegiTijd record (None keeps the one there)."""
        recalculate: list[int] = []
        regitijd_id: int | None = None
        for action in plan.actions:
            if isinstance(action, Link):
                await self.db.execute(
                    """INSERT INTO sync_links (entity, nmbrs_id, crm_id, bsn_hash, linked_by, reason)
                       VALUES ($1, $2, $3, $4, $5, $6)""",
                    entity,
                    nmbrs_id,
                    action.crm_id,
                    getattr(record, "bsn_hash", None),
                    action.linked_by,
                    action.reason,
                )
                # The card as it was: the link writes Nmbrs' name and contact data over it (also for a link
                # nobody decided, an auto-link), and this is where its earlier values can be found again.
                await self._audit(
                    causation_id,
                    f"{entity}:{nmbrs_id}",
                    "link",
                    {"card": await self.cards.card(cast(LinkedEntity, entity), action.crm_id)},  # links: linked kinds
                    {"crm_id": action.crm_id, "reason": action.reason},
                    actor,
                )
            elif isinstance(action, Apply):
                if entity == "employee":
                    item = EmployeeApply(action, nmbrs_id, record, causation_id, version)
                    regitijd_id = await self._apply_employee(item, actor)
                else:
                    regitijd_id = await self._apply_company(action, nmbrs_id, causation_id, actor, version)
            elif isinstance(action, SavePending):
                await self.db.execute(
                    """INSERT INTO pending_decisions (entity, nmbrs_id, version, situation, company_id, record,
                                                      candidates, causation_id, reason)
                       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)
                       ON CONFLICT (entity, nmbrs_id) DO UPDATE SET version = EXCLUDED.version,
                           situation = EXCLUDED.situation, company_id = EXCLUDED.company_id,
                           record = EXCLUDED.record, candidates = EXCLUDED.candidates,
                           causation_id = EXCLUDED.causation_id, reason = EXCLUDED.reason, created_at = now()""",
                    entity,
                    nmbrs_id,
                    action.version,
                    action.situation,
                    getattr(record, "company_id", None),
                    record.model_dump_json(),
                    json_text([c.model_dump(mode="json") for c in action.candidates]),
                    causation_id,
                    action.reason,
                )
            elif isinstance(action, ClearPending):
                await self.db.execute(
                    "DELETE FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
                )
            elif isinstance(action, Deactivate):
                table, column = (
                    ("rt_employees", "employee_id") if entity == "employee" else ("rt_companies", "company_id")
                )
                # Blue (manual) employees are never changed by the sync.
                guard = " AND source = 'nmbrs'" if entity == "employee" else ""
                # The removal's version too: an older change replayed after it is stale, it must not reactivate.
                await self.db.execute(
                    f"""UPDATE {table} SET active = false, nmbrs_version = coalesce($2, nmbrs_version)
                        WHERE {column} = $1{guard}""",
                    action.regitijd_id,
                    version,
                )
                if entity == "employee":
                    await self.cards.hand_over(action.regitijd_id)
                await self._audit(
                    causation_id, f"{entity}:{nmbrs_id}", "deactivate", None, {"reason": action.reason}, actor
                )
            elif isinstance(action, RecordBsnHash):
                await self.db.execute(
                    "UPDATE sync_links SET bsn_hash = $2 WHERE entity = 'employee' AND nmbrs_id = $1",
                    nmbrs_id,
                    action.bsn_hash,
                )
                # The hashes themselves stay out of the audit: only that the identity changed.
                await self._audit(causation_id, f"{entity}:{nmbrs_id}", "bsn_changed", None, {}, actor)
            elif isinstance(action, UpsertReference):
                await self.upsert_reference(
                    action.kind, action.nmbrs_id, action.code, action.description, action.active
                )
            else:  # RecalculateLeave: done by the caller once the writes are in
                employee_id = regitijd_id or await self.db.fetchval(
                    "SELECT regitijd_id FROM sync_links WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
                )
                if employee_id is not None:
                    recalculate.append(employee_id)
        return recalculate

    async def upsert_reference(
        self, kind: str, nmbrs_id: int, code: str | None, description: str, active: bool = True
    ) -> None:
        table = REFERENCE_TABLES[kind]
        code_column = "number" if kind == "labour_agreement" else "code"
        await self.db.execute(
            f"""INSERT INTO {table} (nmbrs_id, {code_column}, description, active) VALUES ($1, $2, $3, $4)
                ON CONFLICT (nmbrs_id) DO UPDATE SET {code_column} = EXCLUDED.{code_column},
                    description = EXCLUDED.description, active = EXCLUDED.active""",
            nmbrs_id,
            code,
            description,
            active,
        )

    async def _ensure_references(self, employees: list[NmbrsEmployee]) -> None:
        # The reference event may still be on its way (another topic): create what the employees need,
        # in one statement.
        # The first employee's description of a reference wins, as when they are written one at a time.
        functions: dict[int, CodeRef] = {}
        departments: dict[int, CodeRef] = {}
        caos: dict[int, LabourAgreementRef] = {}
        for e in employees:
            if e.function:
                functions.setdefault(e.function.id, e.function)
            if e.department:
                departments.setdefault(e.department.id, e.department)
            if e.labour_agreement:
                caos.setdefault(e.labour_agreement.id, e.labour_agreement)
        await self.db.execute(
            """WITH f AS (INSERT INTO rt_functions (nmbrs_id, code, description)
                          SELECT * FROM unnest($1::int[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING),
                    d AS (INSERT INTO rt_departments (nmbrs_id, code, description)
                          SELECT * FROM unnest($4::int[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING)
               INSERT INTO rt_labour_agreements (nmbrs_id, number, description)
               SELECT * FROM unnest($7::int[], $8::text[], $9::text[]) ON CONFLICT DO NOTHING""",
            list(functions),
            [r.code for r in functions.values()],
            [r.description for r in functions.values()],
            list(departments),
            [r.code for r in departments.values()],
            [r.description for r in departments.values()],
            list(caos),
            [c.number for c in caos.values()],
            [c.description for c in caos.values()],
        )

    async def apply_linked_employees(self, items: list[EmployeeApply], actor: str = "sync") -> None:
        """Write the Nmbrs-owned values of many employees that already have their RegiTijd record, a
        statement (or one pipelined batch) per table for all of them. The employees must be distinct
        humans: each one's person card is judged (PRIMARY_SQL) as if it were written alone."""
        if not items:
            return
        assert all(item.action.regitijd_id is not None for item in items)
        await self._write_employees(items, actor)

    async def _write_employees(self, items: list[EmployeeApply], actor: str) -> None:
        needs_references = [item.employee for item in items if REFERENCE_FIELDS & set(item.action.changed)]
        if needs_references:
            await self._ensure_references(needs_references)
        nmbrs_companies = sorted({item.action.values["nmbrs_company_id"] for item in items})
        if unlocked := [c for c in nmbrs_companies if c not in self._companies_locked]:
            # Shared with every other employee write, exclusive to linking the company (lock_record): read while
            # a link of the company was in flight, the mapping would miss it, and the write would clear the
            # company the link gave these employees.
            await self.db.execute(
                "SELECT pg_advisory_xact_lock_shared(hashtextextended('company:' || id, 0)) "
                "FROM unnest($1::int[]) AS id",
                unlocked,
            )
            self._companies_locked.update(unlocked)
        company_ids: dict[int, int] = {
            row["nmbrs_company_id"]: row["company_id"]
            for row in await self.db.fetch(
                "SELECT nmbrs_company_id, company_id FROM rt_companies WHERE nmbrs_company_id = ANY($1::int[])",
                nmbrs_companies,
            )
        }
        if not self._writing_as_sync:
            await self.db.execute(SYNC_WRITER_SQL)
            self._writing_as_sync = True
        # The SQL compares with what the sync wrote last; these are the candidates (a decision's write counts
        # every field as changed, a change whose CAO was already set locally counts it as changed since synced).
        candidates = [i for i in items if "labour_agreement_id" in (*i.action.changed, *i.action.since_synced)]
        if candidates:
            await self._remember_cao_changes(candidates)
        # One statement per table for the whole run: far cheaper for the server than a statement per row.
        columns = ", ".join(f"{name} = v.{name}{'::jsonb' if t == 'jsonb' else ''}" for name, t in EMPLOYEE_COLUMNS)
        # Local period edits counted when the state was read are seen now: the periods are written or equal.
        employee_rows = []
        for item in items:
            employee_id = item.action.regitijd_id
            assert employee_id is not None  # both callers pass employees that have their RegiTijd record
            seen = self._period_edits_read.get(employee_id)
            employee_rows.append((employee_id, *_employee_columns(item.action.values, company_ids), seen, item.version))
        await self.db.execute(
            f"""UPDATE rt_employees e SET {columns}, active = true,
                    period_edits_seen = coalesce(v.period_edits_seen, e.period_edits_seen),
                    nmbrs_version = coalesce(v.nmbrs_version, e.nmbrs_version)
                FROM {unnest(["int", *(t for _, t in EMPLOYEE_COLUMNS), "int", "int"])}
                    AS v(employee_id, {", ".join(name for name, _ in EMPLOYEE_COLUMNS)}, period_edits_seen,
                         nmbrs_version)
                WHERE e.employee_id = v.employee_id AND e.source = 'nmbrs'""",
            *as_columns(employee_rows, 3 + len(EMPLOYEE_COLUMNS)),
        )
        # One human, several employments: the person card follows the primary one only (see PRIMARY_SQL).
        person_rows = [
            (item.action.crm_id, item.action.regitijd_id, *[db_value(f, item.action.values[f]) for f in PERSON_FIELDS])
            for item in items
        ]
        await self.db.execute(
            f"""UPDATE crm_persons p SET {", ".join(f"{f} = v.{f}" for f in PERSON_FIELDS)}
                FROM {unnest(["int", "int", *(PERSON_TYPES.get(f, "text") for f in PERSON_FIELDS)])}
                    AS v(person_id, employee_id, {", ".join(PERSON_FIELDS)})
                WHERE p.person_id = v.person_id AND {PRIMARY_SQL.format(me="v.employee_id")}""",
            *as_columns(person_rows, 2 + len(PERSON_FIELDS)),
        )
        # Periods are rewritten only when they changed (a new employee has every field changed).
        for name, table, types, row in PERIOD_TABLES:
            changed = [item for item in items if name in item.action.changed]
            if not changed:
                continue
            await self.db.execute(
                f"DELETE FROM {table} WHERE employee_id = ANY($1::int[])", [i.action.regitijd_id for i in changed]
            )
            rows = [(i.action.regitijd_id, *row(p)) for i in changed for p in i.action.values[name]]
            await insert_rows(self.db, table, types, rows)
        await write_audit(
            self.db,
            [
                row
                for item in items
                for row in _apply_audit(item.causation_id, f"employee:{item.nmbrs_id}", item.action)
            ],
            actor,
        )

    async def _remember_cao_changes(self, items: list[EmployeeApply]) -> None:
        """Record the CAO changes among `items` before they are written (migration 0011), dated today: compared
        with what the sync wrote last, so a local edit written back is none, and a first write has nothing to
        compare with."""
        await self.db.execute(
            """INSERT INTO rt_labour_agreement_changes (employee_id, changed_on, from_id, to_id)
               SELECT e.employee_id, $3, (e.nmbrs_synced ->> 'labour_agreement_id')::int, v.to_id
               FROM unnest($1::int[], $2::int[]) AS v(employee_id, to_id)
               JOIN rt_employees e ON e.employee_id = v.employee_id
               WHERE e.nmbrs_synced IS NOT NULL
                 AND (e.nmbrs_synced ->> 'labour_agreement_id')::int IS DISTINCT FROM v.to_id
               ON CONFLICT (employee_id, changed_on) DO UPDATE SET to_id = EXCLUDED.to_id""",
            [item.action.regitijd_id for item in items],
            [item.action.values["labour_agreement_id"] for item in items],
            self.today,
        )

    async def _apply_employee(self, item: EmployeeApply, actor: str) -> int:
        action, nmbrs_id = item.action, item.nmbrs_id
        regitijd_id = action.regitijd_id
        if regitijd_id is None:
            # An employee deactivated by an undone decision comes back, relinked, rather than twice.
            created = await self.db.fetchrow(
                """INSERT INTO rt_employees (person_id, source, nmbrs_employee_id) VALUES ($1, 'nmbrs', $2)
                   ON CONFLICT (nmbrs_employee_id) DO UPDATE SET person_id = EXCLUDED.person_id
                   RETURNING employee_id, (SELECT coalesce(max(p.edits), 0) FROM rt_period_edits p
                                           WHERE p.employee_id = rt_employees.employee_id) AS period_edits""",
                action.crm_id,
                nmbrs_id,
            )
            assert created is not None  # an upsert returns its row
            regitijd_id = created["employee_id"]
            # Nothing local was read for it (every field counts as changed): all its periods are written now.
            self._period_edits_read[regitijd_id] = created["period_edits"]
            await self.db.execute(
                "UPDATE sync_links SET regitijd_id = $3 WHERE entity = 'employee' AND nmbrs_id = $1 AND crm_id = $2",
                nmbrs_id,
                action.crm_id,
                regitijd_id,
            )
            item = replace(item, action=action.model_copy(update={"regitijd_id": regitijd_id}))
        await self._write_employees([item], actor)
        assert isinstance(regitijd_id, int)
        return regitijd_id

    async def _apply_company(
        self, action: Apply, nmbrs_id: int, causation_id: uuid.UUID, actor: str, version: int | None
    ) -> int:
        values = action.values
        await self.db.execute(
            """UPDATE crm_organisations SET name = $2, kvk_number = $3, email = $4, phone = $5, website = $6
               WHERE organisation_id = $1""",
            action.crm_id,
            values["name"],
            values["kvk_number"],
            values["email"],
            values["phone"],
            values["website"],
        )
        if action.regitijd_id is None:
            company_id = await self.db.fetchval(
                """INSERT INTO rt_companies (organisation_id, nmbrs_company_id, name, nmbrs_synced, active,
                                             nmbrs_version)
                   VALUES ($1, $2, $3, $4::jsonb, true, $5)
                   ON CONFLICT (nmbrs_company_id) DO UPDATE SET organisation_id = EXCLUDED.organisation_id,
                       name = EXCLUDED.name, nmbrs_synced = EXCLUDED.nmbrs_synced, active = true,
                       nmbrs_version = coalesce(EXCLUDED.nmbrs_version, rt_companies.nmbrs_version)
                   RETURNING company_id""",
                action.crm_id,
                nmbrs_id,
                values["name"],
                json_text(values),
                version,
            )
        else:
            # The linked company, or one of the organisation's the link takes over (company_to_adopt). Taken over
            # after an undone link, the Nmbrs id leaves the company that link made (inactive since).
            await self.db.execute(
                "UPDATE rt_companies SET nmbrs_company_id = NULL WHERE nmbrs_company_id = $1 AND company_id <> $2",
                nmbrs_id,
                action.regitijd_id,
            )
            company_id = await self.db.fetchval(
                """UPDATE rt_companies SET organisation_id = $2, nmbrs_company_id = $3, name = $4,
                       nmbrs_synced = $5::jsonb, active = true, nmbrs_version = coalesce($6, nmbrs_version)
                   WHERE company_id = $1 RETURNING company_id""",
                action.regitijd_id,
                action.crm_id,
                nmbrs_id,
                values["name"],
                json_text(values),
                version,
            )
        await self.db.execute(
            "UPDATE sync_links SET regitijd_id = $2 WHERE entity = 'company' AND nmbrs_id = $1",
            nmbrs_id,
            company_id,
        )
        # Employees synced before their company was linked get it now.
        await self.db.execute(
            """UPDATE rt_employees e SET company_id = $2 FROM sync_links l
               WHERE l.entity = 'employee' AND l.regitijd_id = e.employee_id AND e.company_id IS NULL
                 AND (e.nmbrs_synced ->> 'nmbrs_company_id')::int = $1""",
            nmbrs_id,
            company_id,
        )
        await self._audit_apply(causation_id, f"company:{nmbrs_id}", action, actor)
        assert isinstance(company_id, int)
        return company_id

    async def _audit_apply(self, causation_id: uuid.UUID, subject: str, action: Apply, actor: str) -> None:
        await write_audit(self.db, _apply_audit(causation_id, subject, action), actor)

    async def _audit(
        self, causation_id: uuid.UUID, subject: str, action: str, before: Any, after: Any, actor: str
    ) -> None:
        await write_audit(self.db, [(causation_id, subject, action, before, after)], actor)


def _apply_audit(causation_id: uuid.UUID, subject: str, action: Apply) -> list[AuditRow]:
    """The audit rows of an Apply: which fields changed and their new values, and a reactivation (the counterpart
    of the removal's "deactivate")."""
    changed = {name: action.values[name] for name in action.changed}
    rows: list[AuditRow] = [(causation_id, subject, "apply", {"changed": list(action.changed)}, changed or None)]
    if action.reactivate:
        rows.append((causation_id, subject, "reactivate", None, {"reason": "back in Nmbrs"}))
    return rows
