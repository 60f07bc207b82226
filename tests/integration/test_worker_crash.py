"""A worker killed in the middle of a stream of changes: a new worker finishes the stream, and no change has a
second effect (batches redelivered after the kill are recognised by the inbox)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.builders import employee_change, nmbrs_employee
from tests.support import RECONCILE_NOW, TopicReader, start_worker_process, worker_env
from worker.adapters.kafka import KafkaPublisher, ensure_topics
from worker.adapters.target_store_load import load_target_state
from worker.config import Settings
from worker.domain.changes import EmployeeChanged, Op
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import ContractPeriod, NmbrsEmployee
from worker.domain.target_state import OrganisationState, PersonState, TargetState
from worker.service.reconciler import handle_changes

EMPLOYEES = 60
FIRST_ID = 4000


def person(index: int) -> PersonState:
    # Distinct first letters of the surname: each person is the one clear candidate of its employee.
    surname = "".join(chr(ord("a") + (index // 26**k) % 26) for k in range(3)).capitalize() + "stra"
    return PersonState(
        ref=f"p{index}",
        first_name="Kim",
        last_name=surname,
        birthday=date(1970, 1, 1) + timedelta(days=index * 97),
        email_work=f"kim{index}@zon.nl",
        organisation="org",
    )


def employee(index: int, hours: int = 40) -> NmbrsEmployee:
    p = person(index)
    return nmbrs_employee(
        FIRST_ID + index,
        first_name=p.first_name,
        prefix=None,
        last_name=p.last_name,
        birthday=p.birthday,
        email_work=p.email_work,
        bsn_hash=f"{index:064x}",
        contracts=(ContractPeriod(contract_id=1, start=date(2026, 1, 1), hours_per_week=Decimal(hours)),),
    )


async def start(settings: Settings, log: Path, **env: str) -> asyncio.subprocess.Process:
    return await start_worker_process(worker_env(settings, POLL_ENABLED="false", **env), log)


def fail_with_log(log: Path, message: str) -> None:
    print(log.read_text()[-5000:])
    pytest.fail(message)


async def wait_handled(pool: asyncpg.Pool, ids: list[uuid.UUID], at_least: int, timeout_s: float, log: Path) -> int:
    """Wait until the reconciler's inbox holds at least `at_least` of the events `ids`."""
    deadline = time.monotonic() + timeout_s
    while (count := await handled(pool, ids)) < at_least:
        if time.monotonic() > deadline:
            fail_with_log(log, f"{count} of {at_least} events handled after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)
    return count


async def handled(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> int:
    sql = "SELECT count(*) FROM processed_events WHERE consumer = 'reconciler' AND event_id = ANY($1::uuid[])"
    return int(await pool.fetchval(sql, ids))


async def test_a_worker_killed_mid_stream_applies_every_change_exactly_once(
    pool: asyncpg.Pool, integration_settings: Settings, read_topic: TopicReader, tmp_path: Path
) -> None:
    settings = integration_settings
    await ensure_topics(settings)
    await pool.execute(
        "TRUNCATE sync_links, pending_decisions, audit_log, processed_events, rt_leave_balances,"
        " rt_contract_periods, rt_schedule_periods, rt_employment_periods, rt_employees, rt_companies,"
        " crm_accounts, crm_persons, crm_organisations RESTART IDENTITY CASCADE"
    )
    async with pool.acquire() as connection:
        await load_target_state(
            connection,
            TargetState(
                organisations=(OrganisationState(ref="org", name="Bakkerij De Zon B.V."),),
                persons=tuple(person(i) for i in range(EMPLOYEES)),
            ),
        )
    created = await handle_changes(
        [employee_change(employee(i)) for i in range(EMPLOYEES)],
        pool,
        MatchPolicy(auto_link_min_score=0.9),
        lambda: RECONCILE_NOW,
    )
    assert [o.kind.value for o in created].count("auto_linked") == EMPLOYEES

    # Two changes per employee (hours 40 -> 32 -> 24), one after the other: a change applied twice would
    # show (the second delivery of 40 -> 32 after 32 -> 24 writes 32 again). The first 20 are published a
    # second time as well, as a producer retry would, so the stream holds duplicates whenever the kill lands.
    updates: list[EmployeeChanged] = []
    for i in range(EMPLOYEES):
        updates += [
            employee_change(employee(i, after), Op.UPDATE, employee(i, before), version)
            for version, (before, after) in enumerate(((40, 32), (32, 24)), start=2)
        ]
    async with KafkaPublisher(settings) as publisher:
        await publisher.publish_many([(settings.topics.employee_changes, e.key, e) for e in updates + updates[:20]])
    ids = [e.event_id for e in updates]

    log = tmp_path / "workers.log"
    first = await start(settings, log, RECONCILE_BATCH_MAX="7", RECONCILE_BATCH_WAIT_S="0.01")
    try:
        await wait_handled(pool, ids, 15, 90, log)
    finally:
        first.kill()  # no shutdown: offsets of handled batches may not be committed
        await first.wait()
    handled_before_kill = await handled(pool, ids)
    second = await start(settings, log)
    try:
        await wait_handled(pool, ids, len(updates), 90, log)
    finally:
        second.terminate()
        await second.wait()

    # Every change had exactly one effect ...
    applied = await pool.fetch(
        "SELECT causation_id, count(*) AS n FROM audit_log WHERE action = 'apply' AND causation_id = ANY($1::uuid[])"
        " GROUP BY 1",
        ids,
    )
    assert {r["causation_id"]: r["n"] for r in applied} == dict.fromkeys(ids, 1)
    hours = await pool.fetch("SELECT DISTINCT hours_per_week FROM rt_contract_periods")
    assert [r["hours_per_week"] for r in hours] == [Decimal(24)]
    # ... and its outcomes: the applied one and the leave recalculation, with the same ids when repeated.
    # Re-published outcomes sit between the others: read the whole topic (8 s is ample for a few hundred).
    outcomes = await read_topic(settings.topics.outcomes, count=None, quiet_s=8)
    by_cause: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for outcome in outcomes:
        by_cause[outcome["causation_id"]][outcome["kind"]].add(outcome["outcome_id"])
    for event_id in map(str, ids):
        kinds: dict[str, Any] = by_cause[event_id]
        assert set(kinds) == {"applied", "leave_recalculated"}, event_id
        assert all(len(outcome_ids) == 1 for outcome_ids in kinds.values())
    assert 0 < handled_before_kill <= len(updates)
