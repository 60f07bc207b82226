"""The reconciler: applies Nmbrs change events to RegiCRM/RegiTijd, or asks a human.

A batch of events is one transaction: claim the event ids (inbox), lock the records, load their states,
decide (pure), write through the target store, recalculate leave where contract, schedule, employment
or CAO changed. The outcomes (causation id = the change event id) are published after the commit.

The common case, a change of an employee that is already linked (or blocked), is written set-based: a
run of such events is planned one by one but written with a statement per table for all of them, and
their leave is recalculated together. Everything else (a link to decide, a question to ask, a company,
a removal, reference data) takes the path of one event at a time, in order, inside the same
transaction. A run never holds two events of one record or one human, so the result is the same as
handling the events one after the other.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from worker.adapters.database import Pool, transaction
from worker.adapters.inbox import Inbox
from worker.adapters.leave_store import recalculate_leave_many
from worker.adapters.target_store import PostgresTargetStore, human_key
from worker.adapters.target_writes import EmployeeApply
from worker.domain.changes import ChangeEvent, CompanyChanged, EmployeeChanged, ReferenceChanged, ReferenceRecord
from worker.domain.events import Outcome, OutcomeKind, outcome_for
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee, nmbrs_today
from worker.domain.reconcile import (
    Apply,
    Plan,
    RecalculateLeave,
    RecordState,
    reconcile_company,
    reconcile_employee,
    reconcile_reference,
)

CONSUMER = "reconciler"
INBOX = Inbox(CONSUMER)
# States are loaded for a window of events: the whole batch at first, and after an event that cannot be
# written set-based one event, growing while every event in its window can (so a first sync of unlinked
# employees loads next to nothing it does not use). Each window costs some 25 statements, whatever its size.
WINDOW_GROWTH = 4
FAIRNESS_PAUSE_S = 0.002

LeaveSummaries = dict[int, tuple[dict[str, Any] | None, dict[str, Any]]]


def _lock_keys(event: ChangeEvent[Any]) -> list[str]:
    """The record, and for an employee the human (BSN hash): two employments of one human are judged one after
    the other, also by two workers or against a decision, so they cannot end up on two persons."""
    keys = [event.key]
    if isinstance(event, EmployeeChanged):
        keys += [human_key(r.bsn_hash) for r in (event.before, event.after) if r is not None and r.bsn_hash]
    return keys


async def _plan_and_apply(
    event: ChangeEvent[Any], store: PostgresTargetStore, policy: MatchPolicy, state: RecordState | None = None
) -> tuple[Plan, list[int]]:
    """Decide and write one change inside the caller's transaction, which holds the record's lock; returns
    the plan and the employees whose leave must be recalculated. `state`: the record's state if the caller
    loaded it under the lock."""
    nmbrs_id = event.nmbrs_id
    record: NmbrsEmployee | NmbrsCompany | ReferenceRecord | None
    if isinstance(event, EmployeeChanged):
        employee = event.after or event.before
        assert employee is not None
        state = state or await store.record_state("employee", nmbrs_id, employee.bsn_hash)
        candidates = (
            await store.person_candidates(employee, state.linked_persons_for_bsn)
            if state.link is None and event.after
            else []
        )
        plan, record, entity = reconcile_employee(event, state, candidates, policy), employee, "employee"
    elif isinstance(event, CompanyChanged):
        state = await store.record_state("company", nmbrs_id)
        organisations = await store.organisation_candidates(event.after) if state.link is None and event.after else []
        plan, record, entity = (
            reconcile_company(event, state, organisations, policy),
            event.after or event.before,
            "company",
        )
    else:
        assert isinstance(event, ReferenceChanged)
        plan, record, entity = reconcile_reference(event), event.after or event.before, event.entity.value
    recalculate = await store.execute(plan, entity, nmbrs_id, record, event.event_id, version=event.version)
    return plan, recalculate


def _outcomes(
    event: ChangeEvent[Any], plan: Plan, recalculated: list[int], leave: LeaveSummaries, at: datetime
) -> list[Outcome]:
    outcomes = [
        outcome_for(
            event.event_id,
            planned.kind,
            event.key,
            at,
            planned.reason,
            {**planned.details, "situation": plan.situation, "op": event.op.value},
            part=str(planned.details.get("field", "")),
        )
        for planned in plan.outcomes
    ]
    for employee_id in recalculated:
        before, after = leave[employee_id]
        outcomes.append(
            outcome_for(
                event.event_id,
                OutcomeKind.LEAVE_RECALCULATED,
                event.key,
                at,
                f"leave recalculated for RegiTijd employee {employee_id}",
                {"employee_id": employee_id, "before": before, "after": after},
            )
        )
    return outcomes


def _set_based_plan(event: ChangeEvent[Any], state: RecordState | None, policy: MatchPolicy) -> Plan | None:
    """The plan of an event that can be written set-based (a linked employee with its RegiTijd record, or a
    blocked one), else None."""
    if not isinstance(event, EmployeeChanged) or state is None:
        return None
    if not state.blocked and (state.link is None or state.link.regitijd_id is None):
        return None  # candidates to score, or a RegiTijd record to create
    plan = reconcile_employee(event, state, (), policy)
    return plan if all(isinstance(action, Apply | RecalculateLeave) for action in plan.actions) else None


async def _write_set_based(
    runs: list[tuple[ChangeEvent[Any], Plan, RecordState]],
    store: PostgresTargetStore,
    as_of: date,
    at: datetime,
) -> dict[uuid.UUID, list[Outcome]]:
    applies: list[EmployeeApply] = []
    recalculate: dict[int, uuid.UUID] = {}
    for event, plan, state in runs:
        for action in plan.actions:
            if isinstance(action, Apply):
                assert event.after is not None
                applies.append(EmployeeApply(action, event.nmbrs_id, event.after, event.event_id, event.version))
            elif state.link is not None and state.link.regitijd_id is not None:
                recalculate[state.link.regitijd_id] = event.event_id
    await store.apply_linked_employees(applies)
    leave = await recalculate_leave_many(store.db, recalculate, as_of) if recalculate else {}
    recalculated: dict[uuid.UUID, list[int]] = {}
    for employee_id, event_id in recalculate.items():
        recalculated.setdefault(event_id, []).append(employee_id)
    return {
        event.event_id: _outcomes(event, plan, recalculated.get(event.event_id, []), leave, at)
        for event, plan, _ in runs
    }


async def _reconcile(
    events: Sequence[ChangeEvent[Any]], store: PostgresTargetStore, policy: MatchPolicy, at: datetime
) -> dict[uuid.UUID, list[Outcome]]:
    """Handle `events` in order inside the caller's transaction; the outcomes per event id."""
    as_of = nmbrs_today(at)
    results: dict[uuid.UUID, list[Outcome]] = {}
    position, window = 0, len(events)
    while position < len(events):
        chunk = events[position : position + window]
        await store.lock_records([key for event in chunk for key in _lock_keys(event)])
        # A state serves the first event of its record in the chunk (a later one starts a new run): its BSN
        # hash is the one to judge the same-human rule by.
        employees: dict[int, NmbrsEmployee | None] = {}
        for e in chunk:
            if isinstance(e, EmployeeChanged):
                employees.setdefault(e.nmbrs_id, e.after or e.before)
        states = (
            await store.record_states("employee", {i: r.bsn_hash if r else None for i, r in employees.items()})
            if employees
            else {}
        )
        run: list[tuple[ChangeEvent[Any], Plan, RecordState]] = []
        keys: set[str] = set()
        humans: set[int] = set()
        for event in chunk:
            state = states.get(event.nmbrs_id) if isinstance(event, EmployeeChanged) else None
            plan = _set_based_plan(event, state, policy)
            human = state.link.crm_id if state is not None and state.link is not None else None
            if plan is None or event.key in keys or human in humans:
                break
            assert state is not None
            run.append((event, plan, state))
            keys.add(event.key)
            if human is not None:
                humans.add(human)
        if run:
            results.update(await _write_set_based(run, store, as_of, at))
            position += len(run)
            window = window * WINDOW_GROWTH if len(run) == len(chunk) else 1
            continue
        # The first event of the chunk cannot be written set-based; its state is fresh (nothing was
        # written since it was loaded), so the one-at-a-time path reuses it.
        event = chunk[0]
        plan, recalculate = await _plan_and_apply(event, store, policy, states.get(event.nmbrs_id))
        leave = (
            await recalculate_leave_many(store.db, dict.fromkeys(recalculate, event.event_id), as_of)
            if recalculate
            else {}
        )
        results[event.event_id] = _outcomes(event, plan, recalculate, leave, at)
        position += 1
        window = 1
        # Matching is CPU work on the event loop the decision consumer shares: a short pause after each
        # such event lets a waiting decision finish instead of advancing one statement per event.
        await asyncio.sleep(FAIRNESS_PAUSE_S)
    return results


async def handle_changes(
    events: Sequence[ChangeEvent[Any]], pool: Pool, policy: MatchPolicy, now: Callable[[], datetime]
) -> list[Outcome]:
    """Apply a batch of change events exactly once, in one transaction; returns the outcomes to publish
    in event order. Events seen before (a redelivery) return the outcomes stored the first time."""
    async with transaction(pool) as connection:
        claims = await INBOX.claim_many(connection, [event.event_id for event in events])
        new = list({e.event_id: e for e in events if claims[e.event_id].is_new}.values())
        at = now()
        fresh = await _reconcile(new, PostgresTargetStore(connection, today=nmbrs_today(at)), policy, at)
        if fresh:
            await INBOX.record_outcomes_many(connection, fresh)
    outcomes: list[Outcome] = []
    for event_id in dict.fromkeys(event.event_id for event in events):
        outcomes += fresh[event_id] if event_id in fresh else claims[event_id].previous_outcomes
    return outcomes


async def handle_change(
    event: ChangeEvent[Any], pool: Pool, policy: MatchPolicy, now: Callable[[], datetime]
) -> list[Outcome]:
    return await handle_changes([event], pool, policy, now)
