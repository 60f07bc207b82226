"""Follow-up commands: changes to locally owned data (manager, leave, characteristics, time-writing categories)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from worker.adapters.database import Connection, Pool
from worker.adapters.inbox import Inbox, run_once
from worker.domain.events import Outcome, OutcomeKind
from worker.domain.follow_ups import FollowUpCommand, follow_up_rejection, follow_up_result
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import nmbrs_today
from worker.service.decisions.context import DecisionContext, Rejected

FOLLOW_UPS = "follow-ups"


async def apply_follow_up(ctx: DecisionContext, command: FollowUpCommand) -> str:
    """Carry out `command`; returns what it did. Raises Rejected."""
    today = nmbrs_today(ctx.now)
    facts = await ctx.decisions.follow_up_facts(command, today)
    if reason := follow_up_rejection(command, facts, today):
        raise Rejected(reason)
    assert facts is not None
    # The lock serialises the commands of one employee. What they are judged by is written by others (the sync,
    # the target load), so it was read before.
    await ctx.store.lock_record(command.key)
    await ctx.decisions.apply_follow_up(command, facts)
    if command.command in ("leave_adjustment", "overtime_payout"):
        await ctx.recalculate([facts.employee_id], command.key)
    return follow_up_result(command)


async def handle_follow_up(command: FollowUpCommand, pool: Pool, now: Callable[[], datetime]) -> list[Outcome]:
    async def effect(connection: Connection) -> list[Outcome]:
        ctx = DecisionContext(connection, command.command_id, command.issued_by, MatchPolicy(), now())
        # Who sent it is said in the outcome: the store keeps no sender for most follow-ups, the history needs it.
        details = {"command": command.command, "issued_by": command.issued_by}
        try:
            async with connection.transaction():
                reason = await apply_follow_up(ctx, command)
            ctx.outcome(OutcomeKind.APPLIED, command.key, reason, details)
            await ctx.announce_tasks(command.employee_id, command.key)
        except Rejected as error:
            ctx.reject(command.key, str(error), details)
        return ctx.outcomes

    return await run_once(pool, Inbox(FOLLOW_UPS), command.command_id, effect)
