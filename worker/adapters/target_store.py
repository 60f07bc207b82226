"""The target store (RegiCRM + RegiTijd in PostgreSQL): every write of the reconciler goes through here.

`TargetStore` is the port; `PostgresTargetStore` writes the tables directly inside the caller's
transaction. A future RegiTijd API adapter would implement the same port without touching the
reconciliation logic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Protocol

import asyncpg
from pydantic_core import from_json, to_json

from worker.domain.nmbrs_records import CodeRef, LabourAgreementRef, NmbrsCompany, NmbrsEmployee
from worker.domain.normalisation import fold, normalise_kvk, normalise_organisation_name, split_last_name
from worker.domain.organisation_matching import OrganisationCandidate
from worker.domain.ownership import NMBRS_OWNED_COMPANY_FIELDS, PERSON_FIELDS
from worker.domain.person_scoring import PersonCandidate
from worker.domain.reconcile import (
    Apply,
    ClearPending,
    Deactivate,
    Link,
    LinkedRecord,
    Plan,
    RecordBsnHash,
    RecordState,
    SavePending,
    UpsertReference,
)

Entity = str  # 'employee' | 'company'
# A linked record's RegiTijd/RegiCRM side: its Nmbrs-owned fields as they are, as the sync last wrote them, the
# snapshot version it wrote, and whether the RegiTijd record is active.
LocalSide = tuple[dict[str, Any], dict[str, Any] | None, int | None, bool]
# The employment whose name and contact data the shared person card shows: of one human's active
# Nmbrs employments, the one that started last (then the highest Nmbrs id). Without this, employments
# with different work e-mail or phone would overwrite the card in turn and report each other as drift.
PRIMARY_SQL = """NOT EXISTS (
    SELECT 1 FROM rt_employees me JOIN rt_employees other
      ON other.person_id = me.person_id AND other.employee_id <> me.employee_id
    WHERE me.employee_id = {me} AND other.source = 'nmbrs' AND other.active
      AND (coalesce(other.employment_start, '-infinity'), other.nmbrs_employee_id)
        > (coalesce(me.employment_start, '-infinity'), me.nmbrs_employee_id))"""
REFERENCE_FIELDS = frozenset({"function_id", "department_id", "labour_agreement_id"})
REFERENCE_TABLES = {"department": "rt_departments", "function": "rt_functions",
                    "labour_agreement": "rt_labour_agreements"}  # fmt: skip


# rt_employees columns the sync writes, with their types (writes go through unnest of one array per column).
EMPLOYEE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "text"), ("company_id", "int"), ("function_id", "int"), ("department_id", "int"),
    ("labour_agreement_id", "int"), ("employment_start", "date"), ("employment_end", "date"),
    ("nmbrs_synced", "jsonb"),
)  # fmt: skip
PERSON_TYPES = {"birthday": "date"}  # the other person fields are text
# The RegiCRM card of an entity: its table, id column and the fields the sync writes on it.
_CARDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "employee": ("crm_persons", "person_id", PERSON_FIELDS),
    "company": ("crm_organisations", "organisation_id", NMBRS_OWNED_COMPANY_FIELDS),
}
AUDIT_TYPES = ("uuid", "text", "text", "jsonb", "jsonb")
AUDIT_WIDTH = len(AUDIT_TYPES)


def _employee_columns(values: dict[str, Any], company_ids: dict[int, int]) -> tuple[Any, ...]:
    """The rt_employees columns (EMPLOYEE_COLUMNS order) for Nmbrs-owned `values`; `company_ids` maps Nmbrs
    company ids to RegiTijd ones (absent: the company is not linked yet)."""
    return (
        values["number"], company_ids.get(values["nmbrs_company_id"]), values["function_id"],
        values["department_id"], values["labour_agreement_id"], _date(values["employment_start"]),
        _date(values["employment_end"]), _json(values),
    )  # fmt: skip


# The period tables: the values key, the table, its column types (employee_id first) and a row (after
# employee_id) from one period.
PERIOD_TABLES: tuple[tuple[str, str, tuple[str, ...], Callable[[dict[str, Any]], tuple[Any, ...]]], ...] = (
    ("employments", "rt_employment_periods", ("int", "int", "date", "date"),
     lambda e: (e["employment_id"], _date(e["start"]), _date(e["end"]))),
    ("contracts", "rt_contract_periods", ("int", "int", "date", "date", "numeric"),
     lambda c: (c["contract_id"], _date(c["start"]), _date(c["end"]), c["hours_per_week"])),
    ("schedules", "rt_schedule_periods", ("int", "date", "numeric", "numeric"),
     lambda s: (_date(s["start"]), s["hours_per_week"], s["parttime_percentage"])),
)  # fmt: skip
PERIOD_FIELDS = tuple(name for name, *_ in PERIOD_TABLES)
# Set in a transaction that writes as the sync: the triggers of migration 0008 count other writers' edits only.
SYNC_WRITER_SQL = "SELECT set_config('nmbrs_sync.writer', 'sync', true)"


def _unnest(types: Sequence[str], first: int = 1) -> str:
    """`unnest($first::t1[], ...)`: a whole batch of rows as one parameter per column (jsonb goes as text)."""
    casts = ("text" if t == "jsonb" else t for t in types)
    return f"unnest({', '.join(f'${first + i}::{t}[]' for i, t in enumerate(casts))})"


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows turned into one list per column (what _unnest takes)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def _insert_rows(db: asyncpg.Connection, table: str, types: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows (all columns, in table order) in one statement."""
    if rows:
        await db.execute(f"INSERT INTO {table} SELECT * FROM {_unnest(types)}", *_columns(rows, len(types)))


def human_key(bsn_hash: str) -> str:
    """The lock key of a human: every employment with this BSN hash."""
    return f"human:{bsn_hash}"


@dataclass(frozen=True)
class EmployeeApply:
    """One employee's Apply with what it came from."""

    action: Apply
    nmbrs_id: int
    employee: NmbrsEmployee
    causation_id: uuid.UUID
    version: int | None = None  # the change's snapshot version; None (a decision) keeps the one written


class TargetStore(Protocol):
    """What the reconciler and the decision consumer need from RegiCRM/RegiTijd."""

    async def lock_record(self, key: str) -> None: ...
    async def lock_records(self, keys: list[str]) -> None: ...
    async def record_state(self, entity: Entity, nmbrs_id: int, bsn_hash: str | None = None) -> RecordState: ...
    async def record_states(self, entity: Entity, records: dict[int, str | None]) -> dict[int, RecordState]: ...
    async def person_candidates(self, employee: NmbrsEmployee) -> list[PersonCandidate]: ...
    async def organisation_candidates(self, company: NmbrsCompany) -> list[OrganisationCandidate]: ...
    async def execute(
        self,
        plan: Plan,
        entity: Entity,
        nmbrs_id: int,
        record: Any,
        causation_id: uuid.UUID,
        actor: str = "sync",
    ) -> list[int]: ...


def _json(value: Any) -> str:
    # pydantic-core's encoder: several times faster than json.dumps on the per-event path. The values are
    # JSON-shaped already; anything else is written as its str(), as json.dumps(default=str) would.
    return to_json(value, fallback=str).decode()


class PostgresTargetStore:
    """The target store on one connection; the caller owns the transaction (one unit of work)."""

    def __init__(self, connection: asyncpg.Connection, *, today: date) -> None:
        """`today`: the Dutch calendar date of the work (a CAO change is dated with it)."""
        self.db = connection
        self.today = today
        # RegiTijd employee id -> its count of local period edits when its state was read (see migration
        # 0008): what a write of the employee records as seen.
        self._period_edits_read: dict[int, int] = {}
        # Done once per transaction before employee writes (a store serves one transaction; after a rollback
        # to a savepoint it must not write again, as the decision consumer never does).
        self._companies_locked: set[int] = set()
        self._writing_as_sync = False

    async def lock_record(self, key: str) -> None:
        """Serialise everything that touches one Nmbrs record (changes and decisions never interleave)."""
        await self.lock_records([key])

    async def lock_records(self, keys: list[str]) -> None:
        """lock_record for many records: humans (human_key) first, then the records, each in key order, as the
        decisions lock them too, so two transactions never wait for each other in a cycle. A decision that locks a
        second record later can still meet a batch in one; PostgreSQL then aborts one of them and the consumer
        shell retries it (DeadlockDetectedError is transient)."""
        await self.db.execute(
            """SELECT pg_advisory_xact_lock(hashtextextended(key, 0))
               FROM (SELECT key FROM (SELECT DISTINCT key FROM unnest($1::text[]) AS key) AS distinct_keys
                     ORDER BY key NOT LIKE 'human:%', key) AS keys""",
            keys,
        )

    # --- reading ------------------------------------------------------------------------------------

    async def record_state(self, entity: Entity, nmbrs_id: int, bsn_hash: str | None = None) -> RecordState:
        return (await self.record_states(entity, {nmbrs_id: bsn_hash}))[nmbrs_id]

    async def record_states(self, entity: Entity, records: dict[int, str | None]) -> dict[int, RecordState]:
        """The sync state of many records (Nmbrs id -> BSN hash, used for employees only) in two round
        trips: the time of a change goes almost all into round trips."""
        ids = list(records)
        rows = await self.db.fetch(
            """SELECT r.nmbrs_id, l.crm_id, l.regitijd_id,
                      EXISTS (SELECT 1 FROM sync_blocks b WHERE b.entity = $1 AND b.nmbrs_id = r.nmbrs_id) AS blocked,
                      (SELECT p.version FROM pending_decisions p WHERE p.entity = $1 AND p.nmbrs_id = r.nmbrs_id)
                          AS pending,
                      l.bsn_hash AS link_bsn_hash,
                      -- Every person the human's other employments point at (more than one: duplicates).
                      ARRAY(SELECT DISTINCT s.crm_id FROM sync_links s
                            WHERE r.bsn_hash IS NOT NULL AND s.entity = 'employee' AND s.bsn_hash = r.bsn_hash
                              AND s.nmbrs_id <> r.nmbrs_id ORDER BY s.crm_id) AS same_human
               FROM unnest($2::int[], $3::text[]) AS r(nmbrs_id, bsn_hash)
               LEFT JOIN sync_links l ON l.entity = $1 AND l.nmbrs_id = r.nmbrs_id""",
            entity, ids, [records[i] if entity == "employee" else None for i in ids],
        )  # fmt: skip
        linked = [(row["crm_id"], row["regitijd_id"]) for row in rows if row["crm_id"] is not None]
        local = await self._local_values(entity, linked) if linked else {}
        states = {}
        for row in rows:
            link, version = None, None
            if row["crm_id"] is not None:
                values, synced, version, active = local[(row["crm_id"], row["regitijd_id"])]
                link = LinkedRecord(crm_id=row["crm_id"], regitijd_id=row["regitijd_id"], local=values, synced=synced,
                                    bsn_hash=row["link_bsn_hash"], active=active)  # fmt: skip
            states[row["nmbrs_id"]] = RecordState(link=link, blocked=row["blocked"], pending_version=row["pending"],
                                                  applied_version=version,
                                                  linked_persons_for_bsn=tuple(row["same_human"]))  # fmt: skip
        return states

    async def _local_values(
        self, entity: Entity, linked: list[tuple[int, int | None]]
    ) -> dict[tuple[int, int | None], LocalSide]:
        """(crm_id, regitijd_id) -> the Nmbrs-owned fields as they are locally, as the sync last wrote them, the
        snapshot version it wrote and whether the RegiTijd record is active (a record not created yet counts as
        active: its first write creates it so)."""
        crm_ids, regitijd_ids = [c for c, _ in linked], [r for _, r in linked]
        if entity == "company":
            rows = await self.db.fetch(
                """SELECT k.crm_id, k.regitijd_id, o.name, o.kvk_number, o.email, o.phone, o.website, c.nmbrs_synced,
                          c.nmbrs_version, coalesce(c.active, true) AS active
                   FROM unnest($1::int[], $2::int[]) AS k(crm_id, regitijd_id)
                   JOIN crm_organisations o ON o.organisation_id = k.crm_id
                   LEFT JOIN rt_companies c ON c.company_id = k.regitijd_id""",
                crm_ids, regitijd_ids,
            )  # fmt: skip
            found: dict[tuple[int, int | None], LocalSide] = {
                pair: ({}, None, None, True)
                for pair in linked  # the organisation is gone: nothing local
            }
            for row in rows:
                values = dict(row)
                key = (values.pop("crm_id"), values.pop("regitijd_id"))
                synced, version, active = (values.pop(name) for name in ("nmbrs_synced", "nmbrs_version", "active"))
                found[key] = (values, from_json(synced) if synced else None, version, active)
            return found
        rows = await self.db.fetch(
            f"""SELECT k.crm_id, k.regitijd_id, {", ".join(f"p.{f}" for f in PERSON_FIELDS)}, e.employee_id, e.number,
                       e.company_id, c.nmbrs_company_id, e.function_id, e.department_id, e.labour_agreement_id,
                       e.employment_start, e.employment_end, e.nmbrs_synced, e.nmbrs_version, r.period_edits,
                       r.periods_read, coalesce(e.active, true) AS active,
                       {PRIMARY_SQL.format(me="e.employee_id")} AS primary,
                       -- The period lists only where they may differ from what the sync wrote (migration 0008).
                       CASE WHEN r.periods_read THEN (
                           SELECT json_agg(json_build_object('employment_id', employment_id, 'start', start_date,
                               'end', end_date) ORDER BY start_date, employment_id)
                           FROM rt_employment_periods WHERE employee_id = e.employee_id) END AS employments,
                       CASE WHEN r.periods_read THEN (
                           SELECT json_agg(json_build_object('contract_id', contract_id, 'start', start_date,
                               'end', end_date, 'hours_per_week', hours_per_week::text) ORDER BY start_date,
                               contract_id)
                           FROM rt_contract_periods WHERE employee_id = e.employee_id) END AS contracts,
                       CASE WHEN r.periods_read THEN (
                           SELECT json_agg(json_build_object('start', start_date, 'hours_per_week',
                               hours_per_week::text, 'parttime_percentage', parttime_percentage::text)
                               ORDER BY start_date)
                           FROM rt_schedule_periods WHERE employee_id = e.employee_id) END AS schedules
                FROM unnest($1::int[], $2::int[]) AS k(crm_id, regitijd_id)
                JOIN crm_persons p ON p.person_id = k.crm_id
                LEFT JOIN rt_employees e ON e.employee_id = k.regitijd_id
                LEFT JOIN rt_companies c ON c.company_id = e.company_id
                LEFT JOIN rt_period_edits pe ON pe.employee_id = e.employee_id
                CROSS JOIN LATERAL (SELECT coalesce(pe.edits, 0) AS period_edits,
                                           coalesce(pe.edits, 0) <> e.period_edits_seen OR e.nmbrs_synced IS NULL
                                               AS periods_read) AS r""",
            crm_ids, regitijd_ids,
        )  # fmt: skip
        gone: LocalSide = ({f: None for f in PERSON_FIELDS}, None, None, True)  # the person is gone: nothing local
        found = {pair: gone for pair in linked}
        found.update(
            {
                (row["crm_id"], row["regitijd_id"]): (
                    *_employee_local_values(dict(row)),
                    row["nmbrs_version"],
                    row["active"],
                )
                for row in rows
            }
        )
        self._period_edits_read.update(
            (row["employee_id"], row["period_edits"]) for row in rows if row["employee_id"] is not None
        )
        return found

    async def person_candidates(self, employee: NmbrsEmployee, also: Sequence[int] = ()) -> list[PersonCandidate]:
        """Persons worth scoring: similar last name, same birthday or same e-mail (the matcher decides), and the
        persons `also` (those the employee's BSN is linked to, shown even when nothing else agrees)."""
        _, core = split_last_name(employee.last_name, employee.prefix)
        stem = fold(core)[:4]
        emails = [e.lower() for e in (employee.email_work, employee.email_private) if e]
        rows = await self.db.fetch(
            """SELECT p.*, a.person_id IS NOT NULL AS has_account,
                      EXISTS (SELECT 1 FROM rt_employees b WHERE b.person_id = p.person_id AND b.source = 'manual')
                          AS is_blue,
                      ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id)
                          AS linked_ids,
                      -- The employee's own hash when one of the person's links has it.
                      (SELECT l.bsn_hash FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id
                          AND l.bsn_hash IS NOT NULL ORDER BY l.bsn_hash IS NOT DISTINCT FROM $5 DESC LIMIT 1)
                          AS bsn_hash
               FROM crm_persons p LEFT JOIN crm_accounts a USING (person_id)
               WHERE ($1 <> '' AND p.match_name LIKE '%' || $1 || '%')
                  OR p.birthday = $2
                  OR lower(p.email_work) = ANY($3::text[]) OR lower(p.email_private) = ANY($3::text[])
                  OR p.person_id = ANY($4::int[])
               -- Strongest evidence first, so the limit never cuts the right person (or the login card).
               ORDER BY p.person_id = ANY($4::int[]) DESC,
                        (lower(p.email_work) = ANY($3::text[]) OR lower(p.email_private) = ANY($3::text[])) DESC,
                        (p.birthday = $2 AND $1 <> '' AND p.match_name LIKE '%' || $1 || '%') DESC,
                        (p.birthday = $2) DESC, (a.person_id IS NOT NULL) DESC, p.person_id
               LIMIT 200""",
            stem, employee.birthday, emails, list(also), employee.bsn_hash,
        )  # fmt: skip
        return [
            PersonCandidate(
                person_id=r["person_id"], first_name=r["first_name"], initials=r["initials"], prefix=r["prefix"],
                last_name=r["last_name"], birthday=r["birthday"],
                emails=tuple(e for e in (r["email_work"], r["email_private"]) if e),
                phones=tuple(p for p in (r["phone_work"], r["phone_mobile"], r["phone_private"]) if p),
                postcode=r["postcode"], has_login_account=r["has_account"], is_blue_employee=r["is_blue"],
                linked_nmbrs_employee_ids=tuple(r["linked_ids"]), bsn_hash=r["bsn_hash"],
            )
            for r in rows
        ]  # fmt: skip

    async def organisation_candidates(self, company: NmbrsCompany) -> list[OrganisationCandidate]:
        rows = await self.db.fetch(
            r"""SELECT o.*, ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'company'
                                 AND l.crm_id = o.organisation_id) AS linked_ids
               FROM crm_organisations o
               WHERE lpad(regexp_replace(coalesce(o.kvk_number, ''), '\D', '', 'g'), 8, '0') = $1
                  OR ($2 <> '' AND lower(o.name) LIKE '%' || $2 || '%')
               ORDER BY (lpad(regexp_replace(coalesce(o.kvk_number, ''), '\D', '', 'g'), 8, '0') = $1) DESC,
                        o.organisation_id
               LIMIT 200""",
            normalise_kvk(company.kvk_number) or "-",
            _longest_word(normalise_organisation_name(company.name)),
        )
        return [
            OrganisationCandidate(
                organisation_id=r["organisation_id"], name=r["name"], kvk_number=r["kvk_number"], email=r["email"],
                phone=r["phone"], postcode=r["postcode"], website=r["website"],
                linked_nmbrs_company_ids=tuple(r["linked_ids"]),
            )
            for r in rows
        ]  # fmt: skip

    # --- writing ------------------------------------------------------------------------------------

    async def execute(
        self,
        plan: Plan,
        entity: Entity,
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
                    entity, nmbrs_id, action.crm_id, getattr(record, "bsn_hash", None), action.linked_by,
                    action.reason,
                )  # fmt: skip
                # The card as it was: the link writes Nmbrs' name and contact data over it (also for a link
                # nobody decided, an auto-link), and this is where its earlier values can be found again.
                await self._audit(
                    causation_id,
                    f"{entity}:{nmbrs_id}",
                    "link",
                    {"card": await self.card(entity, action.crm_id)},
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
                    entity, nmbrs_id, action.version, action.situation, getattr(record, "company_id", None),
                    record.model_dump_json(), _json([c.model_dump(mode="json") for c in action.candidates]),
                    causation_id, action.reason,
                )  # fmt: skip
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
                    action.regitijd_id, version,
                )  # fmt: skip
                if entity == "employee":
                    await self._hand_card_over(action.regitijd_id)
                await self._audit(
                    causation_id, f"{entity}:{nmbrs_id}", "deactivate", None, {"reason": action.reason}, actor
                )
            elif isinstance(action, RecordBsnHash):
                await self.db.execute(
                    "UPDATE sync_links SET bsn_hash = $2 WHERE entity = 'employee' AND nmbrs_id = $1",
                    nmbrs_id, action.bsn_hash,
                )  # fmt: skip
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
            nmbrs_id, code, description, active,
        )  # fmt: skip

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
            list(functions), [r.code for r in functions.values()], [r.description for r in functions.values()],
            list(departments), [r.code for r in departments.values()], [r.description for r in departments.values()],
            list(caos), [c.number for c in caos.values()], [c.description for c in caos.values()],
        )  # fmt: skip

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
        company_ids = dict(
            await self.db.fetch(
                "SELECT nmbrs_company_id, company_id FROM rt_companies WHERE nmbrs_company_id = ANY($1::int[])",
                nmbrs_companies,
            )
        )
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
                FROM {_unnest(["int", *(t for _, t in EMPLOYEE_COLUMNS), "int", "int"])}
                    AS v(employee_id, {", ".join(name for name, _ in EMPLOYEE_COLUMNS)}, period_edits_seen,
                         nmbrs_version)
                WHERE e.employee_id = v.employee_id AND e.source = 'nmbrs'""",
            *_columns(employee_rows, 3 + len(EMPLOYEE_COLUMNS)),
        )
        # One human, several employments: the person card follows the primary one only (see PRIMARY_SQL).
        person_rows = [
            (item.action.crm_id, item.action.regitijd_id, *[_db_value(f, item.action.values[f]) for f in PERSON_FIELDS])
            for item in items
        ]
        await self.db.execute(
            f"""UPDATE crm_persons p SET {", ".join(f"{f} = v.{f}" for f in PERSON_FIELDS)}
                FROM {_unnest(["int", "int", *(PERSON_TYPES.get(f, "text") for f in PERSON_FIELDS)])}
                    AS v(person_id, employee_id, {", ".join(PERSON_FIELDS)})
                WHERE p.person_id = v.person_id AND {PRIMARY_SQL.format(me="v.employee_id")}""",
            *_columns(person_rows, 2 + len(PERSON_FIELDS)),
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
            await _insert_rows(self.db, table, types, rows)
        await self._audit_many(
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

    async def _hand_card_over(self, removed_employee_id: int) -> None:
        """The person card of a human whose employment was removed follows the employment that is primary now
        (see PRIMARY_SQL), with the values the sync last wrote to it: nothing else would rewrite the card until
        that employment changes."""
        fields = ", ".join(f"{f} = (o.nmbrs_synced->>'{f}')::{PERSON_TYPES.get(f, 'text')}" for f in PERSON_FIELDS)
        await self.db.execute(
            f"""UPDATE crm_persons p SET {fields}
                FROM rt_employees gone JOIN rt_employees o
                  ON o.person_id = gone.person_id AND o.employee_id <> gone.employee_id
                WHERE gone.employee_id = $1 AND p.person_id = gone.person_id AND o.source = 'nmbrs' AND o.active
                  AND o.nmbrs_synced IS NOT NULL AND {PRIMARY_SQL.format(me="o.employee_id")}""",
            removed_employee_id,
        )

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
        company_id = await self.db.fetchval(
            """INSERT INTO rt_companies (organisation_id, nmbrs_company_id, name, nmbrs_synced, active, nmbrs_version)
               VALUES ($1, $2, $3, $4::jsonb, true, $5)
               ON CONFLICT (nmbrs_company_id) DO UPDATE SET organisation_id = EXCLUDED.organisation_id,
                   name = EXCLUDED.name, nmbrs_synced = EXCLUDED.nmbrs_synced, active = true,
                   nmbrs_version = coalesce(EXCLUDED.nmbrs_version, rt_companies.nmbrs_version)
               RETURNING company_id""",
            action.crm_id,
            nmbrs_id,
            values["name"],
            _json(values),
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

    # --- the RegiCRM card a link writes (person or organisation) ---------------------------------------

    async def card(self, entity: Entity, crm_id: int) -> dict[str, Any] | None:
        """The Nmbrs-owned fields of the person (employee) or organisation (company) `crm_id`, JSON-shaped."""
        table, id_column, fields = _CARDS[entity]
        row = await self.db.fetchrow(f"SELECT {', '.join(fields)} FROM {table} WHERE {id_column} = $1", crm_id)
        return None if row is None else {f: _iso(row[f]) if f == "birthday" else row[f] for f in fields}

    async def restore_card(
        self, entity: Entity, crm_id: int, before: dict[str, Any], written: dict[str, Any], causation_id: uuid.UUID,
        actor: str,
    ) -> bool:  # fmt: skip
        """Put back the card's values from `before`, only while it still holds what a link `written`: a later
        edit (by hand or by the sync) is newer than the values the undo would bring back. True if restored."""
        table, id_column, fields = _CARDS[entity]
        restored = await self.db.fetchval(
            f"""UPDATE {table} SET {", ".join(f"{f} = ${i + 2}" for i, f in enumerate(fields))}
                WHERE {id_column} = $1 AND ({", ".join(fields)}) IS NOT DISTINCT FROM
                      ({", ".join(f"${i + 2 + len(fields)}" for i in range(len(fields)))})
                RETURNING true""",
            crm_id, *(_db_value(f, before.get(f)) for f in fields), *(_db_value(f, written.get(f)) for f in fields),
        )  # fmt: skip
        if restored:
            await self._audit(causation_id, f"{table}:{crm_id}", "restore", written, before, actor)
        return bool(restored)

    async def _audit_apply(self, causation_id: uuid.UUID, subject: str, action: Apply, actor: str) -> None:
        await self._audit_many(_apply_audit(causation_id, subject, action), actor)

    async def _audit(
        self, causation_id: uuid.UUID, subject: str, action: str, before: Any, after: Any, actor: str
    ) -> None:
        await self._audit_many([(causation_id, subject, action, before, after)], actor)

    async def _audit_many(self, rows: list[tuple[uuid.UUID, str, str, Any, Any]], actor: str) -> None:
        await self.db.execute(
            f"""INSERT INTO audit_log (causation_id, subject, action, before, after, actor)
                SELECT causation_id, subject, action, before::jsonb, after::jsonb, ${AUDIT_WIDTH + 1}
                FROM {_unnest(AUDIT_TYPES)} AS v(causation_id, subject, action, before, after)""",
            *_columns([(c, subject, action, _json(b), _json(a)) for c, subject, action, b, a in rows], AUDIT_WIDTH),
            actor,
        )


def _apply_audit(causation_id: uuid.UUID, subject: str, action: Apply) -> list[tuple[uuid.UUID, str, str, Any, Any]]:
    """The audit rows of an Apply: which fields changed and their new values, and a reactivation (the counterpart
    of the removal's "deactivate")."""
    changed = {name: action.values[name] for name in action.changed}
    rows: list[tuple[uuid.UUID, str, str, Any, Any]] = [
        (causation_id, subject, "apply", {"changed": list(action.changed)}, changed or None)
    ]
    if action.reactivate:
        rows.append((causation_id, subject, "reactivate", None, {"reason": "back in Nmbrs"}))
    return rows


def _longest_word(name: str) -> str:
    """The most telling word of a folded organisation name, for a broad SQL prefilter (the matcher scores)."""
    return max(name.split(), key=len, default="")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _db_value(field: str, value: Any) -> Any:
    return _date(value) if field == "birthday" else value


def _employee_local_values(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    local: dict[str, Any] = {f: record.get(f) for f in PERSON_FIELDS}
    local["birthday"] = _iso(local["birthday"])
    if record["regitijd_id"] is None or record.get("employee_id") is None:
        return local, None
    synced = from_json(record["nmbrs_synced"]) if record["nmbrs_synced"] else None
    if synced and not record["primary"]:
        # Another employment of this human owns the person card: its values are not a local edit.
        local.update({f: synced.get(f) for f in PERSON_FIELDS})
    local.update(
        number=record["number"],
        # No RegiTijd company yet (its Nmbrs company is not linked): nothing local to differ from.
        nmbrs_company_id=record["nmbrs_company_id"] if record["company_id"] is not None
        else (synced or {}).get("nmbrs_company_id"),
        function_id=record["function_id"],
        department_id=record["department_id"],
        labour_agreement_id=record["labour_agreement_id"],
        employment_start=_iso(record["employment_start"]),
        employment_end=_iso(record["employment_end"]),
    )  # fmt: skip
    for name in PERIOD_FIELDS:
        # Lists not read have no local edits since the sync wrote them (migration 0008): they are the synced ones.
        local[name] = from_json(record[name] or "[]") if record["periods_read"] else (synced or {}).get(name, [])
    return local, synced
