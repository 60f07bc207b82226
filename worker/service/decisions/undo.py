"""Ongedaan maken: reverse a link, create, block or skip. A created employee is deactivated, not deleted."""

from __future__ import annotations

import uuid
from typing import Any

from worker.domain.changes import LinkedEntity
from worker.domain.decisions import Decision, Rejection, Reversal, crm_kind, plan_undo
from worker.domain.events import OutcomeKind
from worker.service.decisions.ask_again import ask_again
from worker.service.decisions.context import DecisionContext, Rejected


async def undo(ctx: DecisionContext, decision: Decision, entity: LinkedEntity, nmbrs_id: int) -> dict[str, Any]:
    """Undo what `decision.undo_decision_id` did to the record `entity`:`nmbrs_id` (or to all its records);
    returns the undo's effect. Raises Rejected."""
    assert decision.undo_decision_id is not None  # the command's validation
    earlier = await ctx.decisions.decision_to_undo(decision.undo_decision_id)
    plan = plan_undo(decision, earlier, entity, nmbrs_id)
    if isinstance(plan, Rejection):
        raise Rejected(plan.reason)
    for reversal in plan.reversals:
        await _reverse(ctx, reversal, decision.undo_decision_id)
    await ctx.decisions.mark_undone(decision.undo_decision_id, plan.effect, ctx.decision_id, plan.whole)
    undid = sorted(f"{r.entity}:{r.nmbrs_id}" for r in plan.reversals)
    return {"undid": str(decision.undo_decision_id), "undid_records": undid}


async def _reverse(ctx: DecisionContext, reversal: Reversal, undone: uuid.UUID) -> None:
    entity, nmbrs_id = reversal.entity, reversal.nmbrs_id
    subject = f"{entity}:{nmbrs_id}"
    await ctx.store.lock_record(subject)  # a bulk decision's other records were not locked yet
    ask: dict[int, dict[str, Any]] = {}
    adopted = reversal.adopted_company
    for text_id, data in reversal.linked.items():
        linked_id = int(text_id)
        await ctx.store.lock_record(f"{entity}:{linked_id}")
        regitijd_id = await ctx.decisions.unlink(entity, linked_id, adopted)
        ctx.outcome(
            OutcomeKind.APPLIED,
            f"{entity}:{linked_id}",
            f"link undone; RegiTijd company {adopted.company_id} ({adopted.name}) is the organisation's own again"
            if adopted
            else "link undone; the RegiTijd record is deactivated, not deleted",
            {"action": "ongedaan_maken", "regitijd_id": regitijd_id},
            part="undo",
        )
        ask[linked_id] = data
    if reversal.card:
        assert reversal.crm_id is not None  # a link's effect names the card it wrote over
        await _restore_card(ctx, entity, reversal.crm_id, reversal.card, undone)
    if reversal.blocked:
        # Only the block this decision made: after an unblock, or a newer block, there is nothing of it left.
        removed, kept = await ctx.decisions.remove_block(entity, nmbrs_id, undone)
        if not removed:
            raise Rejected(f"{subject} is no longer blocked by decision {undone}: nothing to undo")
        ctx.outcome(OutcomeKind.APPLIED, subject, "block undone", {"action": "ongedaan_maken"}, part="undo")
        if kept is not None:
            ask[nmbrs_id] = kept
    if reversal.skipped:
        await ctx.decisions.set_skipped(entity, nmbrs_id, False)
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            "skip undone: the question is open again",
            {"action": "ongedaan_maken"},
            part="undo",
        )
    for asked_id, data in ask.items():
        await ask_again(ctx, entity, asked_id, data)


async def _restore_card(
    ctx: DecisionContext, entity: LinkedEntity, crm_id: int, card: dict[str, Any], undone: uuid.UUID
) -> None:
    kind = crm_kind(entity)
    subject = f"{kind}:{crm_id}"
    if await ctx.store.cards.restore(entity, crm_id, card["before"], card["after"], ctx.decision_id, ctx.actor):
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            f"{kind} card restored to its values before decision {undone}",
            {"action": "ongedaan_maken", "restored": card["before"]},
            part="undo",
        )
    else:
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            f"{kind} card changed since decision {undone}: left as it is, check its name and contact data",
            {"action": "ongedaan_maken"},
            part="undo",
        )
