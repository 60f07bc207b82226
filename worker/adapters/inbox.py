"""The idempotency inbox: which events each consumer handled, with the outcomes they had (asyncpg)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from worker.adapters.database import transaction
from worker.domain.events import Outcome


@dataclass(frozen=True)
class Claim:
    """Result of claiming an event in the inbox: new, or seen before with the outcomes it had then (none
    once their publish was acknowledged: see Inbox.mark_published)."""

    is_new: bool
    previous_outcomes: tuple[Outcome, ...] = ()


class Inbox:
    """Deduplicates consumers: the claim and the effect share one transaction."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    async def claim(self, connection: asyncpg.Connection, event_id: uuid.UUID) -> Claim:
        """Insert the event id; on a duplicate return the outcomes recorded the first time."""
        return (await self.claim_many(connection, [event_id]))[event_id]

    async def claim_many(self, connection: asyncpg.Connection, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, Claim]:
        """Claim a batch of event ids in one statement (plus one to read back the duplicates' outcomes)."""
        inserted = {
            row["event_id"]
            for row in await connection.fetch(
                """INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[])
                   ON CONFLICT DO NOTHING RETURNING event_id""",
                self.consumer,
                list(dict.fromkeys(event_ids)),
            )
        }
        claims = {event_id: Claim(is_new=True) for event_id in inserted}
        seen = [event_id for event_id in event_ids if event_id not in inserted]
        if seen:
            for row in await connection.fetch(
                """SELECT event_id, CASE WHEN published_at IS NULL THEN outcomes ELSE '[]' END AS outcomes
                   FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])""",
                self.consumer,
                seen,
            ):
                outcomes = tuple(Outcome.model_validate(o) for o in json.loads(row["outcomes"]))
                claims[row["event_id"]] = Claim(is_new=False, previous_outcomes=outcomes)
        return claims

    async def mark_published(self, executor: asyncpg.Pool | asyncpg.Connection, event_ids: list[uuid.UUID]) -> None:
        """Remember that the broker acknowledged these events' outcomes: a redelivery then re-publishes none.
        Until then it re-publishes them all, so a publish lost to a crash after the commit is repaired."""
        await executor.execute(
            """UPDATE processed_events SET published_at = now()
               WHERE consumer = $1 AND event_id = ANY($2::uuid[]) AND published_at IS NULL""",
            self.consumer,
            event_ids,
        )

    async def record_outcomes(
        self, connection: asyncpg.Connection, event_id: uuid.UUID, outcomes: list[Outcome]
    ) -> None:
        await self.record_outcomes_many(connection, {event_id: outcomes})

    async def record_outcomes_many(
        self, connection: asyncpg.Connection, outcomes: dict[uuid.UUID, list[Outcome]]
    ) -> None:
        await connection.execute(
            """UPDATE processed_events p SET outcomes = v.outcomes::jsonb
               FROM unnest($2::uuid[], $3::text[]) AS v(event_id, outcomes)
               WHERE p.consumer = $1 AND p.event_id = v.event_id""",
            self.consumer,
            list(outcomes),
            [_outcomes_json(items) for items in outcomes.values()],
        )


def _outcomes_json(outcomes: list[Outcome]) -> str:
    return "[" + ",".join(outcome.model_dump_json() for outcome in outcomes) + "]"


async def run_once(
    pool: asyncpg.Pool,
    inbox: Inbox,
    event_id: uuid.UUID,
    effect: Callable[[asyncpg.Connection], Awaitable[list[Outcome]]],
) -> list[Outcome]:
    """Apply `effect` exactly once per event id: claim, effect and outcomes commit together.

    A redelivered event returns the outcomes stored the first time (same ids), so the caller publishes
    them again: a crash between commit and publish loses no outcome, and consumers deduplicate. Once their
    publish was marked acknowledged (Inbox.mark_published) a redelivery returns none.
    """
    async with transaction(pool) as connection:
        claim = await inbox.claim(connection, event_id)
        if not claim.is_new:
            return list(claim.previous_outcomes)
        outcomes = await effect(connection)
        await inbox.record_outcomes(connection, event_id, outcomes)
    return outcomes
