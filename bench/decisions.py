"""Decision latency: a decision event posted -> its outcome published, under a steady stream of changes.

A real `nmbrs-sync worker` process runs on topics and a database of its own (--database-url, else
$BENCH_DATABASE_URL, else `nmbrs_sync_bench` next to the configured one; created when missing; its public
schema is dropped and migrated: never the demo or test database). N employees wait for a
decision (their questions are prepared through the reconciler); M more are linked and keep receiving
change events at a steady rate while the decisions (koppelen) are posted one by one at a steady rate.
Each decision's latency is measured from just before its publish to the arrival of its outcome.
Prints p50/p90/p99/max and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from support import ROOT, add_database_url_argument, bench_database_url, bench_settings, bench_topics, prepare_database

from worker.adapters.kafka import client_kwargs
from worker.config import Settings
from worker.domain.changes import ChangeSource, EmployeeChanged, Entity, Op
from worker.domain.decisions import Decision
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import CodeRef, ContractPeriod, EmploymentPeriod, NmbrsEmployee
from worker.service.reconciler import handle_change

NOW = datetime.now(UTC)


def birthday(person_id: int) -> date:
    return date(1960, 1, 1) + timedelta(days=person_id * 37 % 15_000)


def surname(person_id: int) -> str:
    """A made-up surname per person whose first four letters differ from every other one's (numbered names
    look alike to the matcher, which then rightly asks instead of linking)."""
    n = (person_id * 7919 + 12345) % 26**4
    return "".join(chr(ord("a") + (n // 26**k) % 26) for k in range(4)).capitalize() + "ink"


def employee(employee_id: int, department: int = 7) -> NmbrsEmployee:
    """The Nmbrs side of person `employee_id`: the same name, birthday and e-mail (an exact match)."""
    return NmbrsEmployee(
        employee_id=employee_id,
        company_id=1,
        first_name="Sanne",
        last_name=surname(employee_id),
        birthday=birthday(employee_id),
        email_work=f"medewerker{employee_id}@bench.example",
        department=CodeRef(id=department, code=str(department), description=f"Afd {department}"),
        employments=(EmploymentPeriod(employment_id=1, start=date(2024, 1, 1)),),
        contracts=(ContractPeriod(contract_id=1, start=date(2024, 1, 1), hours_per_week=Decimal("36")),),
    )


def change(record: NmbrsEmployee, version: int, before: NmbrsEmployee | None = None) -> EmployeeChanged:
    return EmployeeChanged(
        event_id=uuid.uuid4(),
        entity=Entity.EMPLOYEE,
        key=f"employee:{record.employee_id}",
        op=Op.UPDATE if before else Op.CREATE,
        version=version,
        before=before,
        after=record,
        changed_fields=("department",) if before else (),
        source=ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW),
        ts=NOW,
    )


async def prepare(settings: Settings, decisions: int, linked: int) -> tuple[list[int], list[int]]:
    """A fresh schema with persons, `decisions` open questions and `linked` already linked employees."""
    url = settings.database_url.get_secret_value()
    await prepare_database(url)
    connection = await asyncpg.connect(url)
    await connection.executemany(
        "INSERT INTO crm_persons (person_id, first_name, last_name, birthday, email_work) VALUES ($1, $2, $3, $4, $5)",
        [
            (i, "Sanne", surname(i), birthday(i), f"medewerker{i}@bench.example")
            for i in range(1, decisions + linked + 1)
        ],
    )
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    asked = list(range(1, decisions + 1))
    to_link = list(range(decisions + 1, decisions + linked + 1))
    for employee_id in asked:
        await handle_change(change(employee(employee_id), 1), pool, MatchPolicy(), lambda: NOW)
    for employee_id in to_link:  # exact matches: the definite rule links them
        await handle_change(change(employee(employee_id), 1), pool, MatchPolicy(auto_link_min_score=0.9), lambda: NOW)
    await pool.close()
    links = await connection.fetchval("SELECT count(*) FROM sync_links WHERE entity = 'employee'")
    questions = await connection.fetchval("SELECT count(*) FROM pending_decisions WHERE entity = 'employee'")
    await connection.close()
    if (links, questions) != (linked, decisions):
        raise RuntimeError(f"setup gave {links} links and {questions} questions, wanted {linked} and {decisions}")
    return asked, to_link


async def run(
    decisions: int, linked: int, decision_rate: float, change_rate: float, database_url: str | None
) -> dict[str, object]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    # Reads a .env file as the worker process does, so both talk to the same broker.
    settings = bench_settings(prefix, bench_database_url(database_url), env_file=True)
    asked, to_link = await prepare(settings, decisions, linked)
    async with bench_topics(settings):
        env = dict(
            os.environ,
            KAFKA_APP_ID=prefix,
            DATABASE_URL=settings.database_url.get_secret_value(),
            STATUS_PORT="0",
            POLL_ENABLED="false",
            LOG_LEVEL="WARNING",
            KAFKA_TOPIC_PARTITIONS="4",
            **{f"TOPICS__{name.upper()}": topic for name, topic in settings.topics.model_dump().items()},
        )
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker.entrypoints.cli",
            "worker",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", linger_ms=0)
        consumer = AIOKafkaConsumer(
            settings.topics.outcomes, **client_kwargs(settings), group_id=None, auto_offset_reset="latest"
        )
        await producer.start()
        await consumer.start()
        sent: dict[str, float] = {}
        latencies: list[float] = []
        done = asyncio.Event()
        warmed = asyncio.Event()

        async def collect() -> None:
            async for record in consumer:
                outcome = json.loads(record.value)
                started = sent.pop(outcome["causation_id"], None)
                if started is not None:
                    latencies.append(time.perf_counter() - started)
                    warmed.set()
                    if len(latencies) == decisions:
                        done.set()

        async def stream_changes() -> None:
            version = 1
            while not done.is_set():
                version += 1
                for employee_id in to_link:
                    before, after = employee(employee_id, version - 1 + 6), employee(employee_id, version + 6)
                    event = change(after, version, before)
                    await producer.send(
                        settings.topics.employee_changes, event.model_dump_json().encode(), key=event.key.encode()
                    )
                    await asyncio.sleep(1 / change_rate)
                    if done.is_set():
                        return

        collector = asyncio.create_task(collect())
        # Warm-up: wait until the worker answers a first decision, so start-up is not measured.
        warm = Decision(
            decision_id=uuid.uuid4(),
            nmbrs_id=asked[0],
            action="overslaan",
            decided_by="bench",
            decided_at=datetime.now(UTC),
        )
        sent[str(warm.decision_id)] = time.perf_counter()
        await producer.send_and_wait(settings.topics.decisions, warm.model_dump_json().encode(), key=warm.key.encode())
        await asyncio.wait_for(warmed.wait(), timeout=120)
        latencies.clear()
        changes = asyncio.create_task(stream_changes())
        started = time.perf_counter()
        for employee_id in asked:
            choice = Decision(
                decision_id=uuid.uuid4(),
                nmbrs_id=employee_id,
                action="koppelen",
                target_id=employee_id,
                decided_by="bench",
                decided_at=datetime.now(UTC),
            )
            sent[str(choice.decision_id)] = time.perf_counter()
            await producer.send_and_wait(
                settings.topics.decisions, choice.model_dump_json().encode(), key=choice.key.encode()
            )
            await asyncio.sleep(1 / decision_rate)
        await asyncio.wait_for(done.wait(), timeout=120)
        elapsed = time.perf_counter() - started
        changes.cancel()
        collector.cancel()
        await producer.stop()
        await consumer.stop()
        worker.terminate()
        await worker.wait()
        ordered = sorted(latencies)

        def percentile(p: float) -> float:
            return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)

        return {
            "decisions": decisions,
            "linked_employees_changing": linked,
            "decision_rate_per_s": decision_rate,
            "change_rate_per_s": change_rate,
            "wall_s": round(elapsed, 2),
            "p50_ms": percentile(0.50),
            "p90_ms": percentile(0.90),
            "p99_ms": percentile(0.99),
            "max_ms": round(1000 * ordered[-1], 1),
            "mean_ms": round(1000 * statistics.mean(ordered), 1),
            "target_p99_ms": 250,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=300, help="decisions to post")
    parser.add_argument("--linked", type=int, default=200, help="linked employees receiving changes meanwhile")
    parser.add_argument("--decision-rate", type=float, default=10.0, help="decisions per second")
    parser.add_argument("--change-rate", type=float, default=50.0, help="change events per second")
    add_database_url_argument(parser)
    args = parser.parse_args()
    figures = asyncio.run(run(args.decisions, args.linked, args.decision_rate, args.change_rate, args.database_url))
    print(
        f"{figures['decisions']} decisions at {figures['decision_rate_per_s']}/s under {figures['change_rate_per_s']} "
        f"changes/s: p50 {figures['p50_ms']} ms, p90 {figures['p90_ms']} ms, p99 {figures['p99_ms']} ms "
        f"(target p99 < 250 ms), max {figures['max_ms']} ms"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
