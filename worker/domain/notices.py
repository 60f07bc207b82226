"""Notices ("meldingen"): which causes in the store deserve HR's attention, which notices to open and resolve,
and what to send by e-mail or webhook. Pure rules; the store is worker/adapters/notice_store.py.

A notice has a stable key per cause ("new_question:employee:101"): the same facts twice open nothing new, and a
notice is resolved as soon as its cause is no longer among the facts. Each open notice is sent at most once per
channel; the use case (worker/service/notices.py) marks it sent only after the channel accepted it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from worker.domain.nmbrs_records import NMBRS_TIMEZONE

# A webhook message is read in a chat window: a first sync that asks hundreds of questions names a few of them.
WEBHOOK_LISTED = 20


class NoticeKind(StrEnum):
    NEW_QUESTION = "new_question"
    QUESTION_WAITING = "question_waiting"
    MASS_CHANGE_HELD = "mass_change_held"
    POLL_FAILING = "poll_failing"


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


# Kinds e-mailed at once; the others wait for the daily digest. A held poll stops every change from Nmbrs
# until someone releases it, so it cannot wait a day.
IMMEDIATE_KINDS = frozenset({NoticeKind.MASS_CHANGE_HELD})


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- the facts read from the store ------------------------------------------------------------------------


class OpenQuestion(Frozen):
    """An Nmbrs record waiting for Koppelen, Aanmaken, Blokkeren or Overslaan (a row of pending_decisions)."""

    entity: Literal["employee", "company"]
    nmbrs_id: int
    name: str
    company_name: str | None = None
    asked_at: AwareDatetime


class HeldPoll(Frozen):
    """The poll the mass-change breaker holds (the latest poll that published or was held, was held)."""

    poll_id: str
    started_at: AwareDatetime
    reasons: tuple[str, ...] = ()


class PollFailures(Frozen):
    """The polls that failed one after another since the last poll that did not fail."""

    count: int = Field(ge=0)
    since: AwareDatetime | None = Field(None, description="When the first of them started.")
    last_reasons: tuple[str, ...] = ()


class NoticeFacts(Frozen):
    questions: tuple[OpenQuestion, ...] = ()
    held: HeldPoll | None = None
    poll_failures: PollFailures = PollFailures(count=0)


class NoticePolicy(Frozen):
    """When a cause becomes a notice, and where notices go."""

    question_waiting_days: int = Field(3, ge=1)
    poll_failures: int = Field(3, ge=1, description="Failed polls in a row that make a notice.")
    digest_hour: int = Field(8, ge=0, le=23, description="Dutch local hour of the daily e-mail digest.")
    channels: frozenset[Channel] = frozenset()


# --- notices ----------------------------------------------------------------------------------------------


class Notice(Frozen):
    key: str = Field(description="The cause, stable across runs: 'new_question:employee:101'.")
    kind: NoticeKind
    subject: str = Field(description="What it is about: 'employee:101', 'company:4' or 'poll'.")
    title: str = Field(description="One line, in Dutch.")
    message: str = Field(description="What happened and what to do, in Dutch.")
    link: str | None = Field(None, description="The app's page for it, a path such as '/vragen/employee/101'.")
    opened_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    emailed_at: AwareDatetime | None = None
    webhook_at: AwareDatetime | None = None

    def sent_at(self, channel: Channel) -> datetime | None:
        return self.emailed_at if channel is Channel.EMAIL else self.webhook_at


class Send(Frozen):
    """One message on one channel, naming the notices it carries."""

    channel: Channel
    digest: bool = Field(description="The daily e-mail digest (sent even when empty, to mark the day done).")
    keys: tuple[str, ...]


class NoticePlan(Frozen):
    opened: tuple[Notice, ...] = ()
    resolved: tuple[str, ...] = Field((), description="Keys of open notices whose cause went away.")
    sends: tuple[Send, ...] = ()

    @property
    def nothing(self) -> bool:
        return not (self.opened or self.resolved or self.sends)


def _question_label(question: OpenQuestion) -> str:
    what = "medewerker" if question.entity == "employee" else "werkmaatschappij"
    company = f" ({question.company_name})" if question.entity == "employee" and question.company_name else ""
    return f"{what} {question.name}{company}"


def wanted_notices(facts: NoticeFacts, now: datetime, policy: NoticePolicy) -> list[Notice]:
    """The notices these facts call for, keyed by cause, opened at `now` (a recorded one keeps its own time)."""
    wanted: list[Notice] = []
    waiting_after = timedelta(days=policy.question_waiting_days)
    for question in facts.questions:
        subject = f"{question.entity}:{question.nmbrs_id}"
        link = f"/vragen/{question.entity}/{question.nmbrs_id}"
        label = _question_label(question)
        wanted.append(
            Notice(
                key=f"{NoticeKind.NEW_QUESTION}:{subject}",
                kind=NoticeKind.NEW_QUESTION,
                subject=subject,
                title=f"Nieuwe vraag: {label}",
                message=f"Nmbrs heeft een {label} die niet vanzelf gekoppeld kon worden: kies Koppelen, Aanmaken,"
                " Blokkeren of Overslaan.",
                link=link,
                opened_at=now,
            )
        )
        # Skipped questions count too: Overslaan only postpones, the question is back at the next sync.
        if now - question.asked_at >= waiting_after:
            days = (now - question.asked_at).days
            wanted.append(
                Notice(
                    key=f"{NoticeKind.QUESTION_WAITING}:{subject}",
                    kind=NoticeKind.QUESTION_WAITING,
                    subject=subject,
                    title=f"Vraag wacht al {days} dagen: {label}",
                    message=f"De vraag over {label} wacht sinds {_local(question.asked_at)} op een besluit.",
                    link=link,
                    opened_at=now,
                )
            )
    if facts.held is not None:
        reasons = "; ".join(facts.held.reasons) or "te veel wijzigingen in één keer"
        wanted.append(
            Notice(
                # One key for whichever poll is held: every later poll is held again until someone releases it.
                key=str(NoticeKind.MASS_CHANGE_HELD),
                kind=NoticeKind.MASS_CHANGE_HELD,
                subject="poll",
                title="Synchronisatie tegengehouden: massawijziging",
                message=f"De synchronisatie van {_local(facts.held.started_at)} is tegengehouden ({reasons}). Er"
                " wordt niets meer uit Nmbrs verwerkt tot iemand met beheerrechten de wijzigingen bekijkt en"
                " vrijgeeft.",
                link="/overzicht",
                opened_at=now,
            )
        )
    failures = facts.poll_failures
    if failures.count >= policy.poll_failures:
        since = f" sinds {_local(failures.since)}" if failures.since else ""
        reason = f" Laatste fout: {failures.last_reasons[0]}" if failures.last_reasons else ""
        wanted.append(
            Notice(
                key=str(NoticeKind.POLL_FAILING),
                kind=NoticeKind.POLL_FAILING,
                subject="poll",
                title=f"Synchronisatie mislukt {failures.count} keer achter elkaar",
                message=f"De synchronisatie met Nmbrs mislukt{since}.{reason}",
                link="/overzicht",
                opened_at=now,
            )
        )
    return wanted


def _local(at: datetime) -> str:
    return at.astimezone(NMBRS_TIMEZONE).strftime("%d-%m-%Y %H:%M")


def digest_due(now: datetime, last_digest_at: datetime | None, hour: int) -> bool:
    """Whether the daily digest is due: the latest digest hour (Dutch time) at or before `now` has passed
    since the last digest. Never sent yet: due at once, so a new installation's first digest is not a day late."""
    local = now.astimezone(NMBRS_TIMEZONE)
    moment = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if moment > local:
        # The day before, at the same Dutch wall-clock hour (aware arithmetic is on the wall clock, DST included).
        moment -= timedelta(days=1)
    return last_digest_at is None or last_digest_at < moment


def plan_notices(
    facts: NoticeFacts,
    recorded: Sequence[Notice],
    now: datetime,
    policy: NoticePolicy,
    last_digest_at: datetime | None = None,
) -> NoticePlan:
    """What to open, resolve and send, given the facts and the open notices already recorded.

    Sends carry only open notices not yet sent on that channel: a webhook gets every such notice at once (chat
    is for now), e-mail the IMMEDIATE_KINDS at once and the rest in the daily digest."""
    wanted = {notice.key: notice for notice in wanted_notices(facts, now, policy)}
    open_recorded = {notice.key: notice for notice in recorded if notice.resolved_at is None}
    opened = tuple(notice for key, notice in wanted.items() if key not in open_recorded)
    resolved = tuple(sorted(key for key in open_recorded if key not in wanted))
    still_open = [notice for key, notice in open_recorded.items() if key in wanted] + list(opened)
    still_open.sort(key=lambda notice: (notice.opened_at, notice.key))
    sends: list[Send] = []
    if Channel.EMAIL in policy.channels:
        unsent = [notice for notice in still_open if notice.emailed_at is None]
        urgent = tuple(notice.key for notice in unsent if notice.kind in IMMEDIATE_KINDS)
        if urgent:
            sends.append(Send(channel=Channel.EMAIL, digest=False, keys=urgent))
        if digest_due(now, last_digest_at, policy.digest_hour):
            rest = tuple(notice.key for notice in unsent if notice.kind not in IMMEDIATE_KINDS)
            sends.append(Send(channel=Channel.EMAIL, digest=True, keys=rest))
    if Channel.WEBHOOK in policy.channels:
        unsent_keys = tuple(notice.key for notice in still_open if notice.webhook_at is None)
        if unsent_keys:
            sends.append(Send(channel=Channel.WEBHOOK, digest=False, keys=unsent_keys))
    return NoticePlan(opened=opened, resolved=resolved, sends=tuple(sends))


# --- what is sent -----------------------------------------------------------------------------------------


def _url(link: str | None, app_url: str | None) -> str | None:
    if link is None:
        return None
    return app_url.rstrip("/") + link if app_url else link


def email_text(send: Send, notices: Iterable[Notice], app_url: str | None) -> tuple[str, str]:
    """The subject and plain-text body of one e-mail."""
    listed = list(notices)
    if send.digest:
        subject = f"Nmbrs Sync: {len(listed)} nieuwe melding{'en' if len(listed) != 1 else ''}"
        intro = "Overzicht van de meldingen van de afgelopen dag."
    elif len(listed) == 1:
        subject = f"Nmbrs Sync: {listed[0].title}"
        intro = "Deze melding vraagt direct aandacht."
    else:
        subject = f"Nmbrs Sync: {len(listed)} meldingen die direct aandacht vragen"
        intro = "Deze meldingen vragen direct aandacht."
    parts = [intro, ""]
    for notice in listed:
        parts += [f"- {notice.title}", f"  {notice.message}"]
        url = _url(notice.link, app_url)
        if url:
            parts.append(f"  {url}")
        parts.append("")
    everything = _url("/meldingen", app_url)
    parts.append(f"Alle meldingen: {everything}")
    return subject, "\n".join(parts) + "\n"


def webhook_payload(notices: Sequence[Notice], app_url: str | None) -> dict[str, Any]:
    """A JSON body that Slack and Teams incoming webhooks both show: their `text` (markdown), plus the notices
    as data for any other receiver (both ignore the extra field)."""
    lines = []
    for notice in notices[:WEBHOOK_LISTED]:
        url = _url(notice.link, app_url)
        # Plain text: Slack and Teams mark bold up differently.
        lines.append(f"- {notice.title}: {notice.message}" + (f" ({url})" if url else ""))
    if len(notices) > WEBHOOK_LISTED:
        lines.append(f"- en nog {len(notices) - WEBHOOK_LISTED} andere, zie {_url('/meldingen', app_url)}")
    title = f"Nmbrs Sync: {len(notices)} nieuwe melding{'en' if len(notices) != 1 else ''}"
    return {
        "text": "\n".join([title, *lines]),
        "notices": [
            {
                "key": notice.key,
                "kind": notice.kind.value,
                "subject": notice.subject,
                "title": notice.title,
                "message": notice.message,
                "url": _url(notice.link, app_url),
                "opened_at": notice.opened_at.isoformat(),
            }
            for notice in notices
        ],
    }
