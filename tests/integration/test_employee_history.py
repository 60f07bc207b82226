"""An employee's history read from a real store after a real flow: question, Koppelen, Nmbrs change with drift,
follow-up commands, undo; each change once, with its cause and values, in time order, and the exports round-trip."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from tests.builders import NOW, nmbrs_employee
from worker.adapters.employee_history import employee_history
from worker.domain.changes import Op
from worker.domain.employee_history import (
    HistoryEntry,
    HistoryKind,
    filter_history,
    history_csv,
    history_json,
    parse_history_csv,
    parse_history_json,
)
from worker.domain.events import Outcome
from worker.domain.follow_ups import FollowUpCommand
from worker.domain.nmbrs_records import CodeRef, ContractPeriod
from worker.service.decisions import handle_follow_up

from .test_decisions import asked, decide, decision, person
from .test_reconciler import Handle, event


async def command(db: asyncpg.Pool, employee_id: int, name: str, issued_by: str, **fields: Any) -> Outcome:
    message = FollowUpCommand(
        command_id=uuid.uuid4(), employee_id=employee_id, command=name, issued_by=issued_by, issued_at=NOW, **fields
    )
    outcomes = await handle_follow_up(message, db, lambda: NOW)
    return next(o for o in outcomes if o.kind.value in ("applied", "rejected"))


async def history_of(db: asyncpg.Pool, employee_id: int) -> list[HistoryEntry] | None:
    async with db.acquire() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
        return await employee_history(connection, employee_id)


def one(entries: list[HistoryEntry], kind: HistoryKind, **fields: Any) -> HistoryEntry:
    found = [e for e in entries if e.kind is kind and all(getattr(e, k) == v for k, v in fields.items())]
    assert len(found) == 1, f"{kind} {fields}: {found}"
    return found[0]


async def test_the_history_of_an_employee_shows_every_change_once_with_its_cause_in_time_order(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle)  # the question
    anna = await person(db, "anna")
    link = decision("koppelen", target_id=anna)
    await decide(db, link)
    employee_id = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    # Someone edits the function in RegiTijd; Nmbrs then renames her and cuts her hours to 32.
    await db.execute("INSERT INTO rt_functions (nmbrs_id, code, description) VALUES (99, '99', 'Lokaal')")
    await db.execute("UPDATE rt_employees SET function_id = 99 WHERE employee_id = $1", employee_id)
    fewer_hours = (ContractPeriod(contract_id=1, start=NOW.date().replace(month=1, day=1), hours_per_week=Decimal(32)),)
    change = event(
        nmbrs_employee(
            last_name="Bergh", contracts=fewer_hours, function=CodeRef(id=5, code="5", description="Bakker")
        ),
        op=Op.UPDATE,
        before=nmbrs_employee(),
    )
    await handle(change)
    booked = await command(db, employee_id, "leave_adjustment", "hr.kees", hours=-8, on="2026-03-01", reason="te veel")
    done = await command(db, employee_id, "mark_task_done", "hr.kees", task="roles")
    undo = decision("ongedaan_maken", undo_decision_id=link.decision_id).model_copy(update={"decided_by": "hr.piet"})
    await decide(db, undo)

    entries = await history_of(db, employee_id)
    assert entries is not None
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert len({e.entry_id for e in entries}) == len(entries)

    question = next(e for e in entries if e.kind is HistoryKind.QUESTION)
    assert question.actor == "sync" and question.subject == "employee:101"
    chosen = one(entries, HistoryKind.DECISION, cause=link.decision_id)
    assert (chosen.actor, chosen.summary) == ("hr.anja", "Besluit Koppelen door hr.anja")
    linked = one(entries, HistoryKind.LINK)
    assert linked.cause == link.decision_id and linked.after == {"crm_id": anna, "reason": "Koppelen by hr.anja"}
    assert isinstance(linked.before, dict) and linked.before["last_name"] == "Berg"  # the card it wrote over
    created = one(entries, HistoryKind.CREATED, subject="employee:101")
    assert isinstance(created.after, dict) and created.after["function_id"] == 5

    # The Nmbrs change: old -> new values, the sync as actor, the change event as cause.
    renamed = one(entries, HistoryKind.NMBRS_CHANGE, field="last_name")
    assert (renamed.before, renamed.after, renamed.actor, renamed.cause) == ("Berg", "Bergh", "sync", change.event_id)
    hours = one(entries, HistoryKind.NMBRS_CHANGE, field="contracts")
    assert hours.before[0]["hours_per_week"] == "40.00" and hours.after[0]["hours_per_week"] == "32.00"
    # The drift tells the function's change with both values, instead of a second entry for it.
    drift = one(entries, HistoryKind.DRIFT, field="function_id")
    assert (drift.before, drift.after, drift.cause) == (99, 5, change.event_id)
    assert drift.summary == "Functie was lokaal gewijzigd (Lokaal); overschreven met de waarde uit Nmbrs (Bakker)"
    assert not [e for e in entries if e.kind is HistoryKind.NMBRS_CHANGE and e.field == "function_id"]

    # Leave: recalculated by the Koppelen (first balance), the hours change and the leave adjustment, each once.
    leave = [e for e in entries if e.kind is HistoryKind.LEAVE]
    assert [e.cause for e in leave] == [link.decision_id, change.event_id, booked.causation_id]
    totals = [(e.before and e.before["leave_total"], e.after["leave_total"]) for e in leave]
    assert totals == [(None, "160.00"), ("160.00", "128.00"), ("128.00", "120.00")]

    adjustment = one(entries, HistoryKind.FOLLOW_UP, cause=booked.causation_id)
    assert adjustment.summary == "Verlofcorrectie geboekt" and "-8.0 h" in (adjustment.reason or "")
    marked = one(entries, HistoryKind.FOLLOW_UP, cause=done.causation_id)
    assert marked.actor == "hr.kees"  # the store keeps who marked a task done

    undone = one(entries, HistoryKind.UNDO, cause=undo.decision_id, subject="employee:101")
    assert (undone.actor, undone.summary) == ("hr.piet", "Besluit Koppelen ongedaan gemaakt door hr.piet")
    assert undone.after["undid"] == str(link.decision_id)
    # The undone decision says so.
    assert chosen.after["undone_by"] == str(undo.decision_id)

    order = [question, chosen, renamed, adjustment, marked, undone]
    assert [entries.index(e) for e in order] == sorted(entries.index(e) for e in order)
    # After the undo the question is asked again.
    assert entries[-1].kind is HistoryKind.QUESTION and entries[-1].cause == undo.decision_id

    assert parse_history_csv(history_csv(entries)) == entries
    assert parse_history_json(history_json(entries)) == entries
    assert [e.model_dump_json() for e in parse_history_csv(history_csv(entries))] == [
        e.model_dump_json() for e in entries
    ]
    assert {e.kind for e in filter_history(entries, ["drift", "undo"])} == {HistoryKind.DRIFT, HistoryKind.UNDO}


async def test_a_blue_employee_has_a_history_without_nmbrs(db: asyncpg.Pool) -> None:
    blue = await db.fetchval("SELECT employee_id FROM rt_employees WHERE source = 'manual'")
    await command(db, blue, "set_is_manager", "hr.kees", is_manager=True)
    entries = await history_of(db, blue)
    assert entries is not None
    created = one(entries, HistoryKind.CREATED, subject=f"rt-employee:{blue}")
    assert created.actor == "target load" and created.summary.startswith("Medewerker (handmatig, blauw) aangemaakt")
    assert one(entries, HistoryKind.CREATED, subject=f"person:{created.after['person_id']}")
    assert one(entries, HistoryKind.FOLLOW_UP).summary == "Opgeslagen of de medewerker zelf leidinggevende is"
    assert not any(e.subject.startswith("employee:") for e in entries)


async def test_an_unknown_employee_has_no_history(db: asyncpg.Pool) -> None:
    assert await history_of(db, 987654) is None
