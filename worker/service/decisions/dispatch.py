"""The decision consumer's handler: each decision applied or rejected in one transaction with its inbox claim."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from worker.adapters import metrics
from worker.adapters.database import Connection, Pool
from worker.adapters.inbox import Inbox, run_once
from worker.domain.decisions import Decision
from worker.domain.events import Outcome
from worker.domain.matching import MatchPolicy
from worker.service.decisions.bulk import apply_bulk
from worker.service.decisions.context import DecisionContext, Rejected
from worker.service.decisions.single import apply_single

DECISIONS = "decisions"


async def handle_decision(
    decision: Decision, pool: Pool, policy: MatchPolicy, now: Callable[[], datetime]
) -> list[Outcome]:
    """Apply `decision` exactly once (a bulk by its filter, else its one record), or reject it with the reason;
    either way it is kept with its effect. Returns the outcomes to publish."""

    async def effect(connection: Connection) -> list[Outcome]:
        ctx = DecisionContext(connection, decision.decision_id, decision.decided_by, policy, now())
        result, reason, done = "applied", None, {}
        try:
            async with connection.transaction():  # a savepoint: a rejection leaves no partial effect
                done = await _dispatch(ctx, decision)
            if decision.filter is not None and decision.preview:
                result = "previewed"
        except Rejected as error:
            result, reason = "rejected", str(error)
            ctx.reject(decision.key, reason, {"action": decision.action.value})
        await ctx.decisions.record_decision(decision, result, reason, done)
        return ctx.outcomes

    return await run_once(pool, Inbox(DECISIONS), decision.decision_id, effect)


async def _dispatch(ctx: DecisionContext, decision: Decision) -> dict[str, Any]:
    if decision.filter is not None:
        return await apply_bulk(ctx, decision)
    assert decision.nmbrs_id is not None  # the command's validation: a filter or one record
    return await apply_single(ctx, decision, decision.entity, decision.nmbrs_id, decision.action, decision.version)


async def decision_published(decision: Decision, pool: Pool) -> None:
    """For the consumer shell, once the broker acknowledged the outcomes handle_decision returned: a redelivery
    of the decision then re-publishes nothing, where it would send a bulk's outcomes (three a record) again."""
    await Inbox(DECISIONS).mark_published(pool, [decision.decision_id])
    # From the frontend's clock to ours: a skewed frontend clock shows here too (clamped at zero).
    metrics.DECISION_LATENCY.observe(max(0.0, (datetime.now(UTC) - decision.decided_at).total_seconds()))
