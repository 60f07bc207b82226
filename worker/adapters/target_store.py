"""The target store (RegiCRM + RegiTijd in PostgreSQL): the locks, reads and writes both consumers go through.

`PostgresTargetStore` works inside the caller's transaction (one unit of work) and puts together the parts,
one module each: record states (target_reads), candidates (target_candidates), plan writes (target_writes)
and the RegiCRM cards (target_cards).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from worker.adapters import target_candidates
from worker.adapters.database import Connection
from worker.adapters.target_cards import Cards
from worker.adapters.target_reads import RecordStates
from worker.adapters.target_writes import EmployeeApply, TargetWriter
from worker.domain.changes import LinkedEntity
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee
from worker.domain.organisation_matching import OrganisationCandidate, RegiTijdCompany
from worker.domain.person_scoring import PersonCandidate
from worker.domain.reconcile import Plan, RecordState


def human_key(bsn_hash: str) -> str:
    """The lock key of a human: every employment with this BSN hash."""
    return f"human:{bsn_hash}"


class PostgresTargetStore:
    """The target store on one connection; the caller owns the transaction (one unit of work)."""

    def __init__(self, connection: Connection, *, today: date) -> None:
        """`today`: the Dutch calendar date of the work (a CAO change is dated with it)."""
        self.db = connection
        # What a state read saw of each employee's local period edits, for the writes that follow it.
        period_edits_read: dict[int, int] = {}
        self.cards = Cards(connection)
        self._states = RecordStates(connection, period_edits_read)
        self._writer = TargetWriter(connection, today, period_edits_read, self.cards)

    async def lock_record(self, key: str) -> None:
        """Serialise everything that touches one Nmbrs record (changes and decisions never interleave)."""
        await self.lock_records([key])

    async def lock_records(self, keys: list[str]) -> None:
        """lock_record for many records: humans (human_key) first, then the records, each in key order, as the
        decisions lock them too, so two transactions never wait for each other in a cycle. A decision that locks a
        second record later can still meet a batch in one; PostgreSQL then aborts one of them and the consumer
        shell retries it (DeadlockDetectedError is transient)."""
        await self.db.execute(
            """SELECT pg_advisory_xact_lock(hashtextextended(key, 0))
               FROM (SELECT key FROM (SELECT DISTINCT key FROM unnest($1::text[]) AS key) AS distinct_keys
                     ORDER BY key NOT LIKE 'human:%', key) AS keys""",
            keys,
        )

    # --- reading ------------------------------------------------------------------------------------

    async def record_state(self, entity: LinkedEntity, nmbrs_id: int, bsn_hash: str | None = None) -> RecordState:
        return (await self.record_states(entity, {nmbrs_id: bsn_hash}))[nmbrs_id]

    async def record_states(self, entity: LinkedEntity, records: dict[int, str | None]) -> dict[int, RecordState]:
        """The sync state of many records (Nmbrs id -> BSN hash, used for employees only)."""
        return await self._states.record_states(entity, records)

    async def lock_and_load(self, entity: LinkedEntity, nmbrs_id: int) -> RecordState:
        """Lock the record and its human, as change batches lock them, and load its state with its stored data.

        The human first: another employment of this human judged meanwhile must not land on another person.
        Its BSN hash is peeked at unlocked and checked once locked: the stored data may name another (rare)."""
        bsn_hash = await self._states.peek_bsn_hash(entity, nmbrs_id)
        await self.lock_records([*([human_key(bsn_hash)] if bsn_hash else []), f"{entity}:{nmbrs_id}"])
        while True:
            state = (await self._states.record_states(entity, {nmbrs_id: bsn_hash}, stored=True))[nmbrs_id]
            if state.stored_bsn_hash == bsn_hash:
                return state
            bsn_hash = state.stored_bsn_hash
            if bsn_hash:
                await self.lock_record(human_key(bsn_hash))

    async def person_candidates(self, employee: NmbrsEmployee, also: Sequence[int] = ()) -> list[PersonCandidate]:
        return await target_candidates.person_candidates(self.db, employee, also)

    async def organisation_candidates(self, company: NmbrsCompany) -> list[OrganisationCandidate]:
        return await target_candidates.organisation_candidates(self.db, company)

    async def unlinked_companies(self, organisation_id: int) -> tuple[RegiTijdCompany, ...]:
        """The organisation's RegiTijd companies no Nmbrs company has, locked (see target_candidates)."""
        return (await target_candidates.unlinked_companies(self.db, [organisation_id])).get(organisation_id, ())

    # --- writing ------------------------------------------------------------------------------------

    async def execute(
        self,
        plan: Plan,
        entity: str,
        nmbrs_id: int,
        record: Any,
        causation_id: uuid.UUID,
        actor: str = "sync",
        version: int | None = None,
    ) -> list[int]:
        """Carry out the plan's store actions; returns the RegiTijd ids whose leave must be recalculated.
        `version`: the record's snapshot version, remembered on the RegiTijd record (None keeps the one there)."""
        return await self._writer.execute(plan, entity, nmbrs_id, record, causation_id, actor, version)

    async def apply_linked_employees(self, items: list[EmployeeApply], actor: str = "sync") -> None:
        """Write the Nmbrs-owned values of many employees that already have their RegiTijd record (see
        TargetWriter.apply_linked_employees)."""
        await self._writer.apply_linked_employees(items, actor)
