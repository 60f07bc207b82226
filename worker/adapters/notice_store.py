"""Notices in PostgreSQL: the facts they are made from (open questions, a held poll, failing polls), the notices
recorded, their deliveries and digests (asyncpg). The rules are in worker/domain/notices.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

import asyncpg

from worker.adapters.hr_queries import record_name
from worker.domain.notices import (
    Channel,
    HeldPoll,
    Notice,
    NoticeFacts,
    NoticeKind,
    NoticePlan,
    OpenQuestion,
    PollFailures,
)

# Any fixed number works (the migrations use 7_366_001): one notice run at a time across the worker replicas.
NOTICE_LOCK_ID = 7_366_019
_SENT_COLUMN = {Channel.EMAIL: "emailed_at", Channel.WEBHOOK: "webhook_at"}
_NOTICE_COLUMNS = "key, kind, subject, title, message, link, opened_at, resolved_at, emailed_at, webhook_at"


@asynccontextmanager
async def notice_run_lock(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection | None]:
    """A connection holding the notice run's session lock, or None when another run (another replica's timer)
    holds it: that run does the work. Session-level, not in a transaction: it is held across the sends, which
    must not keep a transaction open while an SMTP server takes its time."""
    async with pool.acquire() as connection:
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", NOTICE_LOCK_ID):
            yield None
            return
        try:
            yield cast(asyncpg.Connection, connection)
        finally:
            # The pool keeps sessions (database.keep_session): a lock left behind would block every later run.
            await connection.execute("SELECT pg_advisory_unlock($1)", NOTICE_LOCK_ID)


# --- the facts --------------------------------------------------------------------------------------------


async def read_facts(connection: asyncpg.Connection) -> NoticeFacts:
    questions = await connection.fetch(
        """SELECT q.entity, q.nmbrs_id, q.created_at,
                  -- Only the name parts: the whole record of thousands of questions is megabytes.
                  jsonb_build_object('first_name', q.record ->> 'first_name', 'prefix', q.record ->> 'prefix',
                                     'last_name', q.record ->> 'last_name', 'name', q.record ->> 'name') AS names,
                  coalesce(c.name, s.record ->> 'name', cq.record ->> 'name') AS company_name
           FROM pending_decisions q
           LEFT JOIN rt_companies c ON c.nmbrs_company_id = q.company_id
           LEFT JOIN nmbrs_snapshots s ON s.key = 'company:' || q.company_id AND NOT s.deleted
           LEFT JOIN pending_decisions cq ON cq.entity = 'company' AND cq.nmbrs_id = q.company_id
           ORDER BY q.created_at, q.entity, q.nmbrs_id"""
    )
    # As the overview and the status: one-employee polls ("sync this employee now") say nothing of the whole sync.
    held = await connection.fetchrow(
        """SELECT poll_id, status, started_at, summary -> 'reasons' AS reasons FROM poll_runs
           WHERE status IN ('published', 'held') AND employee_id IS NULL ORDER BY started_at DESC LIMIT 1"""
    )
    # Dry runs neither fail the sync nor show it works; a running poll is not judged yet.
    failures = await connection.fetchrow(
        """WITH last_good AS (
               SELECT max(started_at) AS at FROM poll_runs
               WHERE employee_id IS NULL AND NOT dry_run AND status IN ('published', 'held', 'planned'))
           SELECT count(*) AS count, min(r.started_at) AS since,
                  (array_agg(r.summary -> 'reasons' ORDER BY r.started_at DESC))[1] AS last_reasons
           FROM poll_runs r, last_good
           WHERE r.employee_id IS NULL AND NOT r.dry_run AND r.status = 'failed'
             AND (last_good.at IS NULL OR r.started_at > last_good.at)"""
    )
    assert failures is not None  # an aggregate always answers
    return NoticeFacts(
        questions=tuple(
            OpenQuestion(
                entity=row["entity"],
                nmbrs_id=row["nmbrs_id"],
                name=record_name(row["entity"], row["nmbrs_id"], json.loads(row["names"])),
                company_name=row["company_name"],
                asked_at=row["created_at"],
            )
            for row in questions
        ),
        held=HeldPoll(poll_id=str(held["poll_id"]), started_at=held["started_at"], reasons=_reasons(held["reasons"]))
        if held is not None and held["status"] == "held"
        else None,
        poll_failures=PollFailures(
            count=failures["count"], since=failures["since"], last_reasons=_reasons(failures["last_reasons"])
        ),
    )


def _reasons(value: str | None) -> tuple[str, ...]:
    # The poll's report, read loosely: an old or cut-off run may lack its reasons.
    reasons = json.loads(value) if value else []
    return tuple(str(reason) for reason in reasons) if isinstance(reasons, list) else ()


# --- the notices ------------------------------------------------------------------------------------------


def _notice(row: asyncpg.Record) -> Notice:
    return Notice(**{**dict(row), "kind": NoticeKind(row["kind"])})


async def open_notices(connection: asyncpg.Connection) -> list[Notice]:
    rows = await connection.fetch(f"SELECT {_NOTICE_COLUMNS} FROM notices WHERE resolved_at IS NULL")
    return [_notice(row) for row in rows]


async def notices_by_key(connection: asyncpg.Connection, keys: Sequence[str]) -> dict[str, Notice]:
    """The open notices of these keys."""
    rows = await connection.fetch(
        f"SELECT {_NOTICE_COLUMNS} FROM notices WHERE resolved_at IS NULL AND key = ANY($1::text[])", list(keys)
    )
    return {row["key"]: _notice(row) for row in rows}


async def last_digest_at(connection: asyncpg.Connection) -> datetime | None:
    at: datetime | None = await connection.fetchval("SELECT max(sent_at) FROM notice_digests")
    return at


async def record_plan(connection: asyncpg.Connection, plan: NoticePlan, now: datetime) -> None:
    """Open and resolve what the plan says, in one transaction. A notice already open under its key stays as
    it is (ON CONFLICT on the open-key index): running twice, or two runs racing, open it once."""
    async with connection.transaction():
        await connection.executemany(
            f"""INSERT INTO notices ({_NOTICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, NULL)
                ON CONFLICT (key) WHERE resolved_at IS NULL DO NOTHING""",
            [(n.key, n.kind.value, n.subject, n.title, n.message, n.link, n.opened_at) for n in plan.opened],
        )
        if plan.resolved:
            await connection.execute(
                "UPDATE notices SET resolved_at = greatest($2, opened_at)"
                " WHERE resolved_at IS NULL AND key = ANY($1::text[])",
                list(plan.resolved),
                now,
            )


async def mark_sent(connection: asyncpg.Connection, channel: Channel, keys: Sequence[str], at: datetime) -> None:
    column = _SENT_COLUMN[channel]
    # Only this channel's error goes: another channel's failure is still to be retried (and shown).
    await connection.execute(
        f"""UPDATE notices SET {column} = $2,
                   send_error = CASE WHEN starts_with(send_error, $3) THEN NULL ELSE send_error END
            WHERE resolved_at IS NULL AND {column} IS NULL AND key = ANY($1::text[])""",
        list(keys),
        at,
        f"{channel.value}: ",
    )


async def mark_failed(connection: asyncpg.Connection, channel: Channel, keys: Sequence[str], error: str) -> None:
    """Say on the notices why the send failed; they stay unsent, so the next run sends them again."""
    await connection.execute(
        "UPDATE notices SET send_error = $2 WHERE resolved_at IS NULL AND key = ANY($1::text[])",
        list(keys),
        f"{channel.value}: {error}",
    )


async def record_digest(connection: asyncpg.Connection, at: datetime, count: int) -> None:
    await connection.execute(
        "INSERT INTO notice_digests (sent_at, notices) VALUES ($1, $2) ON CONFLICT DO NOTHING", at, count
    )


# --- for the web app --------------------------------------------------------------------------------------


async def open_count(connection: asyncpg.Connection) -> int | None:
    """The open notices, for the menu: a count on the open-key index, cheap on every page. None before migration
    0023 (a new web app during a rolling upgrade): the menu goes without its count rather than every page failing."""
    try:
        return int(await connection.fetchval("SELECT count(*) FROM notices WHERE resolved_at IS NULL"))
    except asyncpg.UndefinedTableError:
        return None


class NoticeRow(Notice):
    send_error: str | None = None


async def notice_list(
    connection: asyncpg.Connection, resolved_since: datetime, limit: int
) -> tuple[list[NoticeRow], list[NoticeRow]]:
    """The open notices, newest first, and those resolved since `resolved_since` (at most `limit` of each)."""
    columns = f"{_NOTICE_COLUMNS}, send_error"
    open_rows = await connection.fetch(
        f"SELECT {columns} FROM notices WHERE resolved_at IS NULL ORDER BY opened_at DESC, key LIMIT $1", limit
    )
    resolved_rows = await connection.fetch(
        f"""SELECT {columns} FROM notices WHERE resolved_at IS NOT NULL AND resolved_at >= $1
            ORDER BY resolved_at DESC, key LIMIT $2""",
        resolved_since,
        limit,
    )
    return [_row(row) for row in open_rows], [_row(row) for row in resolved_rows]


def _row(row: asyncpg.Record) -> NoticeRow:
    values: dict[str, Any] = {**dict(row), "kind": NoticeKind(row["kind"])}
    return NoticeRow(**values)
