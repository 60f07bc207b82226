"""Read-only queries behind the HR frontends (open questions, RegiCRM search, follow-up tasks) (asyncpg).

Everything here only reads: a frontend changes nothing directly, it posts decisions and follow-up commands
as events like any other frontend. Results are frozen pydantic models, so the CLI prints them as tables
or dumps them as JSON without knowing the schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, computed_field

from worker.domain.decisions import TASKS
from worker.domain.normalisation import fold, normalise_kvk
from worker.domain.organisation_matching import ScoredOrganisation
from worker.domain.person_scoring import FLAG_BLUE_EMPLOYEE, FLAG_LOGIN_ACCOUNT, ScoredCandidate
from worker.domain.target_state import PERSONEELSLID

Entity = Literal["employee", "company"]


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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


def _person_name(first_name: str | None, prefix: str | None, last_name: str | None) -> str:
    return " ".join(part for part in (first_name, prefix, last_name) if part)


def _record_name(entity: str, nmbrs_id: int, record: dict[str, Any]) -> str:
    """The name an Nmbrs employee or company record shows."""
    if entity == "employee":
        return _person_name(record.get("first_name"), record.get("prefix"), record.get("last_name"))
    return record.get("name") or f"company {nmbrs_id}"


# --- open questions ------------------------------------------------------------------------------------


class CandidateView(_Frozen):
    """One candidate of an open question as the Koppelen pick list shows it."""

    crm_id: int = Field(description="person_id (employee questions) or organisation_id (company questions).")
    name: str | None = Field(description="Current name in RegiCRM; None when the card was deleted since.")
    score: float
    flags: tuple[str, ...] = Field(description="e.g. has_login_account, blue_employee, already_linked_...")
    levels: dict[str, str] = Field(description="Per compared field: exact, close, different or missing.")
    explanation: str


class PendingQuestionView(_Frozen):
    """An Nmbrs employee or company waiting for Koppelen, Aanmaken, Blokkeren or Overslaan."""

    entity: Entity
    nmbrs_id: int
    version: int = Field(description="Pass it to 'decide --version' for staleness protection.")
    situation: Literal["unmatched", "disputed"]
    reason: str | None = Field(None, description="Why it was asked, in words.")
    name: str
    number: str | None = None
    birthday: date | None = None
    email: str | None = None
    company_id: int | None = Field(description="The Nmbrs company id.")
    company_name: str | None = None
    skipped: bool
    asked_at: datetime
    age_s: float = Field(description="Seconds since the question was (last) asked.")
    candidates: tuple[CandidateView, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        """The RECORD argument of 'decide', e.g. 'employee:123'."""
        return f"{self.entity}:{self.nmbrs_id}"


async def pending_version(connection: asyncpg.Connection, entity: Entity, nmbrs_id: int) -> int | None:
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
        r["person_id"]: _person_name(r["first_name"], r["prefix"], r["last_name"])
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
        name=_record_name(row["entity"], row["nmbrs_id"], record),
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


# --- search ------------------------------------------------------------------------------------------------

# Accent- and case-free comparison in SQL that agrees with normalisation.fold() for Latin letters: translate()
# for the letters fold() maps to one letter, replace() for the ligatures it spells out (æ -> ae), after NFC
# (a name stored with combining marks folds like the precomposed one). Generated from fold() itself, so the
# two cannot drift apart; crm_persons.match_name (migration 0013) holds the same expression, and a test says so.
_LATIN = [
    c
    for block in (range(0xC0, 0x250), range(0x1E00, 0x1F00))  # Latin-1 Supplement to Extended-B; Vietnamese
    for c in map(chr, block)
    if c.isalpha()
]
_ONE_LETTER = [(c, fold(c)) for c in _LATIN if len(fold(c)) == 1 and fold(c) != c]
_FOLD_FROM = "".join(c for c, _ in _ONE_LETTER) + "’‘`´ʼ"
_FOLD_TO = "".join(f for _, f in _ONE_LETTER) + "'''''"
_LIGATURES = [(c, fold(c)) for c in _LATIN if len(fold(c)) > 1]  # æ -> ae, ŀ -> l·, ŉ -> 'n
# Characters ignored when comparing names written together ('vanderberg', "d'Ancona", 'Jansen-de Vries').
_JOINERS = " -'."


def _sql_fold(expression: str, fold_from: str = "$1", fold_to: str = "$2") -> str:
    """SQL folding `expression`; by default $1 and $2 must be bound to _FOLD_FROM and _FOLD_TO."""
    folded = f"translate(normalize({expression}, NFC), {fold_from}, {fold_to})"
    for ligature, spelled in _LIGATURES:
        folded = f"replace({folded}, '{ligature}', '{spelled.replace(chr(39), chr(39) * 2)}')"
    return f"lower({folded})"


def sql_fold_literal(expression: str) -> str:
    """_sql_fold with the translation written out: for a generated column, which cannot take parameters."""
    return _sql_fold(expression, "'" + _FOLD_FROM.replace("'", "''") + "'", "'" + _FOLD_TO.replace("'", "''") + "'")


_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y")
_PHONE_LIKE = re.compile(r"[\d\s()+\-]+")
# Dutch numbers are 10 digits with the leading 0; the last 9 are the same whatever the country-code form.
_PHONE_TAIL = 9


def _as_date(text: str) -> date | None:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


class PersonHit(_Frozen):
    """A RegiCRM person found by the search, with what tells duplicates apart."""

    person_id: int
    name: str
    birthday: date | None = None
    email_work: str | None = None
    email_private: str | None = None
    organisation_id: int | None = None
    organisation_name: str | None = None
    username: str | None = None
    has_login_account: bool = Field(description="The right card among duplicates is the one with the account.")
    is_blue_employee: bool = Field(description="A manual ('blue') RegiTijd employee hangs off this person.")
    linked_nmbrs_employee_ids: tuple[int, ...] = Field(description="Nmbrs employees already linked to it.")
    regitijd_employee_ids: tuple[int, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def flags(self) -> tuple[str, ...]:
        """The same flag names the candidates of an open question carry."""
        marks = ((FLAG_LOGIN_ACCOUNT, self.has_login_account), (FLAG_BLUE_EMPLOYEE, self.is_blue_employee))
        return tuple(flag for flag, present in marks if present)


class OrganisationHit(_Frozen):
    """A RegiCRM organisation found by the search."""

    organisation_id: int
    name: str
    kvk_number: str | None = None
    email: str | None = None
    linked_nmbrs_company_ids: tuple[int, ...] = ()
    regitijd_company_ids: tuple[int, ...] = ()


class SearchResult(_Frozen):
    text: str
    persons: tuple[PersonHit, ...]
    organisations: tuple[OrganisationHit, ...]
    more_persons: bool = Field(False, description="More persons match than shown: refine the search.")
    more_organisations: bool = Field(False, description="More organisations match than shown.")


class _Criteria:
    """What a search text can mean: name parts, a name written together, an e-mail, a date, a phone, a KvK."""

    def __init__(self, text: str) -> None:
        folded = fold(text)
        self.tokens = [t for t in re.split(r"[\s,]+", folded.replace(".", " ")) if t]
        compact = folded
        for joiner in _JOINERS:
            compact = compact.replace(joiner, "")
        # Two letters written together match far too much; a real 'vanderberg' is longer.
        self.compact = compact if len(compact) >= 3 else ""
        self.email = folded.replace(" ", "") if "@" in folded else None
        self.birthday = _as_date(text.strip())
        digits = re.sub(r"\D", "", text)
        phone_like = self.birthday is None and _PHONE_LIKE.fullmatch(text.strip()) is not None
        self.phone_tail = digits[-_PHONE_TAIL:] if phone_like and len(digits) >= _PHONE_TAIL else None
        self.kvk = normalise_kvk(digits) if text.strip().isdigit() and len(digits) <= 8 else None


async def search(connection: asyncpg.Connection, text: str, limit: int = 20) -> SearchResult:
    """RegiCRM persons and organisations for Koppelen: persons by every name part (first name, initials,
    tussenvoegsel, last name; accent- and case-free, also written together), e-mail, birthday (when the
    text is a date) or phone; organisations by name, e-mail or KvK number. Duplicates sort together, the
    card with the login account first."""
    criteria = _Criteria(text)
    if not (criteria.tokens or criteria.email or criteria.birthday or criteria.phone_tail or criteria.kvk):
        return SearchResult(text=text, persons=(), organisations=())
    full_name = _sql_fold("concat_ws(' ', p.first_name, p.initials, p.prefix, p.last_name)")
    person_rows = await connection.fetch(
        f"""WITH p AS (SELECT p.*, {full_name} AS folded FROM crm_persons p)
            SELECT p.person_id, p.first_name, p.prefix, p.last_name, p.birthday, p.email_work, p.email_private,
                   p.organisation_id, o.name AS organisation_name, a.username,
                   EXISTS (SELECT 1 FROM rt_employees b WHERE b.person_id = p.person_id AND b.source = 'manual')
                       AS is_blue,
                   ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id
                         ORDER BY l.nmbrs_id) AS linked_ids,
                   ARRAY(SELECT e.employee_id FROM rt_employees e WHERE e.person_id = p.person_id
                         ORDER BY e.employee_id) AS employee_ids
            FROM p
            LEFT JOIN crm_accounts a ON a.person_id = p.person_id
            LEFT JOIN crm_organisations o ON o.organisation_id = p.organisation_id
            WHERE (cardinality($3::text[]) > 0
                   AND NOT EXISTS (SELECT 1 FROM unnest($3::text[]) t WHERE strpos(p.folded, t) = 0))
               OR ($4 <> '' AND strpos(translate(p.folded, $5, ''), $4) > 0)
               OR strpos(lower(p.email_work), $6) > 0 OR strpos(lower(p.email_private), $6) > 0
               OR p.birthday = $7
               OR $8 IN (right(regexp_replace(p.phone_work, '\\D', '', 'g'), {_PHONE_TAIL}),
                         right(regexp_replace(p.phone_mobile, '\\D', '', 'g'), {_PHONE_TAIL}),
                         right(regexp_replace(p.phone_private, '\\D', '', 'g'), {_PHONE_TAIL}))
            -- A last name typed in full first: 'Jansen' is not lost among the Janssens behind the limit.
            ORDER BY {_sql_fold("p.last_name")} = ANY($3::text[]) DESC, {_sql_fold("p.last_name")},
                     {_sql_fold("coalesce(p.first_name, '')")}, a.account_id IS NULL, p.person_id
            LIMIT $9 + 1""",
        _FOLD_FROM, _FOLD_TO, criteria.tokens, criteria.compact, _JOINERS, criteria.email, criteria.birthday,
        criteria.phone_tail, limit,
    )  # fmt: skip
    name = _sql_fold("o.name")
    organisation_rows = await connection.fetch(
        f"""SELECT o.organisation_id, o.name, o.kvk_number, o.email,
                   ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'company'
                         AND l.crm_id = o.organisation_id ORDER BY l.nmbrs_id) AS linked_ids,
                   ARRAY(SELECT c.company_id FROM rt_companies c WHERE c.organisation_id = o.organisation_id
                         ORDER BY c.company_id) AS company_ids
            FROM crm_organisations o
            WHERE (cardinality($3::text[]) > 0
                   AND NOT EXISTS (SELECT 1 FROM unnest($3::text[]) t WHERE strpos({name}, t) = 0))
               OR ($4 <> '' AND strpos(translate({name}, $5, ''), $4) > 0)
               OR strpos(lower(o.email), $6) > 0
               OR lpad(regexp_replace(o.kvk_number, '\\D', '', 'g'), 8, '0') = $7
            ORDER BY {name}, o.organisation_id
            LIMIT $8 + 1""",
        _FOLD_FROM, _FOLD_TO, criteria.tokens, criteria.compact, _JOINERS, criteria.email, criteria.kvk, limit,
    )  # fmt: skip
    persons = tuple(
        PersonHit(
            person_id=r["person_id"], name=_person_name(r["first_name"], r["prefix"], r["last_name"]),
            birthday=r["birthday"], email_work=r["email_work"], email_private=r["email_private"],
            organisation_id=r["organisation_id"], organisation_name=r["organisation_name"], username=r["username"],
            has_login_account=r["username"] is not None, is_blue_employee=r["is_blue"],
            linked_nmbrs_employee_ids=tuple(r["linked_ids"]), regitijd_employee_ids=tuple(r["employee_ids"]),
        )
        for r in person_rows[:limit]
    )  # fmt: skip
    organisations = tuple(
        OrganisationHit(
            organisation_id=r["organisation_id"], name=r["name"], kvk_number=r["kvk_number"], email=r["email"],
            linked_nmbrs_company_ids=tuple(r["linked_ids"]), regitijd_company_ids=tuple(r["company_ids"]),
        )
        for r in organisation_rows[:limit]
    )  # fmt: skip
    return SearchResult(
        text=text,
        persons=persons,
        organisations=organisations,
        more_persons=len(person_rows) > limit,
        more_organisations=len(organisation_rows) > limit,
    )


# --- follow-up tasks ---------------------------------------------------------------------------------------


class EmployeeTasks(_Frozen):
    """The follow-up tasks still open for one RegiTijd employee ('gegevens aanvullen')."""

    employee_id: int = Field(description="The RegiTijd employee id (follow-up commands address it).")
    nmbrs_employee_id: int | None = None
    person_id: int
    name: str
    company_id: int | None = Field(None, description="The RegiTijd company id.")
    company_name: str | None = None
    tasks: tuple[str, ...] = Field(description="Keys of worker.domain.decisions.TASKS, in that order.")

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

    Blue employees are left out: they are entered by hand, with their follow-up data, by HR itself.
    The rules are those of the decision consumer's announcement (worker/entrypoints/decisions.py).
    """
    rows = await connection.fetch(
        """SELECT e.employee_id, e.nmbrs_employee_id, e.person_id, p.first_name, p.prefix, p.last_name,
                  e.company_id, c.name AS company_name,
                  e.manager_employee_id IS NULL AS manager,
                  a.account_id IS NULL AS account,
                  a.account_id IS NOT NULL AND cardinality(a.roles) = 0 AS roles,
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
        employee_id, PERSONEELSLID,
    )  # fmt: skip
    found = [
        EmployeeTasks(
            employee_id=r["employee_id"], nmbrs_employee_id=r["nmbrs_employee_id"], person_id=r["person_id"],
            name=_person_name(r["first_name"], r["prefix"], r["last_name"]), company_id=r["company_id"],
            company_name=r["company_name"], tasks=tuple(task for task in TASKS if r[task]),
        )
        for r in rows
    ]  # fmt: skip
    return sorted(
        (f for f in found if f.tasks),
        key=lambda f: (f.company_name is None, fold(f.company_name), fold(f.name), f.employee_id),
    )


# --- decisions made, records blocked -------------------------------------------------------------------


class DecisionView(_Frozen):
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
        key, record[0] if record else None, record[1] if record else None, limit,
    )  # fmt: skip
    return [
        DecisionView(
            decision_id=r["decision_id"], decided_at=r["decided_at"], decided_by=r["decided_by"], action=r["action"],
            record=f"{r['entity']}:{r['nmbrs_id']}" if r["nmbrs_id"] is not None else "bulk", result=r["result"],
            reason=r["reason"], undone_by=r["undone_by"],
        )
        for r in rows
    ]  # fmt: skip


class BlockView(_Frozen):
    """A record blocked (Blokkeren): ignored by every sync until 'decide ontblokkeren'."""

    record: str
    name: str | None
    blocked_at: datetime
    blocked_by: str
    reason: str | None = None
    decision_id: str | None = None


async def blocked_records(connection: asyncpg.Connection) -> list[BlockView]:
    rows = await connection.fetch(
        """SELECT entity, nmbrs_id, record, blocked_at, blocked_by, reason, decision_id::text
           FROM sync_blocks ORDER BY blocked_at DESC, entity, nmbrs_id"""
    )
    views = []
    for r in rows:
        name = _record_name(r["entity"], r["nmbrs_id"], json.loads(r["record"])) if r["record"] else None
        views.append(
            BlockView(
                record=f"{r['entity']}:{r['nmbrs_id']}", name=name or None, blocked_at=r["blocked_at"],
                blocked_by=r["blocked_by"], reason=r["reason"], decision_id=r["decision_id"],
            )
        )  # fmt: skip
    return views
