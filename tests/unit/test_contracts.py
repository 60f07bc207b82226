"""Event contracts are the public API: the checked-in schemas must match the models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from worker import contracts
from worker.adapters.kafka import topic_specs
from worker.config import Settings, Topics
from worker.domain.changes import Entity, record_key

REFERENCE_ENTITIES = (Entity.DEPARTMENT, Entity.FUNCTION, Entity.LABOUR_AGREEMENT)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    problems = contracts.drift(SCHEMAS)
    assert not problems, "run `./dev cli schemas write` and review the diff:\n" + "\n".join(problems)


def test_drift_is_detected_when_a_schema_file_is_edited(tmp_path: Path) -> None:
    contracts.write(tmp_path)
    assert contracts.drift(tmp_path) == []
    target = tmp_path / "outcomes.value.schema.json"
    target.write_text(target.read_text().replace('"kind"', '"kind_renamed"'))
    (tmp_path / "old-topic.value.schema.json").write_text("{}")
    assert sorted(contracts.drift(tmp_path)) == [
        "old-topic.value.schema.json: no model produces it any more",
        "outcomes.value.schema.json: differs from the model",
    ]


def test_catalogue_names_every_contract_topic_with_its_configured_default() -> None:
    catalogue = yaml.safe_load((SCHEMAS / "topics.yaml").read_text())["topics"]
    defaults = Topics()
    assert [entry["topic"] for entry in catalogue] == [
        getattr(defaults, c.topic_field) for c in contracts.TOPIC_CONTRACTS
    ]
    for entry in catalogue:
        assert (SCHEMAS / entry["value_schema"]).exists()
        assert entry["key"] and entry["producer"]


# --- the AsyncAPI 3 document and the key schemas ---------------------------------------------------------------

OFFICIAL = Path(__file__).resolve().parents[1] / "contracts" / "asyncapi-3.0.0.schema.json"


def asyncapi_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(OFFICIAL.read_text()))
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]


def test_the_asyncapi_document_validates_against_the_official_asyncapi_3_schema() -> None:
    document = yaml.safe_load((SCHEMAS / contracts.ASYNCAPI_FILE).read_text())
    assert document["asyncapi"] == "3.0.0"
    assert asyncapi_errors(document) == []
    # The check can fail: an AsyncAPI 2 style operation and a channel without a valid address are refused.
    broken = copy.deepcopy(document)
    broken["operations"]["sendOutcomes"]["action"] = "publish"
    broken["channels"]["outcomes"]["address"] = 7
    assert len(asyncapi_errors(broken)) == 2


def test_the_asyncapi_channels_say_what_the_worker_creates() -> None:
    document = yaml.safe_load((SCHEMAS / contracts.ASYNCAPI_FILE).read_text())
    specs = {s.name: s for s in topic_specs(Settings.model_construct())}
    channels = {c["address"]: c["bindings"]["kafka"] for c in document["channels"].values()}
    assert channels.keys() == specs.keys()
    for name, binding in channels.items():
        config = binding["topicConfiguration"]
        assert binding["partitions"] == specs[name].partitions
        assert config["cleanup.policy"] == [specs[name].config.get("cleanup.policy", "delete")]
        assert str(config.get("retention.ms")) == specs[name].config.get("retention.ms", "None")
    assert channels["nmbrs-sync.decisions-needed"]["topicConfiguration"]["cleanup.policy"] == ["compact"]
    # The worker reads the commands and writes the outcomes; a frontend's side is the other way round.
    assert document["operations"]["receiveDecisions"]["action"] == "receive"
    assert document["operations"]["sendOutcomes"]["action"] == "send"
    assert "sendDecisions" not in document["operations"]


def test_every_reference_of_the_asyncapi_document_resolves() -> None:
    document = yaml.safe_load((SCHEMAS / contracts.ASYNCAPI_FILE).read_text())
    found = []

    def refs(node: Any) -> None:
        if isinstance(node, dict):
            found.extend([node["$ref"]] if "$ref" in node else [])
            for value in node.values():
                refs(value)
        elif isinstance(node, list):
            for value in node:
                refs(value)

    refs(document)
    assert len(found) > 30
    for ref in found:
        file, _, pointer = ref.partition("#")
        target: Any = json.loads((SCHEMAS / file).read_text()) if file else document
        for part in filter(None, pointer.split("/")):
            assert part in target, f"{ref}: no {part}"
            target = target[part]


@pytest.mark.parametrize(
    ("topic_field", "good", "bad"),
    [
        ("sync_requests", ["sync"], ["sync-now", ""]),
        ("employee_changes", [record_key(Entity.EMPLOYEE, 101)], ["employee:", "employee:0", "company:1"]),
        ("company_changes", [record_key(Entity.COMPANY, 4)], ["company:x"]),
        ("reference_changes", [record_key(e, 7) for e in REFERENCE_ENTITIES], ["employee:7"]),
        ("decisions", ["employee:12", "company:3", "bulk"], ["bulk:1", "person:3"]),
        ("followup_commands", ["rt-employee:2"], ["employee:2"]),
        ("outcomes", ["sync-request", "employee:1", "rt-employee:2", "crm_persons:3", "bulk", "poll"], ["x y"]),
        ("status", ["poll", "poll-employee", "step:poll", "step:leave"], ["poll:1"]),
    ],
)
def test_each_key_schema_takes_the_keys_the_code_makes(topic_field: str, good: list[str], bad: list[str]) -> None:
    contract = next(c for c in contracts.TOPIC_CONTRACTS if c.topic_field == topic_field)
    schema = json.loads((SCHEMAS / f"{contract.file_stem}.key.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert [key for key in good if not validator.is_valid(key)] == []
    assert [key for key in bad if validator.is_valid(key)] == []
