"""What one poll adds up while it plans company by company: enough for what needs the whole domain (removals,
the breaker, the report) without holding the domain's records."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from worker.domain.breaker import BreakerPolicy, BreakerVerdict, ChangeTally, judge_tally
from worker.domain.changes import ReferenceRecord
from worker.domain.snapshot_diff import CompanyPlan, PlannedChange


@dataclass
class PollTally:
    changes: Counter[str] = field(default_factory=Counter)  # planned events by 'entity:op'
    breaker: ChangeTally = field(default_factory=ChangeTally)
    fetched: int = 0
    missing: set[str] = field(default_factory=set)
    arrived: set[str] = field(default_factory=set)
    references: dict[str, ReferenceRecord] = field(default_factory=dict)

    def add_company(self, plan: CompanyPlan) -> None:
        self.fetched += plan.fetched
        self.missing |= plan.missing
        self.arrived |= plan.arrived
        self.references.update(plan.references)
        self.add(plan.planned)

    def add(self, planned: Iterable[PlannedChange]) -> None:
        events = [p.event for p in planned]
        self.changes.update(f"{e.entity.value}:{e.op.value}" for e in events)
        self.breaker.add(events)

    def removal_candidates(self, unlisted: Iterable[str]) -> list[str]:
        """Employees no fetched company lists any more: missing from the company they were stored under, or
        stored under a company Nmbrs no longer lists (`unlisted`), and not listed by another company now."""
        return sorted((self.missing | set(unlisted)) - self.arrived)

    def verdict(
        self, previous_by_company: Mapping[int, int], fetched_ok: set[int], policy: BreakerPolicy
    ) -> BreakerVerdict:
        """The breaker on the whole poll; `previous_by_company`: the active employees of every company in the last
        snapshot (counted over the companies fetched now: a failed company is already kept out of the changes)."""
        previous_active = sum(n for company_id, n in previous_by_company.items() if company_id in fetched_ok)
        return judge_tally(previous_active, self.fetched, self.breaker, policy, previous_by_company)
