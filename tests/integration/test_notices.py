"""Notices against the real PostgreSQL, a real SMTP server in-process (aiosmtpd) and a local HTTP receiver: each
notice recorded and sent once, resolved when its cause goes away, a failed send retried at the next run."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from tests.support import free_port
from worker.adapters.notice_senders import SmtpSender, WebhookSender
from worker.config import Settings
from worker.service.notices import NoticeRun, notice_policy, run_notices


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping what it received; `refuse` answers DATA with a temporary failure."""

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    refuse: bool = False

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 mailbox busy, try again later"
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@dataclass
class Receiver:
    """A local incoming-webhook endpoint keeping each JSON body it was posted."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    found = Receiver(url=f"http://127.0.0.1:{port}/hooks/secret-token")

    async def hook(request: web.Request) -> web.Response:
        found.content_types.append(request.headers["Content-Type"])
        found.posts.append(await request.json())
        return web.Response(text="1")

    app = web.Application()
    app.router.add_post("/hooks/secret-token", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.fixture
async def store(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute("TRUNCATE notices, notice_digests, pending_decisions, poll_runs CASCADE")
    return pool


def settings_for(smtp_port: int, webhook_url: str | None) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        smtp_from="nmbrs-sync@example.nl",
        smtp_to=["hr@example.nl", "salaris@example.nl"],
        notice_webhook_url=webhook_url,  # type: ignore[arg-type]
        notice_app_url="https://hr.example.nl",
        notice_send_timeout_s=5,
        _env_file=None,  # type: ignore[call-arg]
    )


async def run(pool: asyncpg.Pool, settings: Settings, at: datetime | None = None) -> NoticeRun:
    done = await run_notices(
        pool,
        notice_policy(settings),
        lambda: at or datetime.now(UTC),
        SmtpSender(settings) if settings.email_enabled else None,
        WebhookSender(settings) if settings.webhook_enabled else None,
        app_url=settings.notice_app_url,
    )
    assert done is not None, "the run lock was held by nobody else"
    return done


async def ask(pool: asyncpg.Pool, nmbrs_id: int, first_name: str = "Anna", asked_at: datetime | None = None) -> None:
    record = {"employee_id": nmbrs_id, "first_name": first_name, "prefix": "van der", "last_name": "Berg"}
    await pool.execute(
        """INSERT INTO pending_decisions (entity, nmbrs_id, version, situation, company_id, record, candidates,
                                          causation_id, created_at)
           VALUES ('employee', $1, 1, 'unmatched', 4, $2::jsonb, '[]'::jsonb, $3, coalesce($4, now()))""",
        nmbrs_id,
        json.dumps(record),
        uuid.uuid4(),
        asked_at,
    )


async def notices(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM notices ORDER BY notice_id")


async def test_a_new_question_is_one_notice_one_email_one_webhook_post_and_resolves_when_answered(
    store: asyncpg.Pool, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    box, port = mailbox
    settings = settings_for(port, receiver.url)
    await ask(store, 101)

    first = await run(store, settings)
    assert first.opened == ("new_question:employee:101",) and first.failed == ()
    (row,) = await notices(store)
    assert row["key"] == "new_question:employee:101" and row["resolved_at"] is None
    assert row["emailed_at"] is not None and row["webhook_at"] is not None
    # The e-mail: the first digest (none was sent yet), to every recipient, with a link into the app.
    (mail,) = box.messages
    assert box.recipients == [["hr@example.nl", "salaris@example.nl"]]
    assert mail["Subject"] == "Nmbrs Sync: 1 nieuwe melding" and mail["From"] == "nmbrs-sync@example.nl"
    body = mail.get_content()
    assert "Anna van der Berg" in body and "https://hr.example.nl/vragen/employee/101" in body
    # The webhook: one JSON POST as Slack and Teams take it.
    (post,) = receiver.posts
    assert receiver.content_types == ["application/json; charset=utf-8"]
    assert "Anna van der Berg" in post["text"]
    assert [(n["key"], n["kind"], n["url"]) for n in post["notices"]] == [
        ("new_question:employee:101", "new_question", "https://hr.example.nl/vragen/employee/101")
    ]

    again = await run(store, settings)
    assert again == NoticeRun()
    assert len(box.messages) == 1 and len(receiver.posts) == 1 and len(await notices(store)) == 1

    await store.execute("DELETE FROM pending_decisions WHERE nmbrs_id = 101")  # answered (Koppelen, ...)
    answered = await run(store, settings)
    assert answered.resolved == ("new_question:employee:101",)
    (row,) = await notices(store)
    assert row["resolved_at"] is not None
    assert len(box.messages) == 1 and len(receiver.posts) == 1  # nothing sent about a resolved notice


async def test_a_held_mass_change_is_emailed_at_once_although_the_digest_was_sent_today(
    store: asyncpg.Pool, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    settings = settings_for(port, None)
    now = datetime.now(UTC)
    await store.execute("INSERT INTO notice_digests (sent_at, notices) VALUES ($1, 0)", now - timedelta(minutes=1))
    await ask(store, 102)  # waits for tomorrow's digest
    summary = {"reasons": ["40 of 100 employees removed or ended (more than 10%)"]}
    await store.execute(
        """INSERT INTO poll_runs (poll_id, full_sync, dry_run, started_at, finished_at, status, summary)
           VALUES ($1, false, false, $2, $2, 'held', $3::jsonb)""",
        uuid.uuid4(),
        now - timedelta(seconds=30),
        json.dumps(summary),
    )

    done = await run(store, settings, now)
    assert set(done.opened) == {"mass_change_held", "new_question:employee:102"}
    (mail,) = box.messages
    assert mail["Subject"] == "Nmbrs Sync: Synchronisatie tegengehouden: massawijziging"
    assert "40 of 100 employees removed" in mail.get_content()
    emailed = {row["key"]: row["emailed_at"] for row in await notices(store)}
    assert emailed["mass_change_held"] is not None and emailed["new_question:employee:102"] is None


async def test_a_failing_smtp_server_leaves_the_notice_unsent_and_the_next_run_sends_it(
    store: asyncpg.Pool, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    box, port = mailbox
    settings = settings_for(port, receiver.url)
    await ask(store, 103)
    box.refuse = True

    failed = await run(store, settings)
    assert len(failed.failed) == 1 and failed.failed[0].startswith("email: ")
    assert failed.sent == {"webhook": 1}  # the other channel does not wait for the failing one
    (row,) = await notices(store)
    assert row["emailed_at"] is None and row["webhook_at"] is not None and row["send_error"].startswith("email: ")
    assert await store.fetchval("SELECT count(*) FROM notice_digests") == 0  # the day's digest is still to come

    box.refuse = False
    retried = await run(store, settings)
    assert retried.sent == {"email": 1} and retried.failed == ()
    (mail,) = box.messages
    assert "Anna van der Berg" in mail.get_content()
    (row,) = await notices(store)
    assert row["emailed_at"] is not None and row["send_error"] is None
    assert len(receiver.posts) == 1


async def test_an_unreachable_webhook_is_retried_and_its_url_never_appears_in_the_error(
    store: asyncpg.Pool, receiver: Receiver
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hooks/secret-token"
    settings = Settings(notice_webhook_url=closed, _env_file=None)  # type: ignore[arg-type,call-arg]
    await ask(store, 104)
    failed = await run(store, settings)
    assert len(failed.failed) == 1 and "secret-token" not in failed.failed[0]
    (row,) = await notices(store)
    assert row["webhook_at"] is None and "secret-token" not in row["send_error"]

    fixed = Settings(notice_webhook_url=receiver.url, _env_file=None)  # type: ignore[arg-type,call-arg]
    assert (await run(store, fixed)).sent == {"webhook": 1}
    assert [n["key"] for n in receiver.posts[0]["notices"]] == ["new_question:employee:104"]


async def test_two_runs_racing_record_and_send_each_notice_once(
    store: asyncpg.Pool, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    box, port = mailbox
    settings = settings_for(port, receiver.url)
    await ask(store, 105)
    await ask(store, 106, "Bert")

    async def one_run() -> NoticeRun | None:
        return await run_notices(
            store, notice_policy(settings), lambda: datetime.now(UTC), SmtpSender(settings), WebhookSender(settings)
        )

    results = await asyncio.gather(*(one_run() for _ in range(4)))
    assert sum(len(r.opened) for r in results if r is not None) == 2
    assert len(await notices(store)) == 2
    assert len(box.messages) == 1 and len(receiver.posts) == 1
    assert len(receiver.posts[0]["notices"]) == 2


async def test_a_question_waiting_too_long_and_polls_failing_in_a_row_become_notices(store: asyncpg.Pool) -> None:
    settings = Settings(notice_question_waiting_days=3, notice_poll_failures=2, _env_file=None)  # type: ignore[call-arg]
    now = datetime.now(UTC)
    await ask(store, 107, asked_at=now - timedelta(days=4))
    for minutes, status in ((30, "published"), (20, "failed"), (10, "failed")):
        await store.execute(
            """INSERT INTO poll_runs (poll_id, full_sync, dry_run, started_at, finished_at, status, summary)
               VALUES ($1, false, false, $2, $2, $3, $4::jsonb)""",
            uuid.uuid4(),
            now - timedelta(minutes=minutes),
            status,
            json.dumps({"reasons": [f"SoapFault: down ({minutes})"]}),
        )
    done = await run(store, settings, now)
    assert set(done.opened) == {"new_question:employee:107", "question_waiting:employee:107", "poll_failing"}
    failing = await store.fetchrow("SELECT title, message FROM notices WHERE key = 'poll_failing'")
    assert failing is not None and "2 keer" in failing["title"] and "SoapFault: down (10)" in failing["message"]

    await store.execute(
        """INSERT INTO poll_runs (poll_id, full_sync, dry_run, started_at, finished_at, status)
           VALUES ($1, false, false, $2, $2, 'published')""",
        uuid.uuid4(),
        now,
    )
    assert (await run(store, settings, now + timedelta(minutes=1))).resolved == ("poll_failing",)
