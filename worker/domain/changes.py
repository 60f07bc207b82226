"""The change event envelope (Debezium-style: op, before, after, version) and how its id is derived.

Nmbrs has no change feed, so the poller makes one (worker/domain/snapshot_diff.py plans the events). An event
id is derived from the record key, its version and its content, so re-running a poll after a crash with the
very change that went out last produces the same id, and consumers deduplicate it.
"""

from __future__ import annotations

import uuid
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


# The kinds of record that are linked to a RegiCRM card, and so what a question and a decision are about.
LinkedEntity = Literal["employee", "company"]


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

    @property
    def nmbrs_id(self) -> int:
        """The record's Nmbrs id, from its key."""
        return int(self.key.partition(":")[2])

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


def record_key(entity: Entity, record_id: int) -> str:
    return f"{entity.value}:{record_id}"


def event_id_for(key: str, version: int, op: Op, poll_id: uuid.UUID, content: str) -> uuid.UUID:
    """The same change gets the same id (a poll repeated after a crash); a different change at the same
    version (another edit, or a removal, seen by the repeated poll) gets another id. A snapshot read
    carries no new version, so the poll id tells one nightly read from the next."""
    suffix = f"r:{poll_id}" if op is Op.READ else f"{op.value}:{content}"
    return uuid.uuid5(EVENT_NAMESPACE, f"{key}:{version}:{suffix}")
