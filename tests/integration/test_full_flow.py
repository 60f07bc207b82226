"""End to end: Nmbrs sandbox -> poller -> Kafka -> reconciler -> PostgreSQL -> outcomes, in a worker process."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from tests.support import DEMO_TARGET, TARGET_TABLES, Sandbox, worker_env
from worker.adapters.target_store_load import load_target_state
from worker.config import Settings
from worker.domain.target_state import parse_target_file

TopicReader = Callable[..., Awaitable[list[dict[str, Any]]]]


async def wait_for(pool: asyncpg.Pool, sql: str, predicate: Callable[[Any], bool], timeout_s: float = 60) -> Any:
    """Poll `sql` until its value satisfies `predicate`; fail with the last value after `timeout_s`."""
    value = None
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate(value := await pool.fetchval(sql)):  # noqa: ASYNC110 - polling the database
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"{sql!r} gave {value!r} after {timeout_s} s")
    return value


@pytest.fixture
async def demo_store(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute(f"TRUNCATE {TARGET_TABLES}, nmbrs_snapshots, poll_runs, sync_requests RESTART IDENTITY CASCADE")
    async with pool.acquire() as connection:
        await load_target_state(connection, parse_target_file(DEMO_TARGET.read_text(), DEMO_TARGET.name))
    return pool


async def test_a_change_in_nmbrs_reaches_regitijd_through_the_whole_chain(
    start_worker: Callable[..., Awaitable[None]],
    integration_settings: Settings,
    sandbox: Sandbox,
    demo_store: asyncpg.Pool,
    read_topic: TopicReader,
) -> None:
    settings = integration_settings
    await start_worker(
        settings, NMBRS_BASE_URL=f"{sandbox.base_url}/soap/v3/", AUTO_LINK_MIN_SCORE="0.95", POLL_INTERVAL_S="3600"
    )

    # The first poll runs at start; every Nmbrs record ends up linked, asked about, or applied.
    (report,) = await read_topic(settings.topics.status, 1)
    assert report["result"] == "published"
    published = sum(report["changes"].values())
    await wait_for(
        demo_store, "SELECT count(*) FROM processed_events WHERE consumer = 'reconciler'", lambda n: n == published
    )
    assert await demo_store.fetchval("SELECT count(*) FROM rt_companies WHERE nmbrs_company_id IS NOT NULL") == 3
    linked = await demo_store.fetchval("SELECT count(*) FROM sync_links WHERE entity = 'employee'")
    pending = await demo_store.fetchval("SELECT count(*) FROM pending_decisions WHERE entity = 'employee'")
    assert linked > 0 and pending > 0
    assert linked + pending == report["changes"]["employee:c"]
    questions = await read_topic(settings.topics.decisions_needed, pending)
    assert {q["kind"] for q in questions} == {"needs_decision"}

    # An edit in Nmbrs for a linked employee, then "Synchroniseren".
    nmbrs_id = await demo_store.fetchval(
        "SELECT min(nmbrs_id) FROM sync_links WHERE entity = 'employee' AND regitijd_id IS NOT NULL"
    )
    await sandbox.admin(
        "PATCH", f"employees/{nmbrs_id}", {"department": {"id": 77, "code": 77, "description": "Planning"}}
    )
    before = await demo_store.fetchval("SELECT count(*) FROM processed_events WHERE consumer = 'reconciler'")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker.entrypoints.cli", "sync-now", env=worker_env(settings)
    )
    assert await process.wait() == 0

    await wait_for(
        demo_store,
        f"SELECT department_id FROM rt_employees WHERE nmbrs_employee_id = {nmbrs_id}",
        lambda department: department == 77,
    )
    assert await demo_store.fetchval("SELECT description FROM rt_departments WHERE nmbrs_id = 77") == "Planning"
    await wait_for(
        demo_store, "SELECT count(*) FROM processed_events WHERE consumer = 'reconciler'", lambda n: n >= before + 1
    )
    outcomes = await read_topic(settings.topics.outcomes, None, quiet_s=3)
    applied = [
        o
        for o in outcomes
        if o["key"] == f"employee:{nmbrs_id}"
        and o["kind"] == "applied"
        and o["details"].get("changed_fields") == ["department_id"]
    ]
    assert applied, "the department change was applied and reported"

    # A marriage in Nmbrs: the partner's name first from now on. The linked card follows, as an ordinary
    # change of a payroll-owned name; the employee never becomes a question again.
    own = await demo_store.fetchrow(
        "SELECT p.prefix, p.last_name FROM crm_persons p JOIN sync_links l ON l.crm_id = p.person_id"
        f" WHERE l.entity = 'employee' AND l.nmbrs_id = {nmbrs_id}"
    )
    own_name = " ".join(part for part in (own["prefix"], own["last_name"]) if part)
    await sandbox.admin(
        "PATCH",
        f"employees/{nmbrs_id}",
        {"personal_info": {"partner_prefix": "de", "partner_last_name": "Groot", "name_usage": "partner_then_own"}},
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker.entrypoints.cli", "sync-now", env=worker_env(settings)
    )
    assert await process.wait() == 0
    await wait_for(
        demo_store,
        "SELECT p.prefix || ' ' || p.last_name FROM crm_persons p JOIN sync_links l ON l.crm_id = p.person_id"
        f" WHERE l.entity = 'employee' AND l.nmbrs_id = {nmbrs_id}",
        lambda name: name == f"de Groot-{own_name}",
    )
    assert not await demo_store.fetchval(f"SELECT count(*) FROM pending_decisions WHERE nmbrs_id = {nmbrs_id}")

    # Two hires whose RegiCRM cards were typed as HR types them: the married name, an abbreviated tussenvoegsel.
    company, organisation = await demo_store.fetchrow(
        "SELECT nmbrs_company_id, organisation_id FROM rt_companies WHERE nmbrs_company_id IS NOT NULL"
        " ORDER BY nmbrs_company_id LIMIT 1"
    )
    cards, hires = {}, {}
    for ref, first_name, prefix, last_name, nmbrs in (
        (
            "married",
            "Femke",
            "de",
            "Wit-Jonker",
            {
                "last_name": "Jonker",
                "partner_prefix": "de",
                "partner_last_name": "Wit",
                "name_usage": "partner_then_own",
            },
        ),
        ("typed", "Joost", "v.d.", "Heuvel", {"prefix": "van den", "last_name": "Heuvel"}),
    ):
        cards[ref] = await demo_store.fetchval(
            """INSERT INTO crm_persons (first_name, prefix, last_name, organisation_id) VALUES ($1, $2, $3, $4)
               RETURNING person_id""",
            first_name,
            prefix,
            last_name,
            organisation,
        )
        body = {"company_id": company, "first_name": first_name, "start": "2026-11-01", "hours_per_week": 32}
        hires[ref] = (await sandbox.admin("POST", "employees", body | nmbrs))["id"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "worker.entrypoints.cli", "sync-now", env=worker_env(settings)
    )
    assert await process.wait() == 0
    for ref, note in (("married", "naamstelling"), ("typed", "'v.d.' read as 'van den'")):
        best = await wait_for(
            demo_store,
            f"SELECT candidates->0 FROM pending_decisions WHERE entity = 'employee' AND nmbrs_id = {hires[ref]}",
            lambda candidate: candidate is not None,
        )
        best = json.loads(best)
        assert best["person_id"] == cards[ref], (ref, best)
        surname = next(c for c in best["comparisons"] if c["field"] == "last_name")
        assert surname["level"] == "exact" and note in surname["note"], (ref, surname)

    # The status topic tells operators what needs a human.
    statuses = {s["key"]: s for s in await read_topic(settings.topics.status, None, quiet_s=3)}
    employees = statuses["step:employees"]  # the two hires wait for a decision too
    assert employees["status"] == "red" and employees["counts"]["pending"] == pending + len(hires)
    assert statuses["step:companies"]["status"] == "green"
