"""The web app's queries against the real PostgreSQL, on questions asked by real reconciliations and answered by
real decisions: the question list (filter, text search, order, paging), one question beside its candidates, the
overview with a held poll, decisions and blocks paged, leave after Koppelen."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.builders import NOW, employee_change, nmbrs_employee
from tests.support import TARGET_TABLES
from worker.adapters import web_queries
from worker.adapters.hr_queries import read_only_connection
from worker.adapters.poll_store import PollStore, insert_sync_request
from worker.adapters.target_store_load import load_target_state
from worker.adapters.web_queries import QuestionFilter
from worker.domain.breaker import BreakerPolicy, evaluate_breaker
from worker.domain.changes import ChangeSource, CompanyChanged, EmployeeChanged, Entity, LinkedEntity, Op
from worker.domain.decisions import Decision, DecisionFilter
from worker.domain.events import CompanyFetch, PollReport, SyncRequested
from worker.domain.leave import LeaveResult
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee, nmbrs_today
from worker.domain.target_state import parse_target_file
from worker.service.decisions import handle_decision
from worker.service.reconciler import handle_change

STATE = """
organisations:
  - {ref: org-zon, name: "Bakkerij De Zon B.V.", kvk_number: "88721495", email: info@zon.nl, postcode: 1234AB}
persons:
  - {ref: anna, first_name: Anna, prefix: van der, last_name: Berg, birthday: 1980-04-02, email_work: anna@zon.nl,
     organisation: org-zon, account: {username: anna, roles: [medewerker]}}
  - {ref: anna-duplicate, first_name: Anna, last_name: van der Berg, birthday: 1980-04-02, organisation: org-zon}
  - {ref: piet, first_name: Piet, last_name: Smit, birthday: 1975-01-01, organisation: org-zon}
  - {ref: ayse, first_name: Ayşe, last_name: Çelik, birthday: 1992-07-14, phone_mobile: "+31 6 1234 5678"}
  - {ref: pieter, first_name: Pieter, prefix: de, last_name: Jong, birthday: 1970-01-01}
blue_employees:
  - {ref: piet-blue, person: piet, organisation: org-zon, number: "900", employment_start: 2019-01-01}
"""
_versions: dict[str, int] = {}


def employee(employee_id: int, first: str, prefix: str | None, last: str, born: date, **more: Any) -> NmbrsEmployee:
    """An employee of company 1 with a number of its own and no BSN hash (so no two are one human)."""
    fields = {"first_name": first, "prefix": prefix, "last_name": last, "birthday": born, "email_work": None}
    return nmbrs_employee(employee_id, number=f"E{employee_id}", bsn_hash=None, **(fields | more))


def next_version(key: str) -> int:
    _versions[key] = _versions.get(key, 0) + 1
    return _versions[key]


def created(record: NmbrsEmployee | NmbrsCompany) -> EmployeeChanged | CompanyChanged:
    """The poller's create event for `record`, at the next version of its key."""
    if isinstance(record, NmbrsEmployee):
        return employee_change(record, version=next_version(f"employee:{record.employee_id}"))
    key = f"company:{record.company_id}"
    return CompanyChanged(
        event_id=uuid.uuid4(),
        entity=Entity.COMPANY,
        key=key,
        op=Op.CREATE,
        version=next_version(key),
        after=record,
        source=ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW),
        ts=NOW,
    )


ASKED: list[NmbrsEmployee | NmbrsCompany] = [
    NmbrsCompany(company_id=1, name="Bakkerij De Zon B.V.", kvk_number="88721495"),  # linked on its KvK number
    employee(101, "Anna", "van der", "Berg", date(1980, 4, 2), email_work="anna@zon.nl"),
    employee(150, "Piet", None, "Smit", date(1975, 1, 1)),
    employee(104, "Pieter", "de", "Jong", date(1970, 1, 1)),
    employee(105, "Sanne", None, "de Jong", date(1991, 2, 3)),
    employee(106, "Sanne", None, "Jongeling", date(1993, 3, 4)),
    employee(102, "Zeger", None, "Quist", date(1990, 1, 1), company_id=2),
    employee(103, "Ayşe", None, "Çelik", date(1992, 7, 14), company_id=2, phone_mobile="06-12345678"),
    NmbrsCompany(company_id=2, name="Onbekend Uitzendbureau B.V."),
    NmbrsCompany(company_id=300, name="Bakkerij De Zon", email="info@zon.nl", number="300"),  # no KvK: asked
]
# How many hours ago each question was asked; equal hours are the same moment.
ASKED_AT = {
    "employee:103": 9,
    "company:2": 8,
    "employee:101": 7,
    "employee:106": 6,
    "employee:105": 6,
    "employee:150": 5,
    "company:300": 5,
    "employee:104": 3,
    "employee:102": 2,
}
# The list's order: the longest waiting first; at the same moment companies before employees, then by id.
WAITING = [
    "employee:103",
    "company:2",
    "employee:101",
    "employee:105",
    "employee:106",
    "company:300",
    "employee:150",
    "employee:104",
    "employee:102",
]


@pytest.fixture
async def store(pool: asyncpg.Pool) -> asyncpg.Pool:
    """Nine open questions asked by real reconciliations (company 1 linked on its KvK number, so not asked), asked
    as long ago as ASKED_AT says."""
    await pool.execute(
        f"TRUNCATE {TARGET_TABLES}, decisions, nmbrs_snapshots, poll_runs, sync_requests RESTART IDENTITY CASCADE"
    )
    async with pool.acquire() as connection:
        await load_target_state(connection, parse_target_file(STATE, "state.yaml"))
    _versions.clear()  # a fresh store: every record at its first version
    for record in ASKED:
        await handle_change(created(record), pool, MatchPolicy(), lambda: NOW)
    # One statement, one now(): equal hours are equal moments.
    asked = [key.partition(":") for key in ASKED_AT]
    await pool.execute(
        """UPDATE pending_decisions q SET created_at = now() - make_interval(hours => a.hours)
           FROM unnest($1::text[], $2::int[], $3::int[]) AS a(entity, nmbrs_id, hours)
           WHERE q.entity = a.entity AND q.nmbrs_id = a.nmbrs_id""",
        [entity for entity, _, _ in asked],
        [int(nmbrs_id) for _, _, nmbrs_id in asked],
        list(ASKED_AT.values()),
    )
    assert sorted(
        f"{r['entity']}:{r['nmbrs_id']}" for r in await pool.fetch("SELECT entity, nmbrs_id FROM pending_decisions")
    ) == sorted(ASKED_AT)
    return pool


@pytest.fixture
def dsn(store: asyncpg.Pool, migrated_database: str) -> str:
    return migrated_database


async def page(dsn: str, offset: int = 0, limit: int = 50, **criteria: Any) -> web_queries.QuestionPage:
    """A page as the web app reads it: in a read-only transaction of its own."""
    async with read_only_connection(dsn) as connection:
        return await web_queries.question_page(connection, QuestionFilter.model_validate(criteria), offset, limit)


async def keys(dsn: str, **criteria: Any) -> list[str]:
    return [row.key for row in (await page(dsn, **criteria)).rows]


def decision(
    action: str, nmbrs_id: int | None, minute: int, entity: LinkedEntity = "employee", **fields: Any
) -> Decision:
    """A decision by hr.anja, `minute` minutes after 9:00 on NOW's day (so the history's order is known)."""
    return Decision(
        decision_id=uuid.uuid4(),
        entity=entity,
        nmbrs_id=nmbrs_id,
        action=action,
        decided_by="hr.anja",
        decided_at=NOW + timedelta(minutes=minute),
        **fields,
    )


async def decide(pool: asyncpg.Pool, choice: Decision) -> Decision:
    await handle_decision(choice, pool, MatchPolicy(), lambda: NOW)
    return choice


async def person(pool: asyncpg.Pool, ref: str) -> int:
    return int(await pool.fetchval("SELECT person_id FROM crm_persons WHERE external_ref = $1", ref))


# --- the question list ----------------------------------------------------------------------------------------


async def test_the_list_shows_the_longest_waiting_first_and_skipped_questions_last_on_request(
    store: asyncpg.Pool, dsn: str
) -> None:
    found = await page(dsn)
    assert [row.key for row in found.rows] == WAITING and found.total == 9
    await decide(store, decision("overslaan", 101, 1))
    assert await keys(dsn) == [key for key in WAITING if key != "employee:101"]
    everything = await page(dsn, include_skipped=True)
    assert [row.key for row in everything.rows] == [*(k for k in WAITING if k != "employee:101"), "employee:101"]
    assert everything.total == 9 and everything.rows[-1].skipped and not everything.rows[0].skipped


async def test_pages_follow_each_other_without_overlap_and_count_the_whole_list(dsn: str) -> None:
    pages = [await page(dsn, offset, 4) for offset in (0, 4, 8)]
    assert [[row.key for row in p.rows] for p in pages] == [WAITING[:4], WAITING[4:8], WAITING[8:]]
    assert {p.total for p in pages} == {9}
    beyond = await page(dsn, 20, 4)
    assert beyond.rows == () and beyond.total == 9  # the total also for a page past the end
    nothing = await page(dsn, text="nobody by that name")
    assert nothing.rows == () and nothing.total == 0
    with pytest.raises(ValueError, match="offset"):
        await page(dsn, -1, 4)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"company_id": 2}, ["employee:103", "company:2", "employee:102"]),
        ({"company_id": "2"}, ["employee:103", "company:2", "employee:102"]),  # as the query string has it
        ({"situation": "unmatched"}, ["company:2", "employee:105", "employee:106", "employee:102"]),
        ({"entity": "company"}, ["company:2", "company:300"]),
        ({"company_id": 1, "situation": "disputed"}, ["employee:101", "employee:150", "employee:104"]),
        ({"company_id": 300, "entity": "employee"}, []),
    ],
)
async def test_the_filters_select_exactly_their_questions(
    criteria: dict[str, Any], expected: list[str], dsn: str
) -> None:
    found = await page(dsn, **criteria)
    assert [row.key for row in found.rows] == expected and found.total == len(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("de Jong", ["employee:105", "employee:104"]),  # 'Sanne de Jong' and 'Pieter' prefix 'de', 'Jong'
        ("Jong, de", ["employee:105", "employee:104"]),
        ("dejong", ["employee:105", "employee:104"]),
        ("JONG", ["employee:105", "employee:106", "employee:104"]),
        ("celik", ["employee:103"]),  # stored as 'Çelik'
        ("ÇELİK", ["employee:103"]),
        ("ayse çelik", ["employee:103"]),
        ("Berg, van der", ["employee:101"]),
        ("vanderberg", ["employee:101"]),
        ("e150", ["employee:150"]),  # the employee number
        ("Anna@Zon", ["employee:101"]),  # the e-mail
        ("uitzendbureau", ["company:2"]),
        ("zon", ["company:300"]),
        ("  Smit  ", ["employee:150"]),
        ("Jansen", []),
    ],
)
async def test_the_text_finds_names_accent_and_case_free_in_any_order_numbers_and_emails(
    text: str, expected: list[str], dsn: str
) -> None:
    found = await page(dsn, text=text)
    assert [row.key for row in found.rows] == expected and found.total == len(expected)


async def test_a_row_shows_the_record_its_company_and_its_best_candidate_by_their_current_names(
    store: asyncpg.Pool, dsn: str
) -> None:
    rows = {row.key: row for row in (await page(dsn)).rows}
    anna = rows["employee:101"]
    assert (anna.name, anna.number, anna.company_id, anna.company_name) == (
        "Anna van der Berg",
        "E101",
        1,
        "Bakkerij De Zon B.V.",  # RegiTijd's name: company 1 is linked
    )
    assert (anna.situation, anna.version, anna.candidate_count, anna.best_score) == ("disputed", 1, 2, 1.0)
    assert anna.best_candidate_name == "Anna van der Berg" and "automatic linking on score is off" in (
        anna.reason or ""
    )
    assert 7 * 3600 - 60 < anna.age_s < 7 * 3600 + 60 and not anna.skipped
    unknown = rows["company:2"]
    assert (unknown.name, unknown.company_name) == ("Onbekend Uitzendbureau B.V.",) * 2  # from its own question
    assert (unknown.situation, unknown.candidate_count, unknown.best_score, unknown.best_candidate_name) == (
        "unmatched",
        0,
        None,
        None,
    )
    assert rows["employee:103"].company_name == "Onbekend Uitzendbureau B.V."
    assert rows["company:300"].best_candidate_name == "Bakkerij De Zon B.V."
    # A card renamed since the question was asked shows as it is now; a deleted one not at all.
    await store.execute("UPDATE crm_persons SET first_name = 'Ann' WHERE external_ref = 'anna'")
    await store.execute("DELETE FROM crm_persons WHERE external_ref = 'pieter'")
    rows = {row.key: row for row in (await page(dsn)).rows}
    assert rows["employee:101"].best_candidate_name == "Ann van der Berg"
    assert rows["employee:104"].best_candidate_name is None and rows["employee:104"].best_score == 0.75


async def test_the_company_choice_lists_every_company_with_questions_whatever_the_filter(
    store: asyncpg.Pool, dsn: str
) -> None:
    await decide(store, decision("overslaan", 106, 1))
    expected = [
        (300, "Bakkerij De Zon", 1, 0),
        (1, "Bakkerij De Zon B.V.", 5, 1),
        (2, "Onbekend Uitzendbureau B.V.", 3, 0),
    ]
    for criteria in ({}, {"text": "nobody"}, {"company_id": 2, "situation": "unmatched"}):
        found = await page(dsn, **criteria)
        assert [(c.company_id, c.name, c.count, c.skipped) for c in found.companies] == expected


# --- one question ---------------------------------------------------------------------------------------------


async def detail(dsn: str, entity: LinkedEntity, nmbrs_id: int) -> web_queries.QuestionDetail | None:
    async with read_only_connection(dsn) as connection:
        return await web_queries.question_detail(connection, entity, nmbrs_id)


async def test_a_question_shows_the_record_beside_each_card_with_the_level_and_why_per_field(
    store: asyncpg.Pool, dsn: str
) -> None:
    found = await detail(dsn, "employee", 101)
    assert found is not None and found.question.key == "employee:101" and found.question.candidate_count == 2
    # Fields neither the record nor a card has (a phone, the roepnaam, an end of service) are left out.
    assert found.fields == (
        "first_name",
        "prefix",
        "last_name",
        "birthday",
        "email_work",
        "company",
        "number",
        "function",
        "department",
        "employment_start",
    )
    assert found.record == {
        "first_name": "Anna",
        "prefix": "van der",
        "last_name": "Berg",
        "birthday": "1980-04-02",
        "email_work": "anna@zon.nl",
        "company": "Bakkerij De Zon B.V.",
        "number": "E101",
        "function": "Bakker",
        "department": "Productie",
        "employment_start": "2026-01-01",
    }
    anna, duplicate = found.candidates
    assert (anna.crm_id, duplicate.crm_id) == (await person(store, "anna"), await person(store, "anna-duplicate"))
    assert (anna.name, anna.score, anna.flags, anna.card_deleted) == (
        "Anna van der Berg",
        1.0,
        ("has_login_account",),
        False,
    )
    assert anna.card == {
        "first_name": "Anna",
        "prefix": "van der",
        "last_name": "Berg",
        "birthday": "1980-04-02",
        "email_work": "anna@zon.nl",
        "company": "Bakkerij De Zon B.V.",
    }
    # The card writes its tussenvoegsel into the last name: still the same surname.
    assert duplicate.card == {
        "first_name": "Anna",
        "last_name": "van der Berg",
        "birthday": "1980-04-02",
        "company": "Bakkerij De Zon B.V.",
    }
    same_name = {"first_name": "exact", "prefix": "exact", "last_name": "exact", "birthday": "exact"}
    assert anna.levels == same_name | {"email_work": "exact"}
    assert duplicate.levels == same_name | {"email_work": "missing"}
    assert duplicate.why["email_work"] == "no e-mail on RegiCRM"
    assert anna.why["prefix"] == anna.why["last_name"] == "surname 'berg' with tussenvoegsel 'van der' agrees"
    assert "function" not in anna.levels  # shown, not compared


async def test_a_company_question_compares_the_organisation_cards(store: asyncpg.Pool, dsn: str) -> None:
    found = await detail(dsn, "company", 300)
    assert found is not None
    assert found.fields == ("name", "kvk_number", "email", "postcode", "number")
    assert found.record == {"name": "Bakkerij De Zon", "email": "info@zon.nl", "number": "300"}
    (organisation,) = found.candidates
    assert organisation.flags == ("already_linked_to_other_company",)  # to Nmbrs company 1
    # Linking company 1 wrote its data over the card: its e-mail is gone (Nmbrs company 1 has none).
    assert organisation.card == {"name": "Bakkerij De Zon B.V.", "kvk_number": "88721495", "postcode": "1234AB"}
    assert organisation.levels == {"name": "exact", "kvk_number": "missing", "email": "missing", "postcode": "missing"}
    assert organisation.why["name"] == "name 'bakkerij de zon' agrees (legal form ignored)"


async def test_a_candidate_whose_card_was_deleted_shows_as_deleted_with_what_the_matcher_saw(
    store: asyncpg.Pool, dsn: str
) -> None:
    await store.execute("DELETE FROM crm_persons WHERE external_ref = 'anna-duplicate'")
    found = await detail(dsn, "employee", 101)
    assert found is not None
    anna, deleted = found.candidates
    assert (deleted.card_deleted, deleted.name, deleted.card, deleted.score) == (True, None, {}, 0.75)
    assert deleted.levels["birthday"] == "exact" and not anna.card_deleted


async def test_the_flags_say_when_a_card_has_a_blue_employee(dsn: str) -> None:
    found = await detail(dsn, "employee", 150)
    assert found is not None and found.candidates[0].flags == ("blue_employee",)


async def test_a_record_without_an_open_question_has_no_detail(dsn: str) -> None:
    assert await detail(dsn, "employee", 999) is None
    assert await detail(dsn, "company", 1) is None  # linked on its KvK number, never asked


# --- the overview ---------------------------------------------------------------------------------------------


async def finished_poll(
    pool: asyncpg.Pool, status: str, hours_ago: int, verdict_of: tuple[int, int] = (100, 100), dry_run: bool = False
) -> PollReport:
    """A poll run stored as the poller stores it, its report judged by the breaker on (previous, fetched)."""
    verdict = evaluate_breaker(*verdict_of, [], BreakerPolicy())
    started = NOW - timedelta(hours=hours_ago)
    report = PollReport(
        poll_id=uuid.uuid4(),
        full=False,
        dry_run=dry_run,
        result=status,
        status="red" if status == "held" else "green",
        reasons=verdict.reasons,
        changes={"employee:u": 3},
        breaker_counts=verdict.counts,
        companies=(
            CompanyFetch(company_id=1, name="Bakkerij De Zon B.V.", ok=True, employees=80),
            CompanyFetch(company_id=2, name="Onbekend", ok=False, error="timeout"),
        ),
        soap_calls=12,
        started_at=started,
        finished_at=started + timedelta(minutes=1),
    )
    polls = PollStore(pool)
    await polls.start_run(report.poll_id, None, report.full, dry_run, started)
    await polls.finish_run(report.poll_id, status, report.model_dump(mode="json"))
    return report


async def overview(dsn: str) -> web_queries.Overview:
    at = datetime.now(UTC)
    async with read_only_connection(dsn) as connection:
        return await web_queries.overview(connection, nmbrs_today(at), at)


async def test_the_overview_shows_the_held_poll_with_the_breakers_counts_until_a_poll_publishes(
    store: asyncpg.Pool, dsn: str
) -> None:
    await finished_poll(store, "published", 5)
    held = await finished_poll(store, "held", 3, verdict_of=(100, 80))  # 20 fewer employees fetched
    planned = await finished_poll(store, "planned", 2, dry_run=True)
    await finished_poll(store, "failed", 1)
    failed_last = await overview(dsn)
    assert failed_last.held is not None and failed_last.held.poll_id == held.poll_id  # neither releases the hold
    assert failed_last.held.status == "held"
    assert failed_last.held.counts == held.breaker_counts and failed_last.held.counts["dropped"] == 20
    assert failed_last.held.reasons == ("20 of 100 employees fewer fetched than last time (more than 10%)",)
    assert failed_last.last_poll is not None and failed_last.last_poll.status == "failed"
    await store.execute("DELETE FROM poll_runs WHERE status = 'failed'")
    shown = await overview(dsn)
    assert shown.last_poll is not None and shown.last_poll.poll_id == planned.poll_id and shown.last_poll.dry_run
    assert (shown.last_poll.companies_fetched, shown.last_poll.companies_failed) == (1, 1)
    assert (shown.last_poll.changes, shown.last_poll.soap_calls, shown.last_poll.full) == ({"employee:u": 3}, 12, False)
    assert shown.last_poll_age_s is not None and shown.last_poll_age_s >= 0

    await finished_poll(store, "published", 0)
    assert (await overview(dsn)).held is None


async def test_the_overview_counts_what_waits_with_the_red_steps_first(store: asyncpg.Pool, dsn: str) -> None:
    polls = PollStore(store)
    async with store.acquire() as connection:
        for minute in range(3):
            request = SyncRequested(
                event_id=uuid.uuid4(), requested_by="hr", requested_at=NOW + timedelta(minutes=minute)
            )
            await insert_sync_request(connection, request)
    claimed = await polls.claim_request()  # running
    assert claimed is not None
    done = await polls.claim_request()
    assert done is not None
    await polls.close_request(done.request_id, ok=True)
    await decide(store, decision("overslaan", 106, 1))
    await decide(store, decision("koppelen", 101, 2, target_id=await person(store, "anna")))

    shown = await overview(dsn)
    assert shown.sync_requests_waiting == 2  # one pending, one running; the done one not
    assert (shown.open_questions, shown.skipped_questions) == (7, 1)
    assert shown.employees_with_open_tasks == 1  # Anna, just linked
    assert shown.status == "red" and shown.last_poll is None and shown.held is None
    colours = [step.status for step in shown.steps]
    assert colours == sorted(colours, key=lambda colour: colour != "red") and "green" in colours
    steps = {step.step: step for step in shown.steps}
    assert steps["employees"].status == "red" and steps["employees"].counts["pending"] == 5
    assert steps["companies"].counts["pending"] == 2


# --- decisions and blocks ---------------------------------------------------------------------------------------


async def test_the_decisions_page_newest_first_with_names_and_whether_an_undo_takes_anything_back(
    store: asyncpg.Pool, dsn: str
) -> None:
    linked = await decide(store, decision("koppelen", 101, 1, target_id=await person(store, "anna")))
    skipped = await decide(store, decision("overslaan", 150, 2))
    blocked = await decide(store, decision("blokkeren", 102, 3))
    rejected = await decide(store, decision("koppelen", 104, 4, target_id=99_999))  # no such person
    undo = await decide(store, decision("ongedaan_maken", 150, 5, undo_decision_id=skipped.decision_id))
    bulk = await decide(
        store,
        decision("overslaan", None, 6, filter=DecisionFilter(company_id=1, situation="unmatched")),  # 105 and 106
    )
    partly = await decide(store, decision("ongedaan_maken", 105, 7, undo_decision_id=bulk.decision_id))

    async def shown(offset: int = 0, limit: int = 50) -> web_queries.Page[web_queries.DecisionRow]:
        async with read_only_connection(dsn) as connection:
            return await web_queries.decisions_page(connection, offset, limit)

    found = await shown()
    assert found.total == 7
    rows = [(r.decision_id, r.record, r.name, r.action, r.result, r.undoable) for r in found.rows]
    assert rows == [
        (str(partly.decision_id), "employee:105", "Sanne de Jong", "ongedaan_maken", "applied", False),
        (str(bulk.decision_id), "bulk", None, "overslaan", "applied", True),  # 106 is still skipped by it
        (str(undo.decision_id), "employee:150", "Piet Smit", "ongedaan_maken", "applied", False),
        (str(rejected.decision_id), "employee:104", "Pieter de Jong", "koppelen", "rejected", False),
        (str(blocked.decision_id), "employee:102", "Zeger Quist", "blokkeren", "applied", True),
        (str(skipped.decision_id), "employee:150", "Piet Smit", "overslaan", "applied", False),  # undone
        (str(linked.decision_id), "employee:101", "Anna van der Berg", "koppelen", "applied", True),
    ]
    assert found.rows[5].undone_by == str(undo.decision_id) and found.rows[0].decided_by == "hr.anja"
    assert found.rows[0].decided_at == NOW + timedelta(minutes=7)
    second = await shown(2, 3)
    assert [r.decision_id for r in second.rows] == [row[0] for row in rows[2:5]] and second.total == 7

    await decide(store, decision("ongedaan_maken", 106, 8, undo_decision_id=bulk.decision_id))
    assert not next(r for r in (await shown()).rows if r.decision_id == str(bulk.decision_id)).undoable


async def test_the_blocked_page_newest_first_with_the_records_names(store: asyncpg.Pool, dsn: str) -> None:
    zeger = await decide(store, decision("blokkeren", 102, 1))
    await decide(store, decision("blokkeren", 2, 2, entity="company"))
    async with read_only_connection(dsn) as connection:
        found = await web_queries.blocked_page(connection, 0, 50)
        older = await web_queries.blocked_page(connection, 1, 1)
    assert found.total == 2 and [(b.record, b.name) for b in found.rows] == [
        ("company:2", "Onbekend Uitzendbureau B.V."),
        ("employee:102", "Zeger Quist"),
    ]
    assert [b.decision_id for b in older.rows] == [str(zeger.decision_id)] and older.total == 2
    assert found.rows[1].blocked_by == "hr.anja"


# --- leave ------------------------------------------------------------------------------------------------------


async def test_the_leave_after_koppelen_is_the_stored_calculation(store: asyncpg.Pool, dsn: str) -> None:
    await decide(store, decision("koppelen", 101, 1, target_id=await person(store, "anna")))
    stored = LeaveResult.model_validate_json(
        await store.fetchval(
            """SELECT b.result FROM rt_leave_balances b JOIN rt_employees e USING (employee_id)
               WHERE e.nmbrs_employee_id = 101"""
        )
    )
    async with read_only_connection(dsn) as connection:
        leave = await web_queries.employee_leave(connection, 101, 2026)
        before_employment = await web_queries.employee_leave(connection, 101, 2019)
        not_linked = await web_queries.employee_leave(connection, 102, 2026)
    assert leave is not None and leave.name == "Anna van der Berg" and leave.as_of == stored.as_of
    assert leave.balance == stored.balance and leave.overtime == stored.overtime
    assert leave.year is not None and leave.year.year == 2026
    # 40 hours a week the whole year: four weeks of statutory leave; no CAO, so no extra leave.
    assert (leave.year.entitlement.statutory, leave.year.entitlement.extra) == (Decimal("160.00"), Decimal("0.00"))
    assert leave.balance.total == leave.balance.statutory + leave.balance.extra + leave.balance.adjustments
    assert before_employment is not None and before_employment.year is None
    assert not_linked is None
