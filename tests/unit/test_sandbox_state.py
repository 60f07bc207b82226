"""The sandbox state's indexes follow every edit the admin API makes, as a fresh load of the dataset would
build them; and the SOAP text writer escapes as lxml does."""

from __future__ import annotations

from datetime import date

import pytest
from lxml import etree

from worker.sandbox.dataset import Company, Employee
from worker.sandbox.edits import change_employee, new_employee
from worker.sandbox.generate import generate
from worker.sandbox.soap_xml import SOAP11, SoapFault, Writer, result_response
from worker.sandbox.state import SandboxState

AS_OF = date(2026, 11, 1)


def _state() -> SandboxState:
    return SandboxState(dataset=generate(3, 60, seed=4), username="u", token="t", domain="d")


def _assert_indexed_as_a_fresh_load(state: SandboxState) -> None:
    fresh = SandboxState(dataset=state.dataset, username="u", token="t", domain="d")
    assert state.companies_by_id == fresh.companies_by_id
    assert {k: id(e) for k, e in state.by_id.items()} == {k: id(e) for k, e in fresh.by_id.items()}

    def listed(by_company: dict[int, list[Employee]]) -> dict[int, list[int]]:
        return {company_id: [id(e) for e in employees] for company_id, employees in by_company.items() if employees}

    assert listed(state.by_company) == listed(fresh.by_company)
    assert set(fresh.companies_by_id) <= set(state.by_company)


def _hire(state: SandboxState, company_id: int, last_name: str) -> Employee:
    employee = new_employee(state, {"company_id": company_id, "last_name": last_name, "start": "2026-10-01"})
    state.add_employee(employee)
    return employee


def test_hires_changes_moves_and_removals_keep_the_indexes() -> None:
    state = _state()
    hired = _hire(state, 2, "Bakker")
    assert state.by_company[2][-1] is hired and state.employee(hired.id) is hired
    _assert_indexed_as_a_fresh_load(state)

    change_employee(state, state.by_company[1][0], {"department": {"id": 3, "description": "Inkoop"}}, AS_OF)
    _assert_indexed_as_a_fresh_load(state)

    mover = state.by_company[1][1]
    new_id = change_employee(state, mover, {"company_id": 3}, AS_OF)
    assert new_id is not None and state.by_company[3][-1].id == new_id and mover in state.by_company[1]
    _assert_indexed_as_a_fresh_load(state)

    state.remove_employee(mover.id)
    state.remove_employee(hired.id)
    assert mover not in state.by_company[1] and hired.id not in state.by_id
    _assert_indexed_as_a_fresh_load(state)


def test_a_change_failing_half_way_leaves_the_indexes_valid() -> None:
    state = _state()
    employee = state.by_company[2][0]
    with pytest.raises(SoapFault):
        change_employee(state, employee, {"hours_per_week": 20, "company_id": 99}, AS_OF)
    _assert_indexed_as_a_fresh_load(state)


def test_new_companies_and_employees_of_a_company_added_later() -> None:
    state = _state()
    with pytest.raises(SoapFault):
        state.company(4)
    early = state.by_company[1][0].model_copy(update={"id": 900_001, "company_id": 4})
    state.add_employee(early)  # a full Employee object may name a company that is not there yet
    state.add_company(Company(id=4, number=4, name="Later B.V.", current_period="2026-11-M"))
    hired = _hire(state, 4, "Visser")
    assert state.company(4).name == "Later B.V." and state.by_company[4] == [early, hired]
    _assert_indexed_as_a_fresh_load(state)


def test_hire_ids_are_above_every_employee_and_record_id() -> None:
    state = _state()
    highest = max(e.id for e in state.dataset.employees)
    hired = _hire(state, 1, "Smit")
    assert hired.id == highest + 1
    assert hired.personal_info[0].id == highest * 10 + 1


def test_writer_escapes_as_lxml_and_refuses_what_xml_cannot_carry() -> None:
    writer = Writer()
    writer.open("Item")
    writer.put("Name", "Smit & <Zn>\r")
    writer.put("Flag", True)
    writer.put("Hours", 7.5)
    writer.put("Day", date(2026, 1, 2))
    writer.put("End", None, nillable=True)
    writer.put("Left", None)
    writer.close("Item")
    body = result_response(SOAP11, "urn:x", "Op", writer).body
    assert isinstance(body, bytes)
    item = etree.fromstring(body)[0][0][0][0]
    assert [(etree.QName(child).localname, child.text) for child in item] == [
        ("Name", "Smit & <Zn>\r"),
        ("Flag", "true"),
        ("Hours", "7.5"),
        ("Day", "2026-01-02T00:00:00"),
        ("End", None),
    ]
    assert item[-1].get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
    with pytest.raises(ValueError, match="XML compatible"):
        Writer().put("Name", "bell\x07")
