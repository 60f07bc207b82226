"""Event contracts are the public API: the checked-in schemas must match the models."""

from __future__ import annotations

from pathlib import Path

import yaml

from worker import contracts
from worker.config import Topics

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
