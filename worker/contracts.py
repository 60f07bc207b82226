"""The public contracts: each topic's key and value schema and each input file format, as JSON Schema.

`nmbrs-sync schemas write` regenerates `schemas/` from the pydantic models; a test fails when the
checked-in files drift from the models, so a contract never changes by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, TypeAdapter

from worker.config import Settings, Topics
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
    key_pattern: str | None = None  # the key's form as a regular expression; None: any key, or none
    compacted: bool = False  # cleanup.policy=compact: the latest value per key is what counts
    one_partition: bool = False  # else KAFKA_TOPIC_PARTITIONS

    @property
    def file_stem(self) -> str:
        return self.topic_field.replace("_", "-")

    def key_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"title": f"{self.file_stem} key", "description": self.key}
        if self.key_pattern is None:
            return schema | {"type": ["string", "null"]}
        return schema | {"type": "string", "pattern": self.key_pattern}

    def value_schema(self) -> dict[str, Any]:
        if len(self.values) == 1:
            return self.values[0].model_json_schema(mode="serialization")
        # A union built at run time from the topic's value types, which no static checker can follow.
        union = Annotated[Union[self.values], Field(discriminator="event_type")]  # type: ignore[name-defined]  # noqa: UP007
        return TypeAdapter(union).json_schema(mode="serialization")


ID = "[1-9][0-9]*"  # a store or Nmbrs id in a key

TOPIC_CONTRACTS: tuple[TopicContract, ...] = (
    TopicContract(
        "sync_requests",
        "the constant 'sync' (one partition keeps requests in order)",
        (SyncRequested,),
        producer="nmbrs-sync sync-now, the schedule, any frontend",
        consumers=("worker: sync-requests agent",),
        key_pattern="^sync$",
    ),
    TopicContract(
        "employee_changes",
        "'employee:<Nmbrs employee id>': one employee's events stay in order",
        (EmployeeChanged,),
        producer="worker: poller",
        consumers=("worker: reconciler",),
        key_pattern=f"^employee:{ID}$",
    ),
    TopicContract(
        "company_changes",
        "'company:<Nmbrs company id>'",
        (CompanyChanged,),
        producer="worker: poller",
        consumers=("worker: reconciler",),
        key_pattern=f"^company:{ID}$",
    ),
    TopicContract(
        "reference_changes",
        "'department:<id>', 'function:<id>' or 'labour_agreement:<id>'",
        (ReferenceChanged,),
        producer="worker: poller",
        consumers=("worker: reconciler",),
        key_pattern=f"^(department|function|labour_agreement):{ID}$",
    ),
    TopicContract(
        "plan",
        "as on the change topics",
        (EmployeeChanged, CompanyChanged, ReferenceChanged),
        producer="worker: poller in dry-run mode",
        consumers=("operators reviewing a plan",),
        key_pattern=f"^(employee|company|department|function|labour_agreement):{ID}$",
    ),
    TopicContract(
        "decisions_needed",
        "'employee:<nmbrs id>' or 'company:<nmbrs id>': the latest question per record",
        (Outcome,),
        producer="worker: reconciler, decisions agent (needs_decision outcomes, also on the outcomes topic)",
        consumers=("HR frontends that list open questions",),
        key_pattern=f"^(employee|company):{ID}$",
        compacted=True,
    ),
    TopicContract(
        "decisions",
        "'<entity>:<nmbrs id>' for one record ('employee:123'), 'bulk' for a filter",
        (Decision,),
        producer="any HR frontend; nmbrs-sync decide",
        consumers=("worker: decisions agent",),
        key_pattern=f"^((employee|company):{ID}|bulk)$",
    ),
    TopicContract(
        "followup_commands",
        "'rt-employee:<RegiTijd employee id>'",
        (FollowUpCommand,),
        producer="any HR frontend",
        consumers=("worker: follow-ups agent",),
        key_pattern=f"^rt-employee:{ID}$",
    ),
    TopicContract(
        "outcomes",
        "the subject: 'sync-request', 'employee:<nmbrs id>', 'company:<nmbrs id>'",
        (Outcome,),
        producer="worker (every agent)",
        consumers=("ops dashboards", "HR frontends", "nmbrs-sync status"),
        key_pattern=f"^[a-z_-]+(:{ID})?$",
    ),
    TopicContract(
        "status",
        "'poll' for the latest poll report of the domain, 'poll-employee' for the latest one-employee poll, "
        "'step:<step>' per step (compacted: the latest per key counts)",
        (PollReport, StepStatus),
        producer="worker: poller",
        consumers=("ops dashboards", "nmbrs-sync status"),
        key_pattern="^(poll|poll-employee|step:[a-z_]+)$",
        compacted=True,
        one_partition=True,
    ),
    TopicContract(
        "dead_letter",
        "the key of the rejected message",
        (DeadLetter,),
        producer="worker (every agent)",
        consumers=("operators",),
    ),
)

DAY_MS = 86_400_000


def topic_config(contract: TopicContract, settings: Settings) -> dict[str, str]:
    """The configuration the worker gives a topic it creates, as the AsyncAPI document states it."""
    config = {"min.insync.replicas": str(settings.kafka_min_insync_replicas)}
    if contract.compacted:
        config["cleanup.policy"] = "compact"
    if contract.topic_field == "dead_letter":
        # A dead letter is kept until someone has looked: the default week is too short for a holiday.
        config["retention.ms"] = str(settings.kafka_dead_letter_retention_days * DAY_MS)
    return config


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
        value_file = f"{contract.file_stem}.value.schema.json"
        files[value_file] = _dump(contract.value_schema())
        catalogue.append(
            {
                "topic": getattr(defaults, contract.topic_field),
                "setting": f"TOPICS__{contract.topic_field.upper()}",
                "key": contract.key,
                "key_schema": f"{contract.file_stem}.key.schema.json",
                "value_schema": value_file,
                "producer": contract.producer,
                "consumers": list(contract.consumers),
            }
        )
        files[catalogue[-1]["key_schema"]] = _dump(contract.key_schema())
    for name, model in DOCUMENT_CONTRACTS.items():
        files[f"{name}.schema.json"] = _dump(model.model_json_schema(mode="validation"))
    files[ASYNCAPI_FILE] = "# Generated by `nmbrs-sync schemas write`; do not edit by hand.\n" + yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=110
    )
    files["topics.yaml"] = "# Generated by `nmbrs-sync schemas write`; do not edit by hand.\n" + yaml.safe_dump(
        {"topics": catalogue}, sort_keys=False, allow_unicode=True, width=110
    )
    return files


ASYNCAPI_FILE = "asyncapi.yaml"
KAFKA_BINDING_VERSION = "0.5.0"


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def asyncapi_document() -> dict[str, Any]:
    """An AsyncAPI 3.0 description of every topic, from the same contract data as topics.yaml and the JSON
    Schemas (which it refers to, not copies): channels with their Kafka bindings (partitions, cleanup policy,
    retention), one message per value type with its key schema, and what the worker sends and receives."""
    defaults = Settings.model_construct()  # the defaults, never this machine's environment
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for contract in TOPIC_CONTRACTS:
        channel_id = _camel(contract.topic_field)
        address = getattr(Topics(), contract.topic_field)
        value_file = f"./{contract.file_stem}.value.schema.json"
        channel_messages = {}
        for model in contract.values:
            message_id = f"{channel_id}{model.__name__}"
            messages[message_id] = {
                "name": model.__name__,
                "title": model.__name__,
                "summary": (model.__doc__ or model.__name__).strip().splitlines()[0],
                "contentType": "application/json",
                "payload": {
                    "$ref": value_file if len(contract.values) == 1 else f"{value_file}#/$defs/{model.__name__}"
                },
                "bindings": {
                    "kafka": {
                        # Inline: a bare {"$ref"} is both a Schema and a Reference there, which the
                        # binding's oneOf refuses.
                        "key": contract.key_schema(),
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
            channel_messages[message_id] = {"$ref": f"#/components/messages/{message_id}"}
        config = topic_config(contract, defaults)
        topic_configuration: dict[str, Any] = {
            "cleanup.policy": [config.get("cleanup.policy", "delete")],
            "min.insync.replicas": int(config["min.insync.replicas"]),
        }
        if "retention.ms" in config:
            topic_configuration["retention.ms"] = int(config["retention.ms"])
        channels[channel_id] = {
            "address": address,
            "title": address,
            "description": f"Key: {contract.key}. Written by {contract.producer}; read by "
            f"{', '.join(contract.consumers) or 'anyone'}. Name setting: TOPICS__{contract.topic_field.upper()}.",
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": address,
                    "partitions": 1 if contract.one_partition else defaults.kafka_topic_partitions,
                    "topicConfiguration": topic_configuration,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channel_messages]
        if "worker" in contract.producer:
            operations[f"send{channel_id[0].upper()}{channel_id[1:]}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"Written by {contract.producer}.",
                "messages": refs,
            }
        if any(consumer.startswith("worker") for consumer in contract.consumers):
            operations[f"receive{channel_id[0].upper()}{channel_id[1:]}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": f"Read by {', '.join(c for c in contract.consumers if c.startswith('worker'))}.",
                "messages": refs,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "nmbrs-sync",
            "version": package_version("nmbrs-sync"),
            "description": "The topics of nmbrs-sync: Nmbrs changes in, questions and outcomes out, decisions and "
            "commands from any frontend. Operations are the worker's: what it sends and what it receives. "
            "Payloads and keys are the JSON Schemas beside this file; topic names are the defaults.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": defaults.kafka_bootstrap_servers,
                "protocol": "kafka",
                "description": "The local stack of ./dev; elsewhere KAFKA_BOOTSTRAP_SERVERS.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


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
