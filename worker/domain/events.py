"""Event and command envelopes on Kafka: frozen pydantic models, the product's public contract.

Facts are past tense (`...Requested`, outcomes); commands are imperative and live on their own topics.
Unknown fields are ignored so additive changes never break consumers; `schema_version` marks breaking ones.
What any frontend may post (`Command`) is read strictly and every text in it has a maximum length.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict

SCHEMA_VERSION = 1
# Outcome ids derive from the event they answer, so a re-published outcome keeps its id and
# consumers can deduplicate it.
OUTCOME_NAMESPACE = uuid.UUID("6f1c3f0e-5a43-4a8e-9d7b-2f1f3c1d8a10")


class Message(BaseModel):
    """Base of everything on a topic."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = Field(SCHEMA_VERSION, description="Bumped only for breaking changes.")


# Texts a command carries, bounded so that a sender cannot make us store (or log) megabytes: a user name or an
# id, and what a human types as a reason or note. No NUL character: PostgreSQL text cannot hold it, and the
# command would fail in the database after it was accepted.
NAME_MAX = 200
FREE_TEXT_MAX = 2_000
_NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=_NO_NUL)]
FreeText = Annotated[str, Field(max_length=FREE_TEXT_MAX, pattern=_NO_NUL)]


def _as_written(form: str, example: str) -> BeforeValidator:
    """Only the contract's form, a string: pydantic reads a number, and even a string of digits, as seconds since
    1970 ("0" is 1970-01-01), and takes a datetime for a date. From Python, the date or datetime itself."""
    pattern = re.compile(form)

    def check(value: Any) -> Any:
        if isinstance(value, date) or (isinstance(value, str) and pattern.fullmatch(value)):
            return value
        raise ValueError(f"should be an ISO 8601 string ({example})")

    return BeforeValidator(check)


# UUIDs, dates and times are JSON strings (JSON has no such types), read alike in either mode: not strict, so
# that Python code may give the string too.
IsoDate = Annotated[date, Strict(False), _as_written(r"\d{4}-\d{2}-\d{2}", "YYYY-MM-DD")]
IsoDateTime = Annotated[AwareDatetime, Strict(False), _as_written(r"\d{4}-\d{2}-\d{2}[Tt ].*", "YYYY-MM-DDThh:mm:ssZ")]
Uuid = Annotated[uuid.UUID, Strict(False)]
# Ids and hours as the store keeps them (integer, numeric(8, 2)): a command outside these ranges is rejected
# with its reason when it is read, instead of failing in the database after it was accepted.
StoreId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Hours = Annotated[float, Field(gt=-1_000_000, lt=1_000_000, allow_inf_nan=False)]


class Command(Message):
    """Base of what frontends post. Read strictly: a value of another JSON type than the contract's is refused,
    not converted (`"employee_id": true` is no employee 1, `"8"` no hours, `1` no `true`); UUIDs, dates and
    times are JSON strings in ISO form, as the schemas say (`Uuid`, `IsoDate`, `IsoDateTime`)."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class SyncRequested(Command):
    """Command to poll Nmbrs now (the old 'Synchroniseren' button). Key: 'sync'."""

    event_type: Literal["sync_requested"] = "sync_requested"
    event_id: Uuid = Field(description="Unique id; consumers deduplicate on it.")
    full: bool = Field(False, description="Full reconciliation: publish every record as a snapshot read.")
    dry_run: bool = Field(False, description="Publish would-be events to the plan topic only.")
    release_hold: bool = Field(
        False, description="Publish even if the mass-change breaker trips (after a human checked the hold)."
    )
    employee_id: StoreId | None = Field(
        None,
        description="Re-read just this Nmbrs employee (its company's bulk calls), through the same diff and events "
        "as every poll: an update when it changed, a snapshot read otherwise (so drift is corrected too). Removal "
        "or a move to another company is left to the next poll, which reads every company.",
    )
    requested_by: Name = Field(description="Who asked: a user name or 'schedule'.")
    requested_at: IsoDateTime


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"
    APPLIED = "applied"
    AUTO_LINKED = "auto_linked"
    BLOCKED = "blocked"
    NEEDS_DECISION = "needs_decision"
    DRIFT = "drift"
    LEAVE_RECALCULATED = "leave_recalculated"
    FOLLOW_UP = "follow_up"
    PREVIEW = "preview"
    REJECTED = "rejected"
    STALE = "stale"


# Outcomes that settle a decision or follow-up command; the others (leave recalculated, follow-up tasks, ...)
# accompany them.
SETTLING_OUTCOMES = frozenset({OutcomeKind.APPLIED, OutcomeKind.PREVIEW, OutcomeKind.ACCEPTED, OutcomeKind.REJECTED})


class Outcome(Message):
    """What happened to one handled event or command. Key: the subject's key."""

    event_type: Literal["outcome"] = "outcome"
    outcome_id: uuid.UUID = Field(description="uuid5 of the causing event id and kind; stable on re-publish.")
    causation_id: uuid.UUID = Field(description="Id of the event or command this answers.")
    kind: OutcomeKind
    subject: str = Field(description="What it is about, e.g. 'sync-request', 'employee:123'.")
    reason: str | None = Field(None, description="Why, in words a human understands.")
    details: dict[str, Any] = Field(default_factory=dict)
    occurred_at: AwareDatetime


def settles(outcome: Outcome, subject: str | None = None) -> bool:
    """Whether `outcome` settles the command it answers: a rejection always does, otherwise a settling kind about
    `subject` when one is given (a bulk decision publishes an outcome per record before its own, about 'bulk')."""
    if outcome.kind is OutcomeKind.REJECTED:
        return True
    return outcome.kind in SETTLING_OUTCOMES and subject in (None, outcome.subject)


def outcome_for(
    causation_id: uuid.UUID,
    kind: OutcomeKind,
    subject: str,
    occurred_at: datetime,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    part: str = "",
) -> Outcome:
    """Build the outcome of an event; its id is the same every time for the same cause, kind, subject and
    `part` (which tells apart several outcomes of one kind, e.g. a drift per field)."""
    return Outcome(
        outcome_id=uuid.uuid5(OUTCOME_NAMESPACE, f"{causation_id}:{kind.value}:{subject}:{part}"),
        causation_id=causation_id,
        kind=kind,
        subject=subject,
        reason=reason,
        details=details or {},
        occurred_at=occurred_at,
    )


class DeadLetter(Message):
    """A message a consumer could not handle, with the reason and the original bytes. Key: original key."""

    event_type: Literal["dead_letter"] = "dead_letter"
    consumer: str = Field(description="The agent that gave up on it.")
    topic: str
    partition: int
    offset: int
    key: str | None = Field(None, description="Original key (UTF-8, or base64 when not text).")
    value: str = Field(description="Original value (UTF-8, or base64 when not text).")
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    reason: str = Field(description="Why it was rejected, e.g. the validation errors.")
    failed_at: AwareDatetime


class CompanyFetch(BaseModel):
    """How fetching one company went."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    company_id: int
    name: str
    ok: bool
    employees: int = 0
    soap_calls: int = 0
    error: str | None = Field(None, description="Why the fetch failed; its records stay untouched.")


class PollReport(Message):
    """The result of one poll, on the compacted status topic under key 'poll' (latest wins)."""

    event_type: Literal["poll_report"] = "poll_report"
    poll_id: uuid.UUID
    request_id: uuid.UUID | None = None
    full: bool
    dry_run: bool
    result: Literal["published", "held", "planned", "failed", "skipped"]
    status: Literal["green", "red"]
    reasons: tuple[str, ...] = ()
    changes: dict[str, int] = Field(default_factory=dict, description="Planned events by 'entity:op'.")
    breaker_counts: dict[str, int] = Field(default_factory=dict)
    companies: tuple[CompanyFetch, ...] = ()
    employee_id: int | None = Field(None, description="Set when the poll re-read just this Nmbrs employee.")
    event_ids: tuple[uuid.UUID, ...] = Field(
        (), description="A one-employee poll's published change events, to follow them into their outcomes."
    )
    soap_calls: int = 0
    started_at: AwareDatetime
    finished_at: AwareDatetime
    fetch_s: float = 0.0
    diff_s: float = 0.0
    publish_s: float = 0.0
