"""A bulk decision: every open question a filter selects answered alike, or previewed first and then confirmed."""

from __future__ import annotations

from typing import Any

from worker.adapters.target_store import human_key
from worker.domain.decisions import BulkSelection, Decision, Rejection, previewed_versions, select_for_bulk
from worker.domain.events import OutcomeKind
from worker.service.decisions.context import DecisionContext, Rejected
from worker.service.decisions.single import apply_single


async def apply_bulk(ctx: DecisionContext, decision: Decision) -> dict[str, Any]:
    """Apply (or preview) `decision` on the records its filter selects; returns its effect. Raises Rejected."""
    assert decision.filter is not None
    entity, action = decision.entity, decision.action
    first = await _selection(ctx, decision)
    # Every human, then every record, locked up front in the order change batches lock them; then read again
    # under the locks, so that no change of these humans slips in between (a new or changed employment).
    humans = [human_key(row.bsn_hash) for row in first.selected if row.bsn_hash]
    await ctx.store.lock_records([*humans, *(f"{entity}:{row.nmbrs_id}" for row in first.selected)])
    chosen = await _selection(ctx, decision)
    keys = [f"{entity}:{row.nmbrs_id}" for row in chosen.selected]
    left_out, changed, note = list(chosen.left_out), list(chosen.changed), chosen.note()
    if decision.preview:
        ctx.outcome(
            OutcomeKind.PREVIEW,
            "bulk",
            f"would {action.value} {len(keys)} pending records{note}",
            {"action": action.value, "records": keys, "left_out": left_out},
        )
        versions = {f"{entity}:{row.nmbrs_id}": row.version for row in chosen.selected}
        return {"preview": keys, "versions": versions, "filter": decision.filter.model_dump(mode="json")}
    effects: dict[str, dict[str, Any]] = {}
    handled: set[str] = set()
    for row in chosen.selected:
        key = f"{entity}:{row.nmbrs_id}"
        if key in handled:  # already linked with another employment of the same human in this bulk
            continue
        effects[key] = await apply_single(ctx, decision, entity, row.nmbrs_id, action, row.version)
        handled.update(f"{entity}:{linked}" for linked in effects[key].get("linked", {}))
    ctx.outcome(
        OutcomeKind.APPLIED,
        "bulk",
        f"{action.value} applied to {len(keys)} pending records{note}",
        {"action": action.value, "records": keys, "left_out": left_out, "changed_since_preview": changed},
    )
    confirmed = {"confirms": str(decision.confirms)} if decision.confirms else {}
    return {"records": effects, **confirmed}


async def _selection(ctx: DecisionContext, decision: Decision) -> BulkSelection:
    assert decision.filter is not None
    found = await ctx.decisions.pending_for_bulk(decision.entity, decision.filter)
    previewed = None
    if decision.confirms is not None:
        versions = previewed_versions(decision, *await ctx.decisions.preview(decision.confirms))
        if isinstance(versions, Rejection):
            raise Rejected(versions.reason)
        previewed = versions
    return select_for_bulk(decision.entity, decision.action, found, previewed)
