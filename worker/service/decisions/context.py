"""What one decision or follow-up command works with: its transaction's stores, the clock, its outcomes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from worker.adapters.database import Connection
from worker.adapters.decision_store import PostgresDecisionStore
from worker.adapters.leave_store import recalculate_leave
from worker.adapters.target_store import PostgresTargetStore
from worker.domain.events import Outcome, OutcomeKind, outcome_for
from worker.domain.follow_ups import TASKS
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import nmbrs_today


class Rejected(Exception):
    """A decision or command that cannot be applied; the message is for the person who sent it."""


class DecisionContext:
    """Everything one decision needs: the transaction's stores, the clock, the policy and its outcomes."""

    def __init__(
        self, connection: Connection, decision_id: uuid.UUID, actor: str, policy: MatchPolicy, now: datetime
    ) -> None:
        self.db = connection
        self.store = PostgresTargetStore(connection, today=nmbrs_today(now))
        self.decisions = PostgresDecisionStore(connection)
        self.decision_id = decision_id
        self.actor = actor
        self.policy = policy
        self.now = now
        self.outcomes: list[Outcome] = []

    def outcome(
        self, kind: OutcomeKind, subject: str, reason: str, details: dict[str, Any] | None = None, part: str = ""
    ) -> None:
        self.outcomes.append(outcome_for(self.decision_id, kind, subject, self.now, reason, details, part))

    def reject(self, subject: str, reason: str, details: dict[str, Any]) -> None:
        """The decision's only outcome from now on: whatever it planned to report was rolled back."""
        self.outcomes = [outcome_for(self.decision_id, OutcomeKind.REJECTED, subject, self.now, reason, details)]

    async def recalculate(self, employee_ids: list[int], subject: str) -> None:
        as_of = nmbrs_today(self.now)
        for employee_id in employee_ids:
            before, after = await recalculate_leave(self.db, employee_id, as_of, self.decision_id)
            self.outcome(
                OutcomeKind.LEAVE_RECALCULATED,
                subject,
                f"leave recalculated for RegiTijd employee {employee_id}",
                {"employee_id": employee_id, "before": before, "after": after},
                part=str(employee_id),
            )

    async def announce_tasks(self, employee_id: int, subject: str) -> None:
        if tasks := list(await self.decisions.open_tasks(employee_id)):
            self.outcome(
                OutcomeKind.FOLLOW_UP,
                subject,
                "gegevens aanvullen: " + "; ".join(TASKS[t] for t in tasks),
                {"employee_id": employee_id, "tasks": tasks},
                part=str(employee_id),
            )
