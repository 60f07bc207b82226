"""`target load` against the real PostgreSQL: the demo starting state, idempotent reloads, all-or-nothing."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from worker.adapters.target_store_load import TargetLoadError, load_target_state
from worker.config import Settings
from worker.domain.target_state import TargetState, parse_target_file
from worker.entrypoints.target_cli import cmd_target_load

DEMO_TARGET = Path(__file__).resolve().parents[2] / "worker" / "sandbox" / "data" / "demo-target.yaml"
TABLES = (
    "crm_organisations",
    "crm_persons",
    "crm_accounts",
    "crm_characteristics",
    "rt_companies",
    "rt_employees",
    "rt_schedule_periods",
    "rt_time_categories",
    "rt_labour_agreements",
    "audit_log",
)


@pytest.fixture
async def empty_store(pool: asyncpg.Pool) -> asyncpg.Pool:
    """Every test starts from an empty target store: the session shares one database."""
    await pool.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    return pool


@pytest.fixture(scope="module")
def demo() -> TargetState:
    return parse_target_file(DEMO_TARGET.read_text(encoding="utf-8"), DEMO_TARGET.name)


async def load(pool: asyncpg.Pool, state: TargetState) -> Any:
    async with pool.acquire() as connection:
        return await load_target_state(connection, state)


async def contents(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Every row of every touched table, in a stable order, to prove that nothing changed."""
    return {table: [dict(row) for row in await pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")] for table in TABLES}


async def test_loading_the_demo_fills_regicrm_and_regitijd(empty_store: asyncpg.Pool, demo: TargetState) -> None:
    report = await load(empty_store, demo)

    counts = report.as_dict()
    assert counts["organisations"]["inserted"] == 3
    assert counts["persons"]["inserted"] == len(demo.persons)
    assert counts["blue_employees"]["inserted"] == 2
    assert counts["companies"] == {"inserted": 2, "updated": 0, "deleted": 0, "unchanged": 0}
    assert await empty_store.fetchval("SELECT count(*) FROM crm_organisations") == 3
    assert await empty_store.fetchval("SELECT count(*) FROM crm_persons") == len(demo.persons)
    assert await empty_store.fetchval("SELECT count(*) FROM crm_accounts") == sum(
        p.account is not None for p in demo.persons
    )
    assert await empty_store.fetchval("SELECT count(*) FROM crm_characteristics") == sum(
        len(p.characteristics) for p in demo.persons
    )
    assert await empty_store.fetchval("SELECT count(*) FROM rt_time_categories") == len(demo.time_categories)
    # The right Anna de Jong is the one with the login account.
    assert await empty_store.fetchval(
        "SELECT p.external_ref FROM crm_accounts JOIN crm_persons p USING (person_id) WHERE username = $1",
        "anna.dejong",
    ) == ("person-anna-de-jong")
    # Blue employees: manual, in a RegiTijd company of their organisation that has no Nmbrs id (yet).
    blue = await empty_store.fetch(
        """SELECT p.external_ref, e.number, c.nmbrs_company_id, o.external_ref AS organisation,
                  s.hours_per_week
           FROM rt_employees e JOIN crm_persons p USING (person_id) JOIN rt_companies c USING (company_id)
           JOIN crm_organisations o ON o.organisation_id = c.organisation_id
           JOIN rt_schedule_periods s ON s.employee_id = e.employee_id AND s.start_date = e.employment_start
           WHERE e.source = 'manual' ORDER BY e.number"""
    )
    assert [tuple(row) for row in blue] == [
        ("person-niels-smit", "H-001", None, "org-van-der-meer-techniek", 8),
        ("person-henk-hoekstra", "H-002", None, "org-zorggroep-oost-veluwe", 16),
    ]
    cao = await empty_store.fetchrow("SELECT * FROM rt_labour_agreements WHERE nmbrs_id = 1")
    assert (cao["number"], cao["extra_leave_hours_fulltime"], cao["fulltime_hours_per_week"]) == (
        "624",
        16,
        38,
    )
    # One audit row per inserted record, by the loader.
    assert await empty_store.fetchval("SELECT count(*) FROM audit_log") == report.changes
    assert await empty_store.fetchval("SELECT count(DISTINCT actor) FROM audit_log") == 1
    assert await empty_store.fetchval("SELECT actor FROM audit_log LIMIT 1") == "target load"


async def test_loading_the_same_file_again_changes_nothing(empty_store: asyncpg.Pool, demo: TargetState) -> None:
    await load(empty_store, demo)
    before = await contents(empty_store)

    report = await load(empty_store, demo)

    assert report.changes == 0
    assert all(c["inserted"] == c["updated"] == c["deleted"] == 0 for c in report.as_dict().values())
    assert report.as_dict()["persons"]["unchanged"] == len(demo.persons)
    assert report.as_dict()["blue_employees"]["unchanged"] == 2
    assert await contents(empty_store) == before  # audit_log included: not one row more


async def test_changing_one_person_updates_exactly_that_person(empty_store: asyncpg.Pool, demo: TargetState) -> None:
    await load(empty_store, demo)
    audit_rows = await empty_store.fetchval("SELECT count(*) FROM audit_log")
    text = DEMO_TARGET.read_text(encoding="utf-8").replace('"jan78@ziggo.nl"', '"jan.vdberg@ziggo.nl"', 1)
    changed = parse_target_file(text, "copy.yaml")

    report = await load(empty_store, changed)

    assert report.changes == 1
    assert report.as_dict()["persons"] == {
        "inserted": 0,
        "updated": 1,
        "deleted": 0,
        "unchanged": len(demo.persons) - 1,
    }
    audit = await empty_store.fetch("SELECT * FROM audit_log ORDER BY audit_id OFFSET $1", audit_rows)
    assert len(audit) == 1
    assert audit[0]["action"] == "update"
    assert json.loads(audit[0]["before"]) == {"email_private": "jan78@ziggo.nl"}
    assert json.loads(audit[0]["after"]) == {"email_private": "jan.vdberg@ziggo.nl"}
    assert await empty_store.fetchval(
        "SELECT email_private FROM crm_persons WHERE external_ref = 'person-jan-van-der-berg'"
    ) == ("jan.vdberg@ziggo.nl")


async def test_account_and_characteristics_are_set_exactly_as_in_the_file(
    empty_store: asyncpg.Pool, demo: TargetState
) -> None:
    await load(empty_store, demo)
    persons = list(demo.persons)
    index = next(i for i, p in enumerate(persons) if p.ref == "person-chloe-van-beek-1978")
    persons[index] = persons[index].model_copy(update={"characteristics": ("RegiPersoneel: Personeelslid",)})
    index = next(i for i, p in enumerate(persons) if p.ref == "person-michiel-de-haan")
    persons[index] = persons[index].model_copy(update={"account": None})

    report = await load(empty_store, demo.model_copy(update={"persons": tuple(persons)}))

    assert report.as_dict()["characteristics"]["deleted"] == 2
    assert report.as_dict()["accounts"]["deleted"] == 1
    assert report.changes == 3
    assert await empty_store.fetchval("SELECT count(*) FROM crm_accounts WHERE username = 'michiel.dehaan'") == 0
    remaining = await empty_store.fetch(
        """SELECT characteristic FROM crm_characteristics JOIN crm_persons USING (person_id)
           WHERE external_ref = 'person-chloe-van-beek-1978'"""
    )
    assert [row["characteristic"] for row in remaining] == ["RegiPersoneel: Personeelslid"]


async def test_a_conflict_half_way_loads_nothing(empty_store: asyncpg.Pool, demo: TargetState) -> None:
    # Someone outside the file already has Joël's username: the accounts come after organisations and
    # persons were written, so only a real transaction leaves the store untouched.
    await empty_store.execute(
        """WITH p AS (INSERT INTO crm_persons (last_name) VALUES ('Anders') RETURNING person_id)
           INSERT INTO crm_accounts (person_id, username) SELECT person_id, 'joel.intveld' FROM p"""
    )
    before = await contents(empty_store)

    with pytest.raises(TargetLoadError, match=r"username 'joel\.intveld' of person 'person-joel-in-t-veld'"):
        await load(empty_store, demo)

    assert await contents(empty_store) == before


def cli_args(file: Path, *, dry_run: bool = False, as_json: bool = False, if_empty: bool = False) -> argparse.Namespace:
    return argparse.Namespace(file=str(file), dry_run=dry_run, json=as_json, if_empty=if_empty)


@pytest.fixture
def settings(migrated_database: str) -> Settings:
    return Settings(database_url=migrated_database, _env_file=None)  # type: ignore[call-arg]


async def test_cli_rejects_a_malformed_file_as_a_whole(
    empty_store: asyncpg.Pool, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "start.yaml"
    # The first organisations are fine; the error is further down: still nothing may be loaded.
    broken.write_text(
        DEMO_TARGET.read_text(encoding="utf-8").replace("birthday: 1976-11-07", "birthday: 1976-11-31"),
        encoding="utf-8",
    )
    line = next(n for n, text in enumerate(broken.read_text().splitlines(), 1) if "1976-11-31" in text)
    before = await contents(empty_store)

    # The CLI runs its own event loop (asyncio.run), so it runs in a thread here.
    exit_code = await asyncio.to_thread(cmd_target_load, cli_args(broken), settings)

    assert exit_code == 2
    assert f"{broken}:{line}: persons[0].birthday:" in capsys.readouterr().err
    assert await contents(empty_store) == before


async def test_cli_dry_run_reports_the_changes_and_writes_nothing(
    empty_store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await contents(empty_store)

    exit_code = await asyncio.to_thread(cmd_target_load, cli_args(DEMO_TARGET, dry_run=True, as_json=True), settings)

    assert exit_code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dry_run"] is True
    assert printed["counts"]["organisations"]["inserted"] == 3
    assert await contents(empty_store) == before


async def test_cli_load_prints_a_table_and_commits(
    empty_store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = await asyncio.to_thread(cmd_target_load, cli_args(DEMO_TARGET), settings)

    assert exit_code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["kind", "inserted", "updated", "deleted", "unchanged"]
    assert "organisations" in out and "changed" in out
    assert await empty_store.fetchval("SELECT count(*) FROM crm_organisations") == 3


async def test_cli_dry_run_on_a_new_database_leaves_even_the_schema_alone(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = settings.database_url.get_secret_value()
    name = f"nmbrs_sync_dry_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        fresh_url = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
        fresh = Settings(database_url=fresh_url, _env_file=None)  # type: ignore[call-arg]
        exit_code = await asyncio.to_thread(cmd_target_load, cli_args(DEMO_TARGET, dry_run=True), fresh)
        assert exit_code == 0 and "dry run" in capsys.readouterr().out
        connection = await asyncpg.connect(fresh.database_url.get_secret_value())
        try:
            assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        finally:
            await connection.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


async def test_cli_without_a_database_says_so_with_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/none"
    nowhere = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    assert await asyncio.to_thread(cmd_target_load, cli_args(DEMO_TARGET), nowhere) == 4
    err = capsys.readouterr().err
    assert "cannot connect to the database" in err and "secret" not in err


async def test_cli_if_empty_loads_a_new_store_once_and_then_leaves_it_alone(
    empty_store: asyncpg.Pool, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(cmd_target_load, cli_args(DEMO_TARGET, if_empty=True), settings) == 0
    assert await empty_store.fetchval("SELECT count(*) FROM crm_organisations") == 3
    # What was decided since (here: a card edited) survives a second demo start.
    await empty_store.execute("UPDATE crm_persons SET email_work = 'kept@example.nl' WHERE person_id = 1")
    capsys.readouterr()
    assert await asyncio.to_thread(cmd_target_load, cli_args(DEMO_TARGET, if_empty=True), settings) == 0
    assert "not loaded" in capsys.readouterr().out
    assert await empty_store.fetchval("SELECT email_work FROM crm_persons WHERE person_id = 1") == "kept@example.nl"
