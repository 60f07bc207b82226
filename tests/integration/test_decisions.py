"""Decisions and follow-up commands against the real PostgreSQL: every action, rejection, bulk, undo."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.builders import HASH_ANNA, NOW, company_change, employee_change
from tests.support import database_url_for_tests
from worker.adapters.hr_queries import decision_history
from worker.adapters.poll_store import PollStore
from worker.adapters.target_store import PostgresTargetStore, human_key
from worker.config import Settings
from worker.domain.changes import Op
from worker.domain.decisions import Decision, DecisionFilter
from worker.domain.events import Outcome, OutcomeKind
from worker.domain.follow_ups import FollowUpCommand
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import ContractPeriod, EmploymentPeriod, NmbrsEmployee
from worker.entrypoints.cli import leave_of_employee
from worker.service.decisions import decision_published, handle_decision, handle_follow_up

from .test_reconciler import Handle, employee, event


def decision(action: str, nmbrs_id: int | None = 101, **fields: Any) -> Decision:
    return Decision(
        decision_id=uuid.uuid4(),
        nmbrs_id=nmbrs_id,
        action=action,
        decided_by="hr.anja",
        decided_at=datetime.now(UTC),
        **fields,
    )


async def decide(db: asyncpg.Pool, choice: Decision) -> list[Outcome]:
    return await handle_decision(choice, db, MatchPolicy(), lambda: NOW)


async def follow_up(db: asyncpg.Pool, employee_id: int, command: str, **fields: Any) -> list[Outcome]:
    message = FollowUpCommand(
        command_id=uuid.uuid4(), employee_id=employee_id, command=command, issued_by="hr", issued_at=NOW, **fields
    )
    return await handle_follow_up(message, db, lambda: NOW)


async def person(db: asyncpg.Pool, ref: str) -> int:
    return int(await db.fetchval("SELECT person_id FROM crm_persons WHERE external_ref = $1", ref))


async def asked(handle: Handle, employee_id: int = 101, **changes: Any) -> None:
    outcomes = await handle(event(employee(employee_id, **changes)))
    assert outcomes[0].kind is OutcomeKind.NEEDS_DECISION


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [o.kind.value for o in outcomes]


async def test_koppelen_links_to_the_chosen_person_applies_fields_and_lists_follow_up_tasks(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle)
    anna = await person(db, "anna")
    outcomes = await decide(db, decision("koppelen", target_id=anna))
    assert sorted(kinds(outcomes)) == ["applied", "follow_up", "leave_recalculated"]
    row = await db.fetchrow("SELECT person_id, function_id, active FROM rt_employees WHERE nmbrs_employee_id = 101")
    assert row["person_id"] == anna and row["function_id"] == 5 and row["active"]
    assert await db.fetchval("SELECT count(*) FROM pending_decisions") == 0
    tasks = next(o for o in outcomes if o.kind is OutcomeKind.FOLLOW_UP).details["tasks"]
    # anna has an account with a role; Koppelen does not set characteristics (they are local data)
    assert tasks == ["manager", "time_category", "personeelslid", "characteristics"]


async def test_koppelen_to_a_person_with_a_blue_employee_warns_and_leaves_it_alone(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle, first_name="Piet", prefix=None, last_name="Jansen", bsn_hash=None)
    piet = await person(db, "piet")
    blue = await db.fetchrow("SELECT * FROM rt_employees WHERE person_id = $1 AND source = 'manual'", piet)
    outcomes = await decide(db, decision("koppelen", target_id=piet))
    applied = next(o for o in outcomes if o.kind is OutcomeKind.APPLIED)
    assert applied.details["blue_employees"] == [blue["employee_id"]]
    assert "manual (blue) RegiTijd employee" in (applied.reason or "") and "end it by hand" in (applied.reason or "")
    assert await db.fetchrow("SELECT * FROM rt_employees WHERE employee_id = $1", blue["employee_id"]) == blue
    # No warning where there is no blue employee.
    await asked(handle, 102)
    plain = await decide(db, decision("koppelen", 102, target_id=await person(db, "anna")))
    assert "blue_employees" not in next(o for o in plain if o.kind is OutcomeKind.APPLIED).details


async def test_koppelen_of_a_company_links_the_regitijd_company_its_organisation_has_and_undo_gives_it_back(
    handle: Handle, db: asyncpg.Pool, clean_poller_state: asyncpg.Pool
) -> None:
    # No snapshot of an earlier test's poll: the undo asks again from the decision's own data only.
    # The starting state made a RegiTijd company for org-zon, for Piet's blue employee (target load).
    organisation = await db.fetchval("SELECT organisation_id FROM crm_organisations WHERE external_ref = 'org-zon'")
    before = await db.fetchrow("SELECT * FROM rt_companies WHERE organisation_id = $1", organisation)
    assert (await handle(company_change(kvk_number=None, name="Bakkerij De Zon")))[0].kind is OutcomeKind.NEEDS_DECISION
    link = decision("koppelen", 1, entity="company", target_id=organisation)
    (applied,) = await decide(db, link)
    assert applied.reason == (
        f"linked to organisation {organisation}; the organisation's existing RegiTijd company "
        f"{before['company_id']} (Bakkerij De Zon B.V.) is linked to it, no second one created"
    )
    assert applied.details["regitijd_id"] == applied.details["adopted_company_id"] == before["company_id"]
    companies = await db.fetch("SELECT * FROM rt_companies WHERE organisation_id = $1", organisation)
    assert [(c["company_id"], c["nmbrs_company_id"], c["name"]) for c in companies] == [
        (before["company_id"], 1, "Bakkerij De Zon")
    ]
    blue = await db.fetchval("SELECT company_id FROM rt_employees WHERE source = 'manual'")
    assert blue == before["company_id"]
    # Undone, the company is the organisation's own again, as it was, for Piet's blue employee.
    outcomes = await decide(db, decision("ongedaan_maken", 1, entity="company", undo_decision_id=link.decision_id))
    undone = next(o for o in outcomes if (o.reason or "").startswith("link undone"))
    assert undone.reason == (
        f"link undone; RegiTijd company {before['company_id']} (Bakkerij De Zon B.V.) is the organisation's own again"
    )
    assert await db.fetchrow("SELECT * FROM rt_companies WHERE organisation_id = $1", organisation) == before


async def test_koppelen_also_links_the_other_open_employments_of_the_same_human(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle, 101)
    await asked(handle, 205, company_id=2)
    anna = await person(db, "anna")
    outcomes = await decide(db, decision("link", target_id=anna))  # English alias
    assert any(o.kind is OutcomeKind.AUTO_LINKED and o.subject == "employee:205" for o in outcomes)
    assert (
        await db.fetchval("SELECT count(DISTINCT person_id) FROM rt_employees WHERE nmbrs_employee_id IN (101, 205)")
        == 1
    )
    assert await db.fetchval("SELECT count(*) FROM pending_decisions") == 0


async def test_aanmaken_creates_the_person_with_personeelslid_and_no_account(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(
        handle,
        102,
        first_name="Zeger",
        prefix=None,
        last_name="Quist",
        birthday=date(1990, 1, 1),
        email_work="zeger@zon.nl",
        bsn_hash=None,
    )
    outcomes = await decide(db, decision("aanmaken", 102))
    created = (
        outcomes[-1]
        if outcomes[-1].kind is OutcomeKind.APPLIED
        else next(o for o in outcomes if o.kind is OutcomeKind.APPLIED)
    )
    person_id = created.details["crm_id"]
    row = await db.fetchrow(
        "SELECT first_name, last_name, email_work, birthday FROM crm_persons WHERE person_id = $1", person_id
    )
    assert (row["first_name"], row["last_name"], row["email_work"]) == ("Zeger", "Quist", "zeger@zon.nl")
    assert await db.fetchval(
        "SELECT array_agg(characteristic) FROM crm_characteristics WHERE person_id = $1", person_id
    ) == ["RegiPersoneel: Personeelslid"]
    assert await db.fetchval("SELECT count(*) FROM crm_accounts WHERE person_id = $1", person_id) == 0
    follow = next(o for o in outcomes if o.kind is OutcomeKind.FOLLOW_UP)
    assert "account" in follow.details["tasks"]


async def test_blokkeren_is_remembered_until_ontblokkeren_asks_again(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(handle)
    assert kinds(await decide(db, decision("blokkeren"))) == ["applied"]
    changed = event(employee(last_name="Bergh"), op=Op.UPDATE, before=employee())
    assert kinds(await handle(changed)) == ["blocked"]
    outcomes = await decide(db, decision("ontblokkeren"))
    assert kinds(outcomes) == ["applied", "needs_decision"]
    assert await db.fetchval("SELECT count(*) FROM pending_decisions WHERE nmbrs_id = 101") == 1


async def test_overslaan_hides_the_question_until_the_next_poll(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(handle)
    await decide(db, decision("overslaan"))
    assert await db.fetchval("SELECT skipped FROM pending_decisions WHERE nmbrs_id = 101") is True
    poll_id = uuid.uuid4()
    store = PollStore(db)
    await store.start_run(poll_id, None, False, False, NOW)
    await store.advance(poll_id, {})
    assert await db.fetchval("SELECT skipped FROM pending_decisions WHERE nmbrs_id = 101") is False


async def test_ongedaan_maken_reverses_a_link_and_asks_again(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(handle)
    anna = await person(db, "anna")
    link = decision("koppelen", target_id=anna)
    await decide(db, link)
    employee_id = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    outcomes = await decide(db, decision("ongedaan_maken", undo_decision_id=link.decision_id))
    assert "needs_decision" in kinds(outcomes)
    assert await db.fetchval("SELECT active FROM rt_employees WHERE employee_id = $1", employee_id) is False
    assert await db.fetchval("SELECT count(*) FROM sync_links WHERE entity = 'employee'") == 0
    # Deciding again reuses the deactivated RegiTijd employee instead of creating a second one.
    await decide(db, decision("koppelen", target_id=anna))
    assert await db.fetch("SELECT employee_id, active FROM rt_employees WHERE nmbrs_employee_id = 101") == [
        (employee_id, True)
    ]
    again = await decide(db, decision("undo", undo_decision_id=link.decision_id))
    assert kinds(again) == ["rejected"] and "already undone" in (again[0].reason or "")


CARD = "SELECT first_name, last_name, birthday, email_work FROM crm_persons WHERE person_id = $1"


async def test_undoing_a_wrong_koppelen_restores_the_person_card(handle: Handle, db: asyncpg.Pool) -> None:
    piet = {
        "first_name": "Piet",
        "prefix": None,
        "last_name": "Jansen",
        "birthday": date(1975, 5, 5),
        "email_work": "piet@zon.nl",
        "bsn_hash": None,
    }
    await asked(handle, **piet)
    anna = await person(db, "anna")
    card = await db.fetchrow(CARD, anna)
    link = decision("koppelen", target_id=anna)  # the wrong person
    await decide(db, link)
    assert (await db.fetchrow(CARD, anna))["last_name"] == "Jansen"
    outcomes = await decide(db, decision("ongedaan_maken", undo_decision_id=link.decision_id))
    assert any("card restored" in (o.reason or "") for o in outcomes)
    assert await db.fetchrow(CARD, anna) == card


async def test_undo_leaves_a_card_edited_since_the_link_alone_and_says_so(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(handle, first_name="Piet", prefix=None, last_name="Jansen", bsn_hash=None)
    anna = await person(db, "anna")
    link = decision("koppelen", target_id=anna)
    await decide(db, link)
    await db.execute("UPDATE crm_persons SET email_work = 'p.jansen@zon.nl' WHERE person_id = $1", anna)
    outcomes = await decide(db, decision("ongedaan_maken", undo_decision_id=link.decision_id))
    assert any("changed since decision" in (o.reason or "") for o in outcomes)
    assert (await db.fetchrow(CARD, anna))["email_work"] == "p.jansen@zon.nl"


async def test_an_employment_of_a_human_linked_elsewhere_can_only_join_that_person(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle, 101)
    await asked(handle, 205, company_id=2)
    anna, piet = await person(db, "anna"), await person(db, "piet")
    # 101 got linked while 205's question was being asked (the two raced): 205 is still open.
    await db.execute("DELETE FROM pending_decisions WHERE nmbrs_id = 101")
    await db.execute(
        """INSERT INTO sync_links (entity, nmbrs_id, crm_id, bsn_hash, linked_by, reason)
           VALUES ('employee', 101, $1, $2, 'sync', 'test')""",
        anna,
        HASH_ANNA,
    )
    for wrong in (decision("aanmaken", 205), decision("koppelen", 205, target_id=piet)):
        refused = await decide(db, wrong)
        assert kinds(refused) == ["rejected"] and f"already linked to person {anna}" in (refused[0].reason or "")
    assert "applied" in kinds(await decide(db, decision("koppelen", 205, target_id=anna)))


@pytest.fixture
async def nmbrs_snapshot(db: asyncpg.Pool) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Store what the poller last saw of an employee (the decision tests run without a poller)."""

    async def store(record: NmbrsEmployee, version: int, deleted: bool = False) -> None:
        await db.execute(
            """INSERT INTO nmbrs_snapshots (key, entity, company_id, fingerprint, version, deleted, record)
               VALUES ($1, 'employee', $2, 'test', $3, $4, $5::jsonb)""",
            f"employee:{record.employee_id}",
            record.company_id,
            version,
            deleted,
            record.model_dump_json(),
        )

    yield store
    await db.execute("DELETE FROM nmbrs_snapshots")


async def linked_to_anna(handle: Handle, db: asyncpg.Pool) -> Decision:
    """Ask about Nmbrs employee 101 and answer Koppelen to anna; returns that decision."""
    await asked(handle)
    link = decision("koppelen", target_id=await person(db, "anna"))
    await decide(db, link)
    return link


async def test_undo_asks_again_with_what_nmbrs_holds_now(
    handle: Handle, db: asyncpg.Pool, nmbrs_snapshot: Callable[..., Awaitable[None]]
) -> None:
    link = await linked_to_anna(handle, db)
    await nmbrs_snapshot(employee(last_name="Bergh"), version=4)  # Nmbrs changed the name since the link
    await decide(db, decision("ongedaan_maken", undo_decision_id=link.decision_id))
    question = await db.fetchrow("SELECT version, record FROM pending_decisions WHERE nmbrs_id = 101")
    assert question["version"] == 4 and json.loads(question["record"])["last_name"] == "Bergh"


async def test_undo_asks_nothing_about_an_employee_removed_from_nmbrs_meanwhile(
    handle: Handle, db: asyncpg.Pool, nmbrs_snapshot: Callable[..., Awaitable[None]]
) -> None:
    link = await linked_to_anna(handle, db)
    await nmbrs_snapshot(employee(), version=2, deleted=True)
    outcomes = await decide(db, decision("ongedaan_maken", undo_decision_id=link.decision_id))
    assert any("removed from Nmbrs meanwhile" in (o.reason or "") for o in outcomes)
    assert await db.fetchval("SELECT count(*) FROM pending_decisions") == 0
    assert await db.fetchval("SELECT active FROM rt_employees WHERE nmbrs_employee_id = 101") is False


async def test_undoing_a_block_takes_back_only_that_block(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(handle)
    first = decision("blokkeren")
    await decide(db, first)
    await decide(db, decision("ontblokkeren"))
    second = decision("blokkeren")
    assert kinds(await decide(db, second)) == ["applied"]
    # The first block is gone (unblocked); undoing it must not lift the second one.
    refused = await decide(db, decision("ongedaan_maken", undo_decision_id=first.decision_id))
    assert kinds(refused) == ["rejected"] and "no longer blocked by decision" in (refused[0].reason or "")
    assert await db.fetchval("SELECT decision_id FROM sync_blocks WHERE nmbrs_id = 101") == second.decision_id
    undone = await decide(db, decision("ongedaan_maken", undo_decision_id=second.decision_id))
    assert kinds(undone) == ["applied", "needs_decision"]
    assert await db.fetchval("SELECT count(*) FROM sync_blocks") == 0


async def test_an_unblock_or_an_undo_cannot_be_undone(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(handle)
    await decide(db, decision("blokkeren"))
    unblock = decision("ontblokkeren")
    await decide(db, unblock)
    refused = await decide(db, decision("ongedaan_maken", undo_decision_id=unblock.decision_id))
    assert kinds(refused) == ["rejected"] and "cannot be undone; decide again" in (refused[0].reason or "")
    assert await db.fetchval("SELECT undone_by FROM decisions WHERE decision_id = $1", unblock.decision_id) is None
    block = decision("blokkeren")
    await decide(db, block)
    undo = decision("ongedaan_maken", undo_decision_id=block.decision_id)
    await decide(db, undo)
    again = await decide(db, decision("ongedaan_maken", undo_decision_id=undo.decision_id))
    assert kinds(again) == ["rejected"] and "cannot be undone; decide again" in (again[0].reason or "")


async def test_undoing_aanmaken_deactivates_the_employee_and_keeps_the_person(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(
        handle,
        102,
        first_name="Zeger",
        prefix=None,
        last_name="Quist",
        birthday=date(1990, 1, 1),
        email_work=None,
        bsn_hash=None,
    )
    create = decision("aanmaken", 102)
    outcomes = await decide(db, create)
    person_id = next(o for o in outcomes if o.kind is OutcomeKind.APPLIED).details["crm_id"]
    await decide(db, decision("ongedaan_maken", 102, undo_decision_id=create.decision_id))
    assert await db.fetchval("SELECT active FROM rt_employees WHERE nmbrs_employee_id = 102") is False
    assert await db.fetchval("SELECT count(*) FROM crm_persons WHERE person_id = $1", person_id) == 1


@pytest.mark.parametrize(
    ("setup", "choice", "reason"),
    [
        ("none", lambda anna: decision("koppelen", 999, target_id=anna), "unknown"),
        ("asked", lambda anna: decision("koppelen", target_id=anna, version=1 + 10_000), "stale"),
        ("asked", lambda anna: decision("koppelen", target_id=987_654), "person 987654 does not exist"),
        ("linked", lambda anna: decision("aanmaken"), "already linked"),
        ("asked", lambda anna: decision("ontblokkeren"), "is not blocked"),
        ("asked", lambda anna: decision("undo", undo_decision_id=uuid.uuid4()), "unknown"),
    ],
)
async def test_every_rejection_has_a_reason_a_human_understands_and_changes_nothing(
    handle: Handle, db: asyncpg.Pool, setup: str, choice: Any, reason: str
) -> None:
    anna = await person(db, "anna")
    if setup == "asked":
        await asked(handle)
    elif setup == "linked":
        await asked(handle)
        await decide(db, decision("koppelen", target_id=anna))
    before = await db.fetchval("SELECT count(*) FROM audit_log")
    outcomes = await decide(db, choice(anna))
    assert kinds(outcomes) == ["rejected"] and reason in (outcomes[0].reason or "")
    assert await db.fetchval("SELECT count(*) FROM audit_log") == before
    assert (
        await db.fetchval("SELECT result FROM decisions WHERE decision_id = $1", outcomes[0].causation_id) == "rejected"
    )


async def test_the_same_decision_twice_has_one_effect(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(
        handle,
        102,
        first_name="Zeger",
        prefix=None,
        last_name="Quist",
        birthday=date(1990, 1, 1),
        email_work=None,
        bsn_hash=None,
    )
    create = decision("aanmaken", 102)
    first = await decide(db, create)
    again = await decide(db, create)
    assert [o.outcome_id for o in again] == [o.outcome_id for o in first]
    assert await db.fetchval("SELECT count(*) FROM crm_persons WHERE last_name = 'Quist'") == 1


async def three_strangers(handle: Handle) -> None:
    """Unmatched questions about Nmbrs employees 301, 302 and 303 of company 3."""
    await strangers(handle, range(301, 304))


async def strangers(handle: Handle, employee_ids: Iterable[int]) -> None:
    """Unmatched questions about these Nmbrs employees of company 3."""
    for employee_id in employee_ids:
        await asked(
            handle,
            employee_id,
            company_id=3,
            first_name=f"X{employee_id}",
            prefix=None,
            last_name="Qq",
            birthday=date(1990, 1, 1),
            email_work=None,
            bsn_hash=None,
        )


async def test_bulk_preview_changes_nothing_and_bulk_blocks_all_pending_of_a_company(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await three_strangers(handle)
    await asked(handle, 101)  # another company: untouched by the filter
    preview = await decide(db, decision("blokkeren", None, filter=DecisionFilter(company_id=3), preview=True))
    assert kinds(preview) == ["preview"] and preview[0].details["records"] == [
        "employee:301",
        "employee:302",
        "employee:303",
    ]
    assert await db.fetchval("SELECT count(*) FROM sync_blocks") == 0
    done = await decide(db, decision("block", None, filter=DecisionFilter(company_id=3)))
    assert done[-1].details["records"] == preview[0].details["records"]
    assert await db.fetchval("SELECT count(*) FROM sync_blocks") == 3
    assert await db.fetchval("SELECT count(*) FROM pending_decisions") == 1


async def test_a_bulk_confirming_a_preview_answers_only_what_it_listed_as_it_was(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await three_strangers(handle)
    select = DecisionFilter(company_id=3, situation="unmatched")
    preview = decision("aanmaken", None, filter=select, preview=True)
    await decide(db, preview)
    # Since the preview: 302 changed in Nmbrs (asked again), 303 was answered, 304 came in.
    await asked(
        handle,
        302,
        company_id=3,
        first_name="X302",
        prefix=None,
        last_name="Qq-Bakker",
        birthday=date(1990, 1, 1),
        email_work=None,
        bsn_hash=None,
    )
    await decide(db, decision("blokkeren", 303))
    await asked(
        handle,
        304,
        company_id=3,
        first_name="X304",
        prefix=None,
        last_name="Qq",
        birthday=date(1990, 1, 1),
        email_work=None,
        bsn_hash=None,
    )
    outcomes = await decide(db, decision("aanmaken", None, filter=select, confirms=preview.decision_id))
    done = next(o for o in outcomes if o.subject == "bulk")
    assert done.details["records"] == ["employee:301"]
    assert done.details["changed_since_preview"] == ["employee:302", "employee:303"]
    twice = await decide(db, decision("aanmaken", None, filter=select, confirms=preview.decision_id))
    assert kinds(twice) == ["rejected"] and "carried out already" in (twice[0].reason or "")
    other = decision(
        "aanmaken", None, filter=DecisionFilter(company_id=3, max_best_score=0.5), confirms=preview.decision_id
    )
    refused = await decide(db, other)
    assert kinds(refused) == ["rejected"] and "another action or filter" in (refused[0].reason or "")


async def test_a_confirmed_bulk_never_takes_along_an_employment_changed_since_the_preview(
    handle: Handle, db: asyncpg.Pool
) -> None:
    preview = (await quist_twice(handle, "c6" * 32)).model_copy(update={"preview": True})
    await decide(db, preview)
    await asked(
        handle,
        402,
        company_id=4,
        first_name="Zeger",
        prefix=None,
        last_name="Quist-Bos",
        birthday=date(1990, 1, 1),
        email_work=None,
        bsn_hash="c6" * 32,
    )  # changed in Nmbrs
    run = preview.model_copy(update={"decision_id": uuid.uuid4(), "preview": False, "confirms": preview.decision_id})
    done = next(o for o in await decide(db, run) if o.subject == "bulk")
    assert done.details["records"] == [] and done.details["left_out"] == ["employee:401"]
    assert done.details["changed_since_preview"] == ["employee:402"]
    assert await db.fetchval("SELECT count(*) FROM sync_links WHERE nmbrs_id IN (401, 402)") == 0


async def test_bulk_create_only_where_no_candidate_scores_above_the_threshold(handle: Handle, db: asyncpg.Pool) -> None:
    await asked(handle, 101)  # strong candidates (anna)
    await asked(
        handle,
        102,
        first_name="Zeger",
        prefix=None,
        last_name="Quist",
        birthday=date(1990, 1, 1),
        email_work=None,
        bsn_hash=None,
    )
    await asked(
        handle,
        103,
        first_name="Wout",
        prefix=None,
        last_name="Zwart",
        birthday=date(1991, 1, 1),
        email_work=None,
        bsn_hash=None,
    )
    await decide(db, decision("overslaan", 103))  # skipped: hidden from HR until the next sync, so left alone
    outcomes = await decide(db, decision("aanmaken", None, filter=DecisionFilter(company_id=1, max_best_score=0.2)))
    assert outcomes[-1].details["records"] == ["employee:102"]
    assert sorted(await db.fetch("SELECT nmbrs_id FROM pending_decisions")) == [(101,), (103,)]


async def test_a_bulk_is_undone_record_by_record_or_whole_on_request(handle: Handle, db: asyncpg.Pool) -> None:
    await three_strangers(handle)
    bulk = decision("aanmaken", None, filter=DecisionFilter(company_id=3, situation="unmatched"))
    await decide(db, bulk)
    active = "SELECT nmbrs_employee_id FROM rt_employees WHERE active AND nmbrs_employee_id > 300 ORDER BY 1"
    assert [r[0] for r in await db.fetch(active)] == [301, 302, 303]

    one = await decide(db, decision("ongedaan_maken", 302, undo_decision_id=bulk.decision_id))
    assert "needs_decision" in kinds(one)
    assert [r[0] for r in await db.fetch(active)] == [301, 303]  # only the record named
    again = await decide(db, decision("ongedaan_maken", 302, undo_decision_id=bulk.decision_id))
    assert kinds(again) == ["rejected"] and "already undone" in (again[0].reason or "")

    rest = await decide(db, decision("ongedaan_maken", 301, undo_decision_id=bulk.decision_id, undo_all_records=True))
    assert kinds(rest).count("needs_decision") == 2 and await db.fetch(active) == []
    assert await db.fetchval("SELECT undone_by FROM decisions WHERE decision_id = $1", bulk.decision_id) is not None


async def test_a_redelivered_bulk_whose_outcomes_were_published_publishes_none_again(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await strangers(handle, range(301, 331))
    bulk = decision("aanmaken", None, filter=DecisionFilter(company_id=3, situation="unmatched"))
    first = await decide(db, bulk)
    assert len(first) == 30 * 3 + 1  # applied, leave_recalculated and follow_up per record; the bulk's applied
    await decision_published(bulk, db)  # the consumer shell, once the broker acknowledged them
    assert await decide(db, bulk) == []  # redelivered
    assert await db.fetchval("SELECT count(*) FROM crm_persons WHERE last_name = 'Qq'") == 30


async def test_a_redelivered_bulk_whose_publish_was_lost_publishes_its_outcomes_once_more(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await strangers(handle, range(301, 331))
    bulk = decision("aanmaken", None, filter=DecisionFilter(company_id=3, situation="unmatched"))
    first = await decide(db, bulk)  # committed; the worker died before the broker acknowledged the outcomes
    again = await decide(db, bulk)
    assert [o.outcome_id for o in again] == [o.outcome_id for o in first] and len(again) == 91
    await decision_published(bulk, db)
    assert await decide(db, bulk) == []


async def test_follow_up_commands_change_local_data_and_the_next_sync_leaves_it_alone(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle)
    await decide(db, decision("koppelen", target_id=await person(db, "anna")))
    employee_id = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    blue = await db.fetchval("SELECT employee_id FROM rt_employees WHERE source = 'manual'")
    await db.execute("INSERT INTO rt_time_categories (code, name) VALUES ('PRJ', 'Projecten')")

    assert kinds(await follow_up(db, employee_id, "set_manager", manager_employee_id=blue))[0] == "applied"
    leave = await follow_up(db, employee_id, "leave_adjustment", hours=8, on="2026-03-01", reason="jubileum")
    assert "leave_recalculated" in kinds(leave)
    assert (
        kinds(await follow_up(db, employee_id, "set_characteristic", characteristic="RegiAct: Uitvoerder"))[0]
        == "applied"
    )
    await follow_up(db, employee_id, "set_characteristic", characteristic="RegiPersoneel: Personeelslid")
    linked = await follow_up(db, employee_id, "link_time_category", time_category="PRJ")
    assert kinds(linked) == ["applied"]  # no follow_up outcome: every task is done now
    assert kinds(await follow_up(db, employee_id, "set_manager", manager_employee_id=employee_id)) == ["rejected"]

    await handle(event(employee(first_name="Annie"), op=Op.READ))
    row = await db.fetchrow("SELECT manager_employee_id FROM rt_employees WHERE employee_id = $1", employee_id)
    assert row["manager_employee_id"] == blue
    assert await db.fetchval("SELECT count(*) FROM rt_leave_adjustments WHERE employee_id = $1", employee_id) == 1
    assert (
        await db.fetchval("SELECT count(*) FROM rt_employee_time_categories WHERE employee_id = $1", employee_id) == 1
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM crm_characteristics c JOIN rt_employees e USING (person_id) "
            "WHERE e.employee_id = $1 AND characteristic = 'RegiAct: Uitvoerder'",
            employee_id,
        )
        == 1
    )


async def test_linking_a_time_category_without_an_active_contract_is_rejected(handle: Handle, db: asyncpg.Pool) -> None:
    ended = (EmploymentPeriod(employment_id=1, start=date(2025, 1, 1), end=date(2025, 12, 31)),)
    old_contract = (
        ContractPeriod(contract_id=1, start=date(2025, 1, 1), end=date(2025, 12, 31), hours_per_week=Decimal("20")),
    )
    await asked(handle, employments=ended, contracts=old_contract)
    await decide(db, decision("koppelen", target_id=await person(db, "anna")))
    employee_id = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    await db.execute("INSERT INTO rt_time_categories (code, name) VALUES ('PRJ', 'Projecten')")
    outcomes = await follow_up(db, employee_id, "link_time_category", time_category="PRJ")
    assert kinds(outcomes) == ["rejected"] and "no active contract" in (outcomes[0].reason or "")


async def test_leave_of_a_stored_employee_is_printed_with_its_explanation(
    handle: Handle, db: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await asked(handle)
    await decide(db, decision("koppelen", target_id=await person(db, "anna")))
    employee_id = await db.fetchval("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = 101")
    await follow_up(db, employee_id, "leave_adjustment", hours=8, on="2026-03-01")
    settings = Settings(database_url=database_url_for_tests())
    assert await leave_of_employee(settings, employee_id, "2026-12-31", None) == 0
    out = capsys.readouterr().out
    # 2026 at 40 h/week from 1 January: 4 x 40 = 160 statutory, plus the 8 h adjustment.
    assert "Balance: 168.00 h" in out and "2026" in out
    assert await leave_of_employee(settings, 987654, None, None) == 1


async def quist_twice(handle: Handle, bsn_hash: str, second: tuple[int, int] = (402, 4)) -> Decision:
    """Ask about two employments of Zeger Quist, whom no RegiCRM card resembles: 401 at company 4 and
    `second` (employee, company); returns the bulk Aanmaken of company 4's unmatched questions."""
    zeger = {
        "first_name": "Zeger",
        "prefix": None,
        "last_name": "Quist",
        "birthday": date(1990, 1, 1),
        "email_work": None,
        "bsn_hash": bsn_hash,
    }
    await asked(handle, 401, company_id=4, **zeger)
    await asked(handle, second[0], company_id=second[1], **zeger)
    return decision("aanmaken", None, filter=DecisionFilter(company_id=4, situation="unmatched"))


async def test_aanmaken_in_bulk_creates_one_person_for_one_human_with_two_employments(
    handle: Handle, db: asyncpg.Pool
) -> None:
    outcomes = await decide(db, await quist_twice(handle, "c3" * 32))
    assert kinds(outcomes).count("auto_linked") == 1
    assert await db.fetchval("SELECT count(*) FROM crm_persons WHERE last_name = 'Quist'") == 1
    assert (
        await db.fetchval("SELECT count(DISTINCT person_id) FROM rt_employees WHERE nmbrs_employee_id IN (401, 402)")
        == 1
    )
    assert await db.fetchval("SELECT count(*) FROM pending_decisions") == 0


async def test_a_bulk_leaves_out_a_record_whose_other_employment_it_does_not_select(
    handle: Handle, db: asyncpg.Pool
) -> None:
    # The same human in another company: not selected.
    outcomes = await decide(db, await quist_twice(handle, "c4" * 32, second=(501, 5)))
    done = next(o for o in outcomes if o.subject == "bulk")
    assert done.details["records"] == [] and done.details["left_out"] == ["employee:401"]
    assert "left out 1" in (done.reason or "") and await db.fetchval("SELECT count(*) FROM pending_decisions") == 2


async def test_undoing_a_bulk_by_an_employment_it_took_along_undoes_that_human(
    handle: Handle, db: asyncpg.Pool
) -> None:
    bulk = await quist_twice(handle, "c5" * 32)
    await decide(db, bulk)
    async with db.acquire() as connection:  # what 'nmbrs-sync decisions --record employee:402' shows
        listed = await decision_history(connection, ("employee", 402))
    assert listed[0].decision_id == str(bulk.decision_id)  # the newest; earlier tests' decisions may follow
    undone = await decide(db, decision("ongedaan_maken", 402, undo_decision_id=bulk.decision_id))
    assert kinds(undone).count("needs_decision") == 2
    assert await db.fetchval("SELECT count(*) FROM rt_employees WHERE active AND nmbrs_employee_id > 400") == 0


async def test_a_decision_waits_for_another_employment_of_its_human_being_judged(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle)
    async with db.acquire() as other, other.transaction():
        # The reconciler judging another employment of Anna's.
        await PostgresTargetStore(other, today=NOW.date()).lock_record(human_key(HASH_ANNA))
        koppelen = asyncio.create_task(decide(db, decision("koppelen", target_id=await person(db, "anna"))))
        await asyncio.sleep(0.5)
        assert not koppelen.done()
    assert "applied" in kinds(await koppelen)


async def test_a_record_written_by_a_decision_ignores_an_older_change_arriving_late(
    handle: Handle, db: asyncpg.Pool
) -> None:
    await asked(handle)
    await asked(handle)  # a newer change: the question is asked again at the next version
    version = await db.fetchval("SELECT version FROM pending_decisions WHERE nmbrs_id = 101")
    await decide(db, decision("koppelen", target_id=await person(db, "anna")))
    assert await db.fetchval("SELECT nmbrs_version FROM rt_employees WHERE nmbrs_employee_id = 101") == version
    late = employee_change(employee(last_name="Oud"), Op.UPDATE, employee(), version=version - 1)
    assert kinds(await handle(late)) == ["stale"]
