"""SQL pieces the target store's reads, writes and cards share: batch parameters, value conversion, audit rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from pydantic_core import to_json

from worker.adapters.database import Connection

AuditRow = tuple[uuid.UUID, str, str, Any, Any]  # causation id, subject, action, before, after

# The employment whose name and contact data the shared person card shows: of one human's active
# Nmbrs employments, the one that started last (then the highest Nmbrs id). Without this, employments
# with different work e-mail or phone would overwrite the card in turn and report each other as drift.
PRIMARY_SQL = """NOT EXISTS (
    SELECT 1 FROM rt_employees me JOIN rt_employees other
      ON other.person_id = me.person_id AND other.employee_id <> me.employee_id
    WHERE me.employee_id = {me} AND other.source = 'nmbrs' AND other.active
      AND (coalesce(other.employment_start, '-infinity'), other.nmbrs_employee_id)
        > (coalesce(me.employment_start, '-infinity'), me.nmbrs_employee_id))"""
PERSON_TYPES = {"birthday": "date"}  # the other person fields are text
# Set in a transaction that writes as the sync: the triggers of migration 0008 count other writers' edits only.
SYNC_WRITER_SQL = "SELECT set_config('nmbrs_sync.writer', 'sync', true)"
AUDIT_TYPES = ("uuid", "text", "text", "jsonb", "jsonb")


def to_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def db_value(field: str, value: Any) -> Any:
    """A person field's JSON value as its column takes it."""
    return to_date(value) if field == "birthday" else value


def json_text(value: Any) -> str:
    # pydantic-core's encoder: several times faster than json.dumps on the per-event path. The values are
    # JSON-shaped already; anything else is written as its str(), as json.dumps(default=str) would.
    return to_json(value, fallback=str).decode()


# The period tables: the values key, the table, its column types (employee_id first) and a row (after
# employee_id) from one period.
PERIOD_TABLES: tuple[tuple[str, str, tuple[str, ...], Callable[[dict[str, Any]], tuple[Any, ...]]], ...] = (
    (
        "employments",
        "rt_employment_periods",
        ("int", "int", "date", "date"),
        lambda e: (e["employment_id"], to_date(e["start"]), to_date(e["end"])),
    ),
    (
        "contracts",
        "rt_contract_periods",
        ("int", "int", "date", "date", "numeric"),
        lambda c: (c["contract_id"], to_date(c["start"]), to_date(c["end"]), c["hours_per_week"]),
    ),
    (
        "schedules",
        "rt_schedule_periods",
        ("int", "date", "numeric", "numeric"),
        lambda s: (to_date(s["start"]), s["hours_per_week"], s["parttime_percentage"]),
    ),
)
PERIOD_FIELDS = tuple(name for name, *_ in PERIOD_TABLES)


def unnest(types: Sequence[str], first: int = 1) -> str:
    """`unnest($first::t1[], ...)`: a whole batch of rows as one parameter per column (jsonb goes as text)."""
    casts = ("text" if t == "jsonb" else t for t in types)
    return f"unnest({', '.join(f'${first + i}::{t}[]' for i, t in enumerate(casts))})"


def as_columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows turned into one list per column (what unnest takes)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def insert_rows(db: Connection, table: str, types: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows (all columns, in table order) in one statement."""
    if rows:
        await db.execute(f"INSERT INTO {table} SELECT * FROM {unnest(types)}", *as_columns(rows, len(types)))


async def write_audit(db: Connection, rows: list[AuditRow], actor: str) -> None:
    """Audit rows, in one statement."""
    await db.execute(
        f"""INSERT INTO audit_log (causation_id, subject, action, before, after, actor)
            SELECT causation_id, subject, action, before::jsonb, after::jsonb, ${len(AUDIT_TYPES) + 1}
            FROM {unnest(AUDIT_TYPES)} AS v(causation_id, subject, action, before, after)""",
        *as_columns(
            [(c, subject, action, json_text(b), json_text(a)) for c, subject, action, b, a in rows], len(AUDIT_TYPES)
        ),
        actor,
    )
