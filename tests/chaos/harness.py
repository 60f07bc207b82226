"""The chaos harness: a run's private stack, a seeded store every scenario starts from, and the checks.

A run starts its own PostgreSQL, Kafka and Nmbrs sandbox (services.py), generates a dataset and a matching
RegiCRM/RegiTijd starting state (one person card per human, one organisation per company), and seeds a database
once: a worker's first sync auto-links every employee (AUTO_LINK_MIN_SCORE) and the harness answers what is still
asked with koppelen decisions. Each scenario then works in a `Stage`: a database cloned from the seed, topics and
a consumer group of its own, the sandbox reloaded to the dataset, and real `nmbrs-sync worker` processes.

The checks after a scenario (`compare`): every employee the sandbox has now, fetched with the worker's own Nmbrs
client, against the store record by record (the Nmbrs-owned values of worker/domain/ownership.py as the target
store keeps them: periods, dates, references, the person card of the primary employment, active); a differing or
missing record counts as lost. Doubled effects: audit rows of one cause repeated, a human linked to more than one
person, RegiTijd employees or created persons that no link points at.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import re
import shutil
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import ClientSession
from aiokafka import AIOKafkaConsumer

from tests.chaos.services import CHAOS_ROOT, CLI, Child, Kafka, Postgres, Sandbox, child_env, run
from worker.adapters.kafka import KafkaPublisher, client_kwargs, delete_topics_with_prefix, ensure_topics
from worker.adapters.nmbrs.client import NmbrsClient
from worker.config import Settings, Topics
from worker.domain.decisions import Decision, DecisionAction
from worker.domain.events import Message
from worker.domain.nmbrs_records import NmbrsEmployee, nmbrs_today
from worker.domain.ownership import EMPLOYEE_FIELDS, PERSON_FIELDS, employee_values
from worker.sandbox.dataset import load_dataset
from worker.sandbox.sample_data import FUNCTIONS

SEED_DATABASE = "chaos_seed"
# Faust's and mode's own words when an agent or the worker crashed.
CRASH_LINE = re.compile(r"Crashed reason=|We experienced a crash")
EVIDENCE_MAX = 8
HOURS = (16.0, 20.0, 24.0, 28.0, 32.0, 36.0, 38.0, 40.0)
# A round of changes takes at least this long: the sandbox stamps records by the second, and two changes of one
# record within a second would leave which one is newer to chance.
ROUND_MIN_S = 1.1


@dataclass(frozen=True)
class Sizes:
    companies: int
    employees: int
    cycles: int  # kill-cycles
    changes: int  # kill-cycles, in total; the streaming scenarios make a fifth of it each
    fuzz: int  # malformed messages
    hires: int  # new employees for the bulk decision (redelivery)
    converge_limit_s: float
    seed: int = 14


FULL = Sizes(companies=4, employees=2000, cycles=20, changes=10_000, fuzz=5_000, hires=40, converge_limit_s=120)
SHORT = Sizes(companies=3, employees=60, cycles=3, changes=150, fuzz=600, hires=5, converge_limit_s=60)


class Harness:
    """One run: its own PostgreSQL, Kafka and sandbox, and the seeded database every scenario starts from."""

    def __init__(self, sizes: Sizes, keep_logs: Path | None = None) -> None:
        self.sizes = sizes
        self.keep_logs = keep_logs
        self.home = CHAOS_ROOT / uuid.uuid4().hex[:12]
        self.logs = self.home / "logs"
        self.tmp = self.home / "tmp"  # TMPDIR of the workers: faust's data directories go with the run
        self.dataset_path = self.home / "dataset.json"
        self.target_path = self.home / "target.json"
        self.postgres = Postgres(self.home)
        self.kafka = Kafka(self.home, self.logs)
        self.sandbox = Sandbox(self.dataset_path, self.home, self.logs)
        self.refs: dict[tuple[str, int], str] = {}  # (entity, Nmbrs id) -> ref of its card in the starting state
        self.http: ClientSession | None = None
        self.nmbrs: NmbrsClient | None = None
        # The harness's own Kafka clients meet a broker that is starting or killed on purpose: no news.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def __aenter__(self) -> Harness:
        for directory in (self.logs, self.tmp):
            directory.mkdir(parents=True)
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _start(self) -> None:
        say(f"chaos run in {self.home}")
        sizes = self.sizes
        async with asyncio.TaskGroup() as group:  # one failing cancels the others before the cleanup
            for step in (self.postgres.create(), self.kafka.create(), self._generate()):
                group.create_task(step)
        self.http = ClientSession()
        await self.sandbox.start()
        settings = Settings(nmbrs_base_url=f"{self.sandbox.url}/soap/v3/", _env_file=None)
        self.nmbrs = NmbrsClient.from_settings(settings, max_retries=2)
        say(
            f"PostgreSQL :{self.postgres.port}, Kafka :{self.kafka.port}, sandbox :{self.sandbox.port}; "
            f"seeding {sizes.employees} employees in {sizes.companies} companies"
        )
        started = time.monotonic()
        await self._seed()
        say(f"seeded in {time.monotonic() - started:.0f} s")

    async def close(self) -> None:
        """Stop everything the run started and remove its directory (logs copied first when asked)."""
        for step in (self._close_clients, self.sandbox.stop, self.kafka.stop, self.postgres.stop):
            try:
                await step()
            except Exception as error:  # go on: the other processes must be stopped all the same
                say(f"cleanup step {step.__qualname__} failed: {error!r}")
        Child.kill_all()
        if self.keep_logs is not None and self.logs.exists():
            shutil.copytree(self.logs, self.keep_logs, dirs_exist_ok=True)
            if self.postgres.log.exists():  # written by the postgres user, so not in logs/
                shutil.copy(self.postgres.log, self.keep_logs)
        shutil.rmtree(self.home, ignore_errors=True)

    async def _close_clients(self) -> None:
        if self.nmbrs is not None:
            await self.nmbrs.close()
        if self.http is not None:
            await self.http.close()

    # --- dataset and starting state ---------------------------------------------------------------------------

    async def _generate(self) -> None:
        sizes = self.sizes
        await run(
            [
                str(CLI),
                "generate-dataset",
                "--companies",
                str(sizes.companies),
                "--employees",
                str(sizes.employees),
                "--seed",
                str(sizes.seed),
                "--out",
                str(self.dataset_path),
            ],
            env=child_env(),
            cwd=self.home,
        )
        self.target_path.write_text(json.dumps(self._starting_state()))

    def _starting_state(self) -> dict[str, Any]:
        """RegiCRM as it matches the dataset: an organisation per company, a person card per human (BSN) with
        the data of its first employment, so that the definite rule or the same BSN links every employee."""
        dataset = load_dataset(self.dataset_path)
        organisations = []
        for company in dataset.companies:
            ref = self.refs[("company", company.id)] = f"org-{company.id}"
            organisations.append(
                {
                    "ref": ref,
                    "name": company.name,
                    "kvk_number": company.kvk,
                    "email": company.email,
                    "phone": company.phone,
                    "website": company.website,
                }
            )
        persons: list[dict[str, Any]] = []
        by_bsn: dict[str, str] = {}
        for employee in dataset.employees:
            if employee.bsn not in by_bsn:
                info = employee.current_personal_info()
                by_bsn[employee.bsn] = f"person-{len(persons) + 1}"
                card = {
                    "ref": by_bsn[employee.bsn],
                    "organisation": self.refs[("company", employee.company_id)],
                    **info.model_dump(
                        mode="json",
                        include={
                            "first_name",
                            "initials",
                            "prefix",
                            "last_name",
                            "birthday",
                            "gender",
                            "email_work",
                            "email_private",
                            "phone_mobile",
                        },
                    ),
                }
                persons.append({k: v for k, v in card.items() if v not in (None, "")})
            self.refs[("employee", employee.id)] = by_bsn[employee.bsn]
        return {"organisations": organisations, "persons": persons}

    async def _seed(self) -> None:
        """The seed database: the starting state loaded, the first sync done, every employee linked."""
        stage = Stage(self, "seed", database=SEED_DATABASE)
        try:
            await stage.open(template=None)
            await run([str(CLI), "target", "load", str(self.target_path)], env=stage.env(), cwd=self.home)
            stage.start_worker()
            await stage.until(stage.all_known, 600, "the first sync did not reach every employee")
            await stage.link_pending()
            converge_s, comparison = await stage.converge(self.sizes.converge_limit_s * 2)
            if converge_s is None or comparison.doubled_total:
                raise RuntimeError(f"seeding did not converge: {comparison.summary()}")
        finally:
            await stage.close(keep_database=True)

    # --- helpers for every stage ----------------------------------------------------------------------------

    async def admin(self, sql: str) -> None:
        connection = await asyncpg.connect(self.postgres.url("postgres", user="postgres"))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def nmbrs_now(self) -> dict[int, NmbrsEmployee]:
        """Every employee the sandbox has now, as the worker's Nmbrs client reads it."""
        assert self.nmbrs is not None
        as_of = nmbrs_today(datetime.now(UTC))
        companies = await self.nmbrs.list_companies()
        snapshots = await asyncio.gather(*(self.nmbrs.fetch_company(company, as_of) for company in companies))
        return {employee.employee_id: employee for snapshot in snapshots for employee in snapshot.employees}

    async def sandbox_admin(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        async with self.http.request(method, f"{self.sandbox.url}/admin/{path}", json=body) as response:
            if response.status >= 300:
                raise RuntimeError(f"sandbox {method} {path}: {response.status} {await response.text()}")
            return None if response.status == 204 else await response.json()


def say(text: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- the comparison -------------------------------------------------------------------------------------------

# The linked employees as the store has them, in the shapes of ownership.employee_values.
STORE_SQL = f"""
SELECT l.nmbrs_id, l.crm_id, e.employee_id, e.active, e.number, c.nmbrs_company_id, e.function_id, e.department_id,
       e.labour_agreement_id, e.employment_start::text, e.employment_end::text,
       {", ".join(f"p.{f}::text" if f == "birthday" else f"p.{f}" for f in PERSON_FIELDS)},
       (SELECT json_agg(json_build_object('employment_id', employment_id, 'start', start_date, 'end', end_date)
                        ORDER BY start_date, employment_id)
        FROM rt_employment_periods WHERE employee_id = e.employee_id) AS employments,
       (SELECT json_agg(json_build_object('contract_id', contract_id, 'start', start_date, 'end', end_date,
                                          'hours_per_week', hours_per_week::text) ORDER BY start_date, contract_id)
        FROM rt_contract_periods WHERE employee_id = e.employee_id) AS contracts,
       (SELECT json_agg(json_build_object('start', start_date, 'hours_per_week', hours_per_week::text,
                                          'parttime_percentage', parttime_percentage::text) ORDER BY start_date)
        FROM rt_schedule_periods WHERE employee_id = e.employee_id) AS schedules
FROM sync_links l
JOIN crm_persons p ON p.person_id = l.crm_id
LEFT JOIN rt_employees e ON e.employee_id = l.regitijd_id
LEFT JOIN rt_companies c ON c.company_id = e.company_id
WHERE l.entity = 'employee'"""
PERIOD_LISTS = ("employments", "contracts", "schedules")
# Each: effects that happened more than once (or have no owner, i.e. a second copy of something).
DOUBLED_SQL = {
    "audit_rows": """SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM audit_log
                     WHERE causation_id IS NOT NULL GROUP BY causation_id, subject, action HAVING count(*) > 1) d""",
    "persons_per_human": """SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(DISTINCT crm_id) AS n FROM sync_links
                            WHERE entity = 'employee' AND bsn_hash IS NOT NULL GROUP BY bsn_hash
                            HAVING count(DISTINCT crm_id) > 1) d""",
    "rt_employees_without_link": """SELECT count(*) FROM rt_employees e WHERE e.source = 'nmbrs' AND NOT EXISTS (
                                 SELECT 1 FROM sync_links l WHERE l.entity = 'employee'
                                 AND l.regitijd_id = e.employee_id)""",
    "created_persons": """SELECT count(*) FROM crm_persons p WHERE p.created_by <> 'load' AND NOT EXISTS (
                          SELECT 1 FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id)""",
}


@dataclass
class Comparison:
    checked: int = 0
    lost: list[str] = field(default_factory=list)  # one line per differing record
    doubled: dict[str, int] = field(default_factory=dict)

    @property
    def doubled_total(self) -> int:
        return sum(self.doubled.values())

    def summary(self) -> str:
        return f"{self.checked} checked, {len(self.lost)} lost {self.lost[:3]}, doubled {self.doubled}"


def compare_records(expected: dict[int, NmbrsEmployee], rows: Iterable[dict[str, Any]]) -> tuple[int, list[str]]:
    """(records checked, one line per record whose store side differs from Nmbrs)."""
    rows_by_id = {row["nmbrs_id"]: row for row in rows}
    values = {nmbrs_id: employee_values(employee) for nmbrs_id, employee in expected.items()}
    # The person card follows the human's primary employment: the active one that started last (PRIMARY_SQL).
    primary: dict[int, int] = {}
    for nmbrs_id in sorted(values, key=lambda i: (values[i]["employment_start"] or "", i)):
        if nmbrs_id in rows_by_id:
            primary[rows_by_id[nmbrs_id]["crm_id"]] = nmbrs_id
    lost = []
    for nmbrs_id in sorted(set(values) | set(rows_by_id)):
        row, want = rows_by_id.get(nmbrs_id), values.get(nmbrs_id)
        if row is None:
            lost.append(f"employee:{nmbrs_id} is in Nmbrs but not linked")
            continue
        if row["employee_id"] is None:
            if want is not None:
                lost.append(f"employee:{nmbrs_id} is linked but has no RegiTijd employee")
            continue
        if want is None:
            if row["active"]:
                lost.append(f"employee:{nmbrs_id} is gone from Nmbrs but active in RegiTijd")
            continue
        have = {**row, **{name: json.loads(row[name]) if row[name] else [] for name in PERIOD_LISTS}}
        fields = [*EMPLOYEE_FIELDS, *(PERSON_FIELDS if primary.get(row["crm_id"]) == nmbrs_id else ())]
        differing = [
            f"{name}: Nmbrs {want[name]!r}, store {have[name]!r}" for name in fields if want[name] != have[name]
        ]
        if not row["active"]:
            differing.append("active: Nmbrs True, store False")
        if differing:
            lost.append(f"employee:{nmbrs_id} " + "; ".join(differing)[:400])
    return len(values), lost


# --- a scenario's world ---------------------------------------------------------------------------------------


class Stage:
    """One scenario's world: a database of its own (cloned from the seed), topics and consumer group of its own,
    the sandbox at the dataset again, and worker processes watched by a supervisor: a worker that exits without
    the scenario stopping it is a restart by hand (counted, and done, so that convergence can still be measured)."""

    def __init__(self, harness: Harness, name: str, database: str | None = None) -> None:
        token = uuid.uuid4().hex[:8]
        self.harness, self.name = harness, name
        self.database = database or f"chaos_{name.replace('-', '_')}_{token}"
        prefix = f"chaos-{name}-{token}"
        self.settings = Settings(
            kafka_app_id=prefix,
            topics=Topics(**{topic: f"{prefix}.{topic}" for topic in Topics.model_fields}),
            kafka_bootstrap_servers=harness.kafka.bootstrap,
            database_url=harness.postgres.url(self.database),
            nmbrs_base_url=f"{harness.sandbox.url}/soap/v3/",
            kafka_topic_partitions=4,
            status_port=0,
            _env_file=None,
        )
        self.workers: list[Child] = []
        # Cleared while the scenario has taken PostgreSQL or Kafka down: a worker is restarted once they are back.
        self.services_up = asyncio.Event()
        self.services_up.set()
        self.figures: dict[str, Any] = {"scenario": name, "cycles": 1, "changes": 0, "restarts_by_hand": 0}
        self.evidence: list[str] = []
        self.rng = random.Random(f"{harness.sizes.seed}/{name}")
        self._supervisor: asyncio.Task[None] | None = None
        self.opened_at: datetime | None = None

    async def open(self, template: str | None = SEED_DATABASE) -> None:
        # FILE_COPY: a clone made with PostgreSQL 15's default WAL_LOG strategy hands out sequence values again after
        # a crash of the server (its sequences' logged-ahead values were logged for the template only), which the
        # postgres-restart scenario showed as duplicate audit_log ids.
        clone = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        await self.harness.admin(f"CREATE DATABASE {self.database} OWNER nmbrs_sync{clone}")
        await self.harness.sandbox_admin("POST", "reload", {"path": str(self.harness.dataset_path)})
        await ensure_topics(self.settings)
        self.opened_at = await self.value("SELECT now()")
        self._supervisor = asyncio.create_task(self._supervise())

    async def close(self, keep_database: bool = False) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        self.figures["crashes"] = self._count_crashes()
        try:
            await delete_topics_with_prefix(self.settings, [f"{self.settings.kafka_app_id}."])
            if not keep_database:
                await self.harness.admin(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        except Exception as error:  # the run's stack goes away at its end anyway
            say(f"{self.name}: cleanup: {error!r}")

    def env(self, **overrides: str) -> dict[str, str]:
        s = self.settings
        values = dict(
            KAFKA_APP_ID=s.kafka_app_id,
            KAFKA_BOOTSTRAP_SERVERS=s.kafka_bootstrap_servers,
            KAFKA_TOPIC_PARTITIONS="4",
            DATABASE_URL=s.database_url.get_secret_value(),
            NMBRS_BASE_URL=s.nmbrs_base_url,
            STATUS_PORT="0",
            LOG_LEVEL="INFO",
            POLL_INTERVAL_S="2",
            AUTO_LINK_MIN_SCORE="0.9",
            TMPDIR=str(self.harness.tmp),
            **{f"TOPICS__{name.upper()}": topic for name, topic in s.topics.model_dump().items()},
        )
        return child_env(**(values | overrides))

    # --- workers ------------------------------------------------------------------------------------------

    def start_worker(self, **env: str) -> Child:
        log = self.harness.logs / f"{self.database}-worker-{len(self.workers)}.log"
        worker = Child(
            f"{self.name} worker {len(self.workers)}", [str(CLI), "worker"], log, self.env(**env), self.harness.home
        )
        worker.start()
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[Child]:
        return [worker for worker in self.workers if not worker.expected_exit]

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for worker in self.live_workers():
                code = worker.exited()
                if code is None:
                    continue
                self.figures["restarts_by_hand"] += 1
                self.note(f"{worker.name} exited by itself (code {code}): {' | '.join(worker.tail())}")
                await self.services_up.wait()
                worker.start()

    def _count_crashes(self) -> int:
        crashes = 0
        for worker in self.workers:
            for line in worker.log.read_text(errors="replace").splitlines() if worker.log.exists() else ():
                if CRASH_LINE.search(line):
                    crashes += 1
                    self.note(f"{worker.name}: {line[:300]}")
        return crashes

    def note(self, text: str) -> None:
        if len(self.evidence) < EVIDENCE_MAX:
            self.evidence.append(text)

    # --- the store ----------------------------------------------------------------------------------------

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        connection = await asyncpg.connect(self.settings.database_url.get_secret_value())
        try:
            return [dict(row) for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    async def value(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return next(iter(rows[0].values())) if rows else None

    async def compare(self) -> Comparison:
        expected = await self.harness.nmbrs_now()
        checked, lost = compare_records(expected, await self.fetch(STORE_SQL))
        doubled = {name: int(await self.value(sql)) for name, sql in DOUBLED_SQL.items()}
        return Comparison(checked, lost, doubled)

    async def converge(self, limit_s: float | None = None) -> tuple[float | None, Comparison]:
        """Wait until the store matches Nmbrs, twice in a row; (seconds it took or None after the limit, the last
        comparison). A database that is down counts as not converged yet."""
        limit_s = limit_s or self.harness.sizes.converge_limit_s
        started, clean_since = time.monotonic(), None
        while True:
            try:
                comparison = await self.compare()
            except (OSError, asyncpg.PostgresError) as error:
                comparison = Comparison(lost=[f"store unreadable: {error!r}"])
            if comparison.lost:
                clean_since = None
            elif clean_since is not None:
                return round(clean_since - started, 1), comparison
            else:
                clean_since = time.monotonic()
            if time.monotonic() - started > limit_s:
                return None, comparison
            await asyncio.sleep(2.0)

    async def until(self, check: Callable[[], Any], timeout_s: float, what: str) -> float:
        """Wait for `check` (a function, or one returning an awaitable) to be true; seconds it took. Raises
        TimeoutError naming `what` after the timeout."""
        started = time.monotonic()
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{self.name}: {what} within {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def polled(self) -> bool:
        """A worker of this stage has finished a poll."""
        return bool(
            await self.value(
                "SELECT count(*) FROM poll_runs WHERE started_at > $1 AND status <> 'running'", self.opened_at
            )
        )

    async def all_known(self) -> bool:
        """Every company and employee of the sandbox is linked or asked about."""
        expected = await self.harness.nmbrs_now()
        known = await self.value(
            """SELECT count(*) FROM (SELECT nmbrs_id FROM sync_links WHERE entity = 'employee'
                                     UNION SELECT nmbrs_id FROM pending_decisions WHERE entity = 'employee') k
               WHERE nmbrs_id = ANY($1::int[])""",
            list(expected),
        )
        companies = await self.value("SELECT count(*) FROM sync_links WHERE entity = 'company'")
        return bool(known == len(expected) and companies == self.harness.sizes.companies)

    async def link_pending(self) -> None:
        """Answer what the first sync asked with koppelen to the card the starting state made for it."""
        pending = await self.fetch("SELECT entity, nmbrs_id, version FROM pending_decisions")
        cards = {
            row["ref"]: row["id"]
            for row in await self.fetch(
                """SELECT external_ref AS ref, person_id AS id FROM crm_persons WHERE external_ref IS NOT NULL
               UNION ALL SELECT external_ref, organisation_id FROM crm_organisations WHERE external_ref IS NOT NULL"""
            )
        }
        refs = self.harness.refs
        decisions = [
            Decision(
                decision_id=uuid.uuid4(),
                entity=row["entity"],
                nmbrs_id=row["nmbrs_id"],
                action=DecisionAction.KOPPELEN,
                target_id=cards[refs[(row["entity"], row["nmbrs_id"])]],
                version=row["version"],
                decided_by="chaos",
                decided_at=datetime.now(UTC),
            )
            for row in pending
        ]
        say(f"{self.name}: {len(decisions)} records asked about, answered with koppelen")
        await self.post([(self.settings.topics.decisions, d.key, d) for d in decisions])

    async def post(self, messages: list[tuple[str, str, Message]]) -> None:
        async with KafkaPublisher(self.settings) as publisher:
            await publisher.publish_many(messages)

    async def cli(self, *args: str, check: bool = True) -> tuple[int, str]:
        """`nmbrs-sync ARGS` against this stage; (exit code, output)."""
        return await run([str(CLI), *args], env=self.env(), cwd=self.harness.home, check=check)

    # --- changes in Nmbrs ---------------------------------------------------------------------------------

    async def sandbox_calls(self, calls: list[tuple[str, str, Any]]) -> list[Any]:
        """Admin calls to the sandbox, a few at a time; each counts as a change."""
        gate = asyncio.Semaphore(16)

        async def one(method: str, path: str, body: Any) -> Any:
            async with gate:
                return await self.harness.sandbox_admin(method, path, body)

        answers = await asyncio.gather(*(one(*call) for call in calls))
        self.figures["changes"] += len(calls)
        return answers

    async def hire(self, count: int, company_id: int = 1) -> list[int]:
        """New employees nobody in RegiCRM resembles: each becomes an 'unmatched' question."""
        letters = "bcdfghjklmnpqrstvwxz"
        bodies = [
            {
                "company_id": company_id,
                "first_name": "Quirijn",
                "start": "2026-10-01",
                "hours_per_week": 32,
                "last_name": "Zq" + "".join(self.rng.choice(letters) for _ in range(8)),
            }
            for _ in range(count)
        ]
        answers = await self.sandbox_calls([("POST", "employees", body) for body in bodies])
        return [answer["id"] for answer in answers]

    async def pending_versions(self, nmbrs_ids: list[int]) -> dict[int, int]:
        rows = await self.fetch(
            "SELECT nmbrs_id, version FROM pending_decisions WHERE entity = 'employee' AND nmbrs_id = ANY($1::int[])",
            nmbrs_ids,
        )
        return {row["nmbrs_id"]: row["version"] for row in rows}

    def report(self, converge_s: float | None, comparison: Comparison, **figures: Any) -> dict[str, Any]:
        """The scenario's figures; crashes are counted from the logs when the stage closes."""
        for line in comparison.lost[:3]:
            self.note(f"lost {line}")
        for name, count in comparison.doubled.items():
            if count:
                self.note(f"doubled {name}: {count}")
        own = {k: v for k, v in self.figures.items() if k not in ("scenario", "cycles", "changes", "restarts_by_hand")}
        return {
            "scenario": self.name,
            "cycles": figures.pop("cycles", self.figures["cycles"]),
            "changes": self.figures["changes"],
            "lost": len(comparison.lost),
            "doubled": comparison.doubled_total,
            "converge_s": converge_s,
            "restarts_by_hand": self.figures["restarts_by_hand"],
            "crashes": 0,
            "checked": comparison.checked,
            "doubled_by_check": comparison.doubled,
            **own,
            **figures,
            "evidence": self.evidence,
        }


class Changes:
    """Changes of the sandbox's employees, round after round: mostly hours per week, some functions and phone
    numbers; a third of the records picked go A -> B -> A over three rounds (the flip that a poll cut off between
    B and the second A must not lose). One change per record per round."""

    def __init__(self, stage: Stage, employee_ids: list[int]) -> None:
        self.stage = stage
        self.rng = stage.rng
        self.ids = employee_ids
        self.flips: dict[int, list[float]] = {}  # record -> the hours of its next rounds
        self.flipped = 0

    async def round(self, count: int) -> None:
        started = time.monotonic()
        bodies: dict[int, dict[str, Any]] = {i: {"hours_per_week": steps.pop(0)} for i, steps in self.flips.items()}
        self.flips = {i: steps for i, steps in self.flips.items() if steps}
        free = [i for i in self.ids if i not in bodies and i not in self.flips]
        for employee_id in self.rng.sample(free, min(len(free), max(count - len(bodies), 0))):
            bodies[employee_id] = self._new_change(employee_id)
        await self.stage.sandbox_calls([("PATCH", f"employees/{i}", body) for i, body in bodies.items()])
        self.stage.figures["flips"] = self.flipped
        await asyncio.sleep(max(0.0, ROUND_MIN_S - (time.monotonic() - started)))

    def _new_change(self, employee_id: int) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 1 / 3:
            a, b = self.rng.sample(HOURS, 2)
            self.flips[employee_id] = [b, a]
            self.flipped += 1
            return {"hours_per_week": a}
        if roll < 0.85:
            return {"hours_per_week": self.rng.choice(HOURS)}
        if roll < 0.93:
            number = self.rng.randrange(len(FUNCTIONS))
            return {"function": {"id": number + 1, "code": number + 1, "description": FUNCTIONS[number]}}
        return {"personal_info": {"phone_work": f"085-{self.rng.randrange(1_000_000, 10_000_000)}"}}

    async def finish_flips(self) -> None:
        """Rounds until every started A -> B -> A is back at A."""
        while self.flips:
            await self.round(0)


class TopicWatch:
    """Reads the outcomes and dead-letter topics from their start, in the background: what became of each message
    (outcomes by causing id, with their arrival time; dead letters by the original's topic, partition, offset)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.outcomes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.outcome_ids: Counter[str] = Counter()
        self.dead_letters: dict[tuple[str, int, int], float] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TopicWatch:
        topics = self.settings.topics
        self._consumer = AIOKafkaConsumer(
            topics.outcomes,
            topics.dead_letter,
            **client_kwargs(self.settings),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 * 1024**2,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            arrived = time.monotonic()
            for records in batches.values():
                for record in records:
                    value = json.loads(record.value)
                    if record.topic == self.settings.topics.outcomes:
                        self.outcomes[value["causation_id"]].append({**value, "arrived": arrived})
                        self.outcome_ids[value["outcome_id"]] += 1
                    else:
                        self.dead_letters[(value["topic"], value["partition"], value["offset"])] = arrived

    def outcome(self, causation_id: uuid.UUID | str, kind: str) -> dict[str, Any] | None:
        return next((o for o in self.outcomes.get(str(causation_id), ()) if o["kind"] == kind), None)
