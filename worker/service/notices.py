"""The notice run: read the facts, plan with the domain, record, send, mark sent (worker/domain/notices.py).

The worker's timer calls run_notices on every replica; the run lock lets one of them work at a time. A notice is
marked sent only after its channel accepted it: a failing send is retried at the next run. The one gap is a crash
between the channel's acceptance and the mark, which sends that message again (at least once, as everywhere).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from worker.adapters import notice_store
from worker.adapters.database import Pool
from worker.adapters.notice_senders import NoticeSendError
from worker.config import Settings
from worker.domain.notices import Channel, NoticePolicy, email_text, plan_notices, webhook_payload

log = logging.getLogger(__name__)


class EmailSender(Protocol):
    async def send(self, subject: str, body: str) -> None: ...


class WebhookSender(Protocol):
    async def send(self, payload: dict[str, Any]) -> None: ...


class NoticeRun(BaseModel):
    """What one run did."""

    opened: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    sent: dict[str, int] = Field(default_factory=dict, description="Notices per channel accepted by it.")
    failed: tuple[str, ...] = Field((), description="Why a channel's send failed (retried at the next run).")


def notice_policy(settings: Settings) -> NoticePolicy:
    channels = {Channel.EMAIL} if settings.email_enabled else set()
    if settings.webhook_enabled:
        channels.add(Channel.WEBHOOK)
    return NoticePolicy(
        question_waiting_days=settings.notice_question_waiting_days,
        poll_failures=settings.notice_poll_failures,
        digest_hour=settings.notice_digest_hour,
        channels=frozenset(channels),
    )


async def run_notices(
    pool: Pool,
    policy: NoticePolicy,
    now: Callable[[], datetime],
    email: EmailSender | None = None,
    webhook: WebhookSender | None = None,
    app_url: str | None = None,
) -> NoticeRun | None:
    """One run; None when another run holds the lock (it does the work)."""
    async with notice_store.notice_run_lock(pool) as connection:
        if connection is None:
            return None
        at = now()
        # One snapshot: the facts and the notices recorded from earlier facts must agree.
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            facts = await notice_store.read_facts(connection)
            recorded = await notice_store.open_notices(connection)
            last_digest = await notice_store.last_digest_at(connection)
        plan = plan_notices(facts, recorded, at, policy, last_digest)
        await notice_store.record_plan(connection, plan, at)
        for notice in plan.opened:
            log.info("notice opened: %s", notice.key)
        for resolved in plan.resolved:
            log.info("notice resolved: %s", resolved)
        sent: dict[str, int] = {}
        failed: list[str] = []
        for send in plan.sends:
            # As recorded (a notice open since an earlier run keeps its own text and time).
            stored = await notice_store.notices_by_key(connection, send.keys)
            listed = [stored[key] for key in send.keys if key in stored]
            try:
                if send.channel is Channel.EMAIL and listed:
                    assert email is not None, "the policy has e-mail without a sender"
                    await email.send(*email_text(send, listed, app_url))
                elif send.channel is Channel.WEBHOOK and listed:
                    assert webhook is not None, "the policy has a webhook without a sender"
                    await webhook.send(webhook_payload(listed, app_url))
            except NoticeSendError as error:
                log.warning("notices not sent by %s (%s); trying again at the next run", send.channel, error)
                await notice_store.mark_failed(connection, send.channel, [n.key for n in listed], str(error))
                failed.append(f"{send.channel}: {error}")
                continue
            await notice_store.mark_sent(connection, send.channel, [n.key for n in listed], now())
            if send.digest:
                await notice_store.record_digest(connection, at, len(listed))
            sent[send.channel.value] = sent.get(send.channel.value, 0) + len(listed)
        return NoticeRun(
            opened=tuple(n.key for n in plan.opened), resolved=plan.resolved, sent=sent, failed=tuple(failed)
        )
