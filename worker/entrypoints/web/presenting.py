"""What the web app shows of a decision's outcomes, of ages and of form errors: pure, in the catalogue's words."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from worker.domain.employee_history import FIELD_LABELS
from worker.domain.events import Outcome, OutcomeKind, PollReport
from worker.domain.leave import YearReport
from worker.domain.nmbrs_records import NMBRS_TIMEZONE
from worker.domain.status import StepStatus
from worker.entrypoints.web.catalogue import Catalogue


@dataclass(frozen=True)
class LeaveAfter:
    """An employee's leave balance after a decision recalculated it, as the desktop showed after "Bijwerken"."""

    employee_id: int
    total: str
    statutory: str
    extra: str
    overtime: str
    before_total: str | None


@dataclass(frozen=True)
class AnsweredBy:
    """Someone else's decision that answered the question first."""

    user: str
    action: str
    at: datetime


@dataclass(frozen=True)
class DecisionResult:
    status: Literal["applied", "rejected", "waiting"]
    message: str
    reason: str | None = None
    leave: tuple[LeaveAfter, ...] = ()
    tasks: tuple[str, ...] = field(default=())
    employee_id: int | None = None  # the RegiTijd employee the decision made or linked: its page is next


def decision_result(
    outcomes: list[Outcome],
    t: Catalogue,
    answered_by: AnsweredBy | None = None,
    action: str | None = None,
    subject: str | None = None,
    target: str | None = None,
) -> DecisionResult:
    """The one result a person reads after clicking an action: what was done to `subject` (its name), with
    `target` the person or organisation it was linked to. `answered_by`: a decision of someone else on the
    same record, looked up when this one was rejected (two HR users on one question)."""
    # A bulk decision's own outcome (subject 'bulk') follows one per record it answered.
    done = [o for o in outcomes if o.kind in (OutcomeKind.APPLIED, OutcomeKind.PREVIEW)]
    settling = next((o for o in done if o.subject == "bulk"), done[0] if done else None)
    rejected = next((o for o in outcomes if o.kind is OutcomeKind.REJECTED), None)
    if rejected is not None:
        if answered_by is not None:
            message = t(
                "result.answered_by",
                user=answered_by.user,
                action=t(f"action.{answered_by.action}"),
                at=answered_by.at.strftime("%H:%M"),
            )
        else:
            message = t("result.rejected")
        return DecisionResult("rejected", message, rejected.reason)
    if settling is None:
        return DecisionResult("waiting", t("result.waiting"))
    leave = tuple(
        _leave_after(o) for o in outcomes if o.kind is OutcomeKind.LEAVE_RECALCULATED and o.details.get("after")
    )
    tasks = tuple(
        t(f"task.{task}") if f"task.{task}" in t.texts else task
        for o in outcomes
        if o.kind is OutcomeKind.FOLLOW_UP
        for task in o.details.get("tasks", ())
    )
    records = settling.details.get("records")
    if settling.kind is OutcomeKind.PREVIEW:
        message = t("result.preview", action=t(f"action.{action}"))
    elif subject is None and isinstance(records, list):  # a bulk decision
        message = t("result.bulk_done", action=t(f"action.{action}"), count=len(records))
    elif (key := f"result.done.{action}") in t.texts:
        message = t(key, subject=subject or "", target=target or "")
    else:
        message = t("result.applied")
    employee_id = next(
        (
            int(o.details["employee_id"])
            for o in outcomes
            if o.kind in (OutcomeKind.FOLLOW_UP, OutcomeKind.LEAVE_RECALCULATED) and "employee_id" in o.details
        ),
        None,
    )
    return DecisionResult("applied", message, settling.reason, leave, tasks, employee_id)


def _leave_after(outcome: Outcome) -> LeaveAfter:
    return leave_change(int(outcome.details["employee_id"]), outcome.details.get("before"), outcome.details["after"])


def leave_change(employee_id: int, before: Any, after: Any) -> LeaveAfter:
    """A leave recalculation's summaries (balance_summary's keys; before None for the first) as one change."""
    before = before or {}
    return LeaveAfter(
        employee_id=employee_id,
        total=after["leave_total"],
        statutory=after["statutory"],
        extra=after["extra"],
        overtime=after["overtime"],
        before_total=before.get("leave_total"),
    )


def day_text(value: date | datetime | None) -> str:
    """A date as a Dutch reader writes it (04-12-2026); '–' for none."""
    return value.strftime("%d-%m-%Y") if value is not None else "–"


def moment_text(value: datetime | None) -> str:
    """A moment in Dutch local time, to the minute (04-12-2026 13:05)."""
    return value.astimezone(NMBRS_TIMEZONE).strftime("%d-%m-%Y %H:%M") if value is not None else "–"


def hours_text(value: Decimal | float | str | None) -> str:
    """Hours with a decimal comma and two decimals (32,00); '–' for none. A text is a stored Decimal ('160.00')."""
    if value is None:
        return "–"
    return f"{Decimal(value) if isinstance(value, str) else value:.2f}".replace(".", ",")


@dataclass(frozen=True)
class LeaveBar:
    """One year of the leave chart: where its entitlement went, as widths on a scale shared by all years."""

    year: int
    entitlement: Decimal
    taken: Decimal
    remaining: Decimal
    expired: Decimal
    taken_width: float
    remaining_width: float
    expired_width: float


def leave_bars(years: Iterable[YearReport], width: float) -> list[LeaveBar]:
    """Per year: taken, still remaining and expired hours of the entitlement, scaled so that the largest
    entitlement spans `width`. What was taken beyond the entitlement is in the table, not in the bar."""
    parts = []
    for y in years:
        entitlement = y.entitlement.statutory + y.entitlement.extra
        expired = y.statutory_expired_hours + y.extra_expired_hours
        remaining = max(y.statutory_remaining + y.extra_remaining, Decimal(0))
        taken = max(entitlement - remaining - expired, Decimal(0))
        parts.append((y.year, entitlement, taken, remaining, expired))
    largest = max((max(p[1], p[2] + p[3] + p[4]) for p in parts), default=Decimal(0))
    scale = width / float(largest) if largest > 0 else 0.0
    return [
        LeaveBar(year, ent, taken, rem, exp, float(taken) * scale, float(rem) * scale, float(exp) * scale)
        for year, ent, taken, rem, exp in parts
    ]


def age_text(seconds: float, t: Catalogue) -> str:
    """'zojuist', '5 minuten', '3 uur', '2 dagen': how long something has been waiting."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return t("age.now")
    if minutes < 60:
        return t("age.minutes", n=minutes) if minutes > 1 else t("age.minute")
    hours = minutes // 60
    if hours < 24:
        return t("age.hours", n=hours)
    days = hours // 24
    return t("age.days", n=days) if days > 1 else t("age.day")


def form_errors(error: ValidationError, t: Catalogue) -> list[str]:
    """A rejected form in words: the field's label and what pydantic said (its messages are English and
    precise; the label tells which input it is about)."""
    messages = []
    for problem in error.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(part) for part in problem["loc"])
        label = t(f"field.{where}") if f"field.{where}" in t.texts else where
        messages.append(t("form.invalid_field", field=label, problem=problem["msg"]) if where else problem["msg"])
    return messages


_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def shown(field_name: str, value: str | None, t: Catalogue) -> str:
    """A record's or card's value as a Dutch reader expects it: dates day first, coded values in words."""
    if value is None or value == "":
        return "–"
    if match := _ISO_DATE.match(value):
        return f"{match[3]}-{match[2]}-{match[1]}"
    key = f"{field_name}.{value}"
    return t(key) if key in t.texts else value


# Step reasons the worker derives from a count, said again from that count in the catalogue's words.
_COUNTED_REASONS = {"pending": "reason.pending", "without_contract": "reason.without_contract"}


def step_reasons(step: StepStatus, t: Catalogue) -> list[str]:
    if step.status != "red":
        return []
    counted = [t(key, n=step.counts[name]) for name, key in _COUNTED_REASONS.items() if step.counts.get(name)]
    if step.step == "leave" and step.counts.get("not_calculated"):
        counted.append(t("reason.not_calculated", n=step.counts["not_calculated"]))
    # The poll's reasons (a company not fetched, the breaker's) name records and numbers: shown as they are.
    return counted if step.step != "poll" else list(step.reasons)


# The follow-up rejections of domain/follow_ups.py, said in the catalogue's words (the English text stays
# beside it, under "technische details"). A reason not listed here is shown as it is.
_FOLLOW_UP_REJECTIONS = (
    (re.compile(r"has no active contract on (\d{4}-\d{2}-\d{2})"), "followup.rejected.no_contract"),
    (re.compile(r"cannot be their own manager"), "followup.rejected.own_manager"),
    (re.compile(r"^manager \d+ is not a RegiTijd employee"), "followup.rejected.no_manager"),
    (re.compile(r"^time-writing category '(.*)' does not exist"), "followup.rejected.no_category"),
    (re.compile(r"^RegiTijd employee \d+ does not exist"), "followup.rejected.no_employee"),
)


def follow_up_rejection_text(reason: str, t: Catalogue) -> str:
    for pattern, key in _FOLLOW_UP_REJECTIONS:
        if match := pattern.search(reason):
            value = match.group(1) if match.groups() else ""
            return t(key, value=shown("date", value, t) if key.endswith("no_contract") else value)
    return reason


@dataclass(frozen=True)
class SyncStep:
    """One step of a one-employee sync as Entra's on-demand provisioning shows it: what happened, in words."""

    key: Literal["requested", "fetched", "compared", "processed"]
    state: Literal["done", "waiting", "failed"]
    title: str
    lines: tuple[str, ...] = ()
    question: bool = False  # the reconciler asked HR: the page links to the question


_REFERENCE_SUBJECTS = ("department:", "function:", "labour_agreement:", "company:")


def sync_steps(
    requested_by: str,
    requested_at: datetime,
    report: PollReport | None,
    outcomes: Iterable[Outcome],
    handled: int,
    t: Catalogue,
) -> list[SyncStep]:
    """The steps of "sync this employee now" so far: requested, fetched from Nmbrs, compared with the last
    snapshot, processed by the reconciler (applied / asked / unchanged). A step not reached yet is 'waiting'."""
    steps = [
        SyncStep(
            "requested",
            "done",
            t("sync_one.requested"),
            (t("sync_one.requested_by", who=requested_by, at=moment_text(requested_at)),),
        )
    ]
    if report is None:
        return [*steps, SyncStep("fetched", "waiting", t("sync_one.fetching"))]
    fetched = report.companies[0] if report.companies else None
    if fetched is None or not fetched.ok or report.result == "failed":
        return [*steps, SyncStep("fetched", "failed", t("sync_one.not_fetched"), report.reasons)]
    steps.append(
        SyncStep(
            "fetched",
            "done",
            t("sync_one.fetched"),
            (
                t(
                    "sync_one.fetched_company",
                    company=fetched.name,
                    employees=fetched.employees,
                    calls=report.soap_calls,
                ),
            ),
        )
    )
    employee = {op for key, op in (k.split(":") for k in report.changes) if key == "employee"}
    new = sum(n for key, n in report.changes.items() if key.endswith(":c") and not key.startswith("employee"))
    compared = [t("sync_one.changed") if employee & {"u", "c"} else t("sync_one.unchanged")]
    if new:
        compared.append(t("sync_one.new_references", n=new))
    steps.append(SyncStep("compared", "done", t("sync_one.compared"), tuple(compared)))
    if handled < len(report.event_ids):
        return [*steps, SyncStep("processed", "waiting", t("sync_one.processing"))]
    own = [o for o in outcomes if not o.subject.startswith(_REFERENCE_SUBJECTS)]
    lines = tuple(_processed_line(o, t) for o in own)
    asked = any(o.kind is OutcomeKind.NEEDS_DECISION for o in own)
    return [*steps, SyncStep("processed", "done", t("sync_one.processed"), lines or (t("sync_one.nothing"),), asked)]


def _processed_line(outcome: Outcome, t: Catalogue) -> str:
    details = outcome.details
    if outcome.kind is OutcomeKind.APPLIED:
        fields = [str(f) for f in details.get("changed_fields") or ()]
        if not fields:
            return t("sync_one.up_to_date")
        return t("sync_one.applied", fields=", ".join(FIELD_LABELS.get(f, f) for f in fields))
    if outcome.kind is OutcomeKind.DRIFT:
        name = str(details.get("field"))
        return t("sync_one.drift", field=FIELD_LABELS.get(name, name))
    key = f"sync_one.outcome.{outcome.kind.value}"
    return t(key) if key in t.texts else (outcome.reason or outcome.kind.value)
