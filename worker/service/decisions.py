"""The decision consumer: applies human decisions and follow-up commands, or rejects them with a reason.

Each decision runs in one transaction with its inbox claim (the same decision id twice has one effect)
and under the same per-record lock as the reconciler (a decision and a change never interleave).
Everything a decision did is recorded in `decisions.effect`, so ongedaan_maken can reverse it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from worker.adapters.hr_queries import open_tasks
from worker.adapters.inbox import Inbox, run_once
from worker.adapters.leave_store import recalculate_leave
from worker.adapters.target_store import PostgresTargetStore, human_key
from worker.domain.changes import ChangeSource, CompanyChanged, EmployeeChanged, Entity, Op
from worker.domain.decisions import (
    TASKS,
    Decision,
    DecisionAction,
    FollowUpCommand,
    PendingQuestion,
    RecordSituation,
    rejection,
)
from worker.domain.events import Outcome, OutcomeKind, outcome_for
from worker.domain.inbound import MAX_COMMAND_BYTES, cut_reason
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee, nmbrs_today
from worker.domain.ownership import company_values, employee_values
from worker.domain.reconcile import (
    Apply,
    ClearPending,
    Link,
    Plan,
    RecalculateLeave,
    reconcile_company,
    reconcile_employee,
)
from worker.domain.target_state import PERSONEELSLID

DECISIONS = "decisions"
FOLLOW_UPS = "follow-ups"
_RE_ASK_NAMESPACE = uuid.UUID("0b4c6a8e-7d1f-4f0a-9c52-3e6f1d2a7b94")


class Rejected(Exception):
    """A decision or command that cannot be applied; the message is for the person who sent it."""


class DecisionContext:
    """Everything one decision needs: the transaction's store, the clock, the policy and its outcomes."""

    def __init__(
        self, connection: asyncpg.Connection, decision_id: uuid.UUID, actor: str, policy: MatchPolicy, now: datetime
    ) -> None:
        self.db = connection
        self.store = PostgresTargetStore(connection, today=nmbrs_today(now))
        self.decision_id = decision_id
        self.actor = actor
        self.policy = policy
        self.now = now
        self.outcomes: list[Outcome] = []

    def outcome(
        self, kind: OutcomeKind, subject: str, reason: str, details: dict[str, Any] | None = None, part: str = ""
    ) -> None:
        self.outcomes.append(outcome_for(self.decision_id, kind, subject, self.now, reason, details, part))

    async def recalculate(self, employee_ids: list[int], subject: str) -> None:
        as_of = nmbrs_today(self.now)
        for employee_id in employee_ids:
            before, after = await recalculate_leave(self.db, employee_id, as_of, self.decision_id)
            self.outcome(OutcomeKind.LEAVE_RECALCULATED, subject, f"leave recalculated for RegiTijd employee "
                         f"{employee_id}", {"employee_id": employee_id, "before": before, "after": after},
                         part=str(employee_id))  # fmt: skip

    async def announce_tasks(self, employee_id: int, subject: str) -> None:
        found = await open_tasks(self.db, employee_id)
        tasks = list(found[0].tasks) if found else []
        if tasks:
            self.outcome(OutcomeKind.FOLLOW_UP, subject, "gegevens aanvullen: " + "; ".join(TASKS[t] for t in tasks),
                         {"employee_id": employee_id, "tasks": tasks}, part=str(employee_id))  # fmt: skip


# --- single-record decisions ----------------------------------------------------------------------------


async def situation_of(
    ctx: DecisionContext, entity: str, nmbrs_id: int
) -> tuple[RecordSituation, dict[str, Any] | None, int | None]:
    """The record's situation, its latest Nmbrs data (from the open question, the snapshot or the block) and the
    version of that data (a block keeps none)."""
    pending = await ctx.db.fetchrow(
        "SELECT version, situation, skipped, record FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2",
        entity, nmbrs_id)  # fmt: skip
    linked = await ctx.db.fetchval(
        "SELECT crm_id FROM sync_links WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
    )
    block = await ctx.db.fetchrow(
        "SELECT record FROM sync_blocks WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
    )
    snapshot = await ctx.db.fetchrow(
        "SELECT record, version FROM nmbrs_snapshots WHERE key = $1 AND NOT deleted", f"{entity}:{nmbrs_id}"
    )
    source = pending or snapshot
    record_text = (source and source["record"]) or (block and block["record"])
    record = json.loads(record_text) if record_text else None
    bsn_hash = record.get("bsn_hash") if entity == "employee" and record else None
    same_human = None
    if bsn_hash:
        same_human = await ctx.db.fetchval(
            """SELECT array_agg(DISTINCT crm_id ORDER BY crm_id) FROM sync_links
               WHERE entity = 'employee' AND bsn_hash = $1 AND nmbrs_id <> $2""",
            bsn_hash,
            nmbrs_id,
        )
    situation = RecordSituation(
        known=bool(record_text or linked),
        pending=PendingQuestion(version=pending["version"], situation=pending["situation"], skipped=pending["skipped"])
        if pending else None,
        linked_to=linked,
        blocked=block is not None,
        same_human_persons=tuple(same_human or ()),
    )  # fmt: skip
    return situation, record, source["version"] if source else None


async def _bsn_hash_of(ctx: DecisionContext, entity: str, nmbrs_id: int) -> str | None:
    """The BSN hash of the employee's record as situation_of would pick it (question, snapshot, block)."""
    if entity != "employee":
        return None
    hash_: str | None = await ctx.db.fetchval(
        """SELECT coalesce((SELECT record FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2),
                           (SELECT record FROM nmbrs_snapshots WHERE key = $1 || ':' || $2 AND NOT deleted),
                           (SELECT record FROM sync_blocks WHERE entity = $1 AND nmbrs_id = $2)) ->> 'bsn_hash'""",
        entity, nmbrs_id,
    )  # fmt: skip
    return hash_


def _model(entity: str, record: dict[str, Any]) -> NmbrsEmployee | NmbrsCompany:
    return NmbrsEmployee.model_validate(record) if entity == "employee" else NmbrsCompany.model_validate(record)


async def link_and_apply(
    ctx: DecisionContext, entity: str, nmbrs_id: int, record: dict[str, Any], version: int | None, crm_id: int,
    reason: str,
) -> int | None:  # fmt: skip
    """Link the record to `crm_id`, write its Nmbrs-owned fields, close its question; returns the RegiTijd id.
    `version`: the record's, remembered so that a change older than it arriving later is ignored as stale."""
    model = _model(entity, record)
    values = employee_values(model) if isinstance(model, NmbrsEmployee) else company_values(model)
    plan = Plan(situation="linked", actions=(
        Link(crm_id=crm_id, linked_by=ctx.actor, reason=reason), ClearPending(),
        Apply(crm_id=crm_id, regitijd_id=None, values=values, changed=tuple(sorted(values))),
        *([RecalculateLeave(fields=("employment_start",))] if entity == "employee" else []),
    ))  # fmt: skip
    recalculate = await ctx.store.execute(plan, entity, nmbrs_id, model, ctx.decision_id, ctx.actor, version)
    regitijd_id: int | None = await ctx.db.fetchval(
        "SELECT regitijd_id FROM sync_links WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
    )
    subject = f"{entity}:{nmbrs_id}"
    await ctx.recalculate(recalculate, subject)
    if entity == "employee" and regitijd_id is not None:
        await ctx.announce_tasks(regitijd_id, subject)
    return regitijd_id


async def link_same_human(
    ctx: DecisionContext, record: dict[str, Any], person_id: int, nmbrs_id: int
) -> dict[str, dict[str, Any]]:
    """Other open employments of the same human (same BSN hash) go to the same person right away."""
    if not record.get("bsn_hash"):
        return {}
    others = await ctx.db.fetch(
        """SELECT nmbrs_id FROM pending_decisions
           WHERE entity = 'employee' AND nmbrs_id <> $1 AND record ->> 'bsn_hash' = $2 ORDER BY nmbrs_id""",
        nmbrs_id, record["bsn_hash"])  # fmt: skip
    linked = {}
    for other in others:
        other_id = other["nmbrs_id"]
        await ctx.store.lock_record(f"employee:{other_id}")
        # Read again under the lock: the reconciler may have withdrawn or renewed the question meanwhile.
        question = await ctx.db.fetchrow(
            "SELECT record, version FROM pending_decisions WHERE entity = 'employee' AND nmbrs_id = $1", other_id
        )
        if question is None:
            continue
        reason = f"same BSN hash as Nmbrs employee {nmbrs_id}, which was just linked to person {person_id}"
        other_record = json.loads(question["record"])
        await link_and_apply(ctx, "employee", other_id, other_record, question["version"], person_id, reason)
        ctx.outcome(OutcomeKind.AUTO_LINKED, f"employee:{other_id}", reason, {"person_id": person_id})
        linked[str(other_id)] = other_record
    return linked


async def blue_employees(ctx: DecisionContext, person_id: int) -> list[asyncpg.Record]:
    """The person's active manual ('blue') RegiTijd employees, with their company's name."""
    found: list[asyncpg.Record] = await ctx.db.fetch(
        """SELECT e.employee_id, c.name AS company FROM rt_employees e
           LEFT JOIN rt_companies c ON c.company_id = e.company_id
           WHERE e.person_id = $1 AND e.source = 'manual' AND e.active ORDER BY e.employee_id""",
        person_id,
    )
    return found


def _blue_warning(blue: list[asyncpg.Record]) -> str:
    # The sync never changes a blue employee (rule 9): when it was this same employment, entered by hand before
    # Nmbrs, the person now has it twice and only a human can end the manual one.
    if not blue:
        return ""
    names = ", ".join(f"{b['employee_id']} ({b['company'] or 'no company'})" for b in blue)
    return (
        f"; warning: this person also has a manual (blue) RegiTijd employee {names}, which the sync leaves"
        " unchanged: if it is this same employment, end it by hand"
    )


async def create_crm_record(ctx: DecisionContext, entity: str, record: dict[str, Any]) -> int:
    """Aanmaken: a new RegiCRM person (with RegiPersoneel: Personeelslid) or organisation from Nmbrs data."""
    if entity == "company":
        organisation_id: int = await ctx.db.fetchval(
            "INSERT INTO crm_organisations (name, created_by) VALUES ($1, $2) RETURNING organisation_id",
            record["name"], ctx.actor)  # fmt: skip
        return organisation_id
    person_id: int = await ctx.db.fetchval(
        "INSERT INTO crm_persons (last_name, created_by) VALUES ($1, $2) RETURNING person_id",
        record["last_name"], ctx.actor)  # fmt: skip
    # No account, roles or time-writing categories: those stay follow-up tasks (domain rule 5).
    await ctx.db.execute("INSERT INTO crm_characteristics VALUES ($1, $2)", person_id, PERSONEELSLID)
    return person_id


async def ask_again(ctx: DecisionContext, entity: str, nmbrs_id: int, record: dict[str, Any]) -> None:
    """Put the record through reconciliation again (after unblock or undo): a fresh question, or an auto-link.

    With the latest Nmbrs data: the snapshot's (Nmbrs may have changed the record since the decision that
    kept `record`), else `record`; a record Nmbrs removed meanwhile is not asked about."""
    latest = await ctx.db.fetchrow(
        "SELECT version, deleted, record FROM nmbrs_snapshots WHERE key = $1", f"{entity}:{nmbrs_id}"
    )
    if latest is not None and latest["deleted"]:
        ctx.outcome(OutcomeKind.APPLIED, f"{entity}:{nmbrs_id}", f"Nmbrs {entity} {nmbrs_id} was removed from "
                    "Nmbrs meanwhile: nothing to ask", {"action": "re-ask"}, part="re-ask")  # fmt: skip
        return
    if latest is not None:
        record = json.loads(latest["record"])
    version = latest["version"] if latest is not None else 1
    source = ChangeSource(poll_id=ctx.decision_id, fetched_at=ctx.now)
    event_id = uuid.uuid5(_RE_ASK_NAMESPACE, f"{ctx.decision_id}:{entity}:{nmbrs_id}")
    model = _model(entity, record)
    state = await ctx.store.record_state(entity, nmbrs_id, getattr(model, "bsn_hash", None))
    # A snapshot read of the record, as a full reconciliation would publish it.
    read = {"event_id": event_id, "key": f"{entity}:{nmbrs_id}", "op": Op.READ, "version": version, "after": model,
            "source": source, "ts": ctx.now}  # fmt: skip
    if isinstance(model, NmbrsEmployee):
        event = EmployeeChanged(entity=Entity.EMPLOYEE, **read)
        candidates = await ctx.store.person_candidates(model, state.linked_persons_for_bsn)
        plan = reconcile_employee(event, state, candidates, ctx.policy)
    else:
        company_event = CompanyChanged(entity=Entity.COMPANY, **read)
        plan = reconcile_company(company_event, state, await ctx.store.organisation_candidates(model), ctx.policy)
    recalculate = await ctx.store.execute(plan, entity, nmbrs_id, model, ctx.decision_id, ctx.actor)
    await ctx.recalculate(recalculate, f"{entity}:{nmbrs_id}")
    for planned in plan.outcomes:
        ctx.outcome(planned.kind, f"{entity}:{nmbrs_id}", planned.reason, planned.details, part="re-ask")


async def apply_single(
    ctx: DecisionContext, decision: Decision, entity: str, nmbrs_id: int, action: DecisionAction, version: int | None
) -> dict[str, Any]:
    """Apply one action to one record; returns its effect (for undo). Raises Rejected."""
    # The human too, before the record as change batches lock them: another employment of this human judged
    # meanwhile must not land on another person. The hash is peeked at unlocked, and checked once locked.
    human = await _bsn_hash_of(ctx, entity, nmbrs_id)
    if human:
        await ctx.store.lock_record(human_key(human))
    await ctx.store.lock_record(f"{entity}:{nmbrs_id}")
    situation, record, record_version = await situation_of(ctx, entity, nmbrs_id)
    if record is not None and record.get("bsn_hash") not in (None, human):
        await ctx.store.lock_record(human_key(record["bsn_hash"]))  # changed meanwhile (rare)
        situation, record, record_version = await situation_of(ctx, entity, nmbrs_id)
    table = "crm_persons" if entity == "employee" else "crm_organisations"
    id_column = "person_id" if entity == "employee" else "organisation_id"
    target_exists = decision.target_id is not None and bool(
        await ctx.db.fetchval(f"SELECT true FROM {table} WHERE {id_column} = $1", decision.target_id)
    )
    single = decision.model_copy(update={"action": action, "version": version, "nmbrs_id": nmbrs_id, "entity": entity})
    reason = rejection(single, situation, target_exists)
    if reason:
        raise Rejected(reason)
    subject = f"{entity}:{nmbrs_id}"
    if action is DecisionAction.KOPPELEN:
        assert record is not None and decision.target_id is not None
        card_before = await ctx.store.card(entity, decision.target_id)
        regitijd_id = await link_and_apply(
            ctx, entity, nmbrs_id, record, record_version, decision.target_id, f"Koppelen by {ctx.actor}"
        )
        same_human = await link_same_human(ctx, record, decision.target_id, nmbrs_id) if entity == "employee" else {}
        card_after = await ctx.store.card(entity, decision.target_id)
        blue = await blue_employees(ctx, decision.target_id) if entity == "employee" else []
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            f"linked to {id_column.split('_')[0]} {decision.target_id}" + _blue_warning(blue),
            {"action": action.value, "crm_id": decision.target_id, "regitijd_id": regitijd_id,
             **({"blue_employees": [b["employee_id"] for b in blue]} if blue else {})},
        )  # fmt: skip
        # The Nmbrs data goes into the effect: an undo asks the question again with it. So does the card as it
        # was: the link wrote Nmbrs' name and contact data over it, and an undo puts them back.
        card = {"card": {"before": card_before, "after": card_after}} if card_before != card_after else {}
        return {"linked": {str(nmbrs_id): record, **same_human}, "crm_id": decision.target_id, **card}
    if action is DecisionAction.AANMAKEN:
        assert record is not None
        crm_id = await create_crm_record(ctx, entity, record)
        regitijd_id = await link_and_apply(
            ctx, entity, nmbrs_id, record, record_version, crm_id, f"Aanmaken by {ctx.actor}"
        )
        # One human, one person (rule 4): the other open employments of this human join the new person.
        same_human = await link_same_human(ctx, record, crm_id, nmbrs_id) if entity == "employee" else {}
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            f"created {id_column.split('_')[0]} {crm_id} from Nmbrs data",
            {"action": action.value, "crm_id": crm_id, "regitijd_id": regitijd_id},
        )
        return {"linked": {str(nmbrs_id): record, **same_human}, "created": crm_id, "crm_id": crm_id}
    if action is DecisionAction.BLOKKEREN:
        await ctx.db.execute(
            """INSERT INTO sync_blocks (entity, nmbrs_id, blocked_by, reason, decision_id, record)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)""",
            entity, nmbrs_id, ctx.actor, decision.note, ctx.decision_id, json.dumps(record))  # fmt: skip
        await ctx.db.execute("DELETE FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id)
        ctx.outcome(
            OutcomeKind.APPLIED, subject, "blocked (Blokkeren): ignored by every later sync", {"action": action.value}
        )
        return {"blocked": True}
    if action is DecisionAction.OVERSLAAN:
        await ctx.db.execute(
            "UPDATE pending_decisions SET skipped = true WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
        )
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            "skipped (Overslaan): asked again after the next sync",
            {"action": action.value},
        )
        return {"skipped": True}
    if action is DecisionAction.ONTBLOKKEREN:
        await ctx.db.execute("DELETE FROM sync_blocks WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id)
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            "unblocked (ontblokkeren): the question is asked again",
            {"action": action.value},
        )
        if record is not None:
            await ask_again(ctx, entity, nmbrs_id, record)
        return {"unblocked": True}
    return await undo(ctx, decision, entity, nmbrs_id, record)


async def undo(
    ctx: DecisionContext, decision: Decision, entity: str, nmbrs_id: int, record: dict[str, Any] | None
) -> dict[str, Any]:
    """Ongedaan maken: reverse a link, create, block or skip. A created employee is deactivated, not deleted."""
    earlier = await ctx.db.fetchrow(
        "SELECT entity, nmbrs_id, action, result, effect, undone_by FROM decisions WHERE decision_id = $1 FOR UPDATE",
        decision.undo_decision_id)  # fmt: skip
    if earlier is None:
        raise Rejected(f"decision {decision.undo_decision_id} is unknown")
    if earlier["result"] != "applied" or earlier["undone_by"] is not None:
        raise Rejected(f"decision {decision.undo_decision_id} was not applied or is already undone")
    effect = json.loads(earlier["effect"])
    bulk = earlier["nmbrs_id"] is None  # a bulk decision answered records by filter
    records = effect.get("records", {}) if bulk else {f"{earlier['entity']}:{earlier['nmbrs_id']}": effect}
    named = f"{entity}:{nmbrs_id}"
    if named not in records and entity == earlier["entity"]:
        # Another employment of the same human, linked along with a record the bulk answered: undone with it.
        named = next((key for key, e in records.items() if str(nmbrs_id) in e.get("linked", {})), named)
    if named not in records:
        raise Rejected(f"decision {decision.undo_decision_id} was not about {entity} {nmbrs_id}")
    # A bulk is undone record by record (the one named), or whole on request; a record undone before stays so.
    chosen = {key: e for key, e in records.items() if (decision.undo_all_records or key == named)
              and not e.get("undone_by")}  # fmt: skip
    if not chosen:
        raise Rejected(f"{named} of decision {decision.undo_decision_id} is already undone")
    if not any(e.get(part) for e in chosen.values() for part in REVERSIBLE):
        # An unblock or an undo has nothing of its own to take back: deciding again is the way.
        raise Rejected(f"decision {decision.undo_decision_id} ({earlier['action']}) cannot be undone; decide again")
    for key, record_effect in chosen.items():
        kind, _, text_id = key.partition(":")
        await reverse(ctx, kind, int(text_id), record_effect, decision.undo_decision_id)
        record_effect["undone_by"] = str(ctx.decision_id)
    whole = not bulk or all(e.get("undone_by") for e in records.values())
    await ctx.db.execute(
        "UPDATE decisions SET effect = $3::jsonb, undone_by = CASE WHEN $4 THEN $2::uuid END WHERE decision_id = $1",
        decision.undo_decision_id, ctx.decision_id, json.dumps(effect), whole,
    )  # fmt: skip
    return {"undid": str(decision.undo_decision_id), "undid_records": sorted(chosen)}


REVERSIBLE = ("linked", "blocked", "skipped")  # the effects undo takes back


async def reverse(
    ctx: DecisionContext, entity: str, nmbrs_id: int, effect: dict[str, Any], undone: uuid.UUID | None
) -> None:
    subject = f"{entity}:{nmbrs_id}"
    await ctx.store.lock_record(subject)  # a bulk decision's other records were not locked yet
    ask: dict[int, dict[str, Any]] = {}
    for text_id, record in effect.get("linked", {}).items():
        linked_id = int(text_id)
        await ctx.store.lock_record(f"{entity}:{linked_id}")
        regitijd_id = await ctx.db.fetchval(
            "DELETE FROM sync_links WHERE entity = $1 AND nmbrs_id = $2 RETURNING regitijd_id", entity, linked_id
        )
        if regitijd_id is not None:
            table, column = ("rt_employees", "employee_id") if entity == "employee" else ("rt_companies", "company_id")
            await ctx.db.execute(f"UPDATE {table} SET active = false WHERE {column} = $1", regitijd_id)
        ctx.outcome(OutcomeKind.APPLIED, f"{entity}:{linked_id}", "link undone; the RegiTijd record is deactivated, "
                    "not deleted", {"action": "ongedaan_maken", "regitijd_id": regitijd_id}, part="undo")  # fmt: skip
        ask[linked_id] = record
    if effect.get("card"):
        await restore_card(ctx, entity, effect["crm_id"], effect["card"], undone)
    if effect.get("blocked"):
        # Only the block this decision made: after an unblock, or a newer block, there is nothing of it left.
        removed = await ctx.db.fetchrow(
            """DELETE FROM sync_blocks WHERE entity = $1 AND nmbrs_id = $2 AND decision_id IS NOT DISTINCT FROM $3
               RETURNING record""",
            entity, nmbrs_id, undone,
        )  # fmt: skip
        if removed is None:
            raise Rejected(f"{subject} is no longer blocked by decision {undone}: nothing to undo")
        ctx.outcome(OutcomeKind.APPLIED, subject, "block undone", {"action": "ongedaan_maken"}, part="undo")
        if removed["record"]:
            ask[nmbrs_id] = json.loads(removed["record"])
    if effect.get("skipped"):
        await ctx.db.execute(
            "UPDATE pending_decisions SET skipped = false WHERE entity = $1 AND nmbrs_id = $2", entity, nmbrs_id
        )
        ctx.outcome(
            OutcomeKind.APPLIED,
            subject,
            "skip undone: the question is open again",
            {"action": "ongedaan_maken"},
            part="undo",
        )
    for asked_id, record in ask.items():
        await ask_again(ctx, entity, asked_id, record)


async def restore_card(
    ctx: DecisionContext, entity: str, crm_id: int, card: dict[str, Any], undone: uuid.UUID | None
) -> None:
    kind = "person" if entity == "employee" else "organisation"
    subject = f"{kind}:{crm_id}"
    if await ctx.store.restore_card(entity, crm_id, card["before"], card["after"], ctx.decision_id, ctx.actor):
        ctx.outcome(OutcomeKind.APPLIED, subject, f"{kind} card restored to its values before decision {undone}",
                    {"action": "ongedaan_maken", "restored": card["before"]}, part="undo")  # fmt: skip
    else:
        ctx.outcome(OutcomeKind.APPLIED, subject, f"{kind} card changed since decision {undone}: left as it is, "
                    "check its name and contact data", {"action": "ongedaan_maken"}, part="undo")  # fmt: skip


# --- bulk -------------------------------------------------------------------------------------------------


async def _previewed(ctx: DecisionContext, decision: Decision) -> dict[str, int]:
    """The records (key -> version) of the preview `decision` confirms; Rejected when it is no such preview."""
    assert decision.filter is not None
    preview = await ctx.db.fetchrow(
        "SELECT entity, action, result, effect FROM decisions WHERE decision_id = $1", decision.confirms
    )
    effect = json.loads(preview["effect"]) if preview is not None else {}
    if preview is None or preview["result"] != "previewed" or "versions" not in effect:
        raise Rejected(f"decision {decision.confirms} is not a preview")
    if (preview["entity"], preview["action"], effect["filter"]) != (
        decision.entity,
        decision.action.value,
        decision.filter.model_dump(mode="json"),
    ):
        raise Rejected(f"preview {decision.confirms} was of another action or filter: preview this one again")
    if await ctx.db.fetchval(
        "SELECT true FROM decisions WHERE result = 'applied' AND effect ->> 'confirms' = $1",
        str(decision.confirms),
    ):
        raise Rejected(f"preview {decision.confirms} was carried out already: preview again")
    versions: dict[str, int] = effect["versions"]
    return versions


@dataclass(frozen=True)
class BulkSelection:
    """The records a bulk decision answers, and those it leaves out with the reason."""

    selected: list[dict[str, Any]]  # rows: nmbrs_id, version, bsn_hash, siblings (ids of the human's others)
    left_out: list[str]  # keys whose human has open employments the bulk does not answer
    changed: list[str]  # keys a confirmed preview listed that changed or were answered since


async def _select_for_bulk(ctx: DecisionContext, decision: Decision) -> BulkSelection:
    assert decision.filter is not None
    # Skipped questions (Overslaan) are hidden from HR until the next sync: a bulk does not answer them either.
    where = ["entity = $1", "NOT skipped", "company_id = $2"]
    args: list[Any] = [decision.entity, decision.filter.company_id]
    if decision.filter.situation is not None:
        args.append(decision.filter.situation)
        where.append(f"situation = ${len(args)}")
    if decision.filter.max_best_score is not None:
        args.append(decision.filter.max_best_score)
        where.append(f"coalesce((candidates -> 0 ->> 'score')::float, 0) <= ${len(args)}")
    rows = await ctx.db.fetch(
        f"""SELECT q.nmbrs_id, q.version, q.record ->> 'bsn_hash' AS bsn_hash, coalesce(h.ids, '{{}}') AS human_ids
            FROM pending_decisions q
            -- The open employments of each human, grouped once (not looked up per question: a first import has
            -- thousands): answering one would take the others along (one human, one person).
            LEFT JOIN (SELECT record ->> 'bsn_hash' AS bsn_hash, array_agg(nmbrs_id) AS ids FROM pending_decisions
                       WHERE entity = 'employee' AND record ->> 'bsn_hash' IS NOT NULL GROUP BY 1) AS h
                   ON h.bsn_hash = q.record ->> 'bsn_hash'
            WHERE {' AND '.join(where)} ORDER BY q.nmbrs_id""",
        *args,
    )  # fmt: skip
    found = [{**row, "siblings": set(row["human_ids"]) - {row["nmbrs_id"]}} for row in rows]
    key = f"{decision.entity}:{{}}".format
    selected, changed = found, []
    if decision.confirms is not None:
        previewed = await _previewed(ctx, decision)
        current = {key(row["nmbrs_id"]): row["version"] for row in found}
        changed = [k for k, version in previewed.items() if current.get(k) != version]
        selected = [row for row in found if previewed.get(key(row["nmbrs_id"])) == row["version"]]
    dropped: set[int] = set()
    if decision.action is DecisionAction.AANMAKEN:
        # Aanmaken takes the human's other open employments along (one human, one person): only where all of them
        # are answered too, checked until nothing more drops out.
        while True:
            ids = {row["nmbrs_id"] for row in selected}
            newly = {row["nmbrs_id"] for row in selected if not row["siblings"] <= ids}
            if not newly:
                break
            dropped |= newly
            selected = [row for row in selected if row["nmbrs_id"] not in newly]
    left_out = [key(row["nmbrs_id"]) for row in found if row["nmbrs_id"] in dropped]
    return BulkSelection(selected, left_out, sorted(changed, key=lambda k: int(k.partition(":")[2])))


async def apply_bulk(ctx: DecisionContext, decision: Decision) -> dict[str, Any]:
    assert decision.filter is not None
    first = await _select_for_bulk(ctx, decision)
    # Every human, then every record, locked up front in the order change batches lock them; then read again
    # under the locks, so that no change of these humans slips in between (a new or changed employment).
    humans = [human_key(row["bsn_hash"]) for row in first.selected if row["bsn_hash"]]
    await ctx.store.lock_records([*humans, *(f"{decision.entity}:{row['nmbrs_id']}" for row in first.selected)])
    chosen = await _select_for_bulk(ctx, decision)
    keys = [f"{decision.entity}:{row['nmbrs_id']}" for row in chosen.selected]
    left_out, changed = chosen.left_out, chosen.changed
    skipped_note = (
        f"; left out {len(left_out)} whose human has other open employments the filter does not select: "
        f"{', '.join(left_out)}"
        if left_out
        else ""
    ) + (f"; left out {len(changed)} changed or answered since the preview: {', '.join(changed)}" if changed else "")
    if decision.preview:
        ctx.outcome(
            OutcomeKind.PREVIEW,
            "bulk",
            f"would {decision.action.value} {len(keys)} pending records{skipped_note}",
            {"action": decision.action.value, "records": keys, "left_out": left_out},
        )
        versions = {f"{decision.entity}:{row['nmbrs_id']}": row["version"] for row in chosen.selected}
        return {"preview": keys, "versions": versions, "filter": decision.filter.model_dump(mode="json")}
    effects = {}
    handled: set[str] = set()
    for row in chosen.selected:
        key = f"{decision.entity}:{row['nmbrs_id']}"
        if key in handled:  # already linked with another employment of the same human in this bulk
            continue
        effects[key] = await apply_single(ctx, decision, decision.entity, row["nmbrs_id"], decision.action,
                                          row["version"])  # fmt: skip
        handled.update(f"{decision.entity}:{linked}" for linked in effects[key].get("linked", {}))
    ctx.outcome(
        OutcomeKind.APPLIED,
        "bulk",
        f"{decision.action.value} applied to {len(keys)} pending records{skipped_note}",
        {"action": decision.action.value, "records": keys, "left_out": left_out, "changed_since_preview": changed},
    )
    confirmed = {"confirms": str(decision.confirms)} if decision.confirms else {}
    return {"records": effects, **confirmed}


async def handle_decision(
    decision: Decision, pool: asyncpg.Pool, policy: MatchPolicy, now: Callable[[], datetime]
) -> list[Outcome]:
    async def effect(connection: asyncpg.Connection) -> list[Outcome]:
        ctx = DecisionContext(connection, decision.decision_id, decision.decided_by, policy, now())
        result, reason, done = "applied", None, {}
        try:
            async with connection.transaction():  # a savepoint: a rejection leaves no partial effect
                if decision.filter is not None:
                    done = await apply_bulk(ctx, decision)
                    result = "previewed" if decision.preview else "applied"
                else:
                    assert decision.nmbrs_id is not None
                    done = await apply_single(
                        ctx, decision, decision.entity, decision.nmbrs_id, decision.action, decision.version
                    )
        except Rejected as error:
            result, reason = "rejected", str(error)
            ctx.outcomes = [
                outcome_for(
                    decision.decision_id,
                    OutcomeKind.REJECTED,
                    decision.key,
                    ctx.now,
                    reason,
                    {"action": decision.action.value},
                )
            ]
        await connection.execute(
            """INSERT INTO decisions (decision_id, entity, nmbrs_id, action, decided_by, decided_at, result, reason,
                                      effect) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)""",
            decision.decision_id, decision.entity, decision.nmbrs_id, decision.action.value, decision.decided_by,
            decision.decided_at, result, reason, json.dumps(done))  # fmt: skip
        return ctx.outcomes

    return await run_once(pool, Inbox(DECISIONS), decision.decision_id, effect)


async def decision_published(decision: Decision, pool: asyncpg.Pool) -> None:
    """For the consumer shell, once the broker acknowledged the outcomes handle_decision returned: a redelivery
    of the decision then re-publishes nothing, where it would send a bulk's outcomes (three a record) again."""
    await Inbox(DECISIONS).mark_published(pool, [decision.decision_id])


# --- follow-up commands (locally owned data) ------------------------------------------------------------------


async def apply_follow_up(ctx: DecisionContext, command: FollowUpCommand) -> str:
    employee = await ctx.db.fetchrow(
        "SELECT employee_id, person_id FROM rt_employees WHERE employee_id = $1", command.employee_id
    )
    if employee is None:
        raise Rejected(f"RegiTijd employee {command.employee_id} does not exist")
    await ctx.store.lock_record(command.key)
    today = nmbrs_today(ctx.now)
    employee_id, person_id = employee["employee_id"], employee["person_id"]
    match command.command:
        case "set_manager":
            if command.manager_employee_id == employee_id:
                raise Rejected("an employee cannot be their own manager")
            if not await ctx.db.fetchval(
                "SELECT true FROM rt_employees WHERE employee_id = $1", command.manager_employee_id
            ):
                raise Rejected(f"manager {command.manager_employee_id} is not a RegiTijd employee")
            await ctx.db.execute(
                "UPDATE rt_employees SET manager_employee_id = $2 WHERE employee_id = $1",
                employee_id,
                command.manager_employee_id,
            )
            return f"manager set to employee {command.manager_employee_id}"
        case "set_is_manager":
            await ctx.db.execute(
                "UPDATE rt_employees SET is_manager = $2 WHERE employee_id = $1", employee_id, command.is_manager
            )
            return f"is manager: {command.is_manager}"
        case "leave_adjustment" | "overtime_payout":
            on = command.on
            if command.command == "leave_adjustment":
                await ctx.db.execute(
                    "INSERT INTO rt_leave_adjustments (employee_id, booked_on, hours, reason) VALUES ($1, $2, $3, $4)",
                    employee_id, on, command.hours, command.reason)  # fmt: skip
            else:
                await ctx.db.execute(
                    "INSERT INTO rt_overtime_payouts (employee_id, paid_on, hours) VALUES ($1, $2, $3)",
                    employee_id,
                    on,
                    command.hours,
                )
            await ctx.recalculate([employee_id], command.key)
            return f"{command.command.replace('_', ' ')} of {command.hours} h on {on} booked"
        case "set_characteristic":
            await ctx.db.execute(
                "INSERT INTO crm_characteristics VALUES ($1, $2) ON CONFLICT DO NOTHING",
                person_id,
                command.characteristic,
            )
            return f"characteristic {command.characteristic!r} set"
        case "remove_characteristic":
            await ctx.db.execute(
                "DELETE FROM crm_characteristics WHERE person_id = $1 AND characteristic = $2",
                person_id,
                command.characteristic,
            )
            return f"characteristic {command.characteristic!r} removed"
        case _:
            category = await ctx.db.fetchval(
                "SELECT category_id FROM rt_time_categories WHERE code = $1", command.time_category
            )
            if category is None:
                raise Rejected(f"time-writing category {command.time_category!r} does not exist")
            if command.command == "unlink_time_category":
                await ctx.db.execute(
                    "DELETE FROM rt_employee_time_categories WHERE employee_id = $1 AND category_id = $2",
                    employee_id,
                    category,
                )
                return f"time-writing category {command.time_category!r} unlinked"
            has_contract = await ctx.db.fetchval(
                """SELECT true FROM rt_contract_periods WHERE employee_id = $1 AND start_date <= $2
                   AND (end_date IS NULL OR end_date >= $2)""", employee_id, today)  # fmt: skip
            if not has_contract:
                raise Rejected(f"employee {employee_id} has no active contract on {today}: an employee needs a "
                               "contract to write time")  # fmt: skip
            await ctx.db.execute(
                "INSERT INTO rt_employee_time_categories VALUES ($1, $2) ON CONFLICT DO NOTHING", employee_id, category
            )
            return f"time-writing category {command.time_category!r} linked"


async def handle_follow_up(command: FollowUpCommand, pool: asyncpg.Pool, now: Callable[[], datetime]) -> list[Outcome]:
    async def effect(connection: asyncpg.Connection) -> list[Outcome]:
        ctx = DecisionContext(connection, command.command_id, command.issued_by, MatchPolicy(), now())
        try:
            async with connection.transaction():
                reason = await apply_follow_up(ctx, command)
            ctx.outcome(OutcomeKind.APPLIED, command.key, reason, {"command": command.command})
            await ctx.announce_tasks(command.employee_id, command.key)
        except Rejected as error:
            ctx.outcomes = [
                outcome_for(
                    command.command_id,
                    OutcomeKind.REJECTED,
                    command.key,
                    ctx.now,
                    str(error),
                    {"command": command.command},
                )
            ]
        return ctx.outcomes

    return await run_once(pool, Inbox(FOLLOW_UPS), command.command_id, effect)


def rejection_for_malformed(id_field: str, now: Callable[[], datetime]) -> Callable[[bytes, str], Outcome | None]:
    """A 'rejected' outcome for a malformed command whose id can still be read, so its sender hears why.

    Never raises, whatever the value: the consumer shell calls it for a message it could not parse, and an
    error escaping here (a value nested 100,000 deep makes json.loads raise RecursionError) would crash the
    agent on that message again and again."""

    def reject(value: bytes, reason: str) -> Outcome | None:
        if len(value) > MAX_COMMAND_BYTES:
            return None
        try:
            raw_id = json.loads(value)[id_field]
            if not isinstance(raw_id, str):  # str() of a 32-digit number would read as a UUID's hex digits
                return None
            command_id = uuid.UUID(raw_id)
        except Exception:  # RecursionError, ValueError, TypeError, KeyError, ...: no id to answer to
            return None
        return outcome_for(command_id, OutcomeKind.REJECTED, "malformed", now(), cut_reason(reason))

    return reject
