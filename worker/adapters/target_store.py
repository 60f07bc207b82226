"""The target store (RegiCRM + RegiTijd in PostgreSQL): every write of the reconciler goes through here.

`TargetStore` is the port; `PostgresTargetStore` writes the tables directly inside the caller's
transaction. A future RegiTijd API adapter would implement the same port without touching the
reconciliation logic.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any, Protocol

import asyncpg

from worker.domain.matching import (
    OrganisationCandidate,
    PersonCandidate,
    fold,
    normalise_kvk,
    normalise_organisation_name,
    split_last_name,
)
from worker.domain.nmbrs_records import CodeRef, NmbrsCompany, NmbrsEmployee
from worker.domain.ownership import PERSON_FIELDS
from worker.domain.reconcile import (
    Apply,
    ClearPending,
    Deactivate,
    Link,
    LinkedRecord,
    Plan,
    RecordState,
    SavePending,
    UpsertReference,
)

Entity = str  # 'employee' | 'company'
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


class TargetStore(Protocol):
    """What the reconciler and the decision consumer need from RegiCRM/RegiTijd."""

    async def lock_record(self, key: str) -> None: ...
    async def record_state(self, entity: Entity, nmbrs_id: int, bsn_hash: str | None = None) -> RecordState: ...
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
    return json.dumps(value, default=str)


class PostgresTargetStore:
    """The target store on one connection; the caller owns the transaction (one unit of work)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.db = connection

    async def lock_record(self, key: str) -> None:
        """Serialise everything that touches one Nmbrs record (changes and decisions never interleave)."""
        await self.db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)

    # --- reading ------------------------------------------------------------------------------------

    async def record_state(self, entity: Entity, nmbrs_id: int, bsn_hash: str | None = None) -> RecordState:
        # One round trip for the sync state; the time of a change goes almost all into round trips.
        row = await self.db.fetchrow(
            """SELECT l.crm_id, l.regitijd_id,
                      EXISTS (SELECT 1 FROM sync_blocks b WHERE b.entity = $1 AND b.nmbrs_id = $2) AS blocked,
                      (SELECT p.version FROM pending_decisions p WHERE p.entity = $1 AND p.nmbrs_id = $2) AS pending,
                      -- Certain only when the human's other employments all point at one person.
                      (SELECT CASE WHEN count(DISTINCT s.crm_id) = 1 THEN min(s.crm_id) END FROM sync_links s
                       WHERE $3::text IS NOT NULL AND s.entity = 'employee' AND s.bsn_hash = $3
                         AND s.nmbrs_id <> $2) AS same_human
               FROM (SELECT 1) AS one
               LEFT JOIN sync_links l ON l.entity = $1 AND l.nmbrs_id = $2""",
            entity, nmbrs_id, bsn_hash if entity == "employee" else None,
        )  # fmt: skip
        assert row is not None
        link = None
        if row["crm_id"] is not None:
            local, synced = await self._local_values(entity, row["crm_id"], row["regitijd_id"])
            link = LinkedRecord(crm_id=row["crm_id"], regitijd_id=row["regitijd_id"], local=local, synced=synced)
        return RecordState(link=link, blocked=row["blocked"], pending_version=row["pending"],
                           linked_person_for_bsn=row["same_human"])  # fmt: skip

    async def _local_values(
        self, entity: Entity, crm_id: int, regitijd_id: int | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if entity == "company":
            row = await self.db.fetchrow(
                """SELECT o.name, o.kvk_number, o.email, o.phone, o.website, c.nmbrs_synced
                   FROM crm_organisations o LEFT JOIN rt_companies c ON c.company_id = $2
                   WHERE o.organisation_id = $1""",
                crm_id, regitijd_id,
            )  # fmt: skip
            values = dict(row) if row else {}
            synced = values.pop("nmbrs_synced", None)
            return values, (json.loads(synced) if synced else None)
        row = await self.db.fetchrow(
            f"""SELECT {", ".join(f"p.{f}" for f in PERSON_FIELDS)}, e.employee_id, e.number, e.company_id,
                       c.nmbrs_company_id, e.function_id, e.department_id, e.labour_agreement_id, e.employment_start,
                       e.employment_end, e.nmbrs_synced,
                       (SELECT json_agg(json_build_object('employment_id', employment_id, 'start', start_date,
                            'end', end_date) ORDER BY start_date, employment_id)
                        FROM rt_employment_periods WHERE employee_id = e.employee_id) AS employments,
                       {PRIMARY_SQL.format(me="e.employee_id")} AS primary,
                       (SELECT json_agg(json_build_object('contract_id', contract_id, 'start', start_date,
                            'end', end_date, 'hours_per_week', hours_per_week::text) ORDER BY start_date, contract_id)
                        FROM rt_contract_periods WHERE employee_id = e.employee_id) AS contracts,
                       (SELECT json_agg(json_build_object('start', start_date, 'hours_per_week', hours_per_week::text,
                            'parttime_percentage', parttime_percentage::text) ORDER BY start_date)
                        FROM rt_schedule_periods WHERE employee_id = e.employee_id) AS schedules
                FROM crm_persons p
                LEFT JOIN rt_employees e ON e.employee_id = $2
                LEFT JOIN rt_companies c ON c.company_id = e.company_id
                WHERE p.person_id = $1""",
            crm_id, regitijd_id,
        )  # fmt: skip
        record = dict(row) if row else {}
        local: dict[str, Any] = {f: record.get(f) for f in PERSON_FIELDS}
        local["birthday"] = _iso(local["birthday"])
        if regitijd_id is None or record.get("employee_id") is None:
            return local, None
        synced = json.loads(record["nmbrs_synced"]) if record["nmbrs_synced"] else None
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
            employments=json.loads(record["employments"] or "[]"),
            contracts=json.loads(record["contracts"] or "[]"),
            schedules=json.loads(record["schedules"] or "[]"),
        )  # fmt: skip
        return local, synced

    async def person_candidates(self, employee: NmbrsEmployee) -> list[PersonCandidate]:
        """Persons worth scoring: similar last name, same birthday or same e-mail (the matcher decides)."""
        _, core = split_last_name(employee.last_name, employee.prefix)
        stem = fold(core)[:4]
        emails = [e.lower() for e in (employee.email_work, employee.email_private) if e]
        rows = await self.db.fetch(
            """SELECT p.*, a.person_id IS NOT NULL AS has_account,
                      EXISTS (SELECT 1 FROM rt_employees b WHERE b.person_id = p.person_id AND b.source = 'manual')
                          AS is_blue,
                      ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id)
                          AS linked_ids,
                      (SELECT l.bsn_hash FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id
                          AND l.bsn_hash IS NOT NULL LIMIT 1) AS bsn_hash
               FROM crm_persons p LEFT JOIN crm_accounts a USING (person_id)
               WHERE ($1 <> '' AND p.match_name LIKE '%' || $1 || '%')
                  OR p.birthday = $2
                  OR lower(p.email_work) = ANY($3::text[]) OR lower(p.email_private) = ANY($3::text[])
               -- Strongest evidence first, so the limit never cuts the right person (or the login card).
               ORDER BY (lower(p.email_work) = ANY($3::text[]) OR lower(p.email_private) = ANY($3::text[])) DESC,
                        (p.birthday = $2 AND $1 <> '' AND p.match_name LIKE '%' || $1 || '%') DESC,
                        (p.birthday = $2) DESC, (a.person_id IS NOT NULL) DESC, p.person_id
               LIMIT 200""",
            stem, employee.birthday, emails,
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
    ) -> list[int]:
        """Carry out the plan's store actions; returns the RegiTijd ids whose leave must be recalculated."""
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
                await self._audit(
                    causation_id,
                    f"{entity}:{nmbrs_id}",
                    "link",
                    None,
                    {"crm_id": action.crm_id, "reason": action.reason},
                    actor,
                )
            elif isinstance(action, Apply):
                if entity == "employee":
                    regitijd_id = await self._apply_employee(action, nmbrs_id, record, causation_id, actor)
                else:
                    regitijd_id = await self._apply_company(action, nmbrs_id, causation_id, actor)
            elif isinstance(action, SavePending):
                await self.db.execute(
                    """INSERT INTO pending_decisions (entity, nmbrs_id, version, situation, company_id, record,
                                                      candidates, causation_id)
                       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)
                       ON CONFLICT (entity, nmbrs_id) DO UPDATE SET version = EXCLUDED.version,
                           situation = EXCLUDED.situation, company_id = EXCLUDED.company_id,
                           record = EXCLUDED.record, candidates = EXCLUDED.candidates,
                           causation_id = EXCLUDED.causation_id, created_at = now()""",
                    entity, nmbrs_id, action.version, action.situation, getattr(record, "company_id", None),
                    record.model_dump_json(), _json([c.model_dump(mode="json") for c in action.candidates]),
                    causation_id,
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
                await self.db.execute(
                    f"UPDATE {table} SET active = false WHERE {column} = $1{guard}", action.regitijd_id
                )
                await self._audit(
                    causation_id, f"{entity}:{nmbrs_id}", "deactivate", None, {"reason": action.reason}, actor
                )
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

    async def _ensure_references(self, employee: NmbrsEmployee) -> None:
        # The reference event may still be on its way (another topic): create what the employee needs,
        # in one statement.
        function, department, cao = employee.function, employee.department, employee.labour_agreement
        await self.db.execute(
            """WITH f AS (INSERT INTO rt_functions (nmbrs_id, code, description)
                          SELECT $1::int, $2::text, $3::text WHERE $1::int IS NOT NULL ON CONFLICT DO NOTHING),
                    d AS (INSERT INTO rt_departments (nmbrs_id, code, description)
                          SELECT $4::int, $5::text, $6::text WHERE $4::int IS NOT NULL ON CONFLICT DO NOTHING)
               INSERT INTO rt_labour_agreements (nmbrs_id, number, description)
               SELECT $7::int, $8::text, $9::text WHERE $7::int IS NOT NULL ON CONFLICT DO NOTHING""",
            *_ref_params(function), *_ref_params(department),
            cao.id if cao else None, cao.number if cao else None, cao.description if cao else None,
        )  # fmt: skip

    async def _apply_employee(
        self, action: Apply, nmbrs_id: int, employee: NmbrsEmployee, causation_id: uuid.UUID, actor: str
    ) -> int:
        values = action.values
        if REFERENCE_FIELDS & set(action.changed):
            await self._ensure_references(employee)
        company_id = await self.db.fetchval(
            "SELECT company_id FROM rt_companies WHERE nmbrs_company_id = $1", values["nmbrs_company_id"]
        )
        columns = {
            "number": values["number"], "company_id": company_id, "function_id": values["function_id"],
            "department_id": values["department_id"], "labour_agreement_id": values["labour_agreement_id"],
            "employment_start": _date(values["employment_start"]), "employment_end": _date(values["employment_end"]),
            "nmbrs_synced": _json(values),
        }  # fmt: skip
        regitijd_id = action.regitijd_id
        if regitijd_id is None:
            # An employee deactivated by an undone decision comes back, relinked, rather than twice.
            regitijd_id = await self.db.fetchval(
                f"""INSERT INTO rt_employees (person_id, source, nmbrs_employee_id, {", ".join(columns)})
                    VALUES ($1, 'nmbrs', $2, {", ".join(f"${i + 3}" for i in range(len(columns)))})
                    ON CONFLICT (nmbrs_employee_id) DO UPDATE SET person_id = EXCLUDED.person_id, active = true,
                        {", ".join(f"{c} = EXCLUDED.{c}" for c in columns)}
                    RETURNING employee_id""",
                action.crm_id,
                nmbrs_id,
                *columns.values(),
            )
            await self.db.execute(
                "UPDATE sync_links SET regitijd_id = $3 WHERE entity = 'employee' AND nmbrs_id = $1 AND crm_id = $2",
                nmbrs_id,
                action.crm_id,
                regitijd_id,
            )
        else:
            await self.db.execute(
                f"""UPDATE rt_employees SET {", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))}, active = true
                    WHERE employee_id = $1 AND source = 'nmbrs'""",
                regitijd_id,
                *columns.values(),
            )
        # One human, several employments: the person card follows the primary one only (see PRIMARY_SQL).
        await self.db.execute(
            f"""UPDATE crm_persons SET {", ".join(f"{f} = ${i + 3}" for i, f in enumerate(PERSON_FIELDS))}
                WHERE person_id = $1 AND {PRIMARY_SQL.format(me="$2::int")}""",
            action.crm_id,
            regitijd_id,
            *[_db_value(f, values[f]) for f in PERSON_FIELDS],
        )
        # Periods are rewritten only when they changed (a new employee has every field changed).
        if "employments" in action.changed:
            await self.db.execute("DELETE FROM rt_employment_periods WHERE employee_id = $1", regitijd_id)
            await self.db.executemany(
                "INSERT INTO rt_employment_periods VALUES ($1, $2, $3, $4)",
                [(regitijd_id, e["employment_id"], _date(e["start"]), _date(e["end"])) for e in values["employments"]],
            )
        if "contracts" in action.changed:
            await self.db.execute("DELETE FROM rt_contract_periods WHERE employee_id = $1", regitijd_id)
            await self.db.executemany(
                "INSERT INTO rt_contract_periods VALUES ($1, $2, $3, $4, $5)",
                [(regitijd_id, c["contract_id"], _date(c["start"]), _date(c["end"]), c["hours_per_week"])
                 for c in values["contracts"]],
            )  # fmt: skip
        if "schedules" in action.changed:
            await self.db.execute("DELETE FROM rt_schedule_periods WHERE employee_id = $1", regitijd_id)
            await self.db.executemany(
                "INSERT INTO rt_schedule_periods VALUES ($1, $2, $3, $4)",
                [(regitijd_id, _date(s["start"]), s["hours_per_week"], s["parttime_percentage"])
                 for s in values["schedules"]],
            )  # fmt: skip
        await self._audit_apply(causation_id, f"employee:{nmbrs_id}", action, actor)
        assert isinstance(regitijd_id, int)
        return regitijd_id

    async def _apply_company(self, action: Apply, nmbrs_id: int, causation_id: uuid.UUID, actor: str) -> int:
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
            """INSERT INTO rt_companies (organisation_id, nmbrs_company_id, name, nmbrs_synced, active)
               VALUES ($1, $2, $3, $4::jsonb, true)
               ON CONFLICT (nmbrs_company_id) DO UPDATE SET organisation_id = EXCLUDED.organisation_id,
                   name = EXCLUDED.name, nmbrs_synced = EXCLUDED.nmbrs_synced, active = true
               RETURNING company_id""",
            action.crm_id,
            nmbrs_id,
            values["name"],
            _json(values),
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
        """The audit row of an Apply: which fields changed and their new values."""
        changed = {name: action.values[name] for name in action.changed}
        await self._audit(causation_id, subject, "apply", {"changed": list(action.changed)}, changed or None, actor)

    async def _audit(
        self, causation_id: uuid.UUID, subject: str, action: str, before: Any, after: Any, actor: str
    ) -> None:
        await self.db.execute(
            """INSERT INTO audit_log (causation_id, subject, action, before, after, actor)
               VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)""",
            causation_id,
            subject,
            action,
            _json(before),
            _json(after),
            actor,
        )


def _longest_word(name: str) -> str:
    """The most telling word of a folded organisation name, for a broad SQL prefilter (the matcher scores)."""
    return max(name.split(), key=len, default="")


def _ref_params(ref: CodeRef | None) -> tuple[int | None, str | None, str | None]:
    return (ref.id, ref.code, ref.description) if ref else (None, None, None)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _db_value(field: str, value: Any) -> Any:
    return _date(value) if field == "birthday" else value
