"""The target-state file format: validation, cross references and errors that name file, field and line."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest

from worker.domain.target_state import (
    CHARACTERISTICS,
    PERSONEELSLID,
    TargetFileError,
    TargetState,
    parse_target_file,
)

DATA = Path(__file__).resolve().parents[2] / "worker" / "sandbox" / "data"

VALID_YAML = dedent(
    """\
    organisations:
      - ref: org-a
        name: "Acme B.V."
        kvk_number: "01234567"
    persons:
      - ref: p-1
        first_name: "Jan"
        last_name: "Jansen"
        birthday: 1980-02-29
        organisation: org-a
        account: {username: "jan", roles: [medewerker]}
        characteristics: ["RegiPersoneel: Personeelslid"]
      - ref: p-2
        last_name: "Pietersen"
    blue_employees:
      - ref: b-1
        person: p-2
        organisation: org-a
        employment_start: 2024-01-01
        hours_per_week: 16
    time_categories:
      - {code: ALG, name: "Algemeen"}
    labour_agreements:
      - {nmbrs_id: 1, description: "CAO X", extra_leave_hours_fulltime: 16, fulltime_hours_per_week: 38}
    """
)


def rejected(text: str, filename: str = "start.yaml") -> TargetFileError:
    with pytest.raises(TargetFileError) as caught:
        parse_target_file(text, filename)
    return caught.value


def located(error: TargetFileError) -> list[tuple[int | None, str]]:
    return [(problem.line, problem.path) for problem in error.problems]


def test_a_valid_yaml_file_parses_into_frozen_models() -> None:
    state = parse_target_file(VALID_YAML, "start.yaml")
    assert state.organisations[0].kvk_number == "01234567"  # quoted: the leading zero survives
    assert str(state.persons[0].birthday) == "1980-02-29"
    assert state.persons[0].account is not None and state.persons[0].account.roles == ("medewerker",)
    assert state.blue_employees[0].hours_per_week == 16
    assert state.labour_agreements[0].fulltime_hours_per_week == 38


def test_the_same_content_as_json_parses_to_the_same_state() -> None:
    as_json = json.dumps(parse_target_file(VALID_YAML, "start.yaml").model_dump(mode="json"), indent=2)
    assert parse_target_file(as_json, "start.json") == parse_target_file(VALID_YAML, "start.yaml")


def test_a_yaml_error_names_file_field_path_and_line() -> None:
    error = rejected(VALID_YAML.replace("birthday: 1980-02-29", "birthday: 1980-02-30"))
    assert located(error) == [(9, "persons[0].birthday")]
    assert "start.yaml:9: persons[0].birthday:" in str(error)
    assert "nothing was loaded" in str(error)


def test_a_json_validation_error_names_the_line_of_the_field() -> None:
    text = json.dumps(
        {"persons": [{"ref": "p-1", "last_name": "A"}, {"ref": "p-2", "last_name": "B", "gender": "x"}]},
        indent=2,
    )
    error = rejected(text, "start.json")
    gender_line = text.splitlines().index('      "gender": "x"') + 1
    assert located(error) == [(gender_line, "persons[1].gender")]
    assert f"start.json:{gender_line}: persons[1].gender:" in str(error)


def test_a_tab_indented_json_file_still_gets_line_numbers() -> None:
    text = '{\n\t"persons": [\n\t\t{"ref": "p-1",\n\t\t "last_name": ""}\n\t]\n}'
    assert located(rejected(text, "start.json")) == [(4, "persons[0].last_name")]


def test_a_json_syntax_error_names_line_and_column() -> None:
    error = rejected('{\n  "persons": [\n    {"ref": "p-1"}\n  \n}\n', "start.json")
    assert error.problems[0].line == 5
    assert "not valid JSON" in str(error) and "column" in str(error)


def test_a_yaml_syntax_error_names_the_line() -> None:
    error = rejected("persons:\n  - ref: p-1\n   last_name: x\n")
    assert error.problems[0].line == 3
    assert "not valid YAML" in str(error)


def test_an_unknown_field_is_rejected_with_its_line() -> None:
    error = rejected(VALID_YAML.replace('"Pietersen"', '"Pietersen"\n    emial_work: x@y.nl'))
    assert located(error) == [(15, "persons[1].emial_work")]
    assert "unknown field" in str(error)


def test_a_repeated_key_is_rejected_rather_than_silently_overwritten() -> None:
    error = rejected(VALID_YAML.replace('"Pietersen"', '"Pietersen"\n    last_name: "P"'))
    assert located(error) == [(15, "persons[1].last_name")]
    assert "also on line 14" in str(error)


def test_a_characteristic_outside_the_allowed_kenmerken_is_rejected() -> None:
    kenmerk = '"RegiPersoneel: Personeelslid"'
    error = rejected(VALID_YAML.replace(f"[{kenmerk}]", f'[{kenmerk}, "RegiAct: Boss"]'))
    assert located(error) == [(12, "persons[0].characteristics[1]")]


def test_the_allowed_kenmerken_are_those_of_the_domain() -> None:
    assert len(CHARACTERISTICS) == 9
    assert PERSONEELSLID in CHARACTERISTICS
    assert {"RegiLoket: Aanvrager", "RegiAct: Vastlegger prestatie", "RegiMaDi: Consulent"} <= set(CHARACTERISTICS)


def test_a_characteristic_listed_twice_is_rejected() -> None:
    kenmerk = '"RegiPersoneel: Personeelslid"'
    error = rejected(VALID_YAML.replace(f"[{kenmerk}]", f"[{kenmerk}, {kenmerk}]"))
    assert located(error) == [(6, "persons[0]")]
    assert "more than once" in str(error)


def test_unknown_references_are_reported_at_the_referring_field() -> None:
    text = VALID_YAML.replace("    organisation: org-a\n    account", "    organisation: org-b\n    account")
    text = text.replace("    person: p-2", "    person: p-9")
    error = rejected(text)
    assert located(error) == [(10, "persons[0].organisation"), (17, "blue_employees[0].person")]
    assert "unknown organisation 'org-b'" in str(error)
    assert "unknown person 'p-9'" in str(error)


def test_duplicate_refs_and_usernames_are_rejected() -> None:
    text = VALID_YAML.replace(
        '  - ref: p-2\n    last_name: "Pietersen"',
        '  - ref: p-1\n    last_name: "Pietersen"\n    account: {username: "JAN"}',
    )
    error = rejected(text)
    assert located(error) == [
        (13, "persons[1].ref"),
        (15, "persons[1].account.username"),
        (18, "blue_employees[0].person"),  # p-2 is gone now
    ]
    assert "duplicate ref 'p-1' (first used by persons[0])" in str(error)
    assert "username 'JAN' is already used by persons[0]" in str(error)


def test_every_problem_is_reported_in_file_order() -> None:
    text = VALID_YAML.replace("birthday: 1980-02-29", "birthday: yesterday").replace(
        "    person: p-2", "    person: p-2\n    hours: 8"
    )
    text = text.replace('kvk_number: "01234567"', "kvk_number: 12345678")
    error = rejected(text)
    assert located(error) == [
        (4, "organisations[0].kvk_number"),
        (9, "persons[0].birthday"),
        (18, "blue_employees[0].hours"),
    ]
    assert "3 problems" in str(error)
    assert "quote it ('12345678')" in str(error)


def test_an_employment_ending_before_it_starts_is_rejected() -> None:
    start = "employment_start: 2024-01-01"
    error = rejected(VALID_YAML.replace(start, f"{start}\n    employment_end: 2023-12-31"))
    assert located(error) == [(16, "blue_employees[0]")]


def test_an_empty_file_and_a_list_are_rejected() -> None:
    assert "the file is empty" in str(rejected(""))
    assert located(rejected("- ref: x\n")) == [(1, "(top level)")]


def test_the_demo_file_parses_and_covers_its_cases() -> None:
    state = parse_target_file((DATA / "demo-target.yaml").read_text(encoding="utf-8"), "demo-target.yaml")
    assert len(state.organisations) == 3
    assert 28 <= len(state.persons) <= 40
    assert len(state.blue_employees) == 2
    assert len(state.time_categories) >= 5
    anna = [p for p in state.persons if (p.first_name, p.prefix, p.last_name) == ("Anna", "de", "Jong")]
    assert len(anna) == 2 and sum(p.account is not None for p in anna) == 1


def test_the_demo_file_is_consistent_with_the_demo_nmbrs_dataset() -> None:
    nmbrs = json.loads((DATA / "demo.json").read_text(encoding="utf-8"))
    state = parse_target_file((DATA / "demo-target.yaml").read_text(encoding="utf-8"), "demo-target.yaml")
    assert {o.kvk_number for o in state.organisations} == {c["kvk"] for c in nmbrs["companies"]}
    assert sum(o.name in {c["name"] for c in nmbrs["companies"]} for o in state.organisations) == 2
    agreements = {a["id"]: a for c in nmbrs["companies"] for a in c["labour_agreements"]}
    for agreement in state.labour_agreements:
        assert agreement.number == str(agreements[agreement.nmbrs_id]["number"])
        assert agreement.description == agreements[agreement.nmbrs_id]["description"]
    assert {a.nmbrs_id for a in state.labour_agreements} == set(agreements)
    # Persons that match an Nmbrs employee exactly: name, birthday and work e-mail as currently in Nmbrs.
    current = [e["personal_info"][-1] for e in nmbrs["employees"]]
    exact = [
        p
        for p in state.persons
        if any(
            (p.first_name, p.prefix, p.last_name, str(p.birthday), p.email_work)
            == (i["first_name"], i.get("prefix"), i["last_name"], i["birthday"], i["email_work"])
            for i in current
        )
    ]
    assert len(exact) >= 25


def test_the_models_reject_unknown_top_level_kinds() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        TargetState.model_validate({"employees": []})
