"""The reconciler: applies Nmbrs change events to RegiCRM/RegiTijd, or asks a human.

Per event, one transaction: claim the event id (inbox), lock the record, load its state and candidates,
decide (pure), write through the target store, recalculate leave where contract, schedule, employment or
CAO changed. The outcomes (causation id = the change event id) are published after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from worker.adapters.leave_store import recalculate_leave
from worker.adapters.postgres import Inbox, run_once
from worker.adapters.target_store import PostgresTargetStore
from worker.domain.changes import ChangeEvent, CompanyChanged, EmployeeChanged, ReferenceChanged
from worker.domain.events import Outcome, OutcomeKind, outcome_for
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import nmbrs_today
from worker.domain.reconcile import Plan, reconcile_company, reconcile_employee, reconcile_reference

CONSUMER = "reconciler"


async def plan_and_apply(
    event: ChangeEvent[Any], store: PostgresTargetStore, policy: MatchPolicy
) -> tuple[Plan, list[int]]:
    """Decide and write one change inside the caller's transaction; returns the plan and the employees
    whose leave must be recalculated."""
    await store.lock_record(event.key)
    nmbrs_id = int(event.key.split(":", 1)[1])
    if isinstance(event, EmployeeChanged):
        record = event.after or event.before
        assert record is not None
        state = await store.record_state("employee", nmbrs_id, record.bsn_hash)
        candidates = await store.person_candidates(record) if state.link is None and event.after else []
        plan = reconcile_employee(event, state, candidates, policy)
        entity = "employee"
    elif isinstance(event, CompanyChanged):
        record = event.after or event.before
        state = await store.record_state("company", nmbrs_id)
        candidates_org = await store.organisation_candidates(record) if state.link is None and event.after else []
        plan = reconcile_company(event, state, candidates_org, policy)
        entity = "company"
    else:
        assert isinstance(event, ReferenceChanged)
        plan, record, entity = reconcile_reference(event), event.after or event.before, event.entity.value
    recalculate = await store.execute(plan, entity, nmbrs_id, record, event.event_id)
    return plan, recalculate


async def handle_change(
    event: ChangeEvent[Any], pool: asyncpg.Pool, policy: MatchPolicy, now: Callable[[], datetime]
) -> list[Outcome]:
    async def effect(connection: asyncpg.Connection) -> list[Outcome]:
        store = PostgresTargetStore(connection)
        plan, recalculate = await plan_and_apply(event, store, policy)
        at = now()
        outcomes = [
            outcome_for(event.event_id, planned.kind, event.key, at, planned.reason,
                        {**planned.details, "situation": plan.situation, "op": event.op.value},
                        part=str(planned.details.get("field", "")))
            for planned in plan.outcomes
        ]  # fmt: skip
        as_of = nmbrs_today(at)
        for employee_id in recalculate:
            before, after = await recalculate_leave(connection, employee_id, as_of, event.event_id)
            outcomes.append(
                outcome_for(event.event_id, OutcomeKind.LEAVE_RECALCULATED, event.key, at,
                            f"leave recalculated for RegiTijd employee {employee_id}",
                            {"employee_id": employee_id, "before": before, "after": after})
            )  # fmt: skip
        return outcomes

    return await run_once(pool, Inbox(CONSUMER), event.event_id, effect)
