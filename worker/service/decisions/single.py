"""One decision on one record: lock and load its state, plan (pure), carry the plan out, report the outcomes."""

from __future__ import annotations

from typing import Any

from worker.domain.changes import LinkedEntity
from worker.domain.decisions import (
    BlockRecord,
    Decision,
    DecisionAction,
    LinkRecord,
    Rejection,
    SkipQuestion,
    UnblockRecord,
    UndoDecision,
    crm_kind,
    linked_reason,
    plan_decision,
)
from worker.domain.events import OutcomeKind
from worker.service.decisions.ask_again import ask_again
from worker.service.decisions.context import DecisionContext, Rejected
from worker.service.decisions.linking import link_and_apply, link_same_human
from worker.service.decisions.undo import undo


async def apply_single(
    ctx: DecisionContext,
    decision: Decision,
    entity: LinkedEntity,
    nmbrs_id: int,
    action: DecisionAction,
    version: int | None,
) -> dict[str, Any]:
    """Apply one action to one record; returns its effect (for undo). Raises Rejected."""
    state = await ctx.store.lock_and_load(entity, nmbrs_id)
    single = decision.model_copy(update={"action": action, "version": version, "nmbrs_id": nmbrs_id, "entity": entity})
    # Koppelen writes the Nmbrs data over the target's card: read as it was, for an undo (and to know it exists).
    card = await ctx.store.cards.card(entity, single.target_id) if single.target_id is not None else None
    # A company linked to an organisation takes over a RegiTijd company it has already (e.g. a blue employee's).
    companies = (
        await ctx.store.unlinked_companies(single.target_id)
        if entity == "company" and single.target_id is not None and card is not None
        else ()
    )
    step = plan_decision(single, state, target_exists=card is not None, companies=companies)
    subject = f"{entity}:{nmbrs_id}"
    match step:
        case Rejection(reason=reason):
            raise Rejected(reason)
        case LinkRecord():
            return await _link(ctx, single, step, card)
        case BlockRecord(note=note, data=data):
            await ctx.decisions.block(entity, nmbrs_id, ctx.actor, note, ctx.decision_id, data)
            ctx.outcome(
                OutcomeKind.APPLIED,
                subject,
                "blocked (Blokkeren): ignored by every later sync",
                {"action": action.value},
            )
            return {"blocked": True}
        case SkipQuestion():
            await ctx.decisions.set_skipped(entity, nmbrs_id, True)
            ctx.outcome(
                OutcomeKind.APPLIED,
                subject,
                "skipped (Overslaan): asked again after the next sync",
                {"action": action.value},
            )
            return {"skipped": True}
        case UnblockRecord(data=data):
            await ctx.decisions.unblock(entity, nmbrs_id)
            ctx.outcome(
                OutcomeKind.APPLIED,
                subject,
                "unblocked (ontblokkeren): the question is asked again",
                {"action": action.value},
            )
            if data is not None:
                await ask_again(ctx, entity, nmbrs_id, data)
            return {"unblocked": True}
        case UndoDecision():
            return await undo(ctx, single, entity, nmbrs_id)


async def _link(
    ctx: DecisionContext, decision: Decision, step: LinkRecord, card_before: dict[str, Any] | None
) -> dict[str, Any]:
    """Koppelen or Aanmaken, with the other open employments of the same human."""
    entity, nmbrs_id = decision.entity, decision.nmbrs_id
    assert nmbrs_id is not None
    crm_id = step.crm_id if step.crm_id is not None else await ctx.store.cards.create(entity, step.data, ctx.actor)
    adopt = step.adopt
    regitijd_id = await link_and_apply(
        ctx, entity, nmbrs_id, step.data, step.version, crm_id, step.reason, adopt.company_id if adopt else None
    )
    same_human = await link_same_human(ctx, step.data, crm_id, nmbrs_id) if entity == "employee" else {}
    linked = {str(nmbrs_id): step.data, **same_human}
    subject = f"{entity}:{nmbrs_id}"
    details: dict[str, Any] = {"action": decision.action.value, "crm_id": crm_id, "regitijd_id": regitijd_id}
    if step.crm_id is None:
        ctx.outcome(OutcomeKind.APPLIED, subject, f"created {crm_kind(entity)} {crm_id} from Nmbrs data", details)
        return {"linked": linked, "created": crm_id, "crm_id": crm_id}
    card_after = await ctx.store.cards.card(entity, crm_id)
    blue = await ctx.decisions.blue_employees(crm_id) if entity == "employee" else []
    if blue:
        details["blue_employees"] = [b.employee_id for b in blue]
    if adopt:
        details["adopted_company_id"] = adopt.company_id
    ctx.outcome(OutcomeKind.APPLIED, subject, linked_reason(entity, crm_id, blue, adopt), details)
    # The Nmbrs data goes into the effect: an undo asks the question again with it. So does the card as it was:
    # the link wrote Nmbrs' name and contact data over it, and an undo puts them back; and the RegiTijd company
    # taken over, which an undo gives back to the organisation.
    card = {"card": {"before": card_before, "after": card_after}} if card_before != card_after else {}
    adopted = {"adopted_company": adopt.model_dump()} if adopt else {}
    return {"linked": linked, "crm_id": crm_id, **card, **adopted}
