"""The public contracts: each topic's key and value schema and each input file format, as JSON Schema.

`nmbrs-sync schemas write` regenerates `schemas/` from the pydantic models; a test fails when the
checked-in files drift from the models, so a contract never changes by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, TypeAdapter

from worker.config import Topics
from worker.domain.changes import CompanyChanged, EmployeeChanged, ReferenceChanged
from worker.domain.decisions import Decision
from worker.domain.events import DeadLetter, Outcome, PollReport, SyncRequested
from worker.domain.follow_ups import FollowUpCommand
from worker.domain.leave import LeaveInput
from worker.domain.status import StepStatus
from worker.domain.target_state import TargetState


@dataclass(frozen=True)
class TopicContract:
    """One topic: its key, its value model, who writes and who reads it."""

    topic_field: str  # attribute of Topics; the name itself is configurable
    key: str  # what the key is, in words, and its canonical string form
    values: tuple[type[BaseModel], ...]  # several: told apart by their `event_type`
    producer: str
    consumers: tuple[str, ...] = field(default=())

    def value_schema(self) -> dict[str, Any]:
        if len(self.values) == 1:
            return self.values[0].model_json_schema(mode="serialization")
        # A union built at run time from the topic's value types, which no static checker can follow.
        union = Annotated[Union[self.values], Field(discriminator="event_type")]  # type: ignore[name-defined]  # noqa: UP007
        return TypeAdapter(union).json_schema(mode="serialization")


TOPIC_CONTRACTS: tuple[TopicContract, ...] = (
    TopicContract(
        "sync_requests",
        "the constant 'sync' (one partition keeps requests in order)",
        (SyncRequested,),
        producer="nmbrs-sync sync-now, the schedule, any frontend",
        consumers=("worker: sync-requests agent",),
    ),
    TopicContract(
        "employee_changes",
        "'employee:<Nmbrs employee id>': one employee's events stay in order",
        (EmployeeChanged,),
        producer="worker: poller",
        consumers=("worker: reconciler",),
    ),
    TopicContract(
        "company_changes",
        "'company:<Nmbrs company id>'",
        (CompanyChanged,),
        producer="worker: poller",
        consumers=("worker: reconciler",),
    ),
    TopicContract(
        "reference_changes",
        "'department:<id>', 'function:<id>' or 'labour_agreement:<id>'",
        (ReferenceChanged,),
        producer="worker: poller",
        consumers=("worker: reconciler",),
    ),
    TopicContract(
        "plan",
        "as on the change topics",
        (EmployeeChanged, CompanyChanged, ReferenceChanged),
        producer="worker: poller in dry-run mode",
        consumers=("operators reviewing a plan",),
    ),
    TopicContract(
        "decisions_needed",
        "'employee:<nmbrs id>' or 'company:<nmbrs id>': the latest question per record",
        (Outcome,),
        producer="worker: reconciler, decisions agent (needs_decision outcomes, also on the outcomes topic)",
        consumers=("HR frontends that list open questions",),
    ),
    TopicContract(
        "decisions",
        "'<entity>:<nmbrs id>' for one record ('employee:123'), 'bulk' for a filter",
        (Decision,),
        producer="any HR frontend; nmbrs-sync decide",
        consumers=("worker: decisions agent",),
    ),
    TopicContract(
        "followup_commands",
        "'rt-employee:<RegiTijd employee id>'",
        (FollowUpCommand,),
        producer="any HR frontend",
        consumers=("worker: follow-ups agent",),
    ),
    TopicContract(
        "outcomes",
        "the subject: 'sync-request', 'employee:<nmbrs id>', 'company:<nmbrs id>'",
        (Outcome,),
        producer="worker (every agent)",
        consumers=("ops dashboards", "HR frontends", "nmbrs-sync status"),
    ),
    TopicContract(
        "status",
        "'poll' for the latest poll report of the domain, 'poll-employee' for the latest one-employee poll, "
        "'step:<step>' per step (compacted: the latest per key counts)",
        (PollReport, StepStatus),
        producer="worker: poller",
        consumers=("ops dashboards", "nmbrs-sync status"),
    ),
    TopicContract(
        "dead_letter",
        "the key of the rejected message",
        (DeadLetter,),
        producer="worker (every agent)",
        consumers=("operators",),
    ),
)

# Input files users write by hand, validated against these schemas.
DOCUMENT_CONTRACTS: dict[str, type[BaseModel]] = {
    "leave-calc-input": LeaveInput,
    "target-state": TargetState,
}


def generated_files() -> dict[str, str]:
    """Every file of `schemas/` as it should be, by relative path."""
    defaults = Topics()
    files: dict[str, str] = {}
    catalogue: list[dict[str, Any]] = []
    for contract in TOPIC_CONTRACTS:
        value_file = f"{contract.topic_field.replace('_', '-')}.value.schema.json"
        files[value_file] = _dump(contract.value_schema())
        catalogue.append(
            {
                "topic": getattr(defaults, contract.topic_field),
                "setting": f"TOPICS__{contract.topic_field.upper()}",
                "key": contract.key,
                "value_schema": value_file,
                "producer": contract.producer,
                "consumers": list(contract.consumers),
            }
        )
    for name, model in DOCUMENT_CONTRACTS.items():
        files[f"{name}.schema.json"] = _dump(model.model_json_schema(mode="validation"))
    files["topics.yaml"] = "# Generated by `nmbrs-sync schemas write`; do not edit by hand.\n" + yaml.safe_dump(
        {"topics": catalogue}, sort_keys=False, allow_unicode=True, width=110
    )
    return files


def _dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def drift(directory: Path) -> list[str]:
    """Files in `directory` that differ from the models (missing, changed or stale)."""
    expected = generated_files()
    problems = [
        f"{name}: {'missing' if not (directory / name).exists() else 'differs from the model'}"
        for name, text in expected.items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]
    stale = sorted(p.name for p in directory.glob("*") if p.is_file() and p.name not in expected)
    problems.extend(f"{name}: no model produces it any more" for name in stale)
    return problems


def write(directory: Path) -> list[str]:
    """Write the generated files, remove stale ones; return the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = generated_files()
    for stale in directory.glob("*"):
        if stale.is_file() and stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (directory / name).write_text(text, encoding="utf-8")
    return sorted(expected)
