"""The sandbox datasets: deterministic generation, valid BSNs, and the hard cases in the shipped demo."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path

import pytest

import worker.sandbox
from worker.entrypoints.cli import build_parser, main
from worker.sandbox.dataset import Dataset, load_dataset, save_dataset
from worker.sandbox.generate import generate, is_valid_bsn

DEMO = Path(worker.sandbox.__file__).parent / "data" / "demo.json"


@pytest.fixture(scope="module")
def demo() -> Dataset:
    return load_dataset(DEMO)


def test_generator_is_deterministic() -> None:
    first = generate(3, 120, seed=11).model_dump_json()
    assert generate(3, 120, seed=11).model_dump_json() == first
    assert generate(3, 120, seed=12).model_dump_json() != first


@pytest.mark.parametrize(
    ("bsn", "valid"),
    [
        ("111222333", True),
        ("123456782", True),
        ("123456789", False),
        ("000000000", False),
        ("12345678", False),
    ],
)
def test_eleven_test(bsn: str, valid: bool) -> None:
    assert is_valid_bsn(bsn) is valid


def test_generated_bsns_pass_the_eleven_test_and_identify_humans() -> None:
    dataset = generate(4, 2000, seed=3)
    assert all(is_valid_bsn(employee.bsn) for employee in dataset.employees)
    by_bsn: dict[str, set[tuple[str | None, str, object]]] = {}
    for employee in dataset.employees:
        person = employee.current_personal_info()
        by_bsn.setdefault(employee.bsn, set()).add((person.first_name, person.last_name, person.birthday))
    # A BSN is one human: every employment sharing it has the same name and birthday.
    assert all(len(people) == 1 for people in by_bsn.values())


def test_generator_scales_to_ten_thousand_employees_with_unique_ids() -> None:
    dataset = generate(10, 10_000, seed=1)
    assert len(dataset.employees) == 10_000
    assert len({e.id for e in dataset.employees}) == 10_000
    assert Counter(e.company_id for e in dataset.employees).most_common()[-1][1] >= 990
    numbers = Counter((e.company_id, e.number) for e in dataset.employees)
    assert max(numbers.values()) == 1


def test_demo_is_small_and_loads(demo: Dataset) -> None:
    assert DEMO.stat().st_size < 300_000
    assert len(demo.companies) == 3 and 55 <= len(demo.employees) <= 65


def test_demo_has_tussenvoegsels_and_diacritics(demo: Dataset) -> None:
    people = [e.current_personal_info() for e in demo.employees]
    prefixes = {p.prefix for p in people if p.prefix}
    assert {"van der", "van 't"} <= prefixes
    names = [f"{p.first_name} {p.last_name}" for p in people]
    assert any(unicodedata.normalize("NFD", name) != name for name in names)


def test_demo_has_one_human_with_two_employments_in_two_companies(demo: Dataset) -> None:
    companies_by_bsn: dict[str, set[int]] = {}
    for employee in demo.employees:
        companies_by_bsn.setdefault(employee.bsn, set()).add(employee.company_id)
    assert any(len(companies) >= 2 for companies in companies_by_bsn.values())


def test_demo_has_part_timers_a_rota_a_leaver_and_a_future_hire(demo: Dataset) -> None:
    today = demo.reference_date
    hours = [e.schedules[-1].hours_per_week() for e in demo.employees]
    assert sum(h < 36 for h in hours) >= 5
    assert any(sum(s.week2) for e in demo.employees for s in e.schedules)
    assert any(e.employments[-1].end and e.employments[-1].end < today for e in demo.employees)
    assert any(e.employments[0].start > today for e in demo.employees)
    assert any(c.hours_per_week is None for e in demo.employees for c in e.contracts)


def test_demo_has_two_similar_names(demo: Dataset) -> None:
    names = sorted(e.current_personal_info().display_name() for e in demo.employees)
    similar = [
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if a != b and SequenceMatcher(None, a, b).ratio() > 0.9
    ]
    assert similar


def test_demo_has_a_company_with_two_caos(demo: Dataset) -> None:
    assert sorted(len(c.labour_agreements) for c in demo.companies) == [1, 1, 2]


def test_demo_employees_have_a_dutch_home_address_with_a_history(demo: Dataset) -> None:
    postcode = re.compile(r"^[1-9][0-9]{3} ?[A-Z]{2}$")
    for employee in demo.employees:
        open_homes = [a for a in employee.addresses if a.type == "HomeAddress" and a.end_year is None]
        assert len(open_homes) == 1, employee.id
        for address in employee.addresses:
            assert postcode.match(address.postal_code), address.postal_code
            assert address.street and address.house_number and address.city and address.country_iso_code == "NL"
    records = [a for e in demo.employees for a in e.addresses]
    assert any(a.end_year for a in records)  # someone moved: an ended record before the current one
    assert any(a.type == "PostAddress" for a in records)
    assert any(" " in a.postal_code for a in records) and any(" " not in a.postal_code for a in records)
    homes_by_bsn: dict[str, set[str]] = {}
    for employee in demo.employees:
        homes_by_bsn.setdefault(employee.bsn, set()).update(a.postal_code for a in employee.addresses)
    # One human with two employments lives at one address.
    assert all(len(codes) == 1 for bsn, codes in homes_by_bsn.items() if sum(e.bsn == bsn for e in demo.employees) > 1)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    dataset = generate(2, 30, seed=5)
    save_dataset(dataset, tmp_path / "d.json")
    assert load_dataset(tmp_path / "d.json") == dataset


def test_generate_dataset_subcommand_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "data.json"
    assert main(["generate-dataset", "--companies", "2", "--employees", "25", "--seed", "9", "--out", str(out)]) == 0
    assert load_dataset(out) == generate(2, 25, seed=9)
    sandbox = build_parser().parse_args(["sandbox", "--data", str(out), "--port", "0"])
    assert sandbox.host == "127.0.0.1" and callable(sandbox.func)


def test_largest_gives_the_first_company_that_many_and_spreads_the_rest_evenly() -> None:
    dataset = generate(5, 1003, seed=2, largest=600)
    sizes = Counter(e.company_id for e in dataset.employees)
    assert sizes[1] == 600 and sorted(sizes[c] for c in (2, 3, 4, 5)) == [100, 101, 101, 101]
    assert len({e.id for e in dataset.employees}) == 1003
    assert max(Counter((e.company_id, e.number) for e in dataset.employees).values()) == 1
    # The hard cases are still there: the two Jans in the largest company, the leaver in the next.
    people = {(e.company_id, p.first_name, p.prefix, p.last_name) for e in dataset.employees for p in e.personal_info}
    assert {(1, "Jan", "van der", "Berg"), (1, "Jan", "van den", "Berg"), (2, "René", "van 't", "Hek")} <= people


def test_largest_can_hold_every_employee_and_is_deterministic() -> None:
    dataset = generate(3, 40, seed=2, largest=40)
    assert Counter(e.company_id for e in dataset.employees) == {1: 40}
    assert generate(3, 40, seed=2, largest=40) == dataset
    assert generate(1, 40, seed=2, largest=40).employees == generate(1, 40, seed=2).employees


@pytest.mark.parametrize(
    ("companies", "employees", "largest", "message"),
    [
        (3, 100, 101, "between 0 and the 100 employees"),
        (3, 100, -1, "between 0 and the 100 employees"),
        (1, 100, 60, "at least two companies"),
        (3, 100, 4, "at least 5"),
        (50, 100, 7, "at least 8"),
        (3, 11, 7, "at least 8"),
    ],
)
def test_largest_is_validated(companies: int, employees: int, largest: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(companies, employees, seed=1, largest=largest)
