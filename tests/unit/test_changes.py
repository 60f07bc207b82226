"""Change detection and the mass-change breaker, without I/O."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.builders import department_change, employee_change, nmbrs_employee
from worker.domain.breaker import BreakerPolicy, evaluate_breaker
from worker.domain.changes import ChangeSource, EmployeeChanged, Entity, Op, parse_change_event, record_key
from worker.domain.naamstelling import NameUsage
from worker.domain.nmbrs_records import CodeRef, ContractPeriod, EmploymentPeriod, NmbrsCompany, NmbrsEmployee
from worker.domain.snapshot_diff import PublishedAhead, SnapshotEntry, diff, fingerprint, reference_records

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def employee(employee_id: int = 1, company_id: int = 10, **changes: object) -> NmbrsEmployee:
    base: dict[str, object] = {
        "employee_id": employee_id,
        "company_id": company_id,
        "first_name": "Anna",
        "prefix": "van der",
        "last_name": "Berg",
        "function": CodeRef(id=5, code="DEV", description="Ontwikkelaar"),
        "department": CodeRef(id=7, code="IT", description="ICT"),
        "employments": (EmploymentPeriod(employment_id=1, start=date(2020, 1, 1)),),
        "contracts": (ContractPeriod(contract_id=1, start=date(2020, 1, 1), hours_per_week=Decimal("32")),),
    }
    base.update(changes)
    return NmbrsEmployee.model_validate(base)


def source(full: bool = False) -> ChangeSource:
    return ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW, full=full)


def current(*employees: NmbrsEmployee) -> dict[str, tuple[NmbrsEmployee, int | None]]:
    return {record_key(Entity.EMPLOYEE, e.employee_id): (e, e.company_id) for e in employees}


def snapshot_of(*employees: NmbrsEmployee, version: int = 1) -> dict[str, SnapshotEntry]:
    return {
        record_key(Entity.EMPLOYEE, e.employee_id): SnapshotEntry(
            entity=Entity.EMPLOYEE,
            key=record_key(Entity.EMPLOYEE, e.employee_id),
            company_id=e.company_id,
            fingerprint=fingerprint(e),
            version=version,
            record=e.model_dump(mode="json"),
        )
        for e in employees
    }


def always(_entry: SnapshotEntry) -> bool:
    return True


def test_first_poll_plans_a_create_per_record() -> None:
    planned = diff(Entity.EMPLOYEE, {}, current(employee(1), employee(2)), source(), always, NOW)
    assert [(p.event.key, p.event.op, p.event.version) for p in planned] == [
        ("employee:1", Op.CREATE, 1),
        ("employee:2", Op.CREATE, 1),
    ]
    assert isinstance(planned[0].event, EmployeeChanged) and planned[0].event.before is None


def test_unchanged_records_plan_nothing() -> None:
    records = (employee(1), employee(2))
    assert diff(Entity.EMPLOYEE, snapshot_of(*records), current(*records), source(), always, NOW) == []


def test_an_edit_plans_one_update_naming_exactly_the_changed_fields() -> None:
    old = employee(1)
    new = employee(1, function=CodeRef(id=6, code="LEAD", description="Teamleider"), email_work="a@x.nl")
    (change,) = diff(Entity.EMPLOYEE, snapshot_of(old), current(new), source(), always, NOW)
    assert change.event.op is Op.UPDATE
    assert change.event.changed_fields == ("email_work", "function")
    assert change.event.before == old and change.event.after == new
    assert change.event.version == 2 and change.snapshot.version == 2


def test_a_missing_record_is_removed_only_when_its_fetch_was_complete() -> None:
    previous = snapshot_of(employee(1, company_id=10), employee(2, company_id=20))
    planned = diff(Entity.EMPLOYEE, previous, {}, source(), lambda entry: entry.company_id == 10, NOW)
    assert [(p.event.key, p.event.op) for p in planned] == [("employee:1", Op.DELETE)]
    assert planned[0].snapshot.deleted


def test_an_employee_moving_company_is_an_update_of_company_id_not_a_removal() -> None:
    planned = diff(
        Entity.EMPLOYEE,
        snapshot_of(employee(1, company_id=10)),
        current(employee(1, company_id=20)),
        source(),
        always,
        NOW,
    )
    assert [(p.event.op, p.event.changed_fields) for p in planned] == [(Op.UPDATE, ("company_id",))]


def test_full_reconciliation_reads_unchanged_records_with_a_fresh_event_id_each_time() -> None:
    record = employee(1)
    first = diff(Entity.EMPLOYEE, snapshot_of(record), current(record), source(full=True), always, NOW)
    second = diff(Entity.EMPLOYEE, snapshot_of(record), current(record), source(full=True), always, NOW)
    assert [p.event.op for p in first] == [Op.READ]
    assert first[0].event.version == 1 and first[0].event.after == record
    assert first[0].event.event_id != second[0].event.event_id


def test_a_repair_reconciliation_reads_above_any_version_a_cut_off_poll_may_have_published() -> None:
    unchanged, edited = employee(1), employee(2)
    repair = ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW, full=True, repair=True)
    planned = diff(
        Entity.EMPLOYEE,
        snapshot_of(unchanged, edited),
        current(unchanged, employee(2, last_name="X")),
        repair,
        always,
        NOW,
    )
    assert [(p.event.op, p.event.version, p.snapshot.version) for p in planned] == [
        (Op.READ, 2, 2),
        (Op.UPDATE, 2, 2),
    ]


def test_repeating_a_poll_after_a_crash_gives_the_same_event_ids() -> None:
    old, new = employee(1), employee(1, last_name="Bergh")
    first = diff(Entity.EMPLOYEE, snapshot_of(old), current(new), source(), always, NOW)
    again = diff(Entity.EMPLOYEE, snapshot_of(old), current(new), source(), always, NOW)
    assert first[0].event.event_id == again[0].event.event_id


def test_a_rehire_after_removal_gets_a_new_version_and_event_id() -> None:
    record = employee(1)
    removed = diff(Entity.EMPLOYEE, snapshot_of(record), {}, source(), always, NOW)[0]
    tombstones = {removed.snapshot.key: removed.snapshot}
    (back,) = diff(Entity.EMPLOYEE, tombstones, current(record), source(), always, NOW)
    assert back.event.op is Op.CREATE and back.event.version == 3
    assert back.event.event_id != removed.event.event_id


def test_fingerprint_ignores_nothing_but_field_order() -> None:
    assert fingerprint(employee(1)) == fingerprint(NmbrsEmployee.model_validate(employee(1).model_dump()))
    assert fingerprint(employee(1)) != fingerprint(employee(1, nickname="Annie"))


@pytest.mark.parametrize(
    ("op", "before", "after", "fields"),
    [
        ("c", employee(1), employee(1), ()),
        ("d", None, None, ()),
        ("u", employee(1), employee(1), ()),
        ("r", None, None, ()),
    ],
)
def test_event_shape_is_enforced_per_op(op: str, before: object, after: object, fields: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError):
        EmployeeChanged(
            event_id=uuid.uuid4(),
            entity=Entity.EMPLOYEE,
            key="employee:1",
            op=Op(op),
            version=1,
            before=before,
            after=after,
            changed_fields=fields,
            source=source(),
            ts=NOW,
        )


def test_reference_records_collect_departments_functions_and_caos_in_use() -> None:
    found = reference_records([employee(1), employee(2, department=CodeRef(id=8, code="HR", description="P&O"))])
    assert sorted(found) == ["department:7", "department:8", "function:5"]
    assert found["department:8"].description == "P&O"


# --- breaker ---------------------------------------------------------------------------------------


def leaver_changes(count: int) -> list[EmployeeChanged]:
    events = []
    for i in range(count):
        ended = employee(
            i,
            employments=(EmploymentPeriod(employment_id=1, start=date(2020, 1, 1), end=date(2026, 12, 31)),),
        )
        (planned,) = diff(Entity.EMPLOYEE, snapshot_of(employee(i)), current(ended), source(), always, NOW)
        assert isinstance(planned.event, EmployeeChanged)
        events.append(planned.event)
    return events


def test_breaker_holds_a_poll_that_ends_more_than_the_allowed_share() -> None:
    verdict = evaluate_breaker(100, 100, leaver_changes(11), BreakerPolicy(max_share=0.10))
    assert verdict.tripped
    assert verdict.reasons == ("11 of 100 employees removed or ended (more than 10%)",)
    assert verdict.counts["ended"] == 11


def test_breaker_lets_normal_turnover_through() -> None:
    assert not evaluate_breaker(100, 100, leaver_changes(10), BreakerPolicy(max_share=0.10)).tripped


def test_breaker_ignores_small_absolute_numbers_in_small_companies() -> None:
    assert not evaluate_breaker(10, 10, leaver_changes(3), BreakerPolicy(max_share=0.10, min_count=5)).tripped


def test_breaker_holds_when_the_fetched_head_count_drops_sharply() -> None:
    verdict = evaluate_breaker(1000, 700, [], BreakerPolicy())
    assert verdict.tripped
    assert verdict.reasons == ("300 of 1000 employees fewer fetched than last time (more than 10%)",)


def test_breaker_holds_mass_company_moves() -> None:
    moves = [
        diff(
            Entity.EMPLOYEE,
            snapshot_of(employee(i, company_id=10)),
            current(employee(i, company_id=20)),
            source(),
            always,
            NOW,
        )[0].event
        for i in range(20)
    ]
    verdict = evaluate_breaker(100, 100, moves, BreakerPolicy())
    assert verdict.tripped and verdict.counts["moved"] == 20


def removals(*employees: NmbrsEmployee) -> list[EmployeeChanged]:
    planned = diff(Entity.EMPLOYEE, snapshot_of(*employees), {}, source(), always, NOW)
    return [p.event for p in planned if isinstance(p.event, EmployeeChanged)]


def test_breaker_holds_a_poll_that_removes_every_employee_of_a_small_company() -> None:
    # 3 of 203 is far below the share and the minimum count: only the per-company rule sees it.
    gone = removals(*(employee(i, company_id=10) for i in range(3)))
    verdict = evaluate_breaker(203, 200, gone, BreakerPolicy(), {10: 3, 20: 200})
    assert verdict.tripped and verdict.reasons == ("all 3 employees of company 10 removed",)
    assert verdict.counts["companies_emptied"] == 1


def test_breaker_lets_a_company_keep_some_of_its_employees() -> None:
    gone = removals(*(employee(i, company_id=10) for i in range(2)))
    assert not evaluate_breaker(203, 201, gone, BreakerPolicy(), {10: 3, 20: 200}).tripped


def test_breaker_holds_a_poll_that_removes_a_company() -> None:
    company = NmbrsCompany(company_id=10, name="Bakkerij De Zon B.V.")
    known = {
        record_key(Entity.COMPANY, 10): SnapshotEntry(
            entity=Entity.COMPANY,
            key=record_key(Entity.COMPANY, 10),
            company_id=10,
            fingerprint=fingerprint(company),
            version=1,
            record=company.model_dump(mode="json"),
        )
    }
    gone = [p.event for p in diff(Entity.COMPANY, known, {}, source(), always, NOW)]
    verdict = evaluate_breaker(0, 0, gone, BreakerPolicy())
    assert verdict.tripped and verdict.reasons == ("company 10 is no longer listed by Nmbrs",)


def test_a_different_change_seen_after_a_crash_gets_a_new_event_id() -> None:
    # The snapshot did not advance (crash after publish): the repeated poll sees another edit, or a removal,
    # at the same version. Neither may be mistaken downstream for the change already handled.
    old = employee(1)
    first = diff(Entity.EMPLOYEE, snapshot_of(old), current(employee(1, last_name="Bergh")), source(), always, NOW)
    other = diff(Entity.EMPLOYEE, snapshot_of(old), current(employee(1, last_name="Berk")), source(), always, NOW)
    removal = diff(Entity.EMPLOYEE, snapshot_of(old), {}, source(), always, NOW)
    ids = {first[0].event.event_id, other[0].event.event_id, removal[0].event.event_id}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"key": "employee:999"}, "does not name the record"),
        ({"entity": "company", "key": "company:101"}, "does not belong in a EmployeeChanged"),
    ],
)
def test_an_event_whose_key_or_entity_misfits_its_record_is_malformed(change: dict[str, str], problem: str) -> None:
    # The key picks the record that is locked and written: a mismatch would put the data on another employee.
    data = employee_change(nmbrs_employee(101)).model_dump(mode="json") | change
    with pytest.raises(ValidationError, match=problem):
        parse_change_event(json.dumps(data).encode())


def test_a_reference_event_carries_a_record_of_its_own_kind() -> None:
    data = department_change(Op.CREATE).model_dump(mode="json")
    data |= {"entity": "function", "key": "function:7"}
    with pytest.raises(ValidationError, match="a department record in a function event"):
        parse_change_event(json.dumps(data).encode())


# --- polls cut off while publishing (the write-ahead of versions) ------------------------------------------


class Downstream:
    """A consumer as the reconciler is one: an inbox of event ids and the stale guard on versions."""

    def __init__(self) -> None:
        self.seen: set[uuid.UUID] = set()
        self.version = 0
        self.value: NmbrsEmployee | None = None

    def receive(self, event: EmployeeChanged) -> None:
        if event.event_id in self.seen or event.version < self.version:
            return
        self.seen.add(event.event_id)
        self.version, self.value = event.version, event.after


class PollerModel:
    """The poller's bookkeeping as PollStore keeps it: the snapshot advances only after a complete publish;
    what a poll is about to send is written ahead first."""

    def __init__(self) -> None:
        self.snapshot: dict[str, SnapshotEntry] = {}
        self.ahead: dict[str, PublishedAhead] = {}
        self.interrupted = False

    def poll(self, nmbrs: NmbrsEmployee | None, downstream: Downstream, cut: bool, delivered: bool) -> None:
        repair = self.interrupted
        src = ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW, full=repair, repair=repair)
        planned = diff(Entity.EMPLOYEE, self.snapshot, current(nmbrs) if nmbrs else {}, src, always, NOW, self.ahead)
        self.ahead |= {p.snapshot.key: PublishedAhead(op=p.event.op, entry=p.snapshot) for p in planned}
        if cut:
            self.interrupted = True
            if delivered:
                for p in planned:
                    downstream.receive(p.event)
            return
        for p in planned:
            downstream.receive(p.event)
        for key, sent in self.ahead.items():
            if key not in self.snapshot or sent.entry.version > self.snapshot[key].version:
                self.snapshot[key] = sent.entry
        self.snapshot |= {p.snapshot.key: p.snapshot for p in planned}
        self.ahead, self.interrupted = {}, False


def hours(value: int) -> NmbrsEmployee:
    return employee(
        1, contracts=(ContractPeriod(contract_id=1, start=date(2020, 1, 1), hours_per_week=Decimal(value)),)
    )


def test_a_value_that_goes_back_over_cut_off_polls_is_published_anew_and_converges() -> None:
    # The failure seen from outside: A -> B -> A with every poll cut off (the snapshot stays put). The second A
    # got the id of the first, the consumer dropped it as a repeat and stayed on B.
    model, downstream = PollerModel(), Downstream()
    model.poll(hours(24), downstream, cut=False, delivered=True)
    for value in (40, 32, 40):
        model.poll(hours(value), downstream, cut=True, delivered=True)
        assert downstream.value == hours(value)
    model.poll(hours(40), downstream, cut=False, delivered=True)
    assert downstream.value == hours(40)


def test_the_same_change_sent_again_after_a_cut_off_poll_keeps_its_id() -> None:
    model, downstream = PollerModel(), Downstream()
    model.poll(hours(40), downstream, cut=False, delivered=True)
    model.poll(hours(32), downstream, cut=True, delivered=True)
    (sent,) = model.ahead.values()
    src = ChangeSource(poll_id=uuid.uuid4(), fetched_at=NOW)
    (again,) = diff(Entity.EMPLOYEE, model.snapshot, current(hours(32)), src, always, NOW, model.ahead)
    assert (again.event.version, again.event.event_id) == (sent.entry.version, again.event.event_id)
    assert again.event.event_id in downstream.seen


def test_a_record_only_a_cut_off_poll_announced_is_removed_when_it_is_gone_again() -> None:
    model, downstream = PollerModel(), Downstream()
    model.poll(hours(40), downstream, cut=True, delivered=True)
    assert downstream.value == hours(40) and not model.snapshot
    model.poll(None, downstream, cut=False, delivered=True)
    assert downstream.value is None and model.snapshot["employee:1"].deleted


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([None, 24, 32, 40]), st.booleans(), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_no_sequence_of_cut_off_polls_leaves_the_consumer_on_a_wrong_value(
    polls: list[tuple[int | None, bool, bool]],
) -> None:
    model, downstream = PollerModel(), Downstream()
    for value, cut, delivered in polls:
        model.poll(hours(value) if value else None, downstream, cut, delivered)
    final = polls[-1][0]
    model.poll(hours(final) if final else None, downstream, cut=False, delivered=True)  # the next ordinary poll
    assert downstream.value == (hours(final) if final else None)
    assert not model.ahead


def test_fields_added_later_hash_as_their_absence_while_at_their_default() -> None:
    # A snapshot stored before the naamstelling fields existed must not look changed after the upgrade.
    plain = employee(1)
    stored_before = {k: v for k, v in plain.model_dump(mode="json").items() if k not in plain.fingerprint_optional}
    canonical = json.dumps(stored_before, sort_keys=True, separators=(",", ":"))
    assert fingerprint(plain) == hashlib.sha256(canonical.encode()).hexdigest()
    married = employee(1, partner_last_name="Groot", partner_prefix="de", name_usage=NameUsage.PARTNER_THEN_OWN)
    assert fingerprint(married) != fingerprint(plain)
    assert fingerprint(employee(1, name_usage=NameUsage.PARTNER)) != fingerprint(plain)
