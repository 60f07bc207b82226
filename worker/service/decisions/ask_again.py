"""A record put through reconciliation again, after an unblock or an undo: a fresh question, or an auto-link."""

from __future__ import annotations

from typing import Any

from worker.domain.changes import EmployeeChanged, LinkedEntity
from worker.domain.decisions import re_ask_event
from worker.domain.events import OutcomeKind
from worker.domain.reconcile import reconcile_company, reconcile_employee
from worker.service.decisions.context import DecisionContext


async def ask_again(ctx: DecisionContext, entity: LinkedEntity, nmbrs_id: int, data: dict[str, Any]) -> None:
    """Reconcile the record anew with the latest Nmbrs data: the snapshot's (Nmbrs may have changed the record
    since the decision that kept `data`), else `data`; a record Nmbrs removed meanwhile is not asked about."""
    subject = f"{entity}:{nmbrs_id}"
    latest = await ctx.decisions.snapshot(entity, nmbrs_id)
    if latest is not None and latest.deleted:
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            f"Nmbrs {entity} {nmbrs_id} was removed from Nmbrs meanwhile: nothing to ask",
            {"action": "re-ask"},
            part="re-ask",
        )
        return
    data, version = (latest.data, latest.version) if latest is not None else (data, 1)
    event = re_ask_event(entity, nmbrs_id, data, version, ctx.decision_id, ctx.now)
    # A snapshot read carries the record (asserted for the type checker).
    if isinstance(event, EmployeeChanged):
        assert event.after is not None
        state = await ctx.store.record_state(entity, nmbrs_id, event.after.bsn_hash)
        candidates = await ctx.store.person_candidates(event.after, state.linked_persons_for_bsn)
        plan = reconcile_employee(event, state, candidates, ctx.policy)
    else:
        assert event.after is not None
        state = await ctx.store.record_state(entity, nmbrs_id)
        plan = reconcile_company(event, state, await ctx.store.organisation_candidates(event.after), ctx.policy)
    recalculate = await ctx.store.execute(plan, entity, nmbrs_id, event.after, ctx.decision_id, ctx.actor)
    await ctx.recalculate(recalculate, subject)
    for planned in plan.outcomes:
        ctx.outcome(planned.kind, subject, planned.reason, planned.details, part="re-ask")
