"""The mass-change breaker: a poll that would remove, end or move too many employees is held for a human."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.domain.changes import ChangeEvent, Entity, Op
from worker.domain.nmbrs_records import CompanySnapshot, NmbrsCompany, NmbrsEmployee
from worker.domain.snapshot_diff import PlannedChange, SnapshotEntry


class BreakerPolicy(BaseModel):
    """Thresholds of the mass-change breaker. Below `min_count` affected records it never trips, so a
    single leaver in a ten-person company is not held."""

    model_config = ConfigDict(frozen=True)

    max_share: float = Field(0.10, gt=0, le=1)
    min_count: int = Field(5, ge=1)


class BreakerVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    tripped: bool
    reasons: tuple[str, ...] = ()
    counts: dict[str, int] = Field(default_factory=dict)


def latest_employment_end(employee: NmbrsEmployee) -> date | None:
    """End of the most recent employment period (None = still employed or never employed)."""
    if not employee.employments:
        return None
    return max(employee.employments, key=lambda period: period.start).end


def is_leaver(change: ChangeEvent[Any]) -> bool:
    """An update that ends employment: the latest employment had no end date and now has one."""
    before, after = change.before, change.after
    if change.op is not Op.UPDATE or not isinstance(before, NmbrsEmployee) or not isinstance(after, NmbrsEmployee):
        return False
    return latest_employment_end(before) is None and latest_employment_end(after) is not None


def moved_company(change: ChangeEvent[Any]) -> bool:
    if change.entity is not Entity.EMPLOYEE or change.op is not Op.UPDATE:
        return False
    return "company_id" in change.changed_fields


def evaluate_breaker(
    previous_active: int,
    fetched: int,
    changes: Iterable[ChangeEvent[Any]],
    policy: BreakerPolicy,
    previous_by_company: Mapping[int, int] | None = None,
) -> BreakerVerdict:
    """Hold a poll that would remove, end or move more than the allowed share of employees, or whose
    fetched head count dropped by more than that share (the signature of an incomplete fetch).

    Whatever the numbers, it also holds a poll that removes a company, or every employee a company had
    (`previous_by_company`: its active employees in the last snapshot). Nmbrs keeps leavers and almost
    never deletes a company: a company missing from the list, or listing nobody, is far more likely hidden
    from the API user or a failed answer, and a share of all employees would let a small company go."""
    changes = list(changes)
    employee_changes = [c for c in changes if c.entity is Entity.EMPLOYEE]
    removed_by_company = Counter(
        c.before.company_id for c in employee_changes if c.op is Op.DELETE and isinstance(c.before, NmbrsEmployee)
    )
    by_company = previous_by_company or {}
    emptied = sorted(
        company_id for company_id, count in by_company.items() if count and removed_by_company[company_id] >= count
    )
    companies_removed = sorted(
        c.before.company_id
        for c in changes
        if c.entity is Entity.COMPANY and c.op is Op.DELETE and isinstance(c.before, NmbrsCompany)
    )
    removed = sum(1 for c in employee_changes if c.op is Op.DELETE)
    ended = sum(1 for c in employee_changes if is_leaver(c))
    moved = sum(1 for c in employee_changes if moved_company(c))
    dropped = max(previous_active - fetched, 0)
    counts = {
        "previous": previous_active,
        "fetched": fetched,
        "removed": removed,
        "ended": ended,
        "moved": moved,
        "dropped": dropped,
        "companies_removed": len(companies_removed),
        "companies_emptied": len(emptied),
    }
    reasons = [f"company {company_id} is no longer listed by Nmbrs" for company_id in companies_removed]
    reasons += [f"all {by_company[company_id]} employees of company {company_id} removed" for company_id in emptied]
    if previous_active == 0:
        return BreakerVerdict(tripped=bool(reasons), reasons=tuple(reasons), counts=counts)
    limit = policy.max_share * previous_active
    for count, what in (
        (removed + ended, "removed or ended"),
        (moved, "moved to another company"),
        (dropped, "fewer fetched than last time"),
    ):
        if count >= policy.min_count and count > limit:
            reasons.append(f"{count} of {previous_active} employees {what} (more than {policy.max_share:.0%})")
    return BreakerVerdict(tripped=bool(reasons), reasons=tuple(reasons), counts=counts)


def judge_poll(
    previous: Mapping[str, SnapshotEntry],
    snapshots: list[CompanySnapshot],
    planned: list[PlannedChange],
    policy: BreakerPolicy,
) -> BreakerVerdict:
    """The breaker's verdict on one poll's planned changes, against the last snapshot."""
    fetched_ok = {s.company.company_id for s in snapshots}
    # Counted over the companies fetched now: a failed company is already kept out of the changes.
    previous_active = sum(
        1 for e in previous.values() if e.entity is Entity.EMPLOYEE and not e.deleted and e.company_id in fetched_ok
    )
    fetched = sum(len(s.employees) for s in snapshots)
    by_company = Counter(
        e.company_id for e in previous.values() if e.entity is Entity.EMPLOYEE and not e.deleted and e.company_id
    )
    return evaluate_breaker(previous_active, fetched, [p.event for p in planned], policy, by_company)
