"""A decided link written through the reconciler's plan, and the other open employments of the same human."""

from __future__ import annotations

from typing import Any

from worker.domain.changes import LinkedEntity
from worker.domain.decisions import link_plan, nmbrs_record
from worker.domain.events import OutcomeKind
from worker.service.decisions.context import DecisionContext


async def link_and_apply(
    ctx: DecisionContext,
    entity: LinkedEntity,
    nmbrs_id: int,
    data: dict[str, Any],
    version: int | None,
    crm_id: int,
    reason: str,
    regitijd_id: int | None = None,
) -> int | None:
    """Link the record to `crm_id`, write its Nmbrs-owned fields, close its question; returns the RegiTijd id.
    `version`: the record's, remembered so that a change older than it arriving later is ignored as stale.
    `regitijd_id`: the existing RegiTijd record it takes over (None: one is created)."""
    record = nmbrs_record(entity, data)
    plan = link_plan(record, crm_id, ctx.actor, reason, regitijd_id)
    recalculate = await ctx.store.execute(plan, entity, nmbrs_id, record, ctx.decision_id, ctx.actor, version)
    regitijd_id = await ctx.decisions.linked_regitijd_id(entity, nmbrs_id)
    subject = f"{entity}:{nmbrs_id}"
    await ctx.recalculate(recalculate, subject)
    if entity == "employee" and regitijd_id is not None:
        await ctx.announce_tasks(regitijd_id, subject)
    return regitijd_id


async def link_same_human(
    ctx: DecisionContext, data: dict[str, Any], person_id: int, nmbrs_id: int
) -> dict[str, dict[str, Any]]:
    """Other open employments of the same human (same BSN hash) go to the same person right away (one human, one
    person: rule 4); returns their Nmbrs data by id, for an undo."""
    if not data.get("bsn_hash"):
        return {}
    linked = {}
    for other_id in await ctx.decisions.open_employments(data["bsn_hash"], but=nmbrs_id):
        await ctx.store.lock_record(f"employee:{other_id}")
        # Read again under the lock: the reconciler may have withdrawn or renewed the question meanwhile.
        question = await ctx.decisions.question("employee", other_id)
        if question is None:
            continue
        reason = f"same BSN hash as Nmbrs employee {nmbrs_id}, which was just linked to person {person_id}"
        await link_and_apply(ctx, "employee", other_id, question.data, question.version, person_id, reason)
        ctx.outcome(OutcomeKind.AUTO_LINKED, f"employee:{other_id}", reason, {"person_id": person_id})
        linked[str(other_id)] = question.data
    return linked
