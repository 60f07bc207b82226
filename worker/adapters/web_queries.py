"""Read-only queries behind the HR web app: the question list paged in SQL, one question beside its candidates'
cards, the overview, decisions and blocks paged, an employee's leave (asyncpg).

Built on hr_queries (its models, names and read-only connection) and crm_search (the SQL folding). Like them,
everything here only reads; results are frozen pydantic models.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Annotated, Any, Generic, Literal, TypeVar

import asyncpg
from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from worker.adapters.crm_search import JOINERS, SearchCriteria
from worker.adapters.hr_queries import (
    BlockView,
    DecisionView,
    FrozenView,
    QuestionSummary,
    blocked_records,
    open_tasks,
    person_name,
    record_name,
)
from worker.adapters.step_status_store import step_statuses
from worker.domain.changes import LinkedEntity
from worker.domain.decisions import REVERSIBLE, Decision, DecisionAction, Rejection, StoredDecision, plan_undo
from worker.domain.events import StoreId
from worker.domain.leave import LeaveBalance, OvertimeBalance, YearReport
from worker.domain.matching import Level
from worker.domain.nmbrs_records import Gender, NmbrsCompany, NmbrsEmployee
from worker.domain.normalisation import fold
from worker.domain.organisation_matching import ScoredOrganisation
from worker.domain.person_scoring import ScoredCandidate
from worker.domain.status import StepStatus

TEXT_MAX = 100
PAGE_MAX = 500

RowT = TypeVar("RowT")


class Page(FrozenView, Generic[RowT]):
    """One page of a list that is paged in SQL."""

    total: int = Field(description="How many rows the whole list has (with the filter, if any).")
    offset: int
    limit: int
    rows: tuple[RowT, ...]


def _check_window(offset: int, limit: int) -> None:
    if offset < 0 or not 1 <= limit <= PAGE_MAX:
        raise ValueError(f"a page needs offset >= 0 and 1 <= limit <= {PAGE_MAX} (got offset {offset}, limit {limit})")


# --- the question list -----------------------------------------------------------------------------------


def _digits_as_int(value: Any) -> Any:
    """A query string's company id ('12') as the int it names; anything else is left to strict validation."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


class QuestionFilter(FrozenView):
    """What the question list shows; every criterion given must hold. Strict but for the company id, which may be
    the digits of a query string: no bool or float for a number, an unknown field is an error, not ignored."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", str_strip_whitespace=True)

    company_id: Annotated[StoreId, BeforeValidator(_digits_as_int)] | None = Field(
        None, description="Only questions of this Nmbrs company."
    )
    situation: Literal["unmatched", "disputed"] | None = None
    # No NUL: PostgreSQL text cannot hold it.
    text: Annotated[str, Field(max_length=TEXT_MAX, pattern=r"^[^\x00]*$")] | None = Field(
        None,
        description="The record's name (accent- and case-free, every part in any order: 'de Jong' finds "
        "'Jong, de'), its employee number, or part of its e-mail (with the '@'). Blank: no text filter.",
    )
    include_skipped: bool = Field(False, description="Also questions skipped (Overslaan) until the next sync.")
    entity: LinkedEntity | None = None

    @field_validator("text")
    @classmethod
    def _blank_is_no_filter(cls, value: str | None) -> str | None:
        return value or None


class QuestionRow(QuestionSummary):
    """One open question as the web app's list shows it: its best candidate instead of all of them."""

    candidate_count: int
    best_score: float | None = None
    best_candidate_name: str | None = Field(None, description="Its current RegiCRM name; None when none or deleted.")


class CompanyOption(FrozenView):
    """A company with open questions, for the list's company filter."""

    company_id: int
    name: str | None
    count: int = Field(description="Its open questions, skipped ones included.")
    skipped: int


class QuestionPage(Page[QuestionRow]):
    companies: tuple[CompanyOption, ...] = Field(description="Every company with open questions, whatever the filter.")


# The name of the Nmbrs company `{company}` (SQL): RegiTijd's when linked, else what Nmbrs sent (its snapshot, or
# its own question).
_COMPANY_JOINS = """LEFT JOIN rt_companies c ON c.nmbrs_company_id = {company}
    LEFT JOIN nmbrs_snapshots s ON s.key = 'company:' || {company} AND NOT s.deleted
    LEFT JOIN pending_decisions cq ON cq.entity = 'company' AND cq.nmbrs_id = {company}"""
_COMPANY_NAME = "coalesce(c.name, s.record ->> 'name', cq.record ->> 'name')"

# What a row shows, for questions `q`; the candidates are stored best first.
_ROW_COLUMNS = f"""q.entity, q.nmbrs_id, q.version, q.situation, q.reason, q.company_id, q.record, q.skipped,
    q.created_at, extract(epoch FROM now() - q.created_at)::float8 AS age_s, {_COMPANY_NAME} AS company_name,
    jsonb_array_length(q.candidates) AS candidate_count, (q.candidates -> 0 ->> 'score')::float8 AS best_score,
    bp.first_name AS best_first_name, bp.prefix AS best_prefix, bp.last_name AS best_last_name,
    bo.name AS best_organisation_name"""
_ROW_JOINS = (
    _COMPANY_JOINS.format(company="q.company_id")
    + """
    LEFT JOIN crm_persons bp ON q.entity = 'employee' AND bp.person_id = (q.candidates -> 0 ->> 'person_id')::int
    LEFT JOIN crm_organisations bo
           ON q.entity = 'company' AND bo.organisation_id = (q.candidates -> 0 ->> 'organisation_id')::int"""
)
# "Red first, then by waiting time"; entity and id make the order total, so pages never overlap.
_ORDER = "skipped, created_at, entity, nmbrs_id"


def _question_where(selection: QuestionFilter) -> tuple[str, list[Any]]:
    """The question filter as SQL over `pending_decisions q`: (condition, arguments)."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    conditions = [] if selection.include_skipped else ["NOT q.skipped"]
    if selection.entity is not None:
        conditions.append(f"q.entity = {arg(selection.entity)}")
    if selection.company_id is not None:
        conditions.append(f"q.company_id = {arg(selection.company_id)}")
    if selection.situation is not None:
        conditions.append(f"q.situation = {arg(selection.situation)}")
    if selection.text is not None:
        # search_name: the record's name folded as the RegiCRM search folds names (migration 0017).
        criteria = SearchCriteria(selection.text)
        matches = []
        if criteria.tokens:  # every part of the name, in any order ('Jong, de')
            matches.append(" AND ".join(f"strpos(q.search_name, {arg(token)}) > 0" for token in criteria.tokens))
        if criteria.compact:  # written together ('dejong', 'vanderberg')
            matches.append(f"strpos(translate(q.search_name, {arg(JOINERS)}, ''), {arg(criteria.compact)}) > 0")
        matches.append(f"lower(q.record ->> 'number') = {arg(fold(selection.text))}")
        if criteria.email:
            email = arg(criteria.email)
            matches += [
                f"strpos(lower(q.record ->> '{key}'), {email}) > 0" for key in ("email_work", "email_private", "email")
            ]
        conditions.append("(" + " OR ".join(f"({m})" for m in matches) + ")")
    return " AND ".join(conditions) or "true", args


async def question_page(
    connection: asyncpg.Connection, selection: QuestionFilter, offset: int, limit: int
) -> QuestionPage:
    """A page of the open questions `selection` finds, not skipped first, then the longest waiting first; with the
    total found and every company that has open questions. Filtered, counted and paged in SQL."""
    _check_window(offset, limit)
    where, args = _question_where(selection)
    window = len(args) + 1
    # The total and the page in one statement, filtering once; the outer join gives the total also for an
    # empty page.
    rows = await connection.fetch(
        f"""WITH matching AS MATERIALIZED (
                SELECT q.entity, q.nmbrs_id, q.skipped, q.created_at FROM pending_decisions q WHERE {where}),
            page AS (SELECT entity, nmbrs_id FROM matching ORDER BY {_ORDER} OFFSET ${window} LIMIT ${window + 1})
            SELECT t.total, r.*
            FROM (SELECT count(*) AS total FROM matching) t
            LEFT JOIN (SELECT {_ROW_COLUMNS} FROM page JOIN pending_decisions q USING (entity, nmbrs_id) {_ROW_JOINS}) r
                   ON true
            ORDER BY {", ".join(f"r.{column}" for column in _ORDER.split(", "))}""",
        *args,
        offset,
        limit,
    )
    return QuestionPage(
        total=rows[0]["total"],
        offset=offset,
        limit=limit,
        rows=tuple(_question_row(row) for row in rows if row["entity"] is not None),
        companies=await _companies_with_questions(connection),
    )


def _question_row(row: asyncpg.Record) -> QuestionRow:
    record = json.loads(row["record"])
    if row["entity"] == "employee":
        best = person_name(row["best_first_name"], row["best_prefix"], row["best_last_name"]) or None
    else:
        best = row["best_organisation_name"]
    return QuestionRow(
        entity=row["entity"],
        nmbrs_id=row["nmbrs_id"],
        version=row["version"],
        situation=row["situation"],
        reason=row["reason"],
        name=record_name(row["entity"], row["nmbrs_id"], record),
        number=record.get("number"),
        company_id=row["company_id"],
        company_name=row["company_name"],
        skipped=row["skipped"],
        asked_at=row["created_at"],
        age_s=max(0.0, row["age_s"]),
        candidate_count=row["candidate_count"],
        best_score=row["best_score"],
        best_candidate_name=best,
    )


async def _companies_with_questions(connection: asyncpg.Connection) -> tuple[CompanyOption, ...]:
    rows = await connection.fetch(
        f"""SELECT q.company_id, {_COMPANY_NAME} AS name, q.count, q.skipped
            FROM (SELECT company_id, count(*) AS count, count(*) FILTER (WHERE skipped) AS skipped
                  FROM pending_decisions WHERE company_id IS NOT NULL GROUP BY company_id) q
            {_COMPANY_JOINS.format(company="q.company_id")}"""
    )
    options = [CompanyOption(**row) for row in rows]
    return tuple(sorted(options, key=lambda o: (o.name is None, fold(o.name), o.company_id)))


# --- one question beside its candidates ------------------------------------------------------------------


class CandidateDetail(FrozenView):
    """A candidate of the question: its card as it is now, and the matcher's judgement when the question was asked.
    The dicts are keyed by the question's `fields` and hold only what there is."""

    crm_id: int = Field(description="person_id (employee questions) or organisation_id (company questions).")
    name: str | None = Field(description="Current name in RegiCRM; None when the card was deleted since.")
    card_deleted: bool
    score: float
    flags: tuple[str, ...] = Field(description="e.g. has_login_account, blue_employee, same_bsn_hash, ...")
    explanation: str
    card: dict[str, str] = Field(description="The card's current values; empty for a deleted card.")
    levels: dict[str, Level] = Field(
        description="exact, close, different or missing, of the comparison that covers the field (both e-mail "
        "fields share the e-mail comparison); a field not compared has none."
    )
    why: dict[str, str] = Field(description="The matcher's note of that comparison.")


class QuestionDetail(FrozenView):
    question: QuestionRow
    fields: tuple[str, ...] = Field(description="The fields to show, in order: those the record or a card has.")
    record: dict[str, str] = Field(description="The Nmbrs record's values.")
    candidates: tuple[CandidateDetail, ...] = Field(description="Best first, as stored with the question.")


# The fields shown, in order, each with the stored comparison (FieldComparison.field) that covers it.
_EMPLOYEE_FIELDS: Mapping[str, str | None] = MappingProxyType(
    {
        "first_name": "first_name",
        "nickname": "first_name",
        "initials": "first_name",
        "prefix": "last_name",
        "last_name": "last_name",
        "birthday": "birthday",
        "gender": None,
        "email_work": "email",
        "email_private": "email",
        "phone_work": "phone",
        "phone_mobile": "phone",
        "phone_private": "phone",
        "postcode": "postcode",
        "company": None,
        "number": None,
        "function": None,
        "department": None,
        "employment_start": None,
        "employment_end": None,
    }
)
# Nmbrs lists companies without an address (List_GetAll): the postcode is the card's only.
_COMPANY_FIELDS: Mapping[str, str | None] = MappingProxyType(
    {
        "name": "name",
        "kvk_number": "kvk_number",
        "email": "email",
        "phone": "phone",
        "website": "website",
        "postcode": "postcode",
        "number": None,
        "period_type": None,
    }
)


def _present(values: Mapping[str, Any], fields: Iterable[str]) -> dict[str, str]:
    """The fields that have a value, as shown; a gender Nmbrs leaves undefined is none."""
    shown = {}
    for field in fields:
        value = values.get(field)
        if value is None or value == "" or (field == "gender" and value == Gender.UNDEFINED):
            continue
        shown[field] = value.isoformat() if isinstance(value, date) else str(value)
    return shown


def _employee_values(record: NmbrsEmployee, company_name: str | None) -> dict[str, Any]:
    latest = max(record.employments, key=lambda period: period.start, default=None)
    return {
        **record.model_dump(include=set(_EMPLOYEE_FIELDS)),
        "company": company_name,
        "function": record.function.description if record.function else None,
        "department": record.department.description if record.department else None,
        "employment_start": latest.start if latest else None,
        "employment_end": latest.end if latest else None,
    }


async def question_detail(connection: asyncpg.Connection, entity: LinkedEntity, nmbrs_id: int) -> QuestionDetail | None:
    """One open question: the Nmbrs record and, beside it, each candidate's current card with the matcher's level
    and note per field. None when the record has no open question."""
    row = await connection.fetchrow(
        f"SELECT {_ROW_COLUMNS}, q.candidates FROM pending_decisions q {_ROW_JOINS} "
        "WHERE q.entity = $1 AND q.nmbrs_id = $2",
        entity,
        nmbrs_id,
    )
    if row is None:
        return None
    question = _question_row(row)
    data, stored = json.loads(row["record"]), json.loads(row["candidates"])
    scored: list[tuple[int, ScoredCandidate | ScoredOrganisation]]
    if entity == "employee":
        fields = _EMPLOYEE_FIELDS
        record = _present(_employee_values(NmbrsEmployee.model_validate(data), question.company_name), fields)
        scored = [(c.person_id, c) for c in map(ScoredCandidate.model_validate, stored)]
        cards = await _person_cards(connection, [crm_id for crm_id, _ in scored])
    else:
        fields = _COMPANY_FIELDS
        record = _present(NmbrsCompany.model_validate(data).model_dump(), fields)
        scored = [(c.organisation_id, c) for c in map(ScoredOrganisation.model_validate, stored)]
        cards = await _organisation_cards(connection, [crm_id for crm_id, _ in scored])
    shown_cards = {crm_id: _present(card, fields) for crm_id, card in cards.items()}
    shown = tuple(f for f in fields if f in record or any(f in card for card in shown_cards.values()))
    candidates = []
    for crm_id, candidate in scored:
        judged = {comparison.field: comparison for comparison in candidate.comparisons}
        covering = {f: judged[compared] for f in shown if (compared := fields[f]) in judged}
        candidates.append(
            CandidateDetail(
                crm_id=crm_id,
                name=cards[crm_id]["shown_name"] if crm_id in cards else None,
                card_deleted=crm_id not in cards,
                score=candidate.score,
                flags=candidate.flags,
                explanation=candidate.explanation,
                card=shown_cards.get(crm_id, {}),
                levels={f: comparison.level for f, comparison in covering.items()},
                why={f: comparison.note for f, comparison in covering.items()},
            )
        )
    return QuestionDetail(question=question, fields=shown, record=record, candidates=tuple(candidates))


async def _person_cards(connection: asyncpg.Connection, person_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = await connection.fetch(
        """SELECT p.person_id, p.first_name, p.initials, p.prefix, p.last_name, p.birthday, p.gender, p.email_work,
                  p.email_private, p.phone_work, p.phone_mobile, p.phone_private, p.postcode, o.name AS company
           FROM crm_persons p LEFT JOIN crm_organisations o ON o.organisation_id = p.organisation_id
           WHERE p.person_id = ANY($1::int[])""",
        person_ids,
    )
    return {
        r["person_id"]: {**r, "shown_name": person_name(r["first_name"], r["prefix"], r["last_name"])} for r in rows
    }


async def _organisation_cards(connection: asyncpg.Connection, organisation_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = await connection.fetch(
        """SELECT organisation_id, name, kvk_number, email, phone, postcode, website FROM crm_organisations
           WHERE organisation_id = ANY($1::int[])""",
        organisation_ids,
    )
    return {r["organisation_id"]: {**r, "shown_name": r["name"]} for r in rows}


# --- the overview ----------------------------------------------------------------------------------------


class PollView(FrozenView):
    """A finished poll and what its report says."""

    poll_id: uuid.UUID
    status: Literal["published", "held", "planned", "failed"]
    full: bool
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    changes: dict[str, int] = Field(description="Events by 'entity:op' (planned ones, for a held poll).")
    soap_calls: int
    companies_fetched: int
    companies_failed: int
    counts: dict[str, int] = Field(description="The mass-change breaker's figures (worker/domain/breaker.py).")
    reasons: tuple[str, ...] = Field(description="Why it is red: the breaker's reasons, companies not fetched, ...")


class Overview(FrozenView):
    status: Literal["green", "red"]
    steps: tuple[StepStatus, ...] = Field(description="Red first, otherwise in the steps' own order.")
    last_poll: PollView | None = Field(description="The last finished poll.")
    last_poll_age_s: float | None = Field(description="Seconds since it finished.")
    held: PollView | None = Field(
        description="The poll the breaker holds: the last poll that got as far as publishing or being held was held."
    )
    sync_requests_waiting: int = Field(description="Sync requests not yet polled, or being polled.")
    open_questions: int = Field(description="Not skipped.")
    skipped_questions: int
    employees_with_open_tasks: int


async def overview(connection: asyncpg.Connection, today: date, at: datetime) -> Overview:
    """What the start page shows: every step's status, the polls, what waits for HR."""
    statuses = await step_statuses(connection, today, at)
    polls = await connection.fetch(
        """(SELECT 'last' AS role, poll_id, status, full_sync, dry_run, started_at, finished_at, summary FROM poll_runs
            WHERE status <> 'running' AND employee_id IS NULL ORDER BY started_at DESC LIMIT 1)
           UNION ALL
           -- Neither a dry run nor a poll that failed releases a hold: the next real poll is judged again.
           (SELECT 'judged', poll_id, status, full_sync, dry_run, started_at, finished_at, summary FROM poll_runs
            WHERE status IN ('published', 'held') AND employee_id IS NULL ORDER BY started_at DESC LIMIT 1)"""
    )
    counts = await connection.fetchrow(
        """SELECT count(*) FILTER (WHERE status IN ('pending', 'running')) AS sync_requests_waiting,
                  (SELECT count(*) FROM pending_decisions WHERE NOT skipped) AS open_questions,
                  (SELECT count(*) FROM pending_decisions WHERE skipped) AS skipped_questions
           FROM sync_requests"""
    )
    assert counts is not None  # an aggregate always answers
    by_role = {row["role"]: row for row in polls}
    last = _poll_view(by_role["last"]) if "last" in by_role else None
    judged = by_role.get("judged")
    held = _poll_view(judged) if judged is not None and judged["status"] == "held" else None
    return Overview(
        status="red" if any(s.status == "red" for s in statuses) else "green",
        # As the CLI's status and the old sync screen: red first, otherwise the steps keep their order.
        steps=tuple(sorted(statuses, key=lambda s: s.status != "red")),
        last_poll=last,
        last_poll_age_s=max(0.0, (at - last.finished_at).total_seconds()) if last and last.finished_at else None,
        held=held,
        sync_requests_waiting=counts["sync_requests_waiting"],
        open_questions=counts["open_questions"],
        skipped_questions=counts["skipped_questions"],
        employees_with_open_tasks=len(await open_tasks(connection)),
    )


def _poll_view(row: asyncpg.Record) -> PollView:
    # The summary is the poll's PollReport; read loosely, as an old or cut-off run may lack parts of it.
    summary = json.loads(row["summary"])
    companies = summary.get("companies", [])
    return PollView(
        poll_id=row["poll_id"],
        status=row["status"],
        full=row["full_sync"],
        dry_run=row["dry_run"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        changes=summary.get("changes", {}),
        soap_calls=summary.get("soap_calls", 0),
        companies_fetched=sum(1 for c in companies if c.get("ok")),
        companies_failed=sum(1 for c in companies if not c.get("ok")),
        counts=summary.get("breaker_counts", {}),
        reasons=tuple(summary.get("reasons", ())),
    )


# --- decisions and blocks ----------------------------------------------------------------------------------


class DecisionRow(DecisionView):
    name: str | None = Field(description="The record's name; None for a bulk decision.")
    undoable: bool = Field(description="'ongedaan_maken' would take something back (of a bulk: of any record).")


def _undo_part(effect: str) -> str:
    """SQL: of one record's effect (the jsonb `effect`), only what plan_undo reads. A bulk's effect holds the Nmbrs
    data of every record it linked, megabytes for a large one: of the linked records only their ids are kept."""
    linked_ids = f"(SELECT jsonb_object_agg(k, '{{}}'::jsonb) FROM jsonb_object_keys({effect} -> 'linked') k)"
    parts = ", ".join(f"'{part}', {effect} -> '{part}'" for part in (*REVERSIBLE, "undone_by") if part != "linked")
    return f"jsonb_strip_nulls(jsonb_build_object('linked', {linked_ids}, {parts}))"


async def decisions_page(connection: asyncpg.Connection, offset: int, limit: int) -> Page[DecisionRow]:
    """The decisions, newest first, with the record's name and whether an undo would still take something back."""
    _check_window(offset, limit)
    total = await connection.fetchval("SELECT count(*) FROM decisions")
    rows = await connection.fetch(
        f"""SELECT d.decision_id, d.decided_at, d.decided_by, d.action, d.entity, d.nmbrs_id, d.result, d.reason,
                   d.undone_by,
                   -- The name as Nmbrs has it now, else as it was asked, blocked or linked.
                   coalesce(s.record, q.record, b.record, d.effect -> 'linked' -> d.nmbrs_id::text) AS record,
                   CASE WHEN d.nmbrs_id IS NOT NULL THEN {_undo_part("d.effect")}
                        ELSE jsonb_build_object('records', (
                            SELECT coalesce(jsonb_object_agg(r.key, {_undo_part("r.value")}), '{{}}')
                            FROM jsonb_each(d.effect -> 'records') r))
                   END AS undo_effect
            FROM (SELECT * FROM decisions ORDER BY decided_at DESC, received_at DESC OFFSET $1 LIMIT $2) d
            LEFT JOIN nmbrs_snapshots s ON s.key = d.entity || ':' || d.nmbrs_id
            LEFT JOIN pending_decisions q ON q.entity = d.entity AND q.nmbrs_id = d.nmbrs_id
            LEFT JOIN sync_blocks b ON b.entity = d.entity AND b.nmbrs_id = d.nmbrs_id
            ORDER BY d.decided_at DESC, d.received_at DESC""",
        offset,
        limit,
    )
    return Page[DecisionRow](total=total, offset=offset, limit=limit, rows=tuple(map(_decision_row, rows)))


def _decision_row(row: asyncpg.Record) -> DecisionRow:
    record = json.loads(row["record"]) if row["record"] else None
    bulk = row["nmbrs_id"] is None
    return DecisionRow(
        decision_id=str(row["decision_id"]),
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        action=row["action"],
        record="bulk" if bulk else f"{row['entity']}:{row['nmbrs_id']}",
        result=row["result"],
        reason=row["reason"],
        undone_by=str(row["undone_by"]) if row["undone_by"] else None,
        name=(record_name(row["entity"], row["nmbrs_id"], record) or None) if record else None,
        undoable=_undoable(row, json.loads(row["undo_effect"])),
    )


def _undoable(row: asyncpg.Record, effect: dict[str, Any]) -> bool:
    """Whether plan_undo (the decision consumer's rule) would take back something: asked with an undo of every
    record, named by one of them."""
    entity: LinkedEntity = row["entity"]
    if row["nmbrs_id"] is not None:
        named = row["nmbrs_id"]
    elif records := effect.get("records"):
        named = int(next(iter(records)).partition(":")[2])
    else:
        return False  # a preview, or a bulk that answered nothing
    probe = Decision(
        decision_id=row["decision_id"],
        entity=entity,
        nmbrs_id=named,
        action=DecisionAction.ONGEDAAN_MAKEN,
        undo_decision_id=row["decision_id"],
        undo_all_records=True,
        decided_by="web",
        decided_at=row["decided_at"],
    )
    stored = StoredDecision(
        entity=entity,
        nmbrs_id=row["nmbrs_id"],
        action=row["action"],
        result=row["result"],
        effect=effect,
        undone_by=row["undone_by"],
    )
    return not isinstance(plan_undo(probe, stored, entity, named), Rejection)


async def blocked_page(connection: asyncpg.Connection, offset: int, limit: int) -> Page[BlockView]:
    """The records blocked (Blokkeren), the latest first."""
    _check_window(offset, limit)
    total = await connection.fetchval("SELECT count(*) FROM sync_blocks")
    blocks = tuple(await blocked_records(connection, offset, limit))
    return Page[BlockView](total=total, offset=offset, limit=limit, rows=blocks)


# --- leave ---------------------------------------------------------------------------------------------------


class LeaveSummary(FrozenView):
    """An employee's leave as last calculated (after every change and decision), as the desktop showed it after
    'Bijwerken'."""

    employee_id: int = Field(description="The RegiTijd employee id.")
    nmbrs_employee_id: int
    name: str
    as_of: date
    computed_at: datetime
    balance: LeaveBalance = Field(description="Statutory, extra, adjustments, unallocated taken and the total.")
    overtime: OvertimeBalance
    year: YearReport | None = Field(description="The year asked for; None when the calculation has no such year.")


async def employee_leave(connection: asyncpg.Connection, nmbrs_employee_id: int, year: int) -> LeaveSummary | None:
    """The stored leave of the RegiTijd employee linked to an Nmbrs employee; None when there is none (not linked,
    or not calculated yet)."""
    row = await connection.fetchrow(
        """SELECT e.employee_id, p.first_name, p.prefix, p.last_name, b.as_of, b.computed_at,
                  b.result -> 'balance' AS balance, b.result -> 'overtime' AS overtime,
                  (SELECT y FROM jsonb_array_elements(b.result -> 'years') y WHERE (y ->> 'year')::int = $2) AS year
           FROM rt_employees e
           JOIN crm_persons p ON p.person_id = e.person_id
           JOIN rt_leave_balances b ON b.employee_id = e.employee_id
           WHERE e.nmbrs_employee_id = $1""",
        nmbrs_employee_id,
        year,
    )
    if row is None:
        return None
    return LeaveSummary(
        employee_id=row["employee_id"],
        nmbrs_employee_id=nmbrs_employee_id,
        name=person_name(row["first_name"], row["prefix"], row["last_name"]),
        as_of=row["as_of"],
        computed_at=row["computed_at"],
        balance=LeaveBalance.model_validate_json(row["balance"]),
        overtime=OvertimeBalance.model_validate_json(row["overtime"]),
        year=YearReport.model_validate_json(row["year"]) if row["year"] else None,
    )
