"""Change detection: compare what Nmbrs returns now with the last snapshot and plan Debezium-style events.

Nmbrs has no change feed, so this is ours. Rules that keep it honest:
- only records whose fingerprint changed produce an event; a full reconciliation adds snapshot reads (r);
- a record is removed (d) only when the fetch that owned it succeeded and it appears nowhere else;
- every version handed to the broker is recorded before it is sent (`PublishedAhead`), so a poll after a cut-off
  one numbers its changes above anything that may have gone out: a value that went A -> B -> A over cut-off
  polls is a new event the third time, never a repeat of the first;
- an event id is derived from the record key, its version and its content, so re-running a poll after a crash
  with the very change that went out last produces the same id, and consumers deduplicate it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from worker.domain.events import Message
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee, Record

EVENT_NAMESPACE = uuid.UUID("2b8f9a52-1f0e-4c1e-8e47-6f7d0c5b9a31")


class Entity(StrEnum):
    EMPLOYEE = "employee"
    COMPANY = "company"
    DEPARTMENT = "department"
    FUNCTION = "function"
    LABOUR_AGREEMENT = "labour_agreement"


class Op(StrEnum):
    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"


class ReferenceRecord(Record):
    """A department, function or labour agreement (CAO) as seen in Nmbrs."""

    kind: Literal["department", "function", "labour_agreement"]
    id: int
    code: str | None = None
    description: str


class ChangeSource(BaseModel):
    """Where and when the change was seen."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    poll_id: uuid.UUID
    company_id: int | None = Field(None, description="The company whose fetch produced the record.")
    fetched_at: AwareDatetime
    full: bool = Field(False, description="Part of a full reconciliation.")
    repair: bool = Field(
        False,
        description="Part of the full reconciliation after a poll was cut off while publishing: its reads carry a "
        "new version, above any the cut-off poll may have published.",
    )


R = TypeVar("R", bound=Record)


class ChangeEvent(Message, Generic[R]):
    """Debezium-style change event. Key: `key` (e.g. 'employee:123'), so one record's events stay in order."""

    event_id: uuid.UUID = Field(description="uuid5 of key and version; stable when a poll is repeated.")
    entity: Entity
    key: str
    op: Op
    version: int = Field(ge=1, description="Snapshot version of the record after this change.")
    before: R | None = None
    after: R | None = None
    changed_fields: tuple[str, ...] = ()
    source: ChangeSource
    ts: AwareDatetime

    @model_validator(mode="after")
    def _shape_matches_op(self) -> ChangeEvent[R]:
        if self.op is Op.CREATE and (self.before is not None or self.after is None):
            raise ValueError("op 'c' has an 'after' and no 'before'")
        if self.op is Op.DELETE and (self.before is None or self.after is not None):
            raise ValueError("op 'd' has a 'before' and no 'after'")
        if self.op is Op.UPDATE and (self.before is None or self.after is None or not self.changed_fields):
            raise ValueError("op 'u' has 'before', 'after' and at least one changed field")
        if self.op is Op.READ and self.after is None:
            raise ValueError("op 'r' has an 'after'")
        return self

    @model_validator(mode="after")
    def _key_matches_record(self) -> ChangeEvent[R]:
        # The key picks the record that is locked and written: one naming another record than the data it
        # carries would put that data on the wrong employee.
        if not isinstance(self, EVENT_CLASS[self.entity]):
            raise ValueError(f"entity '{self.entity.value}' does not belong in a {type(self).__name__} event")
        for record in (self.before, self.after):
            if record is not None and record_key(self.entity, _record_id(record)) != self.key:
                raise ValueError(f"key '{self.key}' does not name the record it carries")
            if isinstance(record, ReferenceRecord) and record.kind != self.entity.value:
                raise ValueError(f"a {record.kind} record in a {self.entity.value} event")
        return self


def _record_id(record: Record) -> int:
    if isinstance(record, NmbrsEmployee):
        return record.employee_id
    if isinstance(record, NmbrsCompany):
        return record.company_id
    assert isinstance(record, ReferenceRecord)
    return record.id


class EmployeeChanged(ChangeEvent[NmbrsEmployee]):
    event_type: Literal["employee_changed"] = "employee_changed"


class CompanyChanged(ChangeEvent[NmbrsCompany]):
    event_type: Literal["company_changed"] = "company_changed"


class ReferenceChanged(ChangeEvent[ReferenceRecord]):
    event_type: Literal["reference_changed"] = "reference_changed"


EVENT_CLASS: dict[Entity, type[ChangeEvent[Any]]] = {
    Entity.EMPLOYEE: EmployeeChanged,
    Entity.COMPANY: CompanyChanged,
    Entity.DEPARTMENT: ReferenceChanged,
    Entity.FUNCTION: ReferenceChanged,
    Entity.LABOUR_AGREEMENT: ReferenceChanged,
}


_ANY_CHANGE: TypeAdapter[EmployeeChanged | CompanyChanged | ReferenceChanged] = TypeAdapter(
    Annotated[EmployeeChanged | CompanyChanged | ReferenceChanged, Field(discriminator="event_type")]
)


def parse_change_event(data: bytes) -> ChangeEvent[Any]:
    """Any change event, told apart by its `event_type` (raises pydantic.ValidationError)."""
    return _ANY_CHANGE.validate_json(data)


class SnapshotEntry(BaseModel):
    """The last state of one record we published. Removed records stay as tombstones to keep versions."""

    model_config = ConfigDict(frozen=True)

    entity: Entity
    key: str
    company_id: int | None
    fingerprint: str
    version: int
    deleted: bool = False
    record: dict[str, Any]


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


def record_key(entity: Entity, record_id: int) -> str:
    return f"{entity.value}:{record_id}"


def fingerprint(record: Record) -> str:
    """Stable hash of a record's content: equal data, equal fingerprint, whatever the field order."""
    canonical = json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name)))


def event_id_for(key: str, version: int, op: Op, poll_id: uuid.UUID, content: str) -> uuid.UUID:
    """The same change gets the same id (a poll repeated after a crash); a different change at the same
    version (another edit, or a removal, seen by the repeated poll) gets another id. A snapshot read
    carries no new version, so the poll id tells one nightly read from the next."""
    suffix = f"r:{poll_id}" if op is Op.READ else f"{op.value}:{content}"
    return uuid.uuid5(EVENT_NAMESPACE, f"{key}:{version}:{suffix}")


def diff(
    entity: Entity,
    previous: Mapping[str, SnapshotEntry],
    current: Mapping[str, tuple[Record, int | None]],
    source: ChangeSource,
    removable: Callable[[SnapshotEntry], bool],
    now: AwareDatetime,
    ahead: Mapping[str, PublishedAhead] | None = None,
) -> list[PlannedChange]:
    """Plan the events for one entity type.

    `current` maps key -> (record, owning company id). `removable(entry)` says whether a record missing
    from `current` may be removed: only when the fetch that owned it came back complete. `ahead`: the last
    event of each record that a poll cut off since the snapshot may have published (see PublishedAhead).
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
        print_ = fingerprint(record)
        old, sent = previous.get(key), ahead.get(key)
        after_json = record.model_dump(mode="json")
        if old is None or old.deleted:
            version = next_version(key, Op.CREATE, print_)
            plan(Op.CREATE, key, version, company_id, None, record, tuple(sorted(after_json)), print_)
        elif old.fingerprint != print_:
            fields = changed_fields(old.record, after_json)
            version = next_version(key, Op.UPDATE, print_)
            plan(Op.UPDATE, key, version, company_id, old.record, record, fields or ("record",), print_)
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
                known.record,
                None,
                (),
                known.fingerprint,
                deleted=True,
            )
    return planned


def reference_records(
    employees: Iterable[NmbrsEmployee], labour_agreements: Iterable[Any] = ()
) -> dict[str, ReferenceRecord]:
    """Departments, functions and CAOs as far as the fetched employees and companies use them."""
    found: dict[str, ReferenceRecord] = {}
    for employee in employees:
        if employee.department:
            found[record_key(Entity.DEPARTMENT, employee.department.id)] = ReferenceRecord(
                kind="department", **employee.department.model_dump()
            )
        if employee.function:
            found[record_key(Entity.FUNCTION, employee.function.id)] = ReferenceRecord(
                kind="function", **employee.function.model_dump()
            )
        if employee.labour_agreement:
            found[record_key(Entity.LABOUR_AGREEMENT, employee.labour_agreement.id)] = _cao(
                employee.labour_agreement.id,
                employee.labour_agreement.number,
                employee.labour_agreement.description,
            )
    for agreement in labour_agreements:
        found[record_key(Entity.LABOUR_AGREEMENT, agreement.id)] = _cao(
            agreement.id, agreement.number, agreement.description
        )
    return found


def _cao(cao_id: int, number: str | None, description: str) -> ReferenceRecord:
    return ReferenceRecord(kind="labour_agreement", id=cao_id, code=number, description=description)


# --- circuit breaker ---------------------------------------------------------------------------------


class BreakerPolicy(BaseModel):
    """Thresholds of the mass-change breaker. Below `min_count` affected records it never trips, so a
    single leaver in a ten-person company is not held."""

    model_config = ConfigDict(frozen=True)

    max_share: float = Field(0.10, gt=0, le=1)
    min_count: int = Field(5, ge=1)


class BreakerVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    tripped: bool
    reasons: tuple[str, ...] = ()
    counts: dict[str, int] = Field(default_factory=dict)


def latest_employment_end(employee: NmbrsEmployee) -> date | None:
    """End of the most recent employment period (None = still employed or never employed)."""
    if not employee.employments:
        return None
    return max(employee.employments, key=lambda period: period.start).end


def is_leaver(change: ChangeEvent[Any]) -> bool:
    """An update that ends employment: the latest employment had no end date and now has one."""
    before, after = change.before, change.after
    if change.op is not Op.UPDATE or not isinstance(before, NmbrsEmployee) or not isinstance(after, NmbrsEmployee):
        return False
    return latest_employment_end(before) is None and latest_employment_end(after) is not None


def moved_company(change: ChangeEvent[Any]) -> bool:
    if change.entity is not Entity.EMPLOYEE or change.op is not Op.UPDATE:
        return False
    return "company_id" in change.changed_fields


def evaluate_breaker(
    previous_active: int,
    fetched: int,
    changes: Iterable[ChangeEvent[Any]],
    policy: BreakerPolicy,
    previous_by_company: Mapping[int, int] | None = None,
) -> BreakerVerdict:
    """Hold a poll that would remove, end or move more than the allowed share of employees, or whose
    fetched head count dropped by more than that share (the signature of an incomplete fetch).

    Whatever the numbers, it also holds a poll that removes a company, or every employee a company had
    (`previous_by_company`: its active employees in the last snapshot). Nmbrs keeps leavers and almost
    never deletes a company: a company missing from the list, or listing nobody, is far more likely hidden
    from the API user or a failed answer, and a share of all employees would let a small company go."""
    changes = list(changes)
    employee_changes = [c for c in changes if c.entity is Entity.EMPLOYEE]
    removed_by_company = Counter(
        c.before.company_id for c in employee_changes if c.op is Op.DELETE and isinstance(c.before, NmbrsEmployee)
    )
    by_company = previous_by_company or {}
    emptied = sorted(
        company_id for company_id, count in by_company.items() if count and removed_by_company[company_id] >= count
    )
    companies_removed = sorted(
        c.before.company_id for c in changes if c.entity is Entity.COMPANY and c.op is Op.DELETE
        and isinstance(c.before, NmbrsCompany)
    )  # fmt: skip
    removed = sum(1 for c in employee_changes if c.op is Op.DELETE)
    ended = sum(1 for c in employee_changes if is_leaver(c))
    moved = sum(1 for c in employee_changes if moved_company(c))
    dropped = max(previous_active - fetched, 0)
    counts = {
        "previous": previous_active,
        "fetched": fetched,
        "removed": removed,
        "ended": ended,
        "moved": moved,
        "dropped": dropped,
        "companies_removed": len(companies_removed),
        "companies_emptied": len(emptied),
    }
    reasons = [f"company {company_id} is no longer listed by Nmbrs" for company_id in companies_removed]
    reasons += [f"all {by_company[company_id]} employees of company {company_id} removed" for company_id in emptied]
    if previous_active == 0:
        return BreakerVerdict(tripped=bool(reasons), reasons=tuple(reasons), counts=counts)
    limit = policy.max_share * previous_active
    for count, what in (
        (removed + ended, "removed or ended"),
        (moved, "moved to another company"),
        (dropped, "fewer employees fetched"),
    ):
        if count >= policy.min_count and count > limit:
            reasons.append(f"{count} of {previous_active} employees {what} (more than {policy.max_share:.0%})")
    return BreakerVerdict(tripped=bool(reasons), reasons=tuple(reasons), counts=counts)
