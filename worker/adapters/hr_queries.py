"""Read-only queries behind the HR frontends (open questions, follow-up tasks, decisions, blocks) (asyncpg).

The RegiCRM search is in crm_search.py.

Everything here only reads: a frontend changes nothing directly, it posts decisions and follow-up commands
as events like any other frontend. Results are frozen pydantic models, so the CLI prints them as tables
or dumps them as JSON without knowing the schema.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, computed_field

from worker.domain.changes import LinkedEntity
from worker.domain.follow_ups import TASKS
from worker.domain.normalisation import fold
from worker.domain.organisation_matching import ScoredOrganisation
from worker.domain.person_scoring import ScoredCandidate
from worker.domain.target_state import PERSONEELSLID


class StoreUnavailable(Exception):
    """The database cannot answer (unreachable, or not migrated); the message says what to do."""


@asynccontextmanager
async def read_only_connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection inside a read-only, repeatable-read transaction: the several queries of one command
    (e.g. step status and open tasks) see one consistent snapshot, and nothing here can write by mistake."""
    try:
        connection = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as error:
        raise StoreUnavailable(f"cannot connect to the database: {error}") from error
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            yield connection
    except asyncpg.UndefinedTableError as error:
        raise StoreUnavailable(f"the database is not migrated ({error}): run 'nmbrs-sync migrate'") from error
    finally:
        await connection.close()


class FrozenView(BaseModel):
    model_config = ConfigDict(frozen=True)


def person_name(first_name: str | None, prefix: str | None, last_name: str | None) -> str:
    return " ".join(part for part in (first_name, prefix, last_name) if part)


def record_name(entity: str, nmbrs_id: int, record: dict[str, Any]) -> str:
    """The name an Nmbrs employee or company record shows."""
    if entity == "employee":
        return person_name(record.get("first_name"), record.get("prefix"), record.get("last_name"))
    return record.get("name") or f"company {nmbrs_id}"


# --- open questions ------------------------------------------------------------------------------------


class CandidateView(FrozenView):
    """One candidate of an open question as the Koppelen pick list shows it."""

    crm_id: int = Field(description="person_id (employee questions) or organisation_id (company questions).")
    name: str | None = Field(description="Current name in RegiCRM; None when the card was deleted since.")
    score: float
    flags: tuple[str, ...] = Field(description="e.g. has_login_account, blue_employee, already_linked_...")
    levels: dict[str, str] = Field(description="Per compared field: exact, close, different or missing.")
    explanation: str


class QuestionSummary(FrozenView):
    """An Nmbrs employee or company waiting for Koppelen, Aanmaken, Blokkeren or Overslaan: what every list of
    open questions shows of it."""

    entity: LinkedEntity
    nmbrs_id: int
    version: int = Field(description="Pass it with the decision ('decide --version') for staleness protection.")
    situation: Literal["unmatched", "disputed"]
    reason: str | None = Field(None, description="Why it was asked, in words.")
    name: str
    number: str | None = None
    company_id: int | None = Field(description="The Nmbrs company id.")
    company_name: str | None = None
    skipped: bool
    asked_at: datetime
    age_s: float = Field(description="Seconds since the question was (last) asked.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        """The RECORD argument of 'decide', e.g. 'employee:123'."""
        return f"{self.entity}:{self.nmbrs_id}"


class PendingQuestionView(QuestionSummary):
    """An open question with its ranked candidates, as the HR CLI shows it."""

    birthday: date | None = None
    email: str | None = None
    candidates: tuple[CandidateView, ...]


async def pending_version(connection: asyncpg.Connection, entity: LinkedEntity, nmbrs_id: int) -> int | None:
    """The version of the open question on one record, None when there is none."""
    version = await connection.fetchval(
        "SELECT version FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
    )
    return int(version) if version is not None else None


async def pending_questions(connection: asyncpg.Connection, include_skipped: bool = False) -> list[PendingQuestionView]:
    """Every open question with its ranked candidates, ordered by company, then companies before their
    employees, then name; skipped questions (Overslaan: hidden until the next sync) only on request, last."""
    rows = await connection.fetch(
        """SELECT q.entity, q.nmbrs_id, q.version, q.situation, q.reason, q.company_id, q.record, q.candidates,
                  q.skipped,
                  q.created_at, extract(epoch FROM now() - q.created_at)::float8 AS age_s,
                  -- The company's name: RegiTijd when linked, else what Nmbrs sent (snapshot or its own question).
                  coalesce(c.name, s.record ->> 'name', cq.record ->> 'name') AS company_name
           FROM pending_decisions q
           LEFT JOIN rt_companies c ON c.nmbrs_company_id = q.company_id
           LEFT JOIN nmbrs_snapshots s ON s.key = 'company:' || q.company_id AND NOT s.deleted
           LEFT JOIN pending_decisions cq ON cq.entity = 'company' AND cq.nmbrs_id = q.company_id
           WHERE $1 OR NOT q.skipped""",
        include_skipped,
    )
    parsed = [(row, json.loads(row["record"]), json.loads(row["candidates"])) for row in rows]
    person_ids = {c["person_id"] for row, _, cs in parsed if row["entity"] == "employee" for c in cs}
    organisation_ids = {c["organisation_id"] for row, _, cs in parsed if row["entity"] == "company" for c in cs}
    person_names = {
        r["person_id"]: person_name(r["first_name"], r["prefix"], r["last_name"])
        for r in await connection.fetch(
            "SELECT person_id, first_name, prefix, last_name FROM crm_persons WHERE person_id = ANY($1::int[])",
            sorted(person_ids),
        )
    }
    organisation_names = {
        r["organisation_id"]: r["name"]
        for r in await connection.fetch(
            "SELECT organisation_id, name FROM crm_organisations WHERE organisation_id = ANY($1::int[])",
            sorted(organisation_ids),
        )
    }
    questions = [
        _question(row, record, candidates, person_names, organisation_names) for row, record, candidates in parsed
    ]
    return sorted(questions, key=_question_order)


def _question(
    row: asyncpg.Record,
    record: dict[str, Any],
    candidates: list[dict[str, Any]],
    person_names: dict[int, str],
    organisation_names: dict[int, str],
) -> PendingQuestionView:
    views: list[CandidateView] = []
    if row["entity"] == "employee":
        for data in candidates:
            person = ScoredCandidate.model_validate(data)
            views.append(_candidate(person.person_id, person_names.get(person.person_id), person))
        email = record.get("email_work") or record.get("email_private")
    else:
        for data in candidates:
            organisation = ScoredOrganisation.model_validate(data)
            crm_id = organisation.organisation_id
            views.append(_candidate(crm_id, organisation_names.get(crm_id), organisation))
        email = record.get("email")
    return PendingQuestionView(
        entity=row["entity"],
        nmbrs_id=row["nmbrs_id"],
        version=row["version"],
        situation=row["situation"],
        reason=row["reason"],
        name=record_name(row["entity"], row["nmbrs_id"], record),
        number=record.get("number"),
        birthday=record.get("birthday"),
        email=email,
        company_id=row["company_id"],
        company_name=row["company_name"],
        skipped=row["skipped"],
        asked_at=row["created_at"],
        age_s=max(0.0, row["age_s"]),
        candidates=tuple(views),
    )


def _candidate(crm_id: int, name: str | None, scored: ScoredCandidate | ScoredOrganisation) -> CandidateView:
    return CandidateView(
        crm_id=crm_id,
        name=name,
        score=scored.score,
        flags=scored.flags,
        levels={c.field: c.level.value for c in scored.comparisons},
        explanation=scored.explanation,
    )


def _question_order(question: PendingQuestionView) -> tuple[bool, bool, str, int, bool, str, int]:
    # Skipped last; then per company (unknown company last) with the company's own question before its
    # employees, because linking the company first gives the employees their RegiTijd company.
    company = fold(question.company_name)
    return (
        question.skipped,
        question.company_id is None,
        company,
        question.company_id or 0,
        question.entity != "company",
        fold(question.name),
        question.nmbrs_id,
    )


# --- follow-up tasks ---------------------------------------------------------------------------------------


class EmployeeTasks(FrozenView):
    """The follow-up tasks still open for one RegiTijd employee ('gegevens aanvullen')."""

    employee_id: int = Field(description="The RegiTijd employee id (follow-up commands address it).")
    nmbrs_employee_id: int | None = None
    person_id: int
    name: str
    company_id: int | None = Field(None, description="The RegiTijd company id.")
    company_name: str | None = None
    tasks: tuple[str, ...] = Field(description="Keys of worker.domain.follow_ups.TASKS, in that order.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def descriptions(self) -> tuple[str, ...]:
        return tuple(TASKS[task] for task in self.tasks)


async def regitijd_employee_id(connection: asyncpg.Connection, nmbrs_employee_id: int) -> int | None:
    """The RegiTijd employee linked to an Nmbrs employee (follow-up commands address that one), None if none."""
    found = await connection.fetchval(
        "SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = $1", nmbrs_employee_id
    )
    return int(found) if found is not None else None


async def open_tasks(connection: asyncpg.Connection, employee_id: int | None = None) -> list[EmployeeTasks]:
    """Active Nmbrs-sourced employees with at least one open follow-up task, by company and name.

    Blue employees are left out: they are entered by hand, with their follow-up data, by HR itself. The account
    and roles tasks also close when HR marked them done (rt_tasks_done): they are made outside RegiTijd.
    The rules are those of the decision consumer's announcement (worker/service/decisions/context.py).
    """
    rows = await connection.fetch(
        """SELECT e.employee_id, e.nmbrs_employee_id, e.person_id, p.first_name, p.prefix, p.last_name,
                  e.company_id, c.name AS company_name,
                  e.manager_employee_id IS NULL AS manager,
                  a.account_id IS NULL AND NOT EXISTS (SELECT 1 FROM rt_tasks_done d
                      WHERE d.employee_id = e.employee_id AND d.task = 'account') AS account,
                  a.account_id IS NOT NULL AND cardinality(a.roles) = 0 AND NOT EXISTS (SELECT 1 FROM rt_tasks_done d
                      WHERE d.employee_id = e.employee_id AND d.task = 'roles') AS roles,
                  NOT EXISTS (SELECT 1 FROM rt_employee_time_categories t WHERE t.employee_id = e.employee_id)
                      AS time_category,
                  NOT EXISTS (SELECT 1 FROM crm_characteristics k WHERE k.person_id = e.person_id
                              AND k.characteristic = $2) AS personeelslid,
                  NOT EXISTS (SELECT 1 FROM crm_characteristics k WHERE k.person_id = e.person_id
                              AND k.characteristic <> $2) AS characteristics
           FROM rt_employees e
           JOIN crm_persons p ON p.person_id = e.person_id
           LEFT JOIN crm_accounts a ON a.person_id = e.person_id
           LEFT JOIN rt_companies c ON c.company_id = e.company_id
           WHERE e.source = 'nmbrs' AND e.active AND ($1::int IS NULL OR e.employee_id = $1)""",
        employee_id,
        PERSONEELSLID,
    )
    found = [
        EmployeeTasks(
            employee_id=r["employee_id"],
            nmbrs_employee_id=r["nmbrs_employee_id"],
            person_id=r["person_id"],
            name=person_name(r["first_name"], r["prefix"], r["last_name"]),
            company_id=r["company_id"],
            company_name=r["company_name"],
            tasks=tuple(task for task in TASKS if r[task]),
        )
        for r in rows
    ]
    return sorted(
        (f for f in found if f.tasks),
        key=lambda f: (f.company_name is None, fold(f.company_name), fold(f.name), f.employee_id),
    )


# --- decisions made, records blocked -------------------------------------------------------------------


class DecisionView(FrozenView):
    """A decision as it was handled: its id is what 'decide ongedaan_maken --undo' takes."""

    decision_id: str
    decided_at: datetime
    decided_by: str
    action: str
    record: str = Field(description="'employee:123', 'company:4', or 'bulk' for a filter.")
    result: Literal["applied", "rejected", "previewed"]
    reason: str | None = None
    undone_by: str | None = None


async def decision_history(
    connection: asyncpg.Connection, record: tuple[str, int] | None = None, limit: int = 50
) -> list[DecisionView]:
    """The latest decisions, newest first; for one record also those that answered it in bulk or took it along
    as another employment of the same human (an undo naming the record takes those back too)."""
    key = f"{record[0]}:{record[1]}" if record else None
    rows = await connection.fetch(
        """SELECT decision_id::text, decided_at, decided_by, action, entity, nmbrs_id, result, reason,
                  undone_by::text
           FROM decisions
           WHERE $1::text IS NULL
              OR (entity = $2 AND (nmbrs_id = $3 OR effect -> 'linked' ? $3::text OR effect -> 'undid_records' ? $1))
              OR (nmbrs_id IS NULL AND entity = $2 AND (effect -> 'records' ? $1 OR EXISTS (
                      SELECT FROM jsonb_each(effect -> 'records') AS r WHERE r.value -> 'linked' ? $3::text)))
           ORDER BY decided_at DESC, received_at DESC
           LIMIT $4""",
        key,
        record[0] if record else None,
        record[1] if record else None,
        limit,
    )
    return [
        DecisionView(
            decision_id=r["decision_id"],
            decided_at=r["decided_at"],
            decided_by=r["decided_by"],
            action=r["action"],
            record=f"{r['entity']}:{r['nmbrs_id']}" if r["nmbrs_id"] is not None else "bulk",
            result=r["result"],
            reason=r["reason"],
            undone_by=r["undone_by"],
        )
        for r in rows
    ]


class BlockView(FrozenView):
    """A record blocked (Blokkeren): ignored by every sync until 'decide ontblokkeren'."""

    record: str
    name: str | None
    blocked_at: datetime
    blocked_by: str
    reason: str | None = None
    decision_id: str | None = None


async def blocked_records(connection: asyncpg.Connection, offset: int = 0, limit: int | None = None) -> list[BlockView]:
    """The records blocked (Blokkeren), the latest first; `limit` None: all of them."""
    rows = await connection.fetch(
        """SELECT entity, nmbrs_id, record, blocked_at, blocked_by, reason, decision_id::text
           FROM sync_blocks ORDER BY blocked_at DESC, entity, nmbrs_id OFFSET $1 LIMIT $2""",
        offset,
        limit,
    )
    views = []
    for r in rows:
        name = record_name(r["entity"], r["nmbrs_id"], json.loads(r["record"])) if r["record"] else None
        views.append(
            BlockView(
                record=f"{r['entity']}:{r['nmbrs_id']}",
                name=name or None,
                blocked_at=r["blocked_at"],
                blocked_by=r["blocked_by"],
                reason=r["reason"],
                decision_id=r["decision_id"],
            )
        )
    return views


class AnswerView(FrozenView):
    """A decision that answered a record's question."""

    decision_id: uuid.UUID
    action: str
    decided_by: str
    decided_at: datetime


async def last_answer(
    connection: asyncpg.Connection, entity: LinkedEntity, nmbrs_id: int, other_than: uuid.UUID
) -> AnswerView | None:
    """The latest applied decision on one record other than `other_than`: who answered a question first when
    two people decided on it."""
    row = await connection.fetchrow(
        """SELECT decision_id, action, decided_by, decided_at FROM decisions
           WHERE entity = $1 AND nmbrs_id = $2 AND result = 'applied' AND decision_id <> $3
           ORDER BY decided_at DESC LIMIT 1""",
        entity,
        nmbrs_id,
        other_than,
    )
    return AnswerView(**dict(row)) if row is not None else None


async def record_names(connection: asyncpg.Connection, keys: list[str]) -> dict[str, str]:
    """The names Nmbrs gives the records 'employee:12', 'company:3' (from their latest snapshot), to show a list
    of keys (a bulk preview) as people."""
    rows = await connection.fetch("SELECT key, record FROM nmbrs_snapshots WHERE key = ANY($1::text[])", keys)
    names = {}
    for row in rows:
        entity, _, nmbrs_id = row["key"].partition(":")
        names[row["key"]] = record_name(entity, int(nmbrs_id), json.loads(row["record"]))
    return names


async def crm_name(connection: asyncpg.Connection, entity: LinkedEntity, crm_id: int) -> str | None:
    """The name of a RegiCRM person (employee questions) or organisation (company questions)."""
    if entity == "employee":
        row = await connection.fetchrow(
            "SELECT first_name, prefix, last_name FROM crm_persons WHERE person_id = $1", crm_id
        )
        return person_name(row["first_name"], row["prefix"], row["last_name"]) if row else None
    name: str | None = await connection.fetchval(
        "SELECT name FROM crm_organisations WHERE organisation_id = $1", crm_id
    )
    return name
