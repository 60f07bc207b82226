"""Loads a TargetState (the RegiCRM/RegiTijd starting state) into the target store, idempotently (asyncpg).

Every row is found again by its stable key (external_ref, code, nmbrs_id; blue employees by person and
company because rt_employees has no external_ref), compared with the file and written only when it
differs. So a second load of the same file writes nothing, not even audit rows, and the report says so.
Everything happens in one transaction: a load that fails half-way leaves the store as it was.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg

from worker.adapters.leave_store import recalculate_leave_many
from worker.domain.nmbrs_records import nmbrs_today
from worker.domain.target_state import BlueEmployeeState, PersonState, TargetState

ACTOR = "target load"
# Serialises concurrent loads: two loads inserting the same new ref would otherwise race to a
# unique violation. Distinct from the migration (7_366_001) and poll (7_366_002) locks.
LOAD_LOCK_ID = 7_366_010

KINDS = (
    "organisations",
    "persons",
    "accounts",
    "characteristics",
    "companies",
    "blue_employees",
    "time_categories",
    "labour_agreements",
)


class TargetLoadError(Exception):
    """The file is valid but conflicts with what the store holds (e.g. a username taken by someone else)."""


@dataclass
class KindCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


@dataclass
class LoadReport:
    """What a load did (or, in a dry run, would do) per kind of record."""

    counts: dict[str, KindCounts] = field(default_factory=lambda: {kind: KindCounts() for kind in KINDS})
    # Employees whose leave was recalculated because the leave settings of a CAO they have (or had) changed.
    leave_recalculated: int = 0

    @property
    def changes(self) -> int:
        return sum(c.inserted + c.updated + c.deleted for c in self.counts.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            kind: {
                "inserted": c.inserted,
                "updated": c.updated,
                "deleted": c.deleted,
                "unchanged": c.unchanged,
            }
            for kind, c in self.counts.items()
        }


@dataclass(frozen=True)
class _Table:
    """A target table upserted by one key column; names are constants here, never user input."""

    kind: str
    name: str
    id_column: str
    key_column: str
    subject: str  # audit_log subject prefix


ORGANISATIONS = _Table("organisations", "crm_organisations", "organisation_id", "external_ref", "organisation")
PERSONS = _Table("persons", "crm_persons", "person_id", "external_ref", "person")
ACCOUNTS = _Table("accounts", "crm_accounts", "account_id", "person_id", "account")
TIME_CATEGORIES = _Table("time_categories", "rt_time_categories", "category_id", "code", "time-category")
LABOUR_AGREEMENTS = _Table("labour_agreements", "rt_labour_agreements", "nmbrs_id", "nmbrs_id", "labour-agreement")


async def target_is_empty(connection: asyncpg.Connection) -> bool:
    """RegiCRM holds no person and no organisation yet (a demo loads its starting state only then)."""
    return not await connection.fetchval(
        "SELECT EXISTS (SELECT FROM crm_persons) OR EXISTS (SELECT FROM crm_organisations)"
    )


async def load_target_state(
    connection: asyncpg.Connection, state: TargetState, as_of: date | None = None
) -> LoadReport:
    """Upsert `state` in one transaction (a savepoint when the caller already opened one). `as_of`: the day
    leave is recalculated for when a CAO's leave settings change (default: today in the Dutch calendar)."""
    report = LoadReport()
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", LOAD_LOCK_ID)
        leave_settings = {
            r["nmbrs_id"]: (r["extra_leave_hours_fulltime"], r["fulltime_hours_per_week"])
            for r in await connection.fetch(
                "SELECT nmbrs_id, extra_leave_hours_fulltime, fulltime_hours_per_week FROM rt_labour_agreements"
            )
        }
        organisation_ids = {
            organisation.ref: await _upsert(
                connection,
                report,
                ORGANISATIONS,
                organisation.ref,
                organisation.model_dump(exclude={"ref"}),
            )
            for organisation in state.organisations
        }
        person_ids: dict[str, int] = {}
        for person in state.persons:
            person_ids[person.ref] = await _upsert(
                connection, report, PERSONS, person.ref, _person_values(person, organisation_ids)
            )
            await _set_characteristics(connection, report, person_ids[person.ref], person)
        # Accounts after all persons: a username can only be checked against its final owners.
        for person in state.persons:
            await _set_account(connection, report, person_ids[person.ref], person)
        organisation_names = {o.ref: o.name for o in state.organisations}
        company_ids: dict[str, int] = {}
        for blue in state.blue_employees:
            if blue.organisation not in company_ids:
                company_ids[blue.organisation] = await _company_for(
                    connection,
                    report,
                    organisation_ids[blue.organisation],
                    organisation_names[blue.organisation],
                )
            await _upsert_blue_employee(
                connection, report, blue, person_ids[blue.person], company_ids[blue.organisation]
            )
        for category in state.time_categories:
            await _upsert(connection, report, TIME_CATEGORIES, category.code, {"name": category.name})
        for agreement in state.labour_agreements:
            await _upsert(
                connection,
                report,
                LABOUR_AGREEMENTS,
                agreement.nmbrs_id,
                agreement.model_dump(exclude={"nmbrs_id"}),
            )
        changed_caos = [
            a.nmbrs_id
            for a in state.labour_agreements
            if (settings := (_cents(a.extra_leave_hours_fulltime), _cents(a.fulltime_hours_per_week)))
            != leave_settings.get(a.nmbrs_id, settings)
        ]
        if changed_caos:
            report.leave_recalculated = await _recalculate_leave_under(
                connection, changed_caos, as_of or nmbrs_today(datetime.now(UTC))
            )
    return report


def _cents(value: Decimal) -> Decimal:
    # As the numeric(…, 2) columns store it: a file's 7.555 is the stored 7.56, not a change on every load.
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


async def _recalculate_leave_under(connection: asyncpg.Connection, caos: list[int], as_of: date) -> int:
    """Recalculate the stored leave of the employees who have, or had, one of `caos` (leavers too: their final
    balance counts): their balances were computed with the old settings."""
    employee_ids = [
        r["employee_id"]
        for r in await connection.fetch(
            """SELECT employee_id FROM rt_employees
               WHERE labour_agreement_id = ANY($1::int[]) OR employee_id IN (
                   SELECT employee_id FROM rt_labour_agreement_changes WHERE from_id = ANY($1::int[]))""",
            caos,
        )
    ]
    if employee_ids:
        await recalculate_leave_many(connection, dict.fromkeys(employee_ids, uuid.uuid4()), as_of)
    return len(employee_ids)


def _person_values(person: PersonState, organisation_ids: dict[str, int]) -> dict[str, Any]:
    values = person.model_dump(exclude={"ref", "organisation", "account", "characteristics"})
    values["gender"] = None if person.gender is None else person.gender.value
    values["organisation_id"] = None if person.organisation is None else organisation_ids[person.organisation]
    return values


async def _upsert(
    connection: asyncpg.Connection, report: LoadReport, table: _Table, key: object, values: dict[str, Any]
) -> int:
    """Insert, or update the columns that differ; return the row id. Unchanged rows are not written."""
    columns = list(values)
    existing = await connection.fetchrow(
        f"SELECT {table.id_column}, {', '.join(columns)} FROM {table.name} WHERE {table.key_column} = $1 FOR UPDATE",
        key,
    )
    counts = report.counts[table.kind]
    if existing is None:
        row_id: int = await connection.fetchval(
            f"INSERT INTO {table.name} ({table.key_column}, {', '.join(columns)}) "
            f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 2))}) RETURNING {table.id_column}",
            key,
            *values.values(),
        )
        counts.inserted += 1
        await _audit(connection, f"{table.subject}:{row_id}", "insert", None, {table.key_column: key, **values})
        return row_id
    row_id = existing[table.id_column]
    before = {column: existing[column] for column in columns}
    changed = [column for column in columns if before[column] != values[column]]
    if not changed:
        counts.unchanged += 1
        return row_id
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changed, start=2))
    await connection.execute(
        f"UPDATE {table.name} SET {assignments} WHERE {table.id_column} = $1",
        row_id,
        *(values[column] for column in changed),
    )
    counts.updated += 1
    await _audit(
        connection,
        f"{table.subject}:{row_id}",
        "update",
        {column: before[column] for column in changed},
        {column: values[column] for column in changed},
    )
    return row_id


async def _set_characteristics(
    connection: asyncpg.Connection, report: LoadReport, person_id: int, person: PersonState
) -> None:
    """Kenmerken exactly as in the file: for a loaded person the file is the whole truth."""
    current = {
        row["characteristic"]
        for row in await connection.fetch(
            "SELECT characteristic FROM crm_characteristics WHERE person_id = $1", person_id
        )
    }
    wanted = set(person.characteristics)
    counts = report.counts["characteristics"]
    counts.unchanged += len(current & wanted)
    for characteristic in sorted(wanted - current):
        await connection.execute(
            "INSERT INTO crm_characteristics (person_id, characteristic) VALUES ($1, $2)",
            person_id,
            characteristic,
        )
        counts.inserted += 1
        await _audit(connection, f"person:{person_id}", "add characteristic", None, {"characteristic": characteristic})
    for characteristic in sorted(current - wanted):
        await connection.execute(
            "DELETE FROM crm_characteristics WHERE person_id = $1 AND characteristic = $2",
            person_id,
            characteristic,
        )
        counts.deleted += 1
        await _audit(
            connection,
            f"person:{person_id}",
            "remove characteristic",
            {"characteristic": characteristic},
            None,
        )


async def _set_account(connection: asyncpg.Connection, report: LoadReport, person_id: int, person: PersonState) -> None:
    """The login account exactly as in the file: created, changed, or removed when the file has none."""
    if person.account is None:
        removed = await connection.fetchrow(
            "DELETE FROM crm_accounts WHERE person_id = $1 RETURNING account_id, username, roles", person_id
        )
        if removed is not None:
            report.counts["accounts"].deleted += 1
            await _audit(
                connection,
                f"account:{removed['account_id']}",
                "delete",
                {"person_id": person_id, "username": removed["username"], "roles": removed["roles"]},
                None,
            )
        return
    # Checked here rather than left to the unique index, to name both persons in the message.
    owner = await connection.fetchrow(
        """SELECT p.person_id, p.external_ref FROM crm_accounts a JOIN crm_persons p USING (person_id)
           WHERE lower(a.username) = lower($1) AND a.person_id <> $2""",
        person.account.username,
        person_id,
    )
    if owner is not None:
        raise TargetLoadError(
            f"username '{person.account.username}' of person '{person.ref}' already belongs to RegiCRM "
            f"person {owner['person_id']} (ref {owner['external_ref'] or 'none'}); free it first"
        )
    await _upsert(
        connection,
        report,
        ACCOUNTS,
        person_id,
        {"username": person.account.username, "roles": list(person.account.roles)},
    )


async def _company_for(connection: asyncpg.Connection, report: LoadReport, organisation_id: int, name: str) -> int:
    """The RegiTijd company of a blue employee's organisation; created without an Nmbrs id when missing.

    The oldest company of the organisation is taken, so the choice stays the same on every load even
    after the sync adds one for the Nmbrs company. Its name is not updated: once linked, Nmbrs owns it.
    """
    counts = report.counts["companies"]
    company_id: int | None = await connection.fetchval(
        "SELECT company_id FROM rt_companies WHERE organisation_id = $1 ORDER BY company_id LIMIT 1",
        organisation_id,
    )
    if company_id is not None:
        counts.unchanged += 1
        return company_id
    company_id = await connection.fetchval(
        "INSERT INTO rt_companies (organisation_id, name) VALUES ($1, $2) RETURNING company_id",
        organisation_id,
        name,
    )
    assert company_id is not None
    counts.inserted += 1
    await _audit(
        connection,
        f"rt-company:{company_id}",
        "insert",
        None,
        {"organisation_id": organisation_id, "name": name},
    )
    return company_id


async def _upsert_blue_employee(
    connection: asyncpg.Connection,
    report: LoadReport,
    blue: BlueEmployeeState,
    person_id: int,
    company_id: int,
) -> None:
    """A manual RegiTijd employee, with its hours as one schedule period from the employment start."""
    wanted: dict[str, Any] = {
        "number": blue.number,
        "employment_start": blue.employment_start,
        "employment_end": blue.employment_end,
        "schedule": [] if blue.hours_per_week is None else [(blue.employment_start, blue.hours_per_week)],
    }
    counts = report.counts["blue_employees"]
    existing = await connection.fetchrow(
        """SELECT employee_id, number, employment_start, employment_end FROM rt_employees
           WHERE person_id = $1 AND company_id = $2 AND source = 'manual'
           ORDER BY employee_id LIMIT 1 FOR UPDATE""",
        person_id,
        company_id,
    )
    if existing is None:
        employee_id: int = await connection.fetchval(
            """INSERT INTO rt_employees
                   (person_id, source, company_id, number, employment_start, employment_end)
               VALUES ($1, 'manual', $2, $3, $4, $5) RETURNING employee_id""",
            person_id,
            company_id,
            blue.number,
            blue.employment_start,
            blue.employment_end,
        )
        await _set_schedule(connection, employee_id, wanted["schedule"])
        counts.inserted += 1
        await _audit(
            connection,
            f"rt-employee:{employee_id}",
            "insert",
            None,
            {"ref": blue.ref, "person_id": person_id, "company_id": company_id, "source": "manual", **wanted},
        )
        return
    employee_id = existing["employee_id"]
    schedule = [
        (row["start_date"], row["hours_per_week"])
        for row in await connection.fetch(
            """SELECT start_date, hours_per_week FROM rt_schedule_periods
               WHERE employee_id = $1 ORDER BY start_date""",
            employee_id,
        )
    ]
    before = {
        "number": existing["number"],
        "employment_start": existing["employment_start"],
        "employment_end": existing["employment_end"],
        "schedule": schedule,
    }
    if before == wanted:
        counts.unchanged += 1
        return
    await connection.execute(
        """UPDATE rt_employees SET number = $2, employment_start = $3, employment_end = $4
           WHERE employee_id = $1""",
        employee_id,
        blue.number,
        blue.employment_start,
        blue.employment_end,
    )
    if schedule != wanted["schedule"]:
        await connection.execute("DELETE FROM rt_schedule_periods WHERE employee_id = $1", employee_id)
        await _set_schedule(connection, employee_id, wanted["schedule"])
    counts.updated += 1
    await _audit(connection, f"rt-employee:{employee_id}", "update", before, wanted)


async def _set_schedule(connection: asyncpg.Connection, employee_id: int, schedule: list[tuple[date, Decimal]]) -> None:
    for start, hours in schedule:
        await connection.execute(
            "INSERT INTO rt_schedule_periods (employee_id, start_date, hours_per_week) VALUES ($1, $2, $3)",
            employee_id,
            start,
            hours,
        )


async def _audit(
    connection: asyncpg.Connection,
    subject: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    # Subjects name the target-store row ('person:9', 'rt-employee:4'); 'employee:<id>' and
    # 'company:<id>' already mean Nmbrs ids elsewhere (outcomes).
    await connection.execute(
        """INSERT INTO audit_log (subject, action, before, after, actor)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5)""",
        subject,
        action,
        None if before is None else json.dumps(before, default=str, ensure_ascii=False),
        None if after is None else json.dumps(after, default=str, ensure_ascii=False),
        ACTOR,
    )
