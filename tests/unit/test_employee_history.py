"""An employee's history from its sources: each change once with its cause, in time order, filtered, exported."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.domain.employee_history import (
    CSV_COLUMNS,
    AuditRecord,
    DecisionRecord,
    HistoryEntry,
    HistoryKind,
    HistorySources,
    LeaveBalanceRecord,
    LinkRecord,
    StoredOutcome,
    build_history,
    filter_history,
    history_csv,
    history_json,
    history_subjects,
    merge_history,
    parse_history_csv,
    parse_history_json,
    referenced_ids,
)
from worker.domain.events import OutcomeKind, outcome_for

T0 = datetime(2026, 11, 28, 9, tzinfo=UTC)
CHANGE, LINK_DECISION, UNDO, COMMAND = (uuid.uuid4() for _ in range(4))


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


_audit_ids = iter(range(1, 10_000))


def audit(minutes: int, action: str, before: Any = None, after: Any = None, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {"causation_id": CHANGE, "subject": "employee:101", "actor": "sync"} | fields
    return AuditRecord(audit_id=next(_audit_ids), at=at(minutes), action=action, before=before, after=after, **values)


def stored(
    minutes: int,
    kind: OutcomeKind,
    cause: uuid.UUID = CHANGE,
    subject: str = "employee:101",
    consumer: str = "reconciler",
    reason: str = "why",
    part: str = "",
    **details: Any,
) -> StoredOutcome:
    outcome = outcome_for(cause, kind, subject, T0, reason, details, part=part)
    return StoredOutcome(consumer=consumer, processed_at=at(minutes), outcome=outcome)


def koppelen(minutes: int = 0, **fields: Any) -> DecisionRecord:
    values: dict[str, Any] = {
        "decision_id": LINK_DECISION,
        "nmbrs_id": 101,
        "action": "koppelen",
        "decided_by": "hr.anja",
        "received_at": at(minutes),
        "result": "applied",
    } | fields
    return DecisionRecord(**values)


def history(**sources: Any) -> list[HistoryEntry]:
    return build_history(HistorySources(employee_id=2, nmbrs_id=101, **sources))


CARD = {"first_name": "Anna", "last_name": "Berg", "gender": None}
FIRST_WRITE = {"first_name": "Anna", "last_name": "Berg", "gender": "female", "number": "17", "function_id": 5}


def linked_by_decision() -> dict[str, Any]:
    """Koppelen by hr.anja at minute 0: the decision, the link and first write in the audit log, its outcomes."""
    cause = {"causation_id": LINK_DECISION, "actor": "hr.anja"}
    return {
        "decisions": (koppelen(),),
        "audit": (
            audit(0, "link", {"card": CARD}, {"crm_id": 1, "reason": "Koppelen by hr.anja"}, **cause),
            audit(0, "apply", {"changed": list(FIRST_WRITE)}, FIRST_WRITE, **cause),
        ),
        "outcomes": (
            stored(0, OutcomeKind.APPLIED, LINK_DECISION, consumer="decisions", action="koppelen", crm_id=1),
            stored(0, OutcomeKind.LEAVE_RECALCULATED, LINK_DECISION, consumer="decisions", **LEAVE_FIRST),
            stored(0, OutcomeKind.FOLLOW_UP, LINK_DECISION, consumer="decisions", employee_id=2, tasks=["manager"]),
        ),
    }


LEAVE_FIRST = {"employee_id": 2, "before": None, "after": {"leave_total": "160.00"}}


def test_a_koppelen_shows_the_decision_with_who_then_the_link_the_creation_and_what_followed() -> None:
    entries = history(**linked_by_decision())
    assert [e.kind for e in entries] == [
        HistoryKind.DECISION,
        HistoryKind.LINK,
        HistoryKind.CREATED,
        HistoryKind.NMBRS_CHANGE,
        HistoryKind.LEAVE,
        HistoryKind.TASKS,
    ]
    decision, link, created, gender, leave, tasks = entries
    assert decision.actor == "hr.anja" and decision.cause == LINK_DECISION
    assert decision.summary == "Besluit Koppelen door hr.anja"
    # The settling outcome is folded into the decision: its reason and details, not a second entry.
    assert decision.reason == "why" and decision.after == {"action": "koppelen", "result": "applied", "crm_id": 1}
    assert link.before == CARD and link.after == {"crm_id": 1, "reason": "Koppelen by hr.anja"}
    assert link.reason == "Koppelen by hr.anja" and link.actor == "hr.anja"
    # What the card had before is known: only the field that differed is a change; the others are the creation.
    assert created.after == {"number": "17", "function_id": 5}
    assert (gender.field, gender.before, gender.after) == ("gender", None, "female")
    assert leave.summary == "Verlof herberekend: saldo 160,00 uur" and leave.actor == "hr.anja"
    assert (
        tasks.after == ["manager"] and tasks.summary == "Nog aan te vullen: nog geen manager (die keurt de uren goed)"
    )


def test_a_later_nmbrs_change_has_the_value_the_sync_wrote_before_and_names_references() -> None:
    sources = linked_by_decision()
    sources["audit"] += (
        audit(5, "apply", {"changed": ["function_id", "last_name"]}, {"function_id": 6, "last_name": "Bergh"}),
    )
    sources["outcomes"] += (stored(5, OutcomeKind.APPLIED, changed_fields=["function_id", "last_name"], op="u"),)
    entries = history(**sources, reference_names={"function_id": {5: "Bakker", 6: "Verkoper"}})
    changes = [e for e in entries if e.at == at(5)]
    assert [(e.kind, e.field, e.before, e.after, e.actor, e.cause) for e in changes] == [
        (HistoryKind.NMBRS_CHANGE, "function_id", 5, 6, "sync", CHANGE),
        (HistoryKind.NMBRS_CHANGE, "last_name", "Berg", "Bergh", "sync", CHANGE),
    ]
    assert changes[0].summary == "Bijgewerkt uit Nmbrs: Functie: Bakker → Verkoper"
    assert changes[1].summary == "Bijgewerkt uit Nmbrs: Achternaam: Berg → Bergh"


def test_a_drift_stands_for_the_field_change_it_overwrote_with_both_values() -> None:
    sources = linked_by_decision()
    sources["audit"] += (audit(5, "apply", {"changed": ["function_id"]}, {"function_id": 5}),)
    drift = stored(5, OutcomeKind.DRIFT, field="function_id", local_value=99, nmbrs_value=5, local_name="Lokaal")
    sources["outcomes"] += (stored(5, OutcomeKind.APPLIED, changed_fields=["function_id"], op="u"), drift)
    changes = [e for e in history(**sources, reference_names={"function_id": {5: "Bakker"}}) if e.at == at(5)]
    assert [(e.kind, e.field, e.before, e.after) for e in changes] == [(HistoryKind.DRIFT, "function_id", 99, 5)]
    assert changes[0].summary == "Functie was lokaal gewijzigd (Lokaal); overschreven met de waarde uit Nmbrs (Bakker)"


def test_an_auto_link_is_told_once_by_its_audit_row() -> None:
    entries = history(
        audit=(audit(0, "link", {"card": CARD}, {"crm_id": 1, "reason": "definite rule"}),),
        outcomes=(stored(0, OutcomeKind.AUTO_LINKED, person_id=1, rule="login account"),),
    )
    assert [(e.kind, e.actor, e.summary) for e in entries] == [
        (HistoryKind.LINK, "sync", "Automatisch gekoppeld aan RegiCRM-persoon 1")
    ]


def test_an_update_that_changed_nothing_is_no_entry() -> None:
    entries = history(outcomes=(stored(0, OutcomeKind.APPLIED, changed_fields=[], op="r"),))
    assert entries == []


def test_a_removal_and_a_return_are_changes_of_active() -> None:
    entries = history(
        audit=(
            audit(0, "deactivate", None, {"reason": "removed from Nmbrs"}),
            audit(1, "reactivate", None, {"reason": "back in Nmbrs"}, causation_id=UNDO),
        ),
        outcomes=(stored(0, OutcomeKind.APPLIED, op="d"), stored(1, OutcomeKind.APPLIED, UNDO, op="u")),
    )
    assert [(e.field, e.before, e.after, e.reason) for e in entries] == [
        ("active", True, False, "removed from Nmbrs"),
        ("active", False, True, "back in Nmbrs"),
    ]


def test_an_undo_shows_who_what_it_undid_and_the_card_fields_it_put_back() -> None:
    sources = linked_by_decision()
    sources["decisions"] += (
        DecisionRecord(
            decision_id=UNDO,
            nmbrs_id=101,
            action="ongedaan_maken",
            decided_by="hr.piet",
            received_at=at(9),
            result="applied",
            undid=LINK_DECISION,
        ),
    )
    written, restored = {"last_name": "Berg", "gender": "female"}, {"last_name": "Berg", "gender": None}
    sources["audit"] += (
        audit(9, "restore", written, restored, causation_id=UNDO, subject="crm_persons:1", actor="hr.piet"),
    )
    undo_outcomes = (
        stored(9, OutcomeKind.APPLIED, UNDO, consumer="decisions", part="undo", action="ongedaan_maken", regitijd_id=2),
        stored(
            9,
            OutcomeKind.APPLIED,
            UNDO,
            "person:1",
            "decisions",
            part="undo",
            action="ongedaan_maken",
            restored=restored,
        ),
        stored(9, OutcomeKind.NEEDS_DECISION, UNDO, consumer="decisions", part="re-ask", situation="disputed"),
    )
    sources["outcomes"] += undo_outcomes
    undo = [e for e in history(**sources) if e.at == at(9)]
    assert [(e.kind, e.subject, e.field, e.actor) for e in undo] == [
        (HistoryKind.UNDO, "employee:101", None, "hr.piet"),
        (HistoryKind.UNDO, "person:1", "gender", "hr.piet"),
        (HistoryKind.QUESTION, "employee:101", None, "hr.piet"),
    ]
    assert undo[0].summary == "Besluit Koppelen ongedaan gemaakt door hr.piet"
    assert undo[0].after == {
        "action": "ongedaan_maken",
        "result": "applied",
        "regitijd_id": 2,
        "undid": str(LINK_DECISION),
    }
    assert (undo[1].before, undo[1].after) == ("female", None)
    assert undo[2].summary == "Vraag gesteld (twijfel tussen kandidaten): Koppelen, Aanmaken, Blokkeren of Overslaan"


def test_a_rejected_decision_says_so_with_its_reason() -> None:
    entries = history(
        decisions=(koppelen(result="rejected", reason="the question changed"),),
        outcomes=(stored(0, OutcomeKind.REJECTED, LINK_DECISION, consumer="decisions", action="koppelen"),),
    )
    assert [(e.summary, e.reason) for e in entries] == [
        ("Besluit Koppelen door hr.anja niet uitgevoerd", "the question changed")
    ]


def test_a_bulk_decision_found_by_its_cause_is_one_entry_for_the_record() -> None:
    bulk = koppelen(nmbrs_id=None, action="aanmaken")
    outcome = stored(0, OutcomeKind.APPLIED, LINK_DECISION, consumer="decisions", action="aanmaken", crm_id=7)
    (entry,) = history(decisions=(bulk,), outcomes=(outcome,))
    assert entry.summary == "Besluit Aanmaken (bulk) door hr.anja" and entry.after["bulk"] is True


def test_a_decision_about_another_employment_only_names_who_linked_this_one_along() -> None:
    other = koppelen(nmbrs_id=205)
    entries = history(
        decisions=(other,),
        outcomes=(stored(0, OutcomeKind.AUTO_LINKED, LINK_DECISION, consumer="decisions", person_id=1),),
    )
    assert [(e.kind, e.actor) for e in entries] == [(HistoryKind.LINK, "hr.anja")]


def test_follow_ups_leave_and_tasks_of_another_employee_are_left_out() -> None:
    command = {"cause": COMMAND, "subject": "rt-employee:2", "consumer": "follow-ups"}
    later = command | {"cause": uuid.uuid4()}
    entries = history(
        outcomes=(
            stored(0, OutcomeKind.LEAVE_RECALCULATED, LINK_DECISION, consumer="decisions", employee_id=3, after={}),
            stored(1, OutcomeKind.APPLIED, command="leave_adjustment", reason="leave adjustment of -8.0 h", **command),
            stored(1, OutcomeKind.REJECTED, command="set_manager", **command),
            stored(2, OutcomeKind.APPLIED, command="leave_adjustment", issued_by="hr.anja", **later),
            stored(2, OutcomeKind.LEAVE_RECALCULATED, employee_id=2, after={"leave_total": "8.5"}, **later),
        ),
        actors={COMMAND: "hr.kees"},
    )
    # The sender the outcome names is also who caused the recalculation; an outcome from before outcomes named
    # one falls back on the store's sender.
    assert [(e.kind, e.summary, e.actor) for e in entries] == [
        (HistoryKind.FOLLOW_UP, "Verlofcorrectie geboekt", "hr.kees"),
        (HistoryKind.FOLLOW_UP, "Leidinggevende ingesteld geweigerd", "hr.kees"),
        (HistoryKind.FOLLOW_UP, "Verlofcorrectie geboekt", "hr.anja"),
        (HistoryKind.LEAVE, "Verlof herberekend: saldo 8,5 uur", "hr.anja"),
    ]
    assert entries[0].reason == "leave adjustment of -8.0 h"


def test_the_stored_leave_balance_shows_only_when_no_outcome_told_its_recalculation() -> None:
    told = LeaveBalanceRecord(computed_at=at(0), causation_id=LINK_DECISION, summary={"leave_total": "160.00"})
    sources = linked_by_decision()
    assert sum(e.kind is HistoryKind.LEAVE for e in history(**sources, leave_balance=told)) == 1
    loaded = LeaveBalanceRecord(computed_at=at(30), causation_id=uuid.uuid4(), summary={"leave_total": "168.00"})
    last = history(**sources, leave_balance=loaded)[-1]
    assert (last.kind, last.summary, last.before) == (HistoryKind.LEAVE, "Verlof berekend: saldo 168,00 uur", None)


def test_a_link_without_its_audit_row_comes_from_sync_links() -> None:
    link = LinkRecord(crm_id=1, linked_at=at(0), linked_by="auto", reason="definite rule")
    (entry,) = history(link=link)
    assert (entry.kind, entry.actor, entry.reason) == (HistoryKind.LINK, "sync", "definite rule")
    # The same link with its audit row (recorded in the same transaction, so at the same time): told once, by it.
    links = [e for e in history(**linked_by_decision(), link=link) if e.kind is HistoryKind.LINK]
    assert [e.entry_id[:6] for e in links] == ["audit:"]


def test_a_blue_employee_has_what_the_target_load_and_follow_ups_recorded() -> None:
    load = {"subject": "rt-employee:1", "actor": "target load", "causation_id": None}
    entries = build_history(
        HistorySources(
            employee_id=1,
            nmbrs_id=None,
            audit=(
                audit(0, "insert", None, {"source": "manual", "number": "900"}, **load),
                audit(1, "update", {"number": "900"}, {"number": "901"}, **load),
                audit(
                    1,
                    "add characteristic",
                    None,
                    {"characteristic": "RegiAct: Uitvoerder"},
                    **load | {"subject": "person:3"},
                ),
            ),
            decisions=(koppelen(),),  # never about a blue employee: it has no Nmbrs record
        )
    )
    assert [(e.kind, e.summary) for e in entries] == [
        (HistoryKind.CREATED, "Medewerker (handmatig, blauw) aangemaakt bij het inladen van de beginstand"),
        (HistoryKind.LOCAL_CHANGE, "Gewijzigd bij het inladen van de beginstand: Personeelsnummer: 900 → 901"),
        (HistoryKind.LOCAL_CHANGE, "Kenmerk RegiAct: Uitvoerder toegekend bij het inladen van de beginstand"),
    ]


def test_the_subjects_cover_the_records_of_the_employee() -> None:
    assert history_subjects(2, 101, 1, 4) == ["rt-employee:2", "person:1", "crm_persons:1", "employee:101", "account:4"]
    assert history_subjects(1, None, 3, None) == ["rt-employee:1", "person:3", "crm_persons:3"]


def test_referenced_ids_are_those_the_writes_name() -> None:
    rows = [
        audit(0, "apply", None, {"function_id": 5, "department_id": None}),
        audit(1, "link", None, {"function_id": 9}),
    ]
    assert referenced_ids(rows)["function_id"] == {5} and not referenced_ids(rows)["department_id"]


# --- ordering, filtering ----------------------------------------------------------------------------------


def entry(entry_id: str, minutes: int, kind: HistoryKind = HistoryKind.NMBRS_CHANGE, **fields: Any) -> HistoryEntry:
    values: dict[str, Any] = {"summary": entry_id, "subject": "employee:101"} | fields
    return HistoryEntry(entry_id=entry_id, at=at(minutes), kind=kind, **values)


def test_merge_orders_by_time_keeps_ties_in_the_order_given_and_each_id_once() -> None:
    merged = merge_history([entry("b", 1), entry("c", 1)], [entry("a", 0), entry("b", 5), entry("d", 1)])
    assert [e.entry_id for e in merged] == ["a", "b", "c", "d"]


def test_times_in_other_zones_are_ordered_by_the_instant() -> None:
    amsterdam = timezone(timedelta(hours=1))
    late = entry("late", 0).model_copy(update={"at": datetime(2026, 11, 28, 10, 30, tzinfo=amsterdam)})
    assert [e.entry_id for e in merge_history([late, entry("early", 20)])] == ["early", "late"]


def test_filter_keeps_the_kinds_asked_for_and_no_kinds_keeps_all() -> None:
    entries = [entry("a", 0), entry("b", 1, HistoryKind.DRIFT), entry("c", 2, HistoryKind.LEAVE)]
    assert [e.entry_id for e in filter_history(entries, ["drift", HistoryKind.LEAVE])] == ["b", "c"]
    assert filter_history(entries, []) == entries
    with pytest.raises(ValueError):
        filter_history(entries, ["verlof"])


# --- export and import ------------------------------------------------------------------------------------

AWKWARD: list[Any] = [
    None,
    "",
    "Berg, van der",
    'zei "ja"',
    "regel 1\nregel 2\r\nregel 3",
    "Çelik-Şahin é ü ß 🙂",
    '=HYPERLINK("http://x")',
    "+31 6 1234",
    "-8.00",
    "@SUM(A1)",
    "'quoted",
    "'=already",
    "\tindented",
    "17",
    "null",
    "true",
    '"in quotes"',
    "NaN",
    " 5 ",
    -8.0,
    -8,
    0,
    3.25,
    10**20,
    True,
    False,
    [1, "twee", None, {"drie": [3.0]}],
    {"card": {"last_name": "Berg", "gender": None}, "hours": "-8.00", "n": -1e-7},
    {},
    [],
]


def awkward_entries() -> list[HistoryEntry]:
    return [
        entry(
            f"audit:{i}:field",
            i,
            before=value,
            after=AWKWARD[-1 - i],
            field="last_name" if i % 2 else None,
            actor="=cmd|' /C calc'!A0" if i == 3 else "hr.anja",
            cause=CHANGE if i % 3 else None,
            reason=f"reden, met {value!r}\n" if i % 4 else None,
            summary=f"-{i} samenvatting ‘{value}’",
        )
        for i, value in enumerate(AWKWARD)
    ]


def test_csv_and_json_round_trip_awkward_values_exactly() -> None:
    entries = awkward_entries()
    for parsed in (parse_history_csv(history_csv(entries)), parse_history_json(history_json(entries))):
        assert parsed == entries
        # == takes 1 for True and 1.0 for 1: the JSON form tells the types apart.
        assert [e.model_dump_json() for e in parsed] == [e.model_dump_json() for e in entries]


def test_csv_cells_that_a_spreadsheet_would_run_as_a_formula_start_with_an_apostrophe() -> None:
    rows = list(csv.reader(io.StringIO(history_csv(awkward_entries()), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    cells = [cell for row in rows[1:] for cell in row]
    assert all(not cell.startswith(("=", "+", "@", "\t", "\r")) for cell in cells)
    assert all(re.fullmatch(r"-\d+(\.\d+)?", cell) for cell in cells if cell.startswith("-"))
    assert '\'=HYPERLINK("http://x")' in cells and "''=already" in cells
    # A plain negative number stays a number for the spreadsheet; the text "-8.00" is quoted JSON.
    assert "-8.0" in cells and '"-8.00"' in cells
    # Texts people read stay plain; only a text that would read as another value is written as JSON.
    assert "Berg, van der" in cells and '"17"' in cells and '""' in cells


def test_the_csv_reader_takes_a_byte_order_mark_and_refuses_other_files() -> None:
    entries = awkward_entries()[:3]
    assert parse_history_csv("\ufeff" + history_csv(entries)) == entries
    with pytest.raises(ValueError, match="header"):
        parse_history_csv("naam,waarde\r\nx,y\r\n")
    with pytest.raises(ValueError, match="cells"):
        parse_history_csv(",".join(CSV_COLUMNS) + "\r\nx\r\n")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",)), max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
texts = st.text(st.characters(exclude_categories=("Cs",)))


@given(
    before=json_values,
    after=json_values,
    field=st.none() | texts,
    actor=st.none() | texts,
    summary=texts,
    reason=st.none() | texts,
    at_=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])),
    kind=st.sampled_from(HistoryKind),
    cause=st.none() | st.uuids(),
    entry_id=texts.filter(bool),
)
def test_any_entry_survives_both_exports(
    before: Any,
    after: Any,
    field: str | None,
    actor: str | None,
    summary: str,
    reason: str | None,
    at_: datetime,
    kind: HistoryKind,
    cause: uuid.UUID | None,
    entry_id: str,
) -> None:
    original = [
        HistoryEntry(
            entry_id=entry_id,
            at=at_,
            kind=kind,
            subject=summary,
            field=field,
            before=before,
            after=after,
            actor=actor,
            cause=cause,
            summary=summary,
            reason=reason,
        )
    ]
    for parsed in (parse_history_csv(history_csv(original)), parse_history_json(history_json(original))):
        assert [e.model_dump_json() for e in parsed] == [e.model_dump_json() for e in original]
