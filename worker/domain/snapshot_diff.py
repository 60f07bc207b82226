"""Change detection: compare what Nmbrs returns now with the last snapshot and plan the change events.

Rules that keep it honest:
- only records whose fingerprint changed produce an event; a full reconciliation adds snapshot reads (r);
- a record is removed (d) only when the fetch that owned it succeeded and it appears nowhere else;
- every version handed to the broker is recorded before it is sent (`PublishedAhead`), so a poll after a cut-off
  one numbers its changes above anything that may have gone out: a value that went A -> B -> A over cut-off
  polls is a new event the third time, never a repeat of the first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from worker.domain.changes import (
    EVENT_CLASS,
    ChangeEvent,
    ChangeSource,
    Entity,
    Op,
    ReferenceRecord,
    event_id_for,
    record_key,
)
from worker.domain.nmbrs_records import CompanySnapshot, NmbrsCompany, NmbrsEmployee, Record


class SnapshotEntry(BaseModel):
    """The last state of one record we published. Removed records stay as tombstones to keep versions."""

    model_config = ConfigDict(frozen=True)

    entity: Entity
    key: str
    company_id: int | None
    fingerprint: str
    version: int
    deleted: bool = False
    # None: not read. A no-change poll needs the fingerprints only; the store reads the record of a row a plan
    # needs it of (see records_to_read).
    record: dict[str, Any] | None

    def stored_record(self) -> dict[str, Any]:
        if self.record is None:
            raise ValueError(f"{self.key}: its stored record was needed and not read")
        return self.record


class PublishedAhead(BaseModel):
    """The last event of a record handed to the broker by a poll that has not stored its snapshot (a poll cut
    off while publishing): it may have gone out, so the next publication of that record must come after it.
    `entry` is the snapshot entry that poll would have stored."""

    model_config = ConfigDict(frozen=True)

    op: Op
    entry: SnapshotEntry


@dataclass(frozen=True)
class PlannedChange:
    """An event to publish and the snapshot entry to store once the broker acknowledged it."""

    event: ChangeEvent[Any]
    snapshot: SnapshotEntry


def fingerprint(record: Record) -> str:
    """Stable hash of a record's content: equal data, equal fingerprint, whatever the field order."""
    data = record.model_dump(mode="json")
    for name, default in record.fingerprint_optional.items():
        if data.get(name) == default:
            del data[name]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name)))


def diff(
    entity: Entity,
    previous: Mapping[str, SnapshotEntry],
    current: Mapping[str, tuple[Record, int | None]],
    source: ChangeSource,
    removable: Callable[[SnapshotEntry], bool],
    now: AwareDatetime,
    ahead: Mapping[str, PublishedAhead] | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> list[PlannedChange]:
    """Plan the events for one entity type.

    `current` maps key -> (record, owning company id). `removable(entry)` says whether a record missing
    from `current` may be removed: only when the fetch that owned it came back complete. `ahead`: the last
    event of each record that a poll cut off since the snapshot may have published (see PublishedAhead).
    `fingerprints`: those of `current`, when computed already.
    """
    event_class = EVENT_CLASS[entity]
    planned: list[PlannedChange] = []
    ahead = ahead or {}

    def next_version(key: str, op: Op, print_: str) -> int:
        """Above every version the record may carry downstream; the version of the last event sent only when
        that was this very change (it then gets the same id, and a consumer that saw it ignores it)."""
        old, sent = previous.get(key), ahead.get(key)
        if sent is not None and sent.op is op and sent.entry.fingerprint == print_:
            return sent.entry.version
        return max(old.version if old else 0, sent.entry.version if sent else 0) + 1

    def plan(
        op: Op,
        key: str,
        version: int,
        company_id: int | None,
        before: dict[str, Any] | None,
        after: Record | None,
        fields: tuple[str, ...],
        print_: str,
        deleted: bool = False,
    ) -> None:
        event = event_class(
            event_id=event_id_for(key, version, op, source.poll_id, print_),
            entity=entity,
            key=key,
            op=op,
            version=version,
            before=before,
            after=after,
            changed_fields=fields,
            source=source.model_copy(update={"company_id": company_id}),
            ts=now,
        )
        snapshot = SnapshotEntry(
            entity=entity,
            key=key,
            company_id=company_id,
            fingerprint=print_,
            version=version,
            deleted=deleted,
            record=after.model_dump(mode="json") if after is not None else (before or {}),
        )
        planned.append(PlannedChange(event=event, snapshot=snapshot))

    for key in sorted(current):
        record, company_id = current[key]
        print_ = fingerprints[key] if fingerprints is not None else fingerprint(record)
        old, sent = previous.get(key), ahead.get(key)
        if old is None or old.deleted:
            version = next_version(key, Op.CREATE, print_)
            plan(Op.CREATE, key, version, company_id, None, record, tuple(sorted(type(record).model_fields)), print_)
        elif old.fingerprint != print_:
            before = old.stored_record()
            fields = changed_fields(before, record.model_dump(mode="json"))
            version = next_version(key, Op.UPDATE, print_)
            plan(Op.UPDATE, key, version, company_id, before, record, fields or ("record",), print_)
        elif source.full or (sent is not None and sent.entry.fingerprint != print_):
            # What a cut-off poll sent may differ from Nmbrs now (a change that went out and was undone since):
            # the read puts the record back, at a version above what went out, or it would be ignored there as
            # stale. A plain nightly read carries the snapshot's version.
            repairs = source.repair or sent is not None
            version = max(old.version, sent.entry.version if sent else 0) + 1 if repairs else old.version
            plan(Op.READ, key, version, company_id, None, record, (), print_)
    for key in sorted((previous.keys() | ahead.keys()) - current.keys()):
        old, sent = previous.get(key), ahead.get(key)
        # Also a record that only a cut-off poll announced, or removed: what it sent may or may not have gone out,
        # so its removal is sent (again: the same removal keeps its id).
        known = old if old is not None and not old.deleted else sent.entry if sent is not None else None
        if known is not None and removable(known):
            plan(
                Op.DELETE,
                key,
                next_version(key, Op.DELETE, known.fingerprint),
                known.company_id,
                known.stored_record(),
                None,
                (),
                known.fingerprint,
                deleted=True,
            )
    return planned


def reference_records(
    employees: Iterable[NmbrsEmployee], labour_agreements: Iterable[Any] = ()
) -> dict[str, ReferenceRecord]:
    """Departments, functions and CAOs as far as the fetched employees and companies use them (the last one seen of
    each: a record is built once per id, not once per employee)."""
    used: dict[tuple[Entity, int], Any] = {}
    for employee in employees:
        if employee.department:
            used[Entity.DEPARTMENT, employee.department.id] = employee.department
        if employee.function:
            used[Entity.FUNCTION, employee.function.id] = employee.function
        if employee.labour_agreement:
            used[Entity.LABOUR_AGREEMENT, employee.labour_agreement.id] = employee.labour_agreement
    for agreement in labour_agreements:
        used[Entity.LABOUR_AGREEMENT, agreement.id] = agreement
    return {
        record_key(entity, ref_id): _cao(ref.id, ref.number, ref.description)
        if entity is Entity.LABOUR_AGREEMENT
        else ReferenceRecord(kind=entity.value, **ref.model_dump())
        for (entity, ref_id), ref in used.items()
    }


def _cao(cao_id: int, number: str | None, description: str) -> ReferenceRecord:
    return ReferenceRecord(kind="labour_agreement", id=cao_id, code=number, description=description)


@dataclass(frozen=True)
class StoredRows:
    """What the store holds for some records: their snapshot entries and what cut-off polls published ahead."""

    snapshot: Mapping[str, SnapshotEntry]
    ahead: Mapping[str, PublishedAhead]

    def with_records(self, records: Mapping[str, dict[str, Any]]) -> StoredRows:
        """These rows with the stored records read since (see records_to_read)."""
        snapshot = dict(self.snapshot)
        for key, record in records.items():
            snapshot[key] = snapshot[key].model_copy(update={"record": record})
        return StoredRows(snapshot=snapshot, ahead=self.ahead)


def employee_fingerprints(snapshot: CompanySnapshot) -> dict[str, str]:
    return {record_key(Entity.EMPLOYEE, e.employee_id): fingerprint(e) for e in snapshot.employees}


def records_to_read(stored: StoredRows, fingerprints: Mapping[str, str]) -> list[str]:
    """The rows whose stored record planning the records of `fingerprints` needs and the store did not read: the
    `before` of each update."""
    return [
        key
        for key, print_ in fingerprints.items()
        if (entry := stored.snapshot.get(key)) is not None
        and not entry.deleted
        and entry.fingerprint != print_
        and entry.record is None
    ]


@dataclass(frozen=True)
class CompanyPlan:
    """One company's part of a poll: the changes of the employees it lists now, and what the poll as a whole needs
    to know of it. Removals wait for the whole poll (an employee missing here may be listed by another company)."""

    planned: list[PlannedChange]
    fetched: int
    missing: frozenset[str]  # employees stored under this company that it no longer lists
    arrived: frozenset[str]  # employees it lists that were stored under another company
    references: dict[str, ReferenceRecord]


def plan_company(
    source: ChangeSource,
    snapshot: CompanySnapshot,
    stored: StoredRows,
    now: datetime,
    fingerprints: Mapping[str, str] | None = None,
) -> CompanyPlan:
    """The creates, updates and reads of one fetched company. `stored` holds the rows stored under this company
    and those of every employee it lists now (a move from another company is an update, not a create), with the
    records of those records_to_read names. `fingerprints`: employee_fingerprints(snapshot), when computed."""
    company_id = snapshot.company.company_id
    current: dict[str, tuple[Record, int | None]] = {
        record_key(Entity.EMPLOYEE, e.employee_id): (e, company_id) for e in snapshot.employees
    }
    planned = diff(
        Entity.EMPLOYEE, stored.snapshot, current, source, _constantly(False), now, stored.ahead, fingerprints
    )
    # What a cut-off poll announced under this company counts as its own too: its removal may have to be repeated.
    own = {key for key, entry in stored.snapshot.items() if entry.company_id == company_id and not entry.deleted}
    own |= {key for key, sent in stored.ahead.items() if sent.entry.company_id == company_id}
    elsewhere = {key for key, entry in stored.snapshot.items() if entry.company_id != company_id}
    elsewhere |= {key for key, sent in stored.ahead.items() if sent.entry.company_id != company_id}
    return CompanyPlan(
        planned=planned,
        fetched=len(current),
        missing=frozenset(own - current.keys()),
        arrived=frozenset(elsewhere & current.keys()),
        references=reference_records(snapshot.employees, snapshot.labour_agreements),
    )


def plan_shared(
    source: ChangeSource,
    stored: StoredRows,
    companies: list[NmbrsCompany],
    references: Mapping[str, ReferenceRecord],
    all_fetched: bool,
    now: datetime,
) -> list[PlannedChange]:
    """The changes of the companies and the reference data every fetched company uses (`stored`: their rows).
    `all_fetched`: every listed company came back complete."""
    current: dict[Entity, dict[str, tuple[Record, int | None]]] = {entity: {} for entity in Entity}
    for company in companies:
        current[Entity.COMPANY][record_key(Entity.COMPANY, company.company_id)] = (company, company.company_id)
    for key, reference in references.items():
        current[Entity(reference.kind)][key] = (reference, None)
    planned: list[PlannedChange] = []
    for entity in (Entity.COMPANY, Entity.DEPARTMENT, Entity.FUNCTION, Entity.LABOUR_AGREEMENT):
        # The company list itself came back, so a company missing from it is really gone; reference data is
        # shared between companies: unused only if every company was seen.
        removable = entity is Entity.COMPANY or all_fetched
        previous = {key: entry for key, entry in stored.snapshot.items() if entry.entity is entity}
        ahead = {key: sent for key, sent in stored.ahead.items() if sent.entry.entity is entity}
        planned += diff(entity, previous, current[entity], source, _constantly(removable), now, ahead)
    return planned


def plan_removals(source: ChangeSource, stored: StoredRows, now: datetime) -> list[PlannedChange]:
    """The removal of every employee in `stored`: employees no fetched company lists any more (see PollTally),
    removed only when every company was fetched, as an employee may have moved into a company that failed."""
    return diff(Entity.EMPLOYEE, stored.snapshot, {}, source, _constantly(True), now, stored.ahead)


def _constantly(answer: bool) -> Callable[[SnapshotEntry], bool]:
    return lambda entry: answer


def plan_one_employee(
    source: ChangeSource,
    snapshot: CompanySnapshot,
    employee_id: int,
    stored: StoredRows,
    shared: StoredRows,
    now: datetime,
) -> list[PlannedChange] | None:
    """The changes of one employee re-read with its company's bulk calls ("sync this employee now"), planned as a
    poll plans them: an update when it changed, a snapshot read otherwise (when `source.full`), and the reference
    data it uses. `stored`: the employee's rows, with their records; `shared`: the stored company and reference rows.

    None: the company no longer lists it. Whether it moved to another company or left is for a poll that reads
    every company to say; one company's answer never removes anyone."""
    listed = tuple(e for e in snapshot.employees if e.employee_id == employee_id)
    if not listed:
        return None
    one = snapshot.model_copy(update={"employees": listed})
    planned = plan_company(source, one, stored, now).planned

    # The company rows stay out: plan_shared would remove every company not passed, and the company list is the
    # whole poll's to read. Reference data is never removable here (all_fetched False).
    def is_reference(entry: SnapshotEntry) -> bool:
        return entry.entity not in (Entity.COMPANY, Entity.EMPLOYEE)

    references = StoredRows(
        snapshot={key: entry for key, entry in shared.snapshot.items() if is_reference(entry)},
        ahead={key: sent for key, sent in shared.ahead.items() if is_reference(sent.entry)},
    )
    return planned + plan_shared(source, references, [], reference_records(listed), False, now)
