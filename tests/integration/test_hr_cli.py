"""The HR CLI against the real PostgreSQL and Kafka: what HR sees (status, pending, search, tasks) after real
reconciliations, and `decide` posting a Decision and waiting for the worker's outcome."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from tests.support import TARGET_TABLES, TopicReader, worker_env
from worker.adapters.command_requests import OutcomeWatcher
from worker.adapters.kafka import KafkaPublisher, client_kwargs
from worker.adapters.target_store_load import load_target_state
from worker.config import Settings
from worker.domain.changes import ChangeSource, CompanyChanged, EmployeeChanged, Entity, Op
from worker.domain.decisions import Decision
from worker.domain.events import OutcomeKind, outcome_for
from worker.domain.follow_ups import FollowUpCommand
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import ContractPeriod, EmploymentPeriod, NmbrsCompany, NmbrsEmployee
from worker.domain.target_state import parse_target_file
from worker.entrypoints import hr_cli
from worker.service.decisions import handle_decision, handle_follow_up
from worker.service.reconciler import handle_change

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)
STATE = """
organisations:
  - {ref: org-zon, name: "Bakkerij De Zon B.V.", kvk_number: "88721495", email: info@zon.nl}
persons:
  - {ref: anna, first_name: Anna, prefix: van der, last_name: Berg, birthday: 1980-04-02, email_work: anna@zon.nl,
     organisation: org-zon, account: {username: anna, roles: [medewerker]}}
  - {ref: anna-duplicate, first_name: Anna, last_name: van der Berg, birthday: 1980-04-02, organisation: org-zon}
  - {ref: piet, first_name: Piet, last_name: Smit, birthday: 1975-01-01, organisation: org-zon}
  - {ref: ayse, first_name: Ayşe, last_name: Çelik, birthday: 1992-07-14, phone_mobile: "+31 6 1234 5678"}
  - {ref: kees, first_name: Kees, last_name: Jansen, birthday: 1985-05-05, email_work: kees@zon.nl,
     account: {username: kees}}
  - {ref: lotte, first_name: Lotte, last_name: Visser, birthday: 1990-03-03, email_work: lotte@zon.nl,
     characteristics: ["RegiPersoneel: Personeelslid"]}
blue_employees:
  - {ref: piet-blue, person: piet, organisation: org-zon, number: "900", employment_start: 2019-01-01}
time_categories:
  - {code: ALG, name: Algemeen}
"""
AUTO = MatchPolicy(auto_link_min_score=0.9)
_versions: dict[str, int] = {}


def employee(
    employee_id: int, first: str, last: str, born: date, email: str | None = None, **more: Any
) -> NmbrsEmployee:
    return NmbrsEmployee.model_validate(
        {
            "employee_id": employee_id,
            "company_id": 1,
            "number": str(employee_id),
            "first_name": first,
            "last_name": last,
            "birthday": born,
            "email_work": email,
            "employments": (EmploymentPeriod(employment_id=1, start=date(2026, 1, 1)),),
            "contracts": (ContractPeriod(contract_id=1, start=date(2026, 1, 1), hours_per_week=Decimal("40")),),
            **more,
        }
    )


def created(record: NmbrsEmployee | NmbrsCompany) -> EmployeeChanged | CompanyChanged:
    source = ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW)
    if isinstance(record, NmbrsCompany):
        key = f"company:{record.company_id}"
        _versions[key] = _versions.get(key, 0) + 1
        return CompanyChanged(
            event_id=uuid.uuid4(),
            entity=Entity.COMPANY,
            key=key,
            op=Op.CREATE,
            version=_versions[key],
            after=record,
            source=source,
            ts=NOW,
        )
    key = f"employee:{record.employee_id}"
    _versions[key] = _versions.get(key, 0) + 1
    return EmployeeChanged(
        event_id=uuid.uuid4(),
        entity=Entity.EMPLOYEE,
        key=key,
        op=Op.CREATE,
        version=_versions[key],
        after=record,
        source=source,
        ts=NOW,
    )


@pytest.fixture
async def store(pool: asyncpg.Pool) -> asyncpg.Pool:
    """The starting state above after real reconciliations: Anna disputed (two cards, one with the login
    account), Piet disputed (his card has a blue employee), Zeger unmatched, Nmbrs company 2 unmatched;
    Kees and Lotte linked automatically (Kees has an account without roles, Lotte no account)."""
    await pool.execute(f"TRUNCATE {TARGET_TABLES}, decisions, nmbrs_snapshots RESTART IDENTITY CASCADE")
    async with pool.acquire() as connection:
        await load_target_state(connection, parse_target_file(STATE, "state.yaml"))
    changes: list[tuple[NmbrsEmployee | NmbrsCompany, MatchPolicy]] = [
        (employee(101, "Anna", "van der Berg", date(1980, 4, 2), "anna@zon.nl"), MatchPolicy()),
        (employee(150, "Piet", "Smit", date(1975, 1, 1)), AUTO),
        (employee(102, "Zeger", "Quist", date(1990, 1, 1)), MatchPolicy()),
        (employee(120, "Kees", "Jansen", date(1985, 5, 5), "kees@zon.nl"), AUTO),
        (employee(130, "Lotte", "Visser", date(1990, 3, 3), "lotte@zon.nl"), AUTO),
        (NmbrsCompany(company_id=1, name="Bakkerij De Zon B.V.", kvk_number="88721495"), MatchPolicy()),
        (NmbrsCompany(company_id=2, name="Onbekend Uitzendbureau B.V."), MatchPolicy()),
    ]
    for record, policy in changes:
        await handle_change(created(record), pool, policy, lambda: NOW)
    return pool


@pytest.fixture
def settings(integration_settings: Settings) -> Settings:
    return integration_settings


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nmbrs-sync")
    hr_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


async def run(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parsed = args(*argv)
    runner = {
        "status": hr_cli.run_status,
        "pending": hr_cli.run_pending,
        "search": hr_cli.run_search,
        "tasks": hr_cli.run_tasks,
        "decide": hr_cli.run_decide,
        "followup": hr_cli.run_followup,
        "decisions": hr_cli.run_decisions,
        "blocked": hr_cli.run_blocked,
    }[parsed.command]
    code = await runner(parsed, settings)
    return code, capsys.readouterr().out


async def person_id(db: asyncpg.Pool, ref: str) -> int:
    return int(await db.fetchval("SELECT person_id FROM crm_persons WHERE external_ref = $1", ref))


async def employee_id(db: asyncpg.Pool, nmbrs_id: int) -> int:
    return int(await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = $1", nmbrs_id))


# --- status -----------------------------------------------------------------------------------------------


async def test_status_is_red_for_employees_and_companies_waiting_for_a_decision(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await run(settings, capsys, "status")
    assert code == 0
    rows = {
        line.split()[0]: line for line in out.splitlines() if line and line.split()[0] in ("employees", "companies")
    }
    assert rows["employees"].split()[1] == "red" and "pending=3" in rows["employees"]
    assert "waiting for a decision" in rows["employees"]
    assert rows["companies"].split()[1] == "red" and "pending=1" in rows["companies"]
    table = out.splitlines()
    assert table.index(rows["employees"]) < table.index(next(line for line in table if " green " in line))
    assert "2 employee(s) with open follow-up tasks" in out

    code, out = await run(settings, capsys, "status", "--json")
    status = json.loads(out)
    steps = {s["step"]: s for s in status["steps"]}
    assert status["status"] == "red" and steps["employees"]["status"] == "red"
    assert steps["employees"]["counts"]["pending"] == 3 and steps["employees"]["counts"]["linked"] == 2
    assert steps["departments"]["status"] == "green"

    code, out = await run(settings, capsys, "status", "--check")
    assert code == 1 and "waiting for a decision" in out  # red: the check fails, and says why


async def test_status_check_passes_when_every_step_is_green(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await store.execute("DELETE FROM pending_decisions")
    code, out = await run(settings, capsys, "status", "--check", "--json")
    assert [s["step"] for s in json.loads(out)["steps"] if s["status"] == "red"] == [] and code == 0, out


async def test_answered_questions_turn_the_employees_step_green(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await store.execute("DELETE FROM pending_decisions WHERE entity = 'employee'")
    steps = {s["step"]: s for s in json.loads((await run(settings, capsys, "status", "--json"))[1])["steps"]}
    assert steps["employees"]["status"] == "green" and steps["companies"]["status"] == "red"


async def test_status_of_a_held_poll_shows_the_holds_counts_in_the_counts_column(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "6 of 28 employees fewer fetched than last time (more than 10%)"
    summary = {
        "status": "red",
        "reasons": [reason],
        "soap_calls": 30,
        "breaker_counts": {"previous": 28, "fetched": 22, "removed": 0, "ended": 0, "moved": 0, "dropped": 6},
    }
    poll_id = uuid.uuid4()
    await store.execute(
        """INSERT INTO poll_runs (poll_id, full_sync, dry_run, started_at, finished_at, status, summary)
           VALUES ($1, false, false, now(), now(), 'held', $2::jsonb)""",
        poll_id,
        json.dumps(summary),
    )
    try:
        code, out = await run(settings, capsys, "status")
    finally:
        await store.execute("DELETE FROM poll_runs WHERE poll_id = $1", poll_id)
    (poll,) = [line for line in out.splitlines() if line.startswith("poll ")]
    counts, reasons = poll.split(None, 2)[2].split("  ", 1)
    # In the order the stored summary (jsonb) keeps them; only the non-zero ones of the hold.
    assert code == 0 and sorted(counts.split()) == [
        "dropped=6",
        "fetched=22",
        "polls=1",
        "previous=28",
        "soap_calls=30",
    ]
    assert reasons == reason


def test_pending_into_head_ends_quietly(store: asyncpg.Pool, settings: Settings) -> None:
    """`nmbrs-sync pending | head` as the demo runs it: a closed pipe costs no traceback and no failure."""
    asyncio.run(_many_questions(settings, 100))
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m worker.entrypoints.cli pending | head -3"],
        capture_output=True,
        env={k: v for k, v in worker_env(settings).items() if k != "PYTHONUNBUFFERED"},  # block-buffered, as in a shell
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr.decode()) == (0, ""), result.stderr.decode()
    assert len(result.stdout.splitlines()) == 3


async def _many_questions(settings: Settings, count: int) -> None:
    """`count` more unmatched employees, whom no card resembles: a pending list of many lines."""
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        for n in range(count):
            record = employee(1000 + n, "Zeger", f"Quist{n}", date(1990, 1, 1))
            await handle_change(created(record), pool, MatchPolicy(), lambda: NOW)
    finally:
        await pool.close()


def test_the_sync_command_wrapper_runs_outside_an_event_loop(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hr_cli.synchronous(hr_cli.run_status)(args("status"), settings) == 0
    assert "red: " in capsys.readouterr().out


# --- pending ----------------------------------------------------------------------------------------------


async def test_pending_lists_the_questions_with_scored_and_flagged_candidates(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, duplicate, piet = [await person_id(store, ref) for ref in ("anna", "anna-duplicate", "piet")]
    code, out = await run(settings, capsys, "pending", "--json")
    questions = {q["key"]: q for q in json.loads(out)}
    assert code == 0 and set(questions) == {"employee:101", "employee:150", "employee:102", "company:2"}

    question = questions["employee:101"]
    assert question["situation"] == "disputed" and question["version"] == _versions["employee:101"]
    assert "automatic linking on score is off" in question["reason"]  # why it was asked, as the matcher said
    assert question["name"] == "Anna van der Berg" and question["company_name"] == "Bakkerij De Zon B.V."
    best, second = question["candidates"]
    assert best["crm_id"] == anna and "has_login_account" in best["flags"] and best["score"] == 1.0
    assert best["levels"]["birthday"] == "exact" and best["levels"]["email"] == "exact"
    assert second["crm_id"] == duplicate and second["score"] < best["score"] and second["levels"]["email"] == "missing"
    assert "has_login_account" not in second["flags"]

    blue = questions["employee:150"]["candidates"][0]
    assert blue["crm_id"] == piet and "blue_employee" in blue["flags"] and blue["name"] == "Piet Smit"
    assert questions["employee:102"]["situation"] == "unmatched" and questions["employee:102"]["candidates"] == []
    assert questions["company:2"]["name"] == "Onbekend Uitzendbureau B.V."

    code, text = await run(settings, capsys, "pending")
    lines = text.splitlines()
    anna_row = next(line for line in lines if line.startswith("red") and "employee:101" in line)
    assert "Anna van der Berg" in anna_row and "disputed" in anna_row
    assert lines[lines.index(anna_row) + 1].strip().startswith("why: ") and question["reason"] in text
    candidate_row = next(line for line in lines if line.strip().startswith(f"{anna} "))
    assert "1.00" in candidate_row and "has_login_account" in candidate_row and "birthday=exact" in candidate_row
    assert f"nmbrs-sync decide koppelen employee:101 --person {anna} --version {question['version']}" in text
    assert "nmbrs-sync decide aanmaken employee:102" in text


async def test_pending_groups_by_company_then_name_and_hides_skipped_questions(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    order = [q["key"] for q in json.loads((await run(settings, capsys, "pending", "--json"))[1])]
    # Company 1 ('Bakkerij ...') before company 2 ('Onbekend ...'); within a company by name.
    assert order == ["employee:101", "employee:150", "employee:102", "company:2"]

    await store.execute("UPDATE pending_decisions SET skipped = true WHERE nmbrs_id = 101")
    assert "employee:101" not in (await run(settings, capsys, "pending"))[1]
    _, text = await run(settings, capsys, "pending", "--all")
    skipped_row = next(line for line in text.splitlines() if "employee:101" in line and "Anna" in line)
    assert skipped_row.startswith("skipped")
    all_order = [q["key"] for q in json.loads((await run(settings, capsys, "pending", "--all", "--json"))[1])]
    assert all_order[-1] == "employee:101"


# --- search -------------------------------------------------------------------------------------------------


async def search(settings: Settings, capsys: pytest.CaptureFixture[str], text: str) -> dict[str, Any]:
    code, out = await run(settings, capsys, "search", text, "--json")
    assert code == 0
    return dict(json.loads(out))


@pytest.mark.parametrize("text", ["Berg", "berg", "BERG", "vanderberg", "van der berg", "Berg, van der", "anna berg"])
async def test_search_finds_both_van_der_berg_cards_with_the_login_account_first(
    text: str, store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, duplicate = await person_id(store, "anna"), await person_id(store, "anna-duplicate")
    persons = (await search(settings, capsys, text))["persons"]
    assert [p["person_id"] for p in persons] == [anna, duplicate]
    assert persons[0]["has_login_account"] and persons[0]["username"] == "anna"
    assert "has_login_account" in persons[0]["flags"] and not persons[1]["has_login_account"]


async def test_search_by_email_birthday_phone_and_accent_free_name(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, duplicate, ayse = [await person_id(store, ref) for ref in ("anna", "anna-duplicate", "ayse")]
    assert [p["person_id"] for p in (await search(settings, capsys, "Anna@Zon.nl"))["persons"]] == [anna]
    assert {p["person_id"] for p in (await search(settings, capsys, "02-04-1980"))["persons"]} == {anna, duplicate}
    assert [p["person_id"] for p in (await search(settings, capsys, "ayse celik"))["persons"]] == [ayse]
    assert [p["person_id"] for p in (await search(settings, capsys, "Çelik"))["persons"]] == [ayse]
    assert [p["person_id"] for p in (await search(settings, capsys, "06-12345678"))["persons"]] == [ayse]
    assert (await search(settings, capsys, "nobody-by-that-name"))["persons"] == []
    # Every Latin diacritic folds (Vietnamese too), and a name stored with combining marks as the precomposed one.
    for stored, typed in (("Nguyễn", "nguyen"), ("Mu\u0308ller", "Müller"), ("Yılmaz", "yilmaz")):
        found = await store.fetchval("INSERT INTO crm_persons (last_name) VALUES ($1) RETURNING person_id", stored)
        assert [p["person_id"] for p in (await search(settings, capsys, typed))["persons"]] == [found], stored


async def test_search_shows_blue_employees_links_and_organisations(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    (piet,) = (await search(settings, capsys, "smit"))["persons"]
    assert piet["is_blue_employee"] and "blue_employee" in piet["flags"] and piet["regitijd_employee_ids"]
    (kees,) = (await search(settings, capsys, "jansen"))["persons"]
    assert kees["linked_nmbrs_employee_ids"] == [120]
    by_name = (await search(settings, capsys, "de zon"))["organisations"]
    by_kvk = (await search(settings, capsys, "88721495"))["organisations"]
    assert [o["name"] for o in by_name] == [o["name"] for o in by_kvk] == ["Bakkerij De Zon B.V."]
    assert by_kvk[0]["linked_nmbrs_company_ids"] == [1]

    _, text = await run(settings, capsys, "search", "berg")
    anna_row = next(line for line in text.splitlines() if "anna@zon.nl" in line)
    assert "has_login_account" in anna_row and " anna " in anna_row
    assert "decide koppelen employee:NMBRS_ID --person" in text


# --- tasks --------------------------------------------------------------------------------------------------


async def test_tasks_lists_what_each_linked_employee_still_misses(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    kees, lotte = await employee_id(store, 120), await employee_id(store, 130)
    tasks = {t["employee_id"]: t for t in json.loads((await run(settings, capsys, "tasks", "--json"))[1])}
    assert set(tasks) == {kees, lotte}  # never the blue employee: HR enters those by hand
    assert tasks[kees]["tasks"] == ["manager", "roles", "time_category", "personeelslid", "characteristics"]
    assert tasks[lotte]["tasks"] == ["manager", "account", "time_category", "characteristics"]  # has Personeelslid
    assert tasks[kees]["name"] == "Kees Jansen" and tasks[kees]["company_name"] == "Bakkerij De Zon B.V."

    _, text = await run(settings, capsys, "tasks")
    kees_row = next(line for line in text.splitlines() if "Kees Jansen" in line)
    assert kees_row.endswith("manager, roles, time_category, personeelslid, characteristics")
    assert "manager: no manager set" in text


async def test_a_task_disappears_once_done_and_inactive_employees_are_not_listed(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    kees, lotte = await employee_id(store, 120), await employee_id(store, 130)
    await store.execute("UPDATE rt_employees SET manager_employee_id = $2 WHERE employee_id = $1", kees, lotte)
    await store.execute("UPDATE crm_accounts SET roles = '{medewerker}' WHERE username = 'kees'")
    await store.execute("INSERT INTO rt_employee_time_categories SELECT $1, category_id FROM rt_time_categories", kees)
    await store.execute(
        "INSERT INTO crm_characteristics SELECT person_id, unnest(ARRAY['RegiAct: Uitvoerder', "
        "'RegiPersoneel: Personeelslid']) FROM rt_employees WHERE employee_id = $1",
        kees,
    )
    # Lotte by her Nmbrs id (as 'pending' shows it) or her RegiTijd id (as this list shows it); Kees has none left.
    for which in ("employee:130", str(lotte)):
        (found,) = json.loads((await run(settings, capsys, "tasks", "--employee", which, "--json"))[1])
        assert found["employee_id"] == lotte
    assert json.loads((await run(settings, capsys, "tasks", "--employee", str(kees), "--json"))[1]) == []
    assert (
        "no open follow-up tasks for RegiTijd employee"
        in (await run(settings, capsys, "tasks", "--employee", str(kees)))[1]
    )
    await store.execute("UPDATE rt_employees SET active = false WHERE employee_id = $1", lotte)
    assert json.loads((await run(settings, capsys, "tasks", "--json"))[1]) == []


async def test_a_database_that_cannot_be_reached_is_exit_4(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = settings.model_copy(update={"database_url": SecretStr("postgresql://x:y@127.0.0.1:1/none")})
    code = await hr_cli.run_pending(args("pending"), unreachable)
    assert code == 4 and "cannot connect to the database" in capsys.readouterr().err


# --- decide -------------------------------------------------------------------------------------------------


@pytest.fixture
async def topics(kafka_topics: Settings) -> Settings:
    """Topics of this test's own (unique names), created."""
    return kafka_topics


async def test_decide_posts_the_decision_keyed_by_record_with_the_pending_version(
    store: asyncpg.Pool, topics: Settings, read_topic: TopicReader, capsys: pytest.CaptureFixture[str]
) -> None:
    anna = await person_id(store, "anna")
    code, out = await run(
        topics, capsys, "decide", "link", "employee:101", "--person", str(anna), "--by", "hr-test", "--wait", "0"
    )
    assert code == 0
    (message,) = await read_topic(topics.topics.decisions, 1)
    assert message["key"] == "employee:101"
    decision = Decision.model_validate(message)
    assert decision.action.value == "koppelen" and decision.target_id == anna and decision.decided_by == "hr-test"
    assert decision.version == _versions["employee:101"]  # read from pending_decisions: staleness protection
    assert f"decision {decision.decision_id} posted: Koppelen: employee:101 -> person {anna}" in out


async def fake_worker(settings: Settings, kind: OutcomeKind, reason: str) -> None:
    """Answers the first decision on the topic the way the decision consumer does, after publishing an
    outcome of some other event (which `decide` must ignore)."""
    consumer = AIOKafkaConsumer(
        settings.topics.decisions, **client_kwargs(settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    decision = Decision.model_validate_json(record.value)
    async with KafkaPublisher(settings) as publisher:
        other = outcome_for(uuid.uuid4(), OutcomeKind.APPLIED, decision.key, NOW, "someone else's decision")
        await publisher.publish(settings.topics.outcomes, decision.key, other)
        await publisher.publish(
            settings.topics.outcomes, decision.key, outcome_for(decision.decision_id, kind, decision.key, NOW, reason)
        )
        if kind is OutcomeKind.APPLIED:
            await publisher.publish(
                settings.topics.outcomes,
                decision.key,
                outcome_for(decision.decision_id, OutcomeKind.LEAVE_RECALCULATED, decision.key, NOW, "leave done"),
            )


@pytest.fixture
async def worker_answers(topics: Settings) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_decide_waits_for_the_applied_outcome_of_its_own_decision(
    store: asyncpg.Pool,
    topics: Settings,
    worker_answers: list[asyncio.Task[None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker_answers.append(asyncio.create_task(fake_worker(topics, OutcomeKind.APPLIED, "created person 9")))
    code, out = await run(topics, capsys, "decide", "aanmaken", "employee:102", "--by", "hr", "--wait", "30")
    assert code == 0
    assert "applied: created person 9" in out and "leave_recalculated: leave done" in out
    assert "someone else's decision" not in out


async def test_decide_exits_1_with_the_reason_when_the_worker_rejects(
    store: asyncpg.Pool,
    topics: Settings,
    worker_answers: list[asyncio.Task[None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker_answers.append(asyncio.create_task(fake_worker(topics, OutcomeKind.REJECTED, "stale: version 2")))
    code, out = await run(
        topics, capsys, "decide", "skip", "employee:101", "--version", "1", "--by", "hr", "--wait", "30", "--json"
    )
    result = json.loads(out)
    assert code == 1 and result["result"] == "rejected"
    assert [o["reason"] for o in result["outcomes"]] == ["stale: version 2"]
    assert result["decision"]["version"] == 1


async def test_decide_without_a_worker_times_out_with_exit_3(
    store: asyncpg.Pool, topics: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await hr_cli.run_decide(args("decide", "skip", "employee:101", "--by", "hr", "--wait", "1"), topics)
    captured = capsys.readouterr()
    assert code == 3 and "may not be running" in captured.err and "posted" in captured.out


async def test_decide_with_kafka_unreachable_is_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = Settings(kafka_bootstrap_servers="127.0.0.1:1", _env_file=None)
    parsed = args("decide", "skip", "employee:101", "--version", "1", "--by", "hr", "--wait", "5")
    assert await hr_cli.run_decide(parsed, nowhere) == 4
    assert "cannot post to Kafka at 127.0.0.1:1" in capsys.readouterr().err


async def test_the_outcome_watcher_reads_from_the_end_offsets_taken_at_start(topics: Settings) -> None:
    """What precedes start() is history; what follows it, even before the first read, is seen."""
    cause = uuid.uuid4()
    watcher = OutcomeWatcher(topics)
    async with KafkaPublisher(topics) as publisher:
        await publisher.publish(
            topics.topics.outcomes, "employee:1", outcome_for(cause, OutcomeKind.REJECTED, "employee:1", NOW, "old")
        )
        try:
            await watcher.start()
            await publisher.publish(
                topics.topics.outcomes, "employee:1", outcome_for(cause, OutcomeKind.APPLIED, "employee:1", NOW, "new")
            )
            found = await watcher.outcomes_of(cause, 20)
        finally:
            await watcher.stop()
    assert [(o.kind, o.reason) for o in found] == [(OutcomeKind.APPLIED, "new")]


# --- followup -------------------------------------------------------------------------------------------------


async def decision_consumer_once(settings: Settings, store: asyncpg.Pool) -> None:
    """Handles the first follow-up command on the topic with the decision consumer's own handler."""
    consumer = AIOKafkaConsumer(
        settings.topics.followup_commands, **client_kwargs(settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    command = FollowUpCommand.model_validate_json(record.value)
    outcomes = await handle_follow_up(command, store, lambda: NOW)
    async with KafkaPublisher(settings) as publisher:
        for outcome in outcomes:
            await publisher.publish(settings.topics.outcomes, outcome.subject, outcome)


async def test_followup_completes_a_task_by_the_nmbrs_id_pending_showed(
    store: asyncpg.Pool, topics: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    kees, lotte = await employee_id(store, 120), await employee_id(store, 130)
    worker = asyncio.create_task(decision_consumer_once(topics, store))
    code, out = await run(
        topics, capsys, "followup", "set_manager", "employee:120", "--manager", str(lotte), "--by", "hr-test"
    )
    await worker
    assert code == 0 and "applied" in out
    assert await store.fetchval("SELECT manager_employee_id FROM rt_employees WHERE employee_id = $1", kees) == lotte
    _, tasks = await run(topics, capsys, "tasks", "--employee", "employee:120", "--json")
    assert "manager" not in json.loads(tasks)[0]["tasks"]


async def test_followup_says_what_is_missing_and_posts_nothing(
    store: asyncpg.Pool, topics: Settings, capsys: pytest.CaptureFixture[str], read_topic: TopicReader
) -> None:
    assert await hr_cli.run_followup(args("followup", "leave_adjustment", "12", "--hours", "8"), topics) == 2
    assert "needs 'on'" in capsys.readouterr().err
    unknown = args("followup", "set_manager", "employee:999999", "--manager", "1")
    assert await hr_cli.run_followup(unknown, topics) == 2
    assert "has no RegiTijd employee" in capsys.readouterr().err
    assert await read_topic(topics.topics.followup_commands, None) == []


async def test_search_puts_the_exact_last_name_first_and_says_when_more_match(
    store: asyncpg.Pool, topics: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await store.executemany(
        "INSERT INTO crm_persons (first_name, last_name) VALUES ($1, 'Bos-Jansen')", [(f"A{i:02d}",) for i in range(25)]
    )
    jansen = await store.fetchval(
        "INSERT INTO crm_persons (first_name, last_name) VALUES ('Zoë', 'Jansen') RETURNING person_id"
    )
    found = await search(topics, capsys, "jansen")
    names = [p["name"].split()[-1] for p in found["persons"]]
    # Every Jansen (Zoë, and Kees of the starting state) before the 25 Bos-Jansens, which sort first by name.
    assert names[:2] == ["Jansen", "Jansen"] and jansen in [p["person_id"] for p in found["persons"][:2]]
    assert found["more_persons"] is True
    _, text = await run(topics, capsys, "search", "jansen")
    assert "more match" in text


# --- decisions, blocked -----------------------------------------------------------------------------------------


async def test_decisions_and_blocked_list_what_undo_and_ontblokkeren_need(
    store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    block = Decision(
        decision_id=uuid.uuid4(),
        nmbrs_id=102,
        action="blokkeren",
        decided_by="hr.anja",
        decided_at=NOW,
        note="not ours",
    )
    await handle_decision(block, store, MatchPolicy(), lambda: NOW)
    _, blocked = await run(settings, capsys, "blocked")
    row = next(line for line in blocked.splitlines() if line.startswith("employee:102"))
    assert "Zeger Quist" in row and "hr.anja" in row and "not ours" in row and "decide ontblokkeren" in blocked

    _, listed = await run(settings, capsys, "decisions", "--record", "employee:102", "--json")
    (made,) = json.loads(listed)
    assert (made["decision_id"], made["action"], made["result"]) == (str(block.decision_id), "blokkeren", "applied")
    _, other = await run(settings, capsys, "decisions", "--record", "employee:101", "--json")
    assert json.loads(other) == []
