"""The mass-change breaker: a poll that would remove, end or move too many employees is held for a human."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.domain.changes import ChangeEvent, Entity, Op
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee


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


@dataclass
class ChangeTally:
    """What the breaker counts of a poll's changes, added up as they are planned (company by company)."""

    removed_by_company: Counter[int] = field(default_factory=Counter)
    ended: int = 0
    moved: int = 0
    companies_removed: list[int] = field(default_factory=list)

    def add(self, changes: Iterable[ChangeEvent[Any]]) -> None:
        for change in changes:
            if change.entity is Entity.COMPANY:
                if change.op is Op.DELETE and isinstance(change.before, NmbrsCompany):
                    self.companies_removed.append(change.before.company_id)
            elif change.entity is Entity.EMPLOYEE:
                if change.op is Op.DELETE and isinstance(change.before, NmbrsEmployee):
                    self.removed_by_company[change.before.company_id] += 1
                self.ended += is_leaver(change)
                self.moved += moved_company(change)


def evaluate_breaker(
    previous_active: int,
    fetched: int,
    changes: Iterable[ChangeEvent[Any]],
    policy: BreakerPolicy,
    previous_by_company: Mapping[int, int] | None = None,
) -> BreakerVerdict:
    """The verdict on a list of changes (see judge_tally)."""
    tally = ChangeTally()
    tally.add(changes)
    return judge_tally(previous_active, fetched, tally, policy, previous_by_company)


def judge_tally(
    previous_active: int,
    fetched: int,
    tally: ChangeTally,
    policy: BreakerPolicy,
    previous_by_company: Mapping[int, int] | None = None,
) -> BreakerVerdict:
    """Hold a poll that would remove, end or move more than the allowed share of employees, or whose
    fetched head count dropped by more than that share (the signature of an incomplete fetch).
    `previous_active`: the active employees the last snapshot had in the companies fetched now.

    Whatever the numbers, it also holds a poll that removes a company, or every employee a company had
    (`previous_by_company`: its active employees in the last snapshot). Nmbrs keeps leavers and almost
    never deletes a company: a company missing from the list, or listing nobody, is far more likely hidden
    from the API user or a failed answer, and a share of all employees would let a small company go."""
    removed_by_company = tally.removed_by_company
    by_company = previous_by_company or {}
    emptied = sorted(
        company_id for company_id, count in by_company.items() if count and removed_by_company[company_id] >= count
    )
    companies_removed = sorted(tally.companies_removed)
    removed = sum(removed_by_company.values())
    ended, moved = tally.ended, tally.moved
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
