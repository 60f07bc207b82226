"""The HR web app with 10,000 open questions: server time of the question list and of one question, and a
decision click -> its outcome shown, under the decisions benchmark's change load.

Run: `./dev bench web [--questions 10000] [--pages 300] [--decisions 200] [--profile]`.

Setup (not timed), on a database of its own (--database-url, else $BENCH_DATABASE_URL, else
`nmbrs_sync_bench` next to the configured one; its public schema is dropped and migrated) and topics of its own
(deleted at the end):
- RegiCRM: 10 organisations (one per Nmbrs company, same KvK number) and persons: for 85% of the employees a
  card of the same human (a third exact, a third with a private e-mail and a swapped birthday, a third with
  initials only and the postcode), for 10% of all a second card with a login account (a duplicate), plus
  2,000 namesakes that are not in Nmbrs. Names are Dutch (the sandbox's first and last names, with
  tussenvoegsels, plus composed surnames): the matcher scores a hundred persons for a common name, a few for a
  rare one, and stores those above its minimum score.
- Nmbrs: 10 companies and N employees (--questions) spread over them; the poller's diff makes their create
  events and its snapshot (stored through PollStore as a poll does). The companies go through the real
  reconciler with the definite rule on (linked by KvK); the employees go through the real reconciler
  (`handle_changes`, batches of 100, 4 at a time) with the default policy, so every one becomes an open
  question with the candidates the matcher stored (ScoredCandidate), as a first import does. The decisions
  benchmark's 200 linked employees (bench/decisions.py `employee`, linked by the definite rule) are added
  for the change load. Tables are analysed, as autovacuum does in a running system.
- A real `nmbrs-sync worker` process (the decision consumer) and the web app in this process
  (build_context/create_app, aiohttp AppRunner on a free port); a bench user of the role hr signs in.

Timed, one request at a time (as one HR user clicks):
- list: --pages requests of `GET /vragen`, a third plain on a random page, a third with a company filter
  (bedrijf) on a random page of it, a third with a text filter (zoek: a surname, a full name, an employee
  number or an e-mail part);
- question: --pages requests of `GET /vragen/employee/ID` of random open questions, half of them with
  `X-Partial: 1` (the pane only);
- decision: --decisions `POST /besluit` (X-Partial: 1) of blokkeren, overslaan and aanmaken in turn on distinct
  questions, started at --decision-rate per second (each in a task of its own, as several HR users click)
  while the decisions benchmark's change stream sends --change-rate changes of linked employees per second.
  The response must hold data-testid="result" with class applied.
Server time is taken by a middleware placed before the app's own (sign-in, CSRF, rendering included; sending
the response not); the round trip is measured by the client as well. Prints p50/p90/p99/max per kind with the
targets (p99 < 200 ms for list and question, p99 < 1 s for a decision) and, last, one JSON line.
Decisions also get the time from the click to the worker's outcome about the record on the outcomes topic (tailed
as bench/decisions.py does), which tells the worker's share from the web app's. `--profile` adds, per kind of
request, the SQL time of the web app's pool by statement (a query logger on its connections; the pages phase runs
one request at a time) and EXPLAIN ANALYZE of the question list's statement for each kind of filter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import statistics
import sys
import time
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from decisions import change as linked_change
from decisions import employee as linked_employee
from support import (
    add_database_url_argument,
    bench_database_url,
    bench_settings,
    bench_topics,
    prepare_database,
    start_worker,
    utc_now,
)

from worker.adapters.database import create_pool
from worker.adapters.kafka import client_kwargs
from worker.adapters.poll_store import PollStore
from worker.adapters.target_store_load import load_target_state
from worker.adapters.web_accounts import AccountStore
from worker.config import Settings
from worker.domain.changes import ChangeEvent, ChangeSource, Entity
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import (
    CodeRef,
    ContractPeriod,
    EmploymentPeriod,
    Gender,
    NmbrsCompany,
    NmbrsEmployee,
    SchedulePeriod,
)
from worker.domain.snapshot_diff import SnapshotEntry, diff
from worker.domain.target_state import OrganisationState, TargetState
from worker.domain.web_access import Role
from worker.entrypoints.web.app import build_context, create_app
from worker.entrypoints.web.pages import PAGE_SIZE
from worker.sandbox.sample_data import (
    COMPANY_NAMES,
    DEPARTMENTS,
    FIRST_NAMES_FEMALE,
    FIRST_NAMES_MALE,
    FUNCTIONS,
    LAST_NAMES,
)
from worker.service.reconciler import handle_changes

TARGET_PAGE_P99_MS = 200.0
TARGET_DECISION_P99_MS = 1000.0
QUESTION_ID_BASE = 100_000
NAMESAKES = 2_000
SETUP_BATCH = 100
SETUP_CONCURRENCY = 4
USER = "bench-hr"
WORKER_START_S = 120.0
ACTIONS = ("blokkeren", "overslaan", "aanmaken")
# Composed Dutch-looking surnames beside the sandbox's 45 common ones: rarer names with fewer candidates.
ROOTS = tuple(
    "Bak Ver Hoek Mol Smit Dek Kool Wes Brou Post Klaa Haan Rijk Zwa Boer Stee Vos Gro Lam Tim Wie Kor Hui Sche Bos "
    "Ter Val Meu Nij Oos".split()
)
ENDINGS = tuple("stra sma ker man huis ink ing er sen hof kamp veld berg dijk horst link inga ema".split())
POLICY_LINKED = MatchPolicy(auto_link_min_score=0.9)  # the definite rule, for companies and linked employees
POLICY_QUESTIONS = MatchPolicy()  # the default: nothing fuzzy is linked without a human


# --- the data ------------------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _domain(name: str) -> str:
    return re.sub(r"[^a-z]", "", _ascii(name).lower()) + ".nl"


COMPANIES = tuple(
    NmbrsCompany(
        company_id=index + 1,
        number=str(index + 1),
        name=name,
        kvk_number=f"{31_000_000 + 104_729 * (index + 1):08d}",
        email=f"info@{_domain(name)}",
        website=f"https://www.{_domain(name)}",
        period_type="Month",
    )
    for index, name in enumerate(COMPANY_NAMES)
)


@dataclass(frozen=True)
class Human:
    first_name: str
    gender: Gender
    prefix: str
    last_name: str
    birthday: date
    phone_mobile: str
    postcode: str


def human(rng: random.Random) -> Human:
    female = rng.random() < 0.5
    if rng.random() < 0.4:
        prefix, last = rng.choice(LAST_NAMES)
    else:
        prefix, last = "", rng.choice(ROOTS) + rng.choice(ENDINGS)
    return Human(
        first_name=rng.choice(FIRST_NAMES_FEMALE if female else FIRST_NAMES_MALE),
        gender=Gender.FEMALE if female else Gender.MALE,
        prefix=prefix,
        last_name=last,
        birthday=date(1958, 1, 1) + timedelta(days=rng.randrange(16_000)),
        phone_mobile=f"06{rng.randrange(10**8):08d}",
        postcode=f"{rng.randrange(1000, 10000)}{rng.choice('ABCDEGHJKLMNPRTVWXZ')}{rng.choice('ABCDEGHJKLMNPRTVWXZ')}",
    )


def email_local(person: Human) -> str:
    return re.sub(r"[^a-z.]", "", _ascii(f"{person.first_name}.{person.prefix}{person.last_name}").lower())


def question_employee(index: int, person: Human) -> NmbrsEmployee:
    company = COMPANIES[index % len(COMPANIES)]
    start = date(2015, 1, 1) + timedelta(days=(index * 53) % 4000)
    department = 1 + index % len(DEPARTMENTS)
    function = 1 + index % len(FUNCTIONS)
    hours = Decimal((40, 36, 32, 24)[index % 4])
    return NmbrsEmployee(
        employee_id=QUESTION_ID_BASE + index,
        company_id=company.company_id,
        number=str(1 + index // len(COMPANIES)),
        bsn_hash=hashlib.sha256(f"web-bench-bsn-{index}".encode()).hexdigest(),
        first_name=person.first_name,
        initials=person.first_name[0] + ".",
        prefix=person.prefix or None,
        last_name=person.last_name,
        gender=person.gender,
        birthday=person.birthday,
        email_work=f"{email_local(person)}@{_domain(company.name)}",
        phone_mobile=person.phone_mobile,
        postcode=person.postcode,
        function=CodeRef(id=function, code=str(function), description=FUNCTIONS[function - 1]),
        department=CodeRef(id=department, code=str(department), description=DEPARTMENTS[department - 1]),
        employments=(EmploymentPeriod(employment_id=index + 1, start=start),),
        contracts=(ContractPeriod(contract_id=index + 1, start=start, hours_per_week=hours, indefinite=True),),
        schedules=(SchedulePeriod(start=start, hours_per_week=hours, parttime_percentage=hours / 40 * 100),),
    )


def _swapped(day: date) -> date:
    """Day and month swapped (a typo the matcher calls close); the same day when that is no date."""
    try:
        return day.replace(month=day.day, day=day.month)
    except ValueError:
        return day


def cards(index: int, person: Human, record: NmbrsEmployee) -> list[dict[str, Any]]:
    """The RegiCRM cards of the human of employee `index` (none for 15%)."""
    kind = index % 20
    if kind >= 17:
        return []
    organisation = f"web-org-{record.company_id}"
    card: dict[str, Any] = {
        "external_ref": f"web-{index}",
        "first_name": person.first_name,
        "prefix": person.prefix or None,
        "last_name": person.last_name,
        "birthday": person.birthday,
        "gender": person.gender.value,
        "organisation": organisation,
    }
    match index % 3:
        case 0:
            card["email_work"] = record.email_work
        case 1:
            card |= {"email_private": f"{email_local(person)}@ziggo.example", "birthday": _swapped(person.birthday)}
        case _:
            card |= {"first_name": None, "initials": record.initials, "postcode": person.postcode}
    found = [card]
    if kind >= 15:  # the same human twice in RegiCRM; the second card has the login account
        found.append(card | {"external_ref": f"web-{index}-b", "phone_mobile": person.phone_mobile, "account": True})
    return found


@dataclass
class Dataset:
    humans: list[Human]
    employees: list[NmbrsEmployee]
    crm_cards: list[dict[str, Any]]


def dataset(questions: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    humans = [human(rng) for _ in range(questions)]
    employees = [question_employee(i, h) for i, h in enumerate(humans)]
    crm_cards = [card for i, (h, e) in enumerate(zip(humans, employees, strict=True)) for card in cards(i, h, e)]
    for n in range(NAMESAKES):  # persons who are not in Nmbrs (left, customers' contacts, ...)
        other = human(rng)
        crm_cards.append(
            {
                "external_ref": f"web-other-{n}",
                "first_name": other.first_name,
                "prefix": other.prefix or None,
                "last_name": other.last_name,
                "birthday": other.birthday,
                "gender": other.gender.value,
                "email_private": f"{email_local(other)}@kpn.example",
            }
        )
    return Dataset(humans, employees, crm_cards)


# --- setup ---------------------------------------------------------------------------------------------


def _never_removed(_entry: SnapshotEntry) -> bool:
    return False


async def _reconcile(
    pool: asyncpg.Pool, events: Sequence[ChangeEvent[Any]], policy: MatchPolicy, outcomes: Counter[str]
) -> None:
    """The events through the real reconciler, in batches, a few batches at a time."""
    batches = [events[i : i + SETUP_BATCH] for i in range(0, len(events), SETUP_BATCH)]
    queue: asyncio.Queue[Sequence[ChangeEvent[Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def work() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            outcomes.update(o.kind.value for o in await handle_changes(batch, pool, policy, utc_now))

    await asyncio.gather(*(work() for _ in range(SETUP_CONCURRENCY)))


async def set_up(settings: Settings, data: Dataset, linked: int) -> dict[str, Any]:
    """A fresh schema with RegiCRM, the companies linked, every employee an open question (through the
    reconciler), `linked` linked employees (for the change load) and the poller's snapshot."""
    started = time.perf_counter()
    url = settings.database_url.get_secret_value()
    await prepare_database(url)
    pool = await asyncpg.create_pool(url, min_size=SETUP_CONCURRENCY, max_size=SETUP_CONCURRENCY)
    state = TargetState(
        organisations=tuple(
            OrganisationState(ref=f"web-org-{c.company_id}", name=c.name, kvk_number=c.kvk_number, email=c.email)
            for c in COMPANIES
        )
    )
    connection = await asyncpg.connect(url)
    try:
        await load_target_state(connection, state)
        organisations = {
            r["external_ref"]: r["organisation_id"]
            for r in await connection.fetch("SELECT external_ref, organisation_id FROM crm_organisations")
        }
        columns = tuple(
            "external_ref first_name initials prefix last_name birthday gender email_work email_private phone_mobile "
            "postcode organisation_id".split()
        )
        people = [
            {**card, "organisation_id": organisations.get(card.get("organisation", ""))} for card in data.crm_cards
        ]
        # The decisions benchmark's linked employees: their exact cards (bench/decisions.py `prepare`).
        for n in range(1, linked + 1):
            record = linked_employee(n)
            people.append(
                {
                    "external_ref": f"web-linked-{n}",
                    "first_name": record.first_name,
                    "last_name": record.last_name,
                    "birthday": record.birthday,
                    "email_work": record.email_work,
                    "organisation_id": organisations["web-org-1"],
                }
            )
        await connection.copy_records_to_table(
            "crm_persons", records=[tuple(p.get(c) for c in columns) for p in people], columns=columns
        )
        with_account = [p["external_ref"] for p in people if p.get("account")]
        await connection.execute(
            """INSERT INTO crm_accounts (person_id, username)
               SELECT person_id, 'u' || person_id FROM crm_persons WHERE external_ref = ANY($1::text[])""",
            with_account,
        )
    finally:
        await connection.close()
    now = utc_now()
    source = ChangeSource(poll_id=uuid.uuid4(), fetched_at=now)
    companies = diff(
        Entity.COMPANY,
        {},
        {f"company:{c.company_id}": (c, c.company_id) for c in COMPANIES},
        source,
        _never_removed,
        now,
    )
    employees = diff(
        Entity.EMPLOYEE,
        {},
        {f"employee:{e.employee_id}": (e, e.company_id) for e in data.employees},
        source,
        _never_removed,
        now,
    )
    linked_records = [linked_employee(n) for n in range(1, linked + 1)]
    linked_creates = diff(
        Entity.EMPLOYEE,
        {},
        {f"employee:{e.employee_id}": (e, e.company_id) for e in linked_records},
        source,
        _never_removed,
        now,
    )
    outcomes: Counter[str] = Counter()
    await _reconcile(pool, [p.event for p in companies], POLICY_LINKED, outcomes)
    await _reconcile(pool, [p.event for p in linked_creates], POLICY_LINKED, outcomes)
    reconcile_started = time.perf_counter()
    await _reconcile(pool, [p.event for p in employees], POLICY_QUESTIONS, outcomes)
    reconcile_s = time.perf_counter() - reconcile_started
    # The snapshot a first poll stores once the broker acknowledged its events.
    polls = PollStore(pool)
    await polls.start_run(source.poll_id, None, True, False, now)
    await polls.stage(source.poll_id, [*companies, *linked_creates, *employees])
    await polls.advance(source.poll_id, {})
    figures = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM pending_decisions WHERE entity = 'employee') AS questions,
                  (SELECT count(*) FROM pending_decisions WHERE entity = 'employee' AND situation = 'disputed')
                      AS disputed,
                  (SELECT count(*) FROM pending_decisions WHERE entity = 'employee'
                          AND jsonb_array_length(candidates) = 0) AS without_candidates,
                  (SELECT avg(jsonb_array_length(candidates)) FROM pending_decisions) AS mean_candidates,
                  (SELECT count(*) FROM sync_links WHERE entity = 'company') AS linked_companies,
                  (SELECT count(*) FROM sync_links WHERE entity = 'employee') AS linked_employees,
                  (SELECT count(*) FROM crm_persons) AS persons"""
    )
    assert figures is not None
    if (figures["questions"], figures["linked_companies"], figures["linked_employees"]) != (
        len(data.employees),
        len(COMPANIES),
        linked,
    ):
        raise RuntimeError(f"setup gave {dict(figures)}; outcomes {dict(outcomes)}")
    # A running system's tables have statistics (autovacuum analyses a table within a minute of its first rows).
    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    await pool.execute("ANALYZE " + ", ".join(f'"{row["tablename"]}"' for row in tables))
    await pool.close()
    return {
        **{k: (round(float(v), 2) if k == "mean_candidates" else v) for k, v in figures.items()},
        "reconcile_s": round(reconcile_s, 1),
        "setup_s": round(time.perf_counter() - started, 1),
    }


# --- measuring -----------------------------------------------------------------------------------------


@web.middleware
async def server_timing(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Placed before the app's own middlewares: the server's time for a request (sign-in check, CSRF, queries,
    rendering; waiting for an outcome), sent back in a header."""
    started = time.perf_counter()
    response = await handler(request)
    if not response.prepared:
        response.headers["X-Bench-Server-Ms"] = f"{(time.perf_counter() - started) * 1000:.3f}"
    return response


@dataclass
class Samples:
    server_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    client_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: Counter[str] = field(default_factory=Counter)
    # Decision posted -> the worker's outcome about its record on the topic (the click's time without the web app's
    # share: the live feed's wait for stragglers and the rendering).
    outcome_ms: list[float] = field(default_factory=list)

    def add(self, kind: str, server_ms: float, client_ms: float) -> None:
        self.server_ms[kind].append(server_ms)
        self.client_ms[kind].append(client_ms)


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
) -> tuple[int, str, float, float]:
    """(status, body, server ms, round trip ms)."""
    started = time.perf_counter()
    async with session.request(method, url, headers=headers, data=data, allow_redirects=False) as response:
        body = await response.text()
    client_ms = (time.perf_counter() - started) * 1000
    return response.status, body, float(response.headers.get("X-Bench-Server-Ms", "nan")), client_ms


async def sign_in(session: aiohttp.ClientSession, base: str, password: str) -> str:
    """Sign in as the bench user; returns the session's CSRF token."""
    async with session.post(
        f"{base}/aanmelden", data={"gebruiker": USER, "wachtwoord": password, "next": "/vragen"}, allow_redirects=False
    ) as response:
        if response.status != 303:
            raise RuntimeError(f"sign-in answered {response.status}: {(await response.text())[:300]}")
    async with session.get(f"{base}/vragen") as response:
        body = await response.text()
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', body)
    if found is None:
        raise RuntimeError("no CSRF token on /vragen after signing in")
    return found.group(1)


def list_requests(
    rng: random.Random, count: int, data: Dataset, per_company: dict[int, int]
) -> list[tuple[str, dict[str, str]]]:
    """(kind, query) of the list requests: plain, company filter and text filter in turn."""
    total = len(data.employees)
    made: list[tuple[str, dict[str, str]]] = []
    for n in range(count):
        match n % 3:
            case 0:
                made.append(("list_plain", {"pagina": str(rng.randrange(1, -(-total // PAGE_SIZE) + 1))}))
            case 1:
                company = rng.choice(COMPANIES).company_id
                pages = -(-per_company[company] // PAGE_SIZE)
                made.append(("list_company", {"bedrijf": str(company), "pagina": str(rng.randrange(1, pages + 1))}))
            case _:
                index = rng.randrange(total)
                person, record = data.humans[index], data.employees[index]
                text = rng.choice(
                    (
                        f"{person.prefix} {person.last_name}".strip(),
                        f"{person.first_name} {person.prefix} {person.last_name}".replace("  ", " "),
                        f"{person.last_name}, {person.prefix}".strip(", "),
                        str(record.number),
                        f"{email_local(person)}@",
                    )
                )
                made.append(("list_text", {"zoek": text}))
    return made


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

    return {
        "n": len(ordered),
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(statistics.mean(ordered), 1),
    }


async def stream_changes(producer: AIOKafkaProducer, settings: Settings, linked: int, rate: float) -> None:
    """bench/decisions.py's change load: each linked employee's department changes in turn, `rate` per second,
    until cancelled."""
    version = 1
    while True:
        version += 1
        for employee_id in range(1, linked + 1):
            before, after = linked_employee(employee_id, version - 1 + 6), linked_employee(employee_id, version + 6)
            event = linked_change(after, version, before)
            await producer.send(
                settings.topics.employee_changes, event.model_dump_json().encode(), key=event.key.encode()
            )
            await asyncio.sleep(1 / rate)


async def measure(
    settings: Settings,
    data: Dataset,
    password: str,
    args: argparse.Namespace,
    samples: Samples,
    sql_log: SqlLog | None = None,
) -> dict[str, Any]:
    rng = random.Random(args.seed + 1)
    async with asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2) as pool:
        open_questions = [
            (r["nmbrs_id"], r["version"])
            for r in await pool.fetch("SELECT nmbrs_id, version FROM pending_decisions WHERE entity = 'employee'")
        ]
        per_company = {
            r["company_id"]: r["count"]
            for r in await pool.fetch("SELECT company_id, count(*) FROM pending_decisions GROUP BY company_id")
        }
    rng.shuffle(open_questions)
    to_decide, to_show = open_questions[: args.decisions], open_questions[args.decisions :]
    extra: dict[str, Any] = {}
    async for ctx in build_context(settings):
        app = create_app(ctx)
        app.middlewares.insert(0, server_timing)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                csrf = await sign_in(session, base, password)
                # Warm-up (templates compiled, statements prepared, the worker's consumers assigned), not measured.
                for query in ({"pagina": "2"}, {"bedrijf": "3"}, {"zoek": "de Jong"}):
                    async with session.get(f"{base}/vragen", params=query) as response:
                        await response.read()
                for nmbrs_id, _ in to_show[:5]:
                    async with session.get(f"{base}/vragen/employee/{nmbrs_id}") as response:
                        await response.read()
                await _warm_worker(session, base, csrf, to_show)

                await _pages(session, base, rng, data, per_company, to_show, args.pages, samples, sql_log)
                if sql_log is not None:
                    sql_log.phase = "decision"
                extra = await _decisions(session, base, csrf, settings, to_decide, args, samples)
        finally:
            await runner.cleanup()
    return extra


async def _warm_worker(session: aiohttp.ClientSession, base: str, csrf: str, to_show: list[tuple[int, int]]) -> None:
    """Overslaan on questions not measured until one is answered in time: the worker has joined its groups."""
    deadline = time.perf_counter() + WORKER_START_S
    while time.perf_counter() < deadline:
        nmbrs_id, version = to_show.pop()
        _, body, *_ = await _decide(session, base, csrf, nmbrs_id, version, "overslaan")
        if 'class="result applied"' in body:
            return
    raise RuntimeError(f"the worker answered no decision within {WORKER_START_S} s")


async def _pages(
    session: aiohttp.ClientSession,
    base: str,
    rng: random.Random,
    data: Dataset,
    per_company: dict[int, int],
    to_show: list[tuple[int, int]],
    count: int,
    samples: Samples,
    sql_log: SqlLog | None,
) -> None:
    for kind, query in list_requests(rng, count, data, per_company):
        if sql_log is not None:
            sql_log.phase = kind
        url = f"{base}/vragen?{urlencode(query)}"
        status, body, server_ms, client_ms = await request(session, "GET", url)
        if status != 200 or 'data-testid="questions"' not in body:
            samples.failures[kind] += 1
            continue
        samples.add(kind, server_ms, client_ms)
    for n in range(count):
        nmbrs_id, _ = rng.choice(to_show)
        partial = n % 2 == 1
        kind = "question_partial" if partial else "question_full"
        if sql_log is not None:
            sql_log.phase = kind
        status, body, server_ms, client_ms = await request(
            session, "GET", f"{base}/vragen/employee/{nmbrs_id}", headers={"X-Partial": "1"} if partial else None
        )
        if status != 200 or 'data-testid="question"' not in body:
            samples.failures[kind] += 1
            continue
        samples.add(kind, server_ms, client_ms)


async def _decide(
    session: aiohttp.ClientSession, base: str, csrf: str, nmbrs_id: int, version: int, action: str
) -> tuple[int, str, float, float]:
    form = {"csrf": csrf, "entity": "employee", "nmbrs_id": str(nmbrs_id), "version": str(version), "action": action}
    return await request(session, "POST", f"{base}/besluit", headers={"X-Partial": "1"}, data=form)


async def _decisions(
    session: aiohttp.ClientSession,
    base: str,
    csrf: str,
    settings: Settings,
    to_decide: list[tuple[int, int]],
    args: argparse.Namespace,
    samples: Samples,
) -> dict[str, Any]:
    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", linger_ms=0)
    await producer.start()
    # The outcomes topic tailed as bench/decisions.py does: when the worker's answer about each record arrives,
    # to tell the worker's part from the web app's.
    outcomes = AIOKafkaConsumer(
        settings.topics.outcomes, **client_kwargs(settings), group_id=None, auto_offset_reset="latest"
    )
    await outcomes.start()
    posted: dict[str, float] = {}
    results: Counter[str] = Counter()

    async def tail() -> None:
        async for record in outcomes:
            outcome = json.loads(record.value)
            started = posted.pop(outcome["subject"], None) if outcome["kind"] in ("applied", "rejected") else None
            if started is not None:
                samples.outcome_ms.append((time.perf_counter() - started) * 1000)

    async def one(n: int, nmbrs_id: int, version: int) -> None:
        action = ACTIONS[n % len(ACTIONS)]
        posted[f"employee:{nmbrs_id}"] = time.perf_counter()
        status, body, server_ms, client_ms = await _decide(session, base, csrf, nmbrs_id, version, action)
        shown = re.search(r'<div class="result ([a-z]+)"[^>]*data-testid="result"', body)
        outcome = shown.group(1) if shown else f"http-{status}"
        results[f"{action}:{outcome}"] += 1
        if outcome != "applied":
            samples.failures["decision"] += 1
            return
        samples.add("decision", server_ms, client_ms)
        samples.add(f"decision_{action}", server_ms, client_ms)

    changes = asyncio.create_task(stream_changes(producer, settings, args.linked, args.change_rate))
    tailing = asyncio.create_task(tail())
    try:
        await asyncio.sleep(2)  # the change load running before the first decision
        started = time.perf_counter()
        tasks = []
        for n, (nmbrs_id, version) in enumerate(to_decide[: args.decisions]):
            tasks.append(asyncio.create_task(one(n, nmbrs_id, version)))
            # A steady rate: the n-th decision leaves at n / rate, however long the others take.
            await asyncio.sleep(max(0.0, started + (n + 1) / args.decision_rate - time.perf_counter()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    finally:
        changes.cancel()
        tailing.cancel()
        await asyncio.gather(changes, tailing, return_exceptions=True)
        await producer.stop()
        await outcomes.stop()
    return {"decision_results": dict(results), "decisions_wall_s": round(elapsed, 2)}


# --- profile -------------------------------------------------------------------------------------------


@dataclass
class SqlLog:
    """With --profile: every statement of the web app's pool, by the kind of request it served (the requests of
    the pages phase run one at a time, so each statement belongs to the request being measured)."""

    phase: str = "start"
    stats: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0.0]))

    def log(self, record: Any) -> None:
        figures = self.stats[(self.phase, " ".join(record.query.split())[:110])]
        figures[0] += 1
        figures[1] += record.elapsed * 1000

    async def init(self, connection: asyncpg.Connection) -> None:
        connection.add_query_logger(self.log)

    def install(self) -> None:
        """The web app's pool (opened by build_context) made with this log on each connection."""
        import worker.entrypoints.web.app as web_app

        original = web_app.create_pool  # type: ignore[attr-defined]

        async def create_pool_logged(settings: Settings, init: Any = None) -> Any:
            return await original(settings, self.init)

        web_app.create_pool = create_pool_logged  # type: ignore[attr-defined]

    def per_request(self, samples: Samples) -> dict[str, Any]:
        """Per kind: SQL ms per request in all and for its five costliest statements."""
        found: dict[str, Any] = {}
        for kind in sorted({phase for phase, _ in self.stats}):
            requests = len(samples.server_ms.get(kind, ())) + samples.failures.get(kind, 0)
            if not requests or kind.startswith("decision"):
                continue
            statements = sorted(
                ((sql, n, ms) for (phase, sql), (n, ms) in self.stats.items() if phase == kind), key=lambda x: -x[2]
            )
            found[kind] = {
                "sql_ms_per_request": round(sum(ms for _, _, ms in statements) / requests, 2),
                "server_ms_mean": round(statistics.mean(samples.server_ms[kind]), 2)
                if samples.server_ms[kind]
                else None,
                "top": [
                    {"sql": sql, "calls_per_request": round(n / requests, 2), "ms_per_request": round(ms / requests, 2)}
                    for sql, n, ms in statements[:5]
                ],
            }
        return found


async def explain_list(settings: Settings, data: Dataset) -> dict[str, str]:
    """EXPLAIN ANALYZE of the question list's statement (web_queries.question_page) for each kind of filter."""
    from worker.adapters import web_queries

    person = data.humans[0]
    filters = {
        "plain, page 100": (web_queries.QuestionFilter(), 99),
        "company, page 10": (web_queries.QuestionFilter(company_id=3), 9),
        "text, surname": (web_queries.QuestionFilter(text=f"{person.prefix} {person.last_name}".strip()), 0),
        "text, e-mail": (web_queries.QuestionFilter(text=f"{email_local(person)}@"), 0),
    }
    plans: dict[str, str] = {}
    connection = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        for name, (selection, page) in filters.items():
            catching = _Catching()
            with contextlib.suppress(_Caught):
                offset = page * PAGE_SIZE
                await web_queries.question_page(catching, selection, offset, PAGE_SIZE)  # type: ignore[arg-type]
            if catching.caught is None:
                continue
            sql, args = catching.caught
            rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
            plans[name] = "\n".join(row[0] for row in rows)
    finally:
        await connection.close()
    return plans


class _Catching:
    """A connection that takes the first statement sent (question_page's list itself) instead of running it."""

    caught: tuple[str, tuple[Any, ...]] | None = None

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.caught = (sql, args)
        raise _Caught


class _Caught(Exception):
    pass


# --- main ----------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    # Reads a .env file as the worker process does, so both talk to the same broker.
    settings = bench_settings(prefix, bench_database_url(args.database_url), env_file=True)
    data = dataset(args.questions, args.seed)
    setup = await set_up(settings, data, args.linked)
    print(
        f"setup: {setup['questions']} open questions through the reconciler in {setup['reconcile_s']} s "
        f"({setup['disputed']} disputed, {setup['without_candidates']} without candidates, "
        f"{setup['mean_candidates']} candidates on average), {setup['persons']} RegiCRM persons, "
        f"{setup['linked_employees']} linked employees; setup {setup['setup_s']} s",
        flush=True,
    )
    password = secrets.token_urlsafe(18)
    pool = await create_pool(settings)
    try:
        await AccountStore(pool).add_user(USER, Role.HR, password, display_name="Bench HR")
    finally:
        await pool.close()
    samples = Samples()
    sql_log = SqlLog() if args.profile else None
    if sql_log is not None:
        sql_log.install()
    load_before = os.getloadavg()[0]
    async with bench_topics(settings):
        worker = await start_worker(settings)
        try:
            extra = await measure(settings, data, password, args, samples, sql_log)
        finally:
            worker.terminate()
            await worker.wait()
    load_after = os.getloadavg()[0]
    kinds = {kind: percentiles(values) for kind, values in sorted(samples.server_ms.items())}
    round_trip = {kind: percentiles(values)["p99_ms"] for kind, values in sorted(samples.client_ms.items())}
    for group, members in (("list", LIST_KINDS), ("question", QUESTION_KINDS)):
        if values := [v for m in members for v in samples.server_ms.get(m, [])]:
            kinds[group] = percentiles(values)
            round_trip[group] = percentiles([v for m in members for v in samples.client_ms.get(m, [])])["p99_ms"]
    figures: dict[str, Any] = {
        "questions": setup["questions"],
        "kinds": kinds,
        "round_trip_p99_ms": round_trip,
        "decision_outcome_published": percentiles(samples.outcome_ms) if samples.outcome_ms else None,
        "failures": dict(samples.failures),
        **extra,
        "setup": setup,
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
        "args": {k: getattr(args, k) for k in ("pages", "decisions", "decision_rate", "change_rate", "linked")},
    }
    if sql_log is not None:
        figures["sql_per_request"] = sql_log.per_request(samples)
        figures["list_plans"] = await explain_list(settings, data)
    return figures


LIST_KINDS = ("list_plain", "list_company", "list_text")
QUESTION_KINDS = ("question_full", "question_partial")
TARGETS = {"list": TARGET_PAGE_P99_MS, "question": TARGET_PAGE_P99_MS, "decision": TARGET_DECISION_P99_MS}


def report(figures: dict[str, Any]) -> dict[str, Any]:
    """Print the figures; returns the JSON line's content."""
    print(f"{'kind':<20}{'n':>5}   server p50 / p90 / p99 / max ms        round trip p99   target p99")
    verdicts = {}
    for kind, s in figures["kinds"].items():
        group = kind.split("_")[0]
        verdict = "ok" if s["p99_ms"] < TARGETS[group] else "MISSED"
        if kind in TARGETS:
            verdicts[kind] = verdict
        print(
            f"{kind:<20}{s['n']:>5}  {s['p50_ms']:>7} / {s['p90_ms']:>7} / {s['p99_ms']:>7} / {s['max_ms']:>7}"
            f"   {figures['round_trip_p99_ms'][kind]:>10}       < {TARGETS[group]:.0f} {verdict}"
        )
    if figures["failures"]:
        print(f"failures (not counted above): {figures['failures']}")
    if published := figures["decision_outcome_published"]:
        print(
            f"decision posted -> the worker's outcome on the topic: p50 {published['p50_ms']} / p90 "
            f"{published['p90_ms']} / p99 {published['p99_ms']} / max {published['max_ms']} ms; the rest of a click is "
            "the web app's (its live feed waits for outcomes right behind the settling one, rendering)"
        )
    if "decision_results" in figures:
        print(f"decision results: {figures['decision_results']} in {figures['decisions_wall_s']} s")
    print(f"load average (1 min) before / after: {figures['load_average_1m']} on {figures['cpus']} CPUs")
    for kind, found in figures.get("sql_per_request", {}).items():
        print(f"--- {kind}: {found['sql_ms_per_request']} ms SQL of {found['server_ms_mean']} ms server time a request")
        for statement in found["top"]:
            print(f"    {statement['ms_per_request']:>7} ms  {statement['calls_per_request']:>4}x  {statement['sql']}")
    for name, plan in figures.pop("list_plans", {}).items():
        print(f"--- EXPLAIN ANALYZE of the list's statement, {name}:\n{plan}")
    main_kinds = {
        f"{k}_p{p}_ms": figures["kinds"][k][f"p{p}_ms"] for k in TARGETS if k in figures["kinds"] for p in (50, 99)
    }
    return {
        **main_kinds,
        "targets_p99_ms": TARGETS,
        "verdicts": verdicts,
        **figures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=10_000, help="open questions (employees asked about)")
    parser.add_argument("--pages", type=int, default=300, help="list requests, and as many question requests")
    parser.add_argument("--decisions", type=int, default=200, help="decisions to post")
    parser.add_argument("--decision-rate", type=float, default=10.0, help="decisions per second")
    parser.add_argument("--change-rate", type=float, default=50.0, help="change events per second meanwhile")
    parser.add_argument("--linked", type=int, default=200, help="linked employees receiving those changes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile", action="store_true", help="also the web app's SQL per request kind and the list's query plans"
    )
    add_database_url_argument(parser)
    args = parser.parse_args()
    print(json.dumps(report(asyncio.run(run(args))), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
