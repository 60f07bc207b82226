"""Benchmark: the reconciler's throughput on change events of linked employees, against the raw ceiling.

Run: `python bench/reconcile.py [--events 2000] [--rounds 3] [--profile] [--database-url URL]`.
Setup (not timed): a RegiCRM starting state with one organisation and N persons is loaded
(`load_target_state`), then a company create and one employee create per person go through
`handle_change` with the definite rule on (auto_link_min_score 0.9), so every employee is linked and
has its RegiTijd employee. The tables are analysed, as autovacuum does within a minute in a running system.

Timed:
- ours, in rounds (--rounds, the median counts): each round produces N new update events, one per employee
  (alternately a department change and an hours change, real EmployeeChanged JSON from the poller's diff),
  then an aiokafka consumer reads them; per fetched batch, cut to RECONCILE_BATCH_MAX events as the worker's
  faust `take_events` cuts them, `consume_batch(raws, ctx, parse_change_event, handle_changes)` runs with a
  real KafkaPublisher as the sink, as the worker's reconciler agent does (inbox, lock, state, plan, writes,
  leave recalculation, stored outcomes, one transaction per batch; outcomes published after the commit).
  From the first message consumed to the last outcome acknowledged by the broker.
- ceiling, the issue's "aiokafka consume + asyncpg batched upsert of the same rows without our logic": a
  fresh consumer group reads N of the same events; per fetched batch, cut as ours cuts it, one transaction
  with asyncpg `executemany` writing every row ours wrote for each event, with the same content: the
  employee (with its synced values), the person card, the contract and schedule periods where ours rewrote
  them (delete and insert), the audit entry, the leave result where ours recalculated one and the inbox row
  with the outcomes (the computed parts taken from what ours wrote). Like ours it writes as the sync (so the
  period triggers of migration 0008 do not count its writes as local edits). No parsing into models, no
  logic, no locks, no outcome publishing. From the first message consumed to the last commit. Run in each round right
  after ours, on the round's events.
- narrow ceiling, for context: the same, but only the columns the events change (rt_employees department,
  function and start, rt_contract_periods hours): two updates per event.
The ratio is ours / ceiling; the issue's target is at least 30% of the ceiling. `--profile` runs ours under
cProfile and prints the top functions and the time per statement.

Topics get a unique prefix; the database is one of the benchmark's own (--database-url, else
$BENCH_DATABASE_URL, else `nmbrs_sync_bench` next to the configured one; created when missing), whose public
schema is dropped and migrated: never the demo or test database. Prints a human summary and, last, one JSON
line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import io
import json
import pstats
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from support import (
    add_database_url_argument,
    bench_database_url,
    bench_settings,
    bench_topics,
    prepare_database,
    utc_now,
)

from worker.adapters.database import create_pool
from worker.adapters.kafka import KafkaPublisher, client_kwargs
from worker.adapters.target_sql import SYNC_WRITER_SQL
from worker.adapters.target_store_load import load_target_state
from worker.config import Settings
from worker.domain.changes import ChangeEvent, ChangeSource, EmployeeChanged, Entity, parse_change_event
from worker.domain.events import Message, Outcome
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import (
    CodeRef,
    ContractPeriod,
    EmploymentPeriod,
    LabourAgreementRef,
    NmbrsCompany,
    NmbrsEmployee,
    SchedulePeriod,
)
from worker.domain.ownership import PERSON_FIELDS
from worker.domain.snapshot_diff import SnapshotEntry, diff
from worker.domain.target_state import LabourAgreementState, OrganisationState, PersonState, TargetState
from worker.entrypoints.consuming import ConsumerContext, RawMessage, consume_batch
from worker.service.reconciler import CONSUMER, handle_change, handle_changes

TARGET_RATIO = 0.30
POLICY = MatchPolicy(auto_link_min_score=0.9)
COMPANY = NmbrsCompany(company_id=1, number="1", name="Benchmark Bakkerij B.V.", kvk_number="12345678")
CAO = LabourAgreementRef(id=2, number="CAO-2", description="CAO Bakkersbedrijf")
FIRST_NAMES = ("Anna", "Daan", "Sophie", "Pieter", "Fenna", "Bram", "Saar", "Thijs", "Lotte", "Gijs")
DEPARTMENTS = ("Productie", "Verkoop", "Logistiek", "Facilitair", "ICT")
EMPLOYEE_ID_BASE = 300_000
STALL_S = 60.0


# --- the data ------------------------------------------------------------------------------------------


def surname(index: int) -> str:
    """A distinct made-up surname per index: its first four letters are what the candidate search uses."""
    n = (index * 7919 + 12345) % 26**4  # 7919 is prime to 26, so distinct indexes give distinct codes
    letters = "".join(chr(ord("a") + (n // 26**k) % 26) for k in range(4))
    return letters.capitalize() + "ink"


def person_state(index: int) -> PersonState:
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    return PersonState(
        ref=f"bench-{index}",
        first_name=first,
        last_name=surname(index),
        birthday=date(1960, 1, 1) + timedelta(days=(index * 37) % 15_000),
        email_work=f"{first}.{surname(index)}@bakkerij.example".lower(),
        organisation="bench-org",
    )


def employee_record(index: int) -> NmbrsEmployee:
    person = person_state(index)
    start = date(2018, 1, 1) + timedelta(days=index % 2000)
    department = 1 + index % len(DEPARTMENTS)
    return NmbrsEmployee(
        employee_id=EMPLOYEE_ID_BASE + index,
        company_id=COMPANY.company_id,
        number=str(index + 1),
        bsn_hash=hashlib.sha256(f"bench-bsn-{index}".encode()).hexdigest(),
        first_name=person.first_name,
        last_name=person.last_name,
        birthday=person.birthday,
        email_work=person.email_work,
        function=CodeRef(id=5, code="5", description="Bakker"),
        department=CodeRef(id=department, code=str(department), description=DEPARTMENTS[department - 1]),
        labour_agreement=CAO,
        employments=(EmploymentPeriod(employment_id=index + 1, start=start),),
        contracts=(ContractPeriod(contract_id=index + 1, start=start, hours_per_week=Decimal(40), indefinite=True),),
        schedules=(SchedulePeriod(start=start, hours_per_week=Decimal(40), parttime_percentage=Decimal(100)),),
    )


ROUND_HOURS = (32, 36, 30, 34)  # hours from 2026-11-01 per round: each differs from the one before


def changed_record(index: int, before: NmbrsEmployee, round_: int) -> NmbrsEmployee:
    """Even: another department than in the round before. Odd: from 2026-11-01 other hours than in the round
    before (contract and schedule; the first round goes from 40 to 32)."""
    if index % 2 == 0:
        new = 1 + (index + round_ + 1) % len(DEPARTMENTS)
        return before.model_copy(
            update={"department": CodeRef(id=new, code=str(new), description=DEPARTMENTS[new - 1])}
        )
    hours = Decimal(ROUND_HOURS[round_ % len(ROUND_HOURS)])
    contract = before.contracts[0].model_copy(update={"hours_per_week": hours})
    schedule = SchedulePeriod(start=date(2026, 11, 1), hours_per_week=hours, parttime_percentage=hours / 40 * 100)
    return before.model_copy(update={"contracts": (contract,), "schedules": (before.schedules[0], schedule)})


@dataclass
class Employees:
    """The employees as Nmbrs shows them now, and the poller's snapshot of them."""

    records: list[NmbrsEmployee]
    snapshot: dict[str, SnapshotEntry]

    def next_round(self, round_: int) -> list[EmployeeChanged]:
        """Change every employee (changed_record) and return the update events the poller's diff makes."""
        now = utc_now()
        source = ChangeSource(poll_id=uuid.uuid4(), fetched_at=now)
        self.records = [changed_record(i, record, round_) for i, record in enumerate(self.records)]
        current = {f"employee:{r.employee_id}": (r, COMPANY.company_id) for r in self.records}
        planned = diff(Entity.EMPLOYEE, self.snapshot, current, source, _never_removed, now)
        self.snapshot.update({change.snapshot.key: change.snapshot for change in planned})
        updates = [change.event for change in planned if isinstance(change.event, EmployeeChanged)]
        assert len(updates) == len(self.records)
        return updates


def _never_removed(_entry: SnapshotEntry) -> bool:
    return False


async def set_up(pool: asyncpg.Pool, count: int) -> tuple[Employees, dict[str, int], float]:
    """Load the starting state and link every employee."""
    started = time.perf_counter()
    state = TargetState(
        organisations=(OrganisationState(ref="bench-org", name=COMPANY.name, kvk_number=COMPANY.kvk_number),),
        persons=tuple(person_state(i) for i in range(count)),
        labour_agreements=(
            LabourAgreementState(
                nmbrs_id=CAO.id,
                number=CAO.number,
                description=CAO.description,
                extra_leave_hours_fulltime=Decimal(16),
                fulltime_hours_per_week=Decimal(38),
            ),
        ),
    )
    async with pool.acquire() as connection:
        await load_target_state(connection, state)
    # The events come from the poller's own diff, exactly as a first poll and a changing poll build them.
    now = utc_now()
    source = ChangeSource(poll_id=uuid.uuid4(), fetched_at=now)

    handle = partial(handle_change, pool=pool, policy=POLICY, now=utc_now)
    setup_outcomes: Counter[str] = Counter()
    company = {"company:1": (COMPANY, COMPANY.company_id)}
    company_changes = diff(Entity.COMPANY, {}, company, source, _never_removed, now)
    for planned in company_changes:
        setup_outcomes.update(o.kind.value for o in await handle(planned.event))
    records = [employee_record(index) for index in range(count)]
    creates = diff(
        Entity.EMPLOYEE,
        {},
        {f"employee:{r.employee_id}": (r, COMPANY.company_id) for r in records},
        source,
        _never_removed,
        now,
    )
    for planned in creates:
        setup_outcomes.update(o.kind.value for o in await handle(planned.event))
    linked = await pool.fetchval(
        "SELECT count(*) FROM sync_links WHERE entity = 'employee' AND regitijd_id IS NOT NULL"
    )
    if linked != count:
        raise RuntimeError(f"setup linked {linked} of {count} employees: {dict(setup_outcomes)}")
    # A running system's tables have statistics: autovacuum analyses a table within a minute of its first
    # rows. The setup is quicker than that, and without statistics the planner picks plans no running
    # system would use.
    tables = await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    await pool.execute("ANALYZE " + ", ".join(f'"{row["tablename"]}"' for row in tables))
    employees = Employees(records, {planned.snapshot.key: planned.snapshot for planned in creates})
    return employees, dict(setup_outcomes), time.perf_counter() - started


# --- timed parts -------------------------------------------------------------------------------------


@dataclass
class Split:
    """Wall time of ours by step, summed over the events."""

    elapsed_s: float = 0.0
    parse_s: float = 0.0
    handle_s: float = 0.0
    publish_s: float = 0.0
    publishes: int = 0  # publish calls: one per batch (its outcomes together), plus dead letters
    outcomes: Counter[str] = field(default_factory=Counter)


class TimedSink:
    """The real publisher, with the time spent waiting for acknowledgements added up."""

    def __init__(self, publisher: KafkaPublisher, split: Split) -> None:
        self.publisher = publisher
        self.split = split

    def count(self, message: Message) -> None:
        self.split.outcomes.update([message.kind.value if isinstance(message, Outcome) else "none"])  # none: DLQ

    async def publish(self, topic: str, key: str, message: Message) -> None:
        started = time.perf_counter()
        try:
            await self.publisher.publish(topic, key, message)
            self.count(message)
        finally:
            self.split.publish_s += time.perf_counter() - started
            self.split.publishes += 1

    async def publish_many(self, items: list[tuple[str, str, Message]]) -> None:
        started = time.perf_counter()
        try:
            await self.publisher.publish_many(items)
            for _, _, message in items:
                self.count(message)
        finally:
            self.split.publish_s += time.perf_counter() - started
            self.split.publishes += 1


@dataclass
class QueryTally:
    """Every statement ours sent (asyncpg query logger; --profile only): count and client-side elapsed."""

    count: int = 0
    seconds: float = 0.0
    by_statement: Counter[str] = field(default_factory=Counter)
    seconds_by_statement: Counter[str] = field(default_factory=Counter)

    def log(self, query: Any) -> None:
        self.count += 1
        self.seconds += query.elapsed
        statement = " ".join(query.query.split())[:90]
        self.by_statement[statement] += 1
        self.seconds_by_statement[statement] += query.elapsed


async def tallied_pool(settings: Settings, tally: QueryTally) -> asyncpg.Pool:
    """A pool as `create_pool` opens it, with every connection reporting its statements to `tally`."""

    async def init(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(tally.log)

    return await create_pool(settings, init)


def consumer_for(settings: Settings, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        settings.topics.employee_changes,
        **client_kwargs(settings),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


async def replay(consumer: AIOKafkaConsumer, count: int, process: Any) -> float:
    """Feed every fetched batch to `process` until `count` messages were handled; return the seconds from
    the first message consumed to the end of the last `process`."""
    started: float | None = None
    handled = 0
    last_progress = time.monotonic()
    while handled < count:
        batch = await consumer.getmany(timeout_ms=500)
        records = [record for partition in batch.values() for record in partition]
        if not records:
            if time.monotonic() - last_progress > STALL_S:
                raise RuntimeError(f"only {handled} of {count} events arrived within {STALL_S:.0f} s")
            continue
        if started is None:
            started = time.perf_counter()
        await process(records)
        handled += len(records)
        last_progress = time.monotonic()
    assert started is not None
    return time.perf_counter() - started


async def run_ours(settings: Settings, pool: asyncpg.Pool, count: int, profile: cProfile.Profile | None) -> Split:
    split = Split()
    consumer = consumer_for(settings, f"{settings.kafka_app_id}.ours")
    async with KafkaPublisher(settings) as publisher:
        context = ConsumerContext(
            name=CONSUMER,
            sink=TimedSink(publisher, split),
            outcomes_topic=settings.topics.outcomes,
            dead_letter_topic=settings.topics.dead_letter,
        )
        handler = partial(handle_changes, pool=pool, policy=POLICY, now=utc_now)

        def parse(data: bytes) -> ChangeEvent[Any]:
            started = time.perf_counter()
            try:
                return parse_change_event(data)
            finally:
                split.parse_s += time.perf_counter() - started

        async def handle(events: list[ChangeEvent[Any]]) -> list[Outcome]:
            started = time.perf_counter()
            try:
                return await handler(events)
            finally:
                split.handle_s += time.perf_counter() - started

        async def process(records: list[Any]) -> None:
            size = settings.reconcile_batch_max

            for start in range(0, len(records), size):
                raws = [
                    RawMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records[start : start + size]
                ]
                await consume_batch(raws, context, parse, handle)

        await consumer.start()
        try:
            if profile is not None:
                profile.enable()
            try:
                split.elapsed_s = await replay(consumer, count, process)
            finally:
                if profile is not None:
                    profile.disable()
            await consumer.commit()  # the next round's consumer (same group) starts after these events
        finally:
            await consumer.stop()
    return split


CEILING_EMPLOYEES = """UPDATE rt_employees SET department_id = $2, function_id = $3, employment_start = $4
                       WHERE nmbrs_employee_id = $1"""
CEILING_CONTRACTS = """UPDATE rt_contract_periods c SET hours_per_week = $3
                       FROM rt_employees e
                       WHERE e.employee_id = c.employee_id AND e.nmbrs_employee_id = $1 AND c.contract_id = $2"""
FULL_EMPLOYEES = """UPDATE rt_employees SET number = $2, function_id = $3, department_id = $4, labour_agreement_id = $5,
                        employment_start = $6, employment_end = $7, nmbrs_synced = $8::jsonb, active = true,
                        period_edits_seen = $9, nmbrs_version = $10
                    WHERE employee_id = $1"""
FULL_PERSONS = f"""UPDATE crm_persons SET {", ".join(f"{f} = ${i + 2}" for i, f in enumerate(PERSON_FIELDS))}
                   WHERE person_id = $1"""
FULL_AUDIT = """INSERT INTO audit_log (causation_id, subject, action, before, after, actor)
                VALUES ($1, $2, 'apply', $3::jsonb, $4::jsonb, 'ceiling')"""
FULL_LEAVE = """INSERT INTO rt_leave_balances (employee_id, as_of, result, causation_id) VALUES ($1, $2, $3::jsonb, $4)
                ON CONFLICT (employee_id) DO UPDATE SET as_of = EXCLUDED.as_of, result = EXCLUDED.result,
                    causation_id = EXCLUDED.causation_id, computed_at = now()"""
FULL_INBOX = "INSERT INTO processed_events (consumer, event_id, outcomes) VALUES ($1, $2, $3::jsonb)"


@dataclass
class WrittenByOurs:
    """What ours wrote besides the records themselves, per event: the same-rows ceiling writes it again."""

    # Nmbrs id -> (RegiTijd employee id, person id, synced values, local period edits seen, version written)
    employees: dict[int, tuple[int, int, str, int, int]]
    audit: dict[uuid.UUID, tuple[str, str, str]]  # event id -> (subject, before, after)
    changed: dict[uuid.UUID, frozenset[str]]  # event id -> the fields ours changed (its periods rewritten)
    leave: dict[uuid.UUID, tuple[int, date, str]]  # event id -> (employee id, as of, result)
    outcomes: dict[uuid.UUID, str]  # event id -> the outcomes stored in the inbox


async def written_by_ours(pool: asyncpg.Pool) -> WrittenByOurs:
    employees = {
        r["nmbrs_employee_id"]: (
            r["employee_id"],
            r["person_id"],
            r["nmbrs_synced"],
            r["period_edits_seen"],
            r["nmbrs_version"],
        )
        for r in await pool.fetch(
            """SELECT nmbrs_employee_id, employee_id, person_id, nmbrs_synced::text, period_edits_seen, nmbrs_version
               FROM rt_employees"""
        )
    }
    audit = {
        r["causation_id"]: (r["subject"], r["before"], r["after"])
        for r in await pool.fetch(
            "SELECT causation_id, subject, before::text, after::text FROM audit_log WHERE action = 'apply'"
        )
    }
    changed = {event_id: frozenset(json.loads(before)["changed"]) for event_id, (_, before, _) in audit.items()}
    leave = {
        r["causation_id"]: (r["employee_id"], r["as_of"], r["result"])
        for r in await pool.fetch("SELECT employee_id, as_of, result::text, causation_id FROM rt_leave_balances")
    }
    outcomes = {
        r["event_id"]: r["outcomes"]
        for r in await pool.fetch(
            f"SELECT event_id, outcomes::text FROM processed_events WHERE consumer = '{CONSUMER}'"
        )
    }
    return WrittenByOurs(employees, audit, changed, leave, outcomes)


def _date_or_none(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


async def end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    """Where the next event of each partition of the change topic will be: a round's events start there."""
    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None)
    await consumer.start()
    try:
        topic = settings.topics.employee_changes
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_topic_partitions)]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def run_ceiling(
    settings: Settings,
    pool: asyncpg.Pool,
    count: int,
    starts: dict[TopicPartition, int],
    run: int,
    same_rows: WrittenByOurs | None,
) -> tuple[float, int]:
    """One replay of the `count` events from `starts` without our logic. `same_rows` None: the narrow ceiling
    (two updates per event). Else every row ours wrote for the event, with the same content (taken from what
    ours wrote where it is computed: the audit entry, the leave result, the stored outcomes), in one
    transaction per fetched batch cut to RECONCILE_BATCH_MAX events, as ours."""
    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
    batches = 0

    async def narrow(connection: asyncpg.Connection, events: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
        employees: list[tuple[Any, ...]] = []
        contracts: list[tuple[Any, ...]] = []
        for _, after in events:
            employees.append(
                (
                    after["employee_id"],
                    after["department"]["id"],
                    after["function"]["id"],
                    date.fromisoformat(after["employments"][-1]["start"]),
                )
            )
            contracts.extend(
                (after["employee_id"], c["contract_id"], c["hours_per_week"] and Decimal(c["hours_per_week"]))
                for c in after["contracts"]
            )
        await connection.execute(SYNC_WRITER_SQL)  # it writes as the sync: not counted as local edits
        await connection.executemany(CEILING_EMPLOYEES, employees)
        await connection.executemany(CEILING_CONTRACTS, contracts)

    async def full(connection: asyncpg.Connection, events: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
        assert same_rows is not None
        employees, persons, contracts, schedules, audit, leave, inbox = [], [], [], [], [], [], []
        rewritten_contracts: list[int] = []
        rewritten_schedules: list[int] = []
        for event_id, after in events:
            employee_id, person_id, synced, period_edits_seen, version = same_rows.employees[after["employee_id"]]
            latest = after["employments"][-1]
            employees.append(
                (
                    employee_id,
                    after["number"],
                    after["function"]["id"],
                    after["department"]["id"],
                    after["labour_agreement"]["id"],
                    date.fromisoformat(latest["start"]),
                    _date_or_none(latest["end"]),
                    synced,
                    period_edits_seen,
                    version,
                )
            )
            persons.append(
                (person_id, *[_date_or_none(after[f]) if f == "birthday" else after[f] for f in PERSON_FIELDS])
            )
            # Periods only where ours rewrote them (it leaves unchanged ones alone).
            changed = same_rows.changed[event_id]
            if "contracts" in changed:
                rewritten_contracts.append(employee_id)
                contracts += [
                    (
                        employee_id,
                        c["contract_id"],
                        date.fromisoformat(c["start"]),
                        _date_or_none(c["end"]),
                        c["hours_per_week"] and Decimal(c["hours_per_week"]),
                    )
                    for c in after["contracts"]
                ]
            if "schedules" in changed:
                rewritten_schedules.append(employee_id)
                schedules += [
                    (
                        employee_id,
                        date.fromisoformat(s["start"]),
                        Decimal(s["hours_per_week"]),
                        s["parttime_percentage"] and Decimal(s["parttime_percentage"]),
                    )
                    for s in after["schedules"]
                ]
            audit.append((event_id, *same_rows.audit[event_id]))
            if event_id in same_rows.leave:
                leave.append((*same_rows.leave[event_id], event_id))
            inbox.append((f"ceiling-{run}", event_id, same_rows.outcomes[event_id]))
        await connection.execute(SYNC_WRITER_SQL)
        await connection.executemany(FULL_EMPLOYEES, employees)
        await connection.executemany(FULL_PERSONS, persons)
        if rewritten_contracts:
            await connection.execute(
                "DELETE FROM rt_contract_periods WHERE employee_id = ANY($1::int[])", rewritten_contracts
            )
            await connection.executemany("INSERT INTO rt_contract_periods VALUES ($1, $2, $3, $4, $5)", contracts)
        if rewritten_schedules:
            await connection.execute(
                "DELETE FROM rt_schedule_periods WHERE employee_id = ANY($1::int[])", rewritten_schedules
            )
            await connection.executemany("INSERT INTO rt_schedule_periods VALUES ($1, $2, $3, $4)", schedules)
        await connection.executemany(FULL_AUDIT, audit)
        if leave:
            await connection.executemany(FULL_LEAVE, leave)
        await connection.executemany(FULL_INBOX, inbox)

    async def process(records: list[Any]) -> None:
        nonlocal batches
        events = []
        for record in records:
            value = json.loads(record.value)
            events.append((uuid.UUID(value["event_id"]), value["after"]))
        # Transactions of the size ours uses: the same rows in the same units of work.
        size = settings.reconcile_batch_max
        for start in range(0, len(events), size):
            async with pool.acquire() as connection, connection.transaction():
                await (narrow if same_rows is None else full)(connection, events[start : start + size])
            batches += 1

    await consumer.start()
    try:
        consumer.assign(list(starts))
        for partition, offset in starts.items():
            consumer.seek(partition, offset)
        elapsed = await replay(consumer, count, process)
    finally:
        await consumer.stop()
    return elapsed, batches


# --- report ------------------------------------------------------------------------------------------


def profile_lines(profile: cProfile.Profile, top: int) -> list[str]:
    lines = []
    for sort, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text)
        stats.strip_dirs().sort_stats(sort).print_stats(top)
        body = text.getvalue()
        start = body.find("   ncalls")
        lines.append(f"--- cProfile of ours, top {top} by {title} ---")
        lines.extend(line for line in body[start:].splitlines() if line.strip())
    return lines


async def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-reconcile-{uuid.uuid4().hex[:8]}"
    url = bench_database_url(args.database_url)
    settings = bench_settings(prefix, url)
    await prepare_database(url)
    async with bench_topics(settings):
        pool = await create_pool(settings)
        profile = cProfile.Profile() if args.profile else None
        try:
            employees, setup_outcomes, setup_s = await set_up(pool, args.events)
            tally = QueryTally()
            ours_pool = await tallied_pool(settings, tally) if args.profile else pool
            rounds: list[Split] = []
            ceilings: list[tuple[float, int]] = []
            narrow_ceilings: list[tuple[float, int]] = []
            try:
                for round_ in range(args.rounds):
                    starts = await end_offsets(settings)
                    updates = employees.next_round(round_)
                    async with KafkaPublisher(settings) as publisher:
                        await publisher.publish_many([(settings.topics.employee_changes, e.key, e) for e in updates])
                    payload = sum(len(e.model_dump_json()) for e in updates[:100]) // min(len(updates), 100)
                    # The worker freezes what it built at start-up (worker_app.run_worker); the setup's objects
                    # here would otherwise be scanned by every full collection during the timed run, which the
                    # worker never does.
                    del updates
                    gc.collect()
                    gc.freeze()
                    rounds.append(await run_ours(settings, ours_pool, args.events, profile))
                    # The ceilings replay the round's events right after ours, on the same state of the tables.
                    same_rows = await written_by_ours(pool)
                    ceilings.append(await run_ceiling(settings, pool, args.events, starts, round_, same_rows))
                    narrow_ceilings.append(await run_ceiling(settings, pool, args.events, starts, round_, None))
            finally:
                if ours_pool is not pool:
                    await ours_pool.close()
            ours = sorted(rounds, key=lambda split: split.elapsed_s)[len(rounds) // 2]
            ceiling_s, batches = sorted(ceilings)[len(ceilings) // 2]
            narrow_ceiling_s, _ = sorted(narrow_ceilings)[len(narrow_ceilings) // 2]
        finally:
            await pool.close()

        ours_s = ours.elapsed_s
        ours_rate, ceiling_rate, narrow_rate = (args.events / s for s in (ours_s, ceiling_s, narrow_ceiling_s))
        ratio, narrow_ratio = ours_rate / ceiling_rate, ours_rate / narrow_rate
        per_event_ms = {
            "parse": ours.parse_s / args.events * 1000,
            "handle": ours.handle_s / args.events * 1000,
            "publish": ours.publish_s / args.events * 1000,
            "rest": (ours_s - ours.parse_s - ours.handle_s - ours.publish_s) / args.events * 1000,
        }
        figures = {
            "events": args.events,
            "event_bytes": payload,
            "partitions": settings.kafka_topic_partitions,
            "setup_s": round(setup_s, 3),
            "rounds": args.rounds,
            "ours_s": round(ours_s, 3),
            "ours_runs_s": [round(split.elapsed_s, 3) for split in rounds],
            "ours_events_per_s": round(ours_rate, 1),
            "ours_ms_per_event": round(ours_s / args.events * 1000, 3),
            "ours_parse_ms": round(per_event_ms["parse"], 3),
            "ours_handle_ms": round(per_event_ms["handle"], 3),
            "ours_publish_ms": round(per_event_ms["publish"], 3),
            "ours_rest_ms": round(per_event_ms["rest"], 3),
            "ours_publish_calls": ours.publishes,
            "ours_outcomes": sum(v for k, v in ours.outcomes.items() if k != "none"),
            "ours_dead_lettered": ours.outcomes.get("none", 0),
            "ceiling_s": round(ceiling_s, 3),
            "ceiling_runs_s": [round(seconds, 3) for seconds, _ in ceilings],
            "ceiling_events_per_s": round(ceiling_rate, 1),
            "ceiling_batches": batches,
            "ratio": round(ratio, 4),
            "target_ratio": TARGET_RATIO,
            "target_met": ratio >= TARGET_RATIO,
            "narrow_ceiling_s": round(narrow_ceiling_s, 3),
            "narrow_ceiling_runs_s": [round(seconds, 3) for seconds, _ in narrow_ceilings],
            "narrow_ceiling_events_per_s": round(narrow_rate, 1),
            "narrow_ratio": round(narrow_ratio, 4),
            "profiled": bool(args.profile),
        }
        if args.profile:
            figures["ours_queries_per_event"] = round(tally.count / (args.events * args.rounds), 2)
            figures["ours_query_ms_per_event"] = round(tally.seconds / (args.events * args.rounds) * 1000, 3)
        return {
            "prefix": prefix,
            "setup_outcomes": setup_outcomes,
            "outcomes": dict(ours.outcomes),
            "profile": profile_lines(profile, args.top) if profile is not None else [],
            "statements": [
                (statement, tally.by_statement[statement], seconds)
                for statement, seconds in tally.seconds_by_statement.most_common()
            ],
            "figures": figures,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="linked employees = update events per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (ours, then the ceilings); medians count")
    parser.add_argument("--profile", action="store_true", help="run ours under cProfile (slower) and print it")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile table")
    add_database_url_argument(parser)
    args = parser.parse_args()
    if min(args.events, args.rounds) < 1:
        parser.error("--events and --rounds must be at least 1")

    result = asyncio.run(run(args))
    f = result["figures"]
    print(f"Reconciler replay of {f['events']} update events of linked employees (~{f['event_bytes']} bytes each)")
    print(f"  topics {result['prefix']}.*; setup {f['setup_s']:.1f} s (not timed): {result['setup_outcomes']}")
    print(
        f"  ours:     {f['ours_events_per_s']:8.1f} events/s  ({f['ours_s']:.3f} s, median of {f['ours_runs_s']};"
        f" {f['ours_ms_per_event']:.2f} ms/event{', under cProfile' if f['profiled'] else ''})"
    )
    print(
        f"            per event: parse {f['ours_parse_ms']:.2f} ms,"
        f" handle (batched transactions) {f['ours_handle_ms']:.2f} ms, outcome publish {f['ours_publish_ms']:.2f} ms,"
        f" consume/rest {f['ours_rest_ms']:.2f} ms"
    )
    print(f"            outcomes: {result['outcomes']}")
    print(
        f"  ceiling:  {f['ceiling_events_per_s']:8.1f} events/s  ({f['ceiling_s']:.3f} s,"
        f" median of {f['ceiling_runs_s']}; {f['ceiling_batches']} transactions of aiokafka consume + asyncpg"
        " executemany of every row ours writes)"
    )
    print(
        f"  narrow ceiling: {f['narrow_ceiling_events_per_s']:8.1f} events/s ({f['narrow_ceiling_s']:.3f} s,"
        f" median of {f['narrow_ceiling_runs_s']}; only the columns the events change, for context)"
    )
    verdict = "meets" if f["target_met"] else "MISSES"
    print(f"  ratio:    {f['ratio']:.1%} of the ceiling: {verdict} the target of {TARGET_RATIO:.0%}")
    print(f"            ({f['narrow_ratio']:.1%} of the narrow ceiling)")
    if f["profiled"]:
        print(
            f"  statements of ours: {f['ours_queries_per_event']:.1f} per event, {f['ours_query_ms_per_event']:.2f} ms"
            " per event waiting for them (client side, under cProfile):"
        )
        events = f["events"] * f["rounds"]
        for statement, count, seconds in result["statements"]:
            print(f"    {count / events:6.2f}/event {seconds / events * 1000:6.3f} ms/event  {statement}")
    for line in result["profile"]:
        print(line)
    print(json.dumps(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
