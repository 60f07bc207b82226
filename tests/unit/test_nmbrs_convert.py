"""Conversion of recorded Nmbrs v3 responses to records, and history resolution (no sockets)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from worker.adapters.nmbrs import convert
from worker.adapters.nmbrs.errors import (
    NmbrsAuthenticationError,
    NmbrsLoginSecurityError,
    NmbrsMalformedResponse,
    NmbrsNoRightsError,
    NmbrsNotFoundError,
    NmbrsUnknownFault,
    fault_from_string,
)
from worker.domain.nmbrs_records import EmploymentPeriod, Gender, LabourAgreementRef, NmbrsCompany

DATA = Path(__file__).parents[1] / "data" / "nmbrs"
KEY = b"test-key"
PERSONAL = "PersonalInfo_GetAll_AllEmployeesByCompany"
ADDRESSES = "Address_GetAll_AllEmployeesByCompany"


def _result(name: str, operation: str) -> convert.Element | None:
    return convert.result_element((DATA / name).read_bytes(), operation)


def _personal() -> dict[int, list[convert.PeriodRow[dict[str, object]]]]:
    return convert.parse_personal_infos(_result("personal_info.xml", PERSONAL), KEY)


def _company_data(**overrides: object) -> convert.CompanyData:
    values: dict[str, object] = {
        "company": NmbrsCompany(company_id=1, name="Bakkerij De Zon B.V.", period_type="Month"),
        "current_period": "2026-11-M",
        "labour_agreements": [LabourAgreementRef(id=5, description="CAO Bakkersbedrijf")],
        "listed": {101: convert.Listed("7", "Anouk van der Berg"), 102: convert.Listed("8", "Chloë Öztürk")},
        "personal": _personal(),
        "employments": {
            101: [EmploymentPeriod(employment_id=1, start=date(2019, 3, 1))],
            102: [EmploymentPeriod(employment_id=1, start=date(2024, 6, 1))],
        },
        "functions": convert.parse_functions(_result("functions.xml", "Function_GetAll_AllEmployeesByCompany_V2")),
        "departments": {},
        "contracts": convert.parse_contracts(
            _result("contracts_v21_item_name.xml", "Contract_GetAll_AllEmployeesByCompany")
        ),
        "schedules": convert.parse_schedules(_result("schedules.xml", "Schedule_GetAll_AllEmployeesByCompany")),
        "addresses": convert.parse_addresses(_result("addresses.xml", ADDRESSES)),
    }
    values.update(overrides)
    return convert.CompanyData(**values)  # type: ignore[arg-type]


def test_personal_info_resolves_to_the_record_current_on_the_date() -> None:
    rows = _personal()[101]
    before = convert.resolve_period(rows, convert.period_of(date(2026, 5, 31), "Month"))
    after = convert.resolve_period(rows, convert.period_of(date(2026, 6, 1), "Month"))
    assert before is not None and after is not None
    assert (before["prefix"], before["last_name"]) == ("de", "Vries")
    assert (after["prefix"], after["last_name"]) == ("van der", "Berg")


def test_a_future_hire_gets_the_earliest_record_before_the_start() -> None:
    person = convert.resolve_period(_personal()[102], (2026, 11))
    assert person is not None and person["last_name"] == "Öztürk"


def test_same_period_records_resolve_to_the_one_created_last() -> None:
    functions = convert.parse_functions(_result("functions.xml", "Function_GetAll_AllEmployeesByCompany_V2"))
    current = convert.resolve_period(functions[101], (2026, 11))
    earlier = convert.resolve_period(functions[101], (2026, 8))
    assert current is not None and current.description == "Teamleider (correctie)"
    assert earlier is not None and earlier.description == "Monteur"


def test_nil_function_is_none() -> None:
    functions = convert.parse_functions(_result("functions.xml", "Function_GetAll_AllEmployeesByCompany_V2"))
    assert convert.resolve_period(functions[102], (2027, 1)) is None


def test_bsn_is_hashed_with_hmac_over_nine_digits_and_not_kept() -> None:
    person = convert.resolve_period(_personal()[101], (2026, 11))
    assert person is not None
    expected = hmac.new(KEY, b"123456782", hashlib.sha256).hexdigest()
    assert person["bsn_hash"] == expected
    assert "123456782" not in repr(_personal()) and "12345678 2" not in repr(_personal())


def test_bsn_hash_pads_to_nine_digits_and_ignores_unknown_bsns() -> None:
    assert convert.bsn_hash("11222333", KEY) == convert.bsn_hash("011222333", KEY)
    assert convert.bsn_hash("000000000", KEY) is None
    assert convert.bsn_hash("", KEY) is None
    assert convert.bsn_hash("111222333", KEY) != convert.bsn_hash("111222333", b"other-key")


def test_without_bsn_mode_hashes_nothing() -> None:
    rows = convert.parse_personal_infos(_result("personal_info.xml", PERSONAL), None)
    assert all(row.value["bsn_hash"] is None for employee in rows.values() for row in employee)


def test_names_are_nfc_and_gender_case_insensitive() -> None:
    person = convert.resolve_period(_personal()[102], (2027, 1))
    assert person is not None
    assert person["first_name"] == "Chloë" and len(person["first_name"]) == 5
    assert person["gender"] is Gender.FEMALE
    assert person["birthday"] is None


def test_contracts_accept_the_v21_item_name_and_keep_the_newest_duplicate() -> None:
    contracts = convert.parse_contracts(_result("contracts_v21_item_name.xml", "Contract_GetAll_AllEmployeesByCompany"))
    employee = convert.build_employee(_company_data(contracts=contracts), 101, date(2026, 11, 1))
    assert [c.contract_id for c in employee.contracts] == [21, 22]
    assert employee.contracts[0].hours_per_week == Decimal("36.00")
    assert employee.contracts[0].end == date(2020, 12, 31) and not employee.contracts[0].indefinite
    assert employee.contracts[1].indefinite and employee.contracts[1].end is None


def test_contract_without_hours_takes_the_schedule_valid_on_the_date() -> None:
    data = _company_data()
    # The open contract has no HoursPerWeek: the two-week rota from 2026-03 gives (32 + 23.5) / 2.
    assert convert.build_employee(data, 101, date(2026, 11, 1)).contracts[1].hours_per_week == Decimal("27.75")
    assert convert.build_employee(data, 101, date(2025, 6, 1)).contracts[1].hours_per_week == Decimal("40.00")


def test_schedules_average_a_two_week_rota_and_ignore_unknown_fields() -> None:
    schedules = convert.parse_schedules(_result("schedules.xml", "Schedule_GetAll_AllEmployeesByCompany"))
    periods = sorted((row.period for row in schedules[101]), key=lambda s: s.start)
    assert [p.hours_per_week for p in periods] == [Decimal("40.00"), Decimal("27.75")]
    assert periods[1].parttime_percentage == Decimal("69.38")


def test_one_company_cao_applies_to_every_employee_without_per_employee_calls() -> None:
    snapshot = convert.build_snapshot(_company_data(), date(2026, 11, 1), datetime.now(UTC), 9)
    assert {e.labour_agreement.id for e in snapshot.employees if e.labour_agreement} == {5}
    assert len(snapshot.employees) == 2 and snapshot.soap_calls == 9


def test_two_company_caos_use_the_per_employee_answers() -> None:
    agreements = [LabourAgreementRef(id=5, description="A"), LabourAgreementRef(id=6, description="B")]
    per_employee = {101: LabourAgreementRef(id=6, description="B"), 102: None}
    data = _company_data(labour_agreements=agreements, employee_labour_agreements=per_employee)
    employees = {
        e.employee_id: e for e in convert.build_snapshot(data, date(2026, 11, 1), datetime.now(UTC), 0).employees
    }
    assert employees[101].labour_agreement == per_employee[101]
    assert employees[102].labour_agreement is None


def test_snapshot_employee_is_fully_normalised() -> None:
    snapshot = convert.build_snapshot(_company_data(), date(2026, 11, 1), datetime.now(UTC), 9)
    anouk = snapshot.employees[0]
    assert (anouk.employee_id, anouk.number, anouk.first_name, anouk.prefix) == (101, "7", "Anouk", "van der")
    assert anouk.phone_mobile == "06-12345678" and anouk.email_work == "anouk.vanderberg@example.nl"
    assert anouk.function is not None and anouk.function.code == "7"
    assert "123456782" not in snapshot.model_dump_json()


def test_addresses_keep_home_addresses_only_with_normalised_postcodes() -> None:
    addresses = convert.parse_addresses(_result("addresses.xml", ADDRESSES))
    assert sorted(addresses) == [101, 102, 103]
    assert [(r.postcode, r.end) for r in addresses[101]] == [("1012AB", (2026, 5)), ("3511AB", None)]  # no post box
    assert addresses[103] == []


def test_the_home_address_resolves_to_the_one_current_on_the_date() -> None:
    rows = convert.parse_addresses(_result("addresses.xml", ADDRESSES))[101]
    before = convert.resolve_address(rows, convert.period_of(date(2026, 5, 31), "Month"))
    after = convert.resolve_address(rows, convert.period_of(date(2026, 6, 1), "Month"))
    assert before is not None and before.postcode == "1012AB"
    assert after is not None and after.postcode == "3511AB"
    assert convert.resolve_address(rows[:1], (2026, 6)) is None  # ended, nothing after it
    assert convert.resolve_address([], (2026, 6)) is None


def test_snapshot_employees_carry_the_postcode_of_their_current_home_address() -> None:
    snapshot = convert.build_snapshot(_company_data(), date(2026, 11, 1), datetime.now(UTC), 10)
    postcodes = {e.employee_id: e.postcode for e in snapshot.employees}
    assert postcodes == {101: "3511AB", 102: "9711HM"}  # 102 is a future hire: the earliest address
    no_addresses = convert.build_snapshot(_company_data(addresses={}), date(2026, 11, 1), datetime.now(UTC), 10)
    assert all(e.postcode is None for e in no_addresses.employees)


def test_fault_envelopes_become_typed_errors() -> None:
    with pytest.raises(NmbrsAuthenticationError) as error:
        _result("fault_1001_soap11.xml", "List_GetAll")
    assert error.value.code == 1001 and not error.value.retryable
    with pytest.raises(NmbrsNoRightsError):
        _result("fault_2004_soap12.xml", "Contract_GetAll_AllEmployeesByCompany")
    assert convert.fault_string((DATA / "fault_1001_soap11.xml").read_bytes()) is not None
    assert convert.fault_string(b"<html>Service Unavailable</html>") is None


@pytest.mark.parametrize(
    ("faultstring", "expected", "retryable"),
    [
        ("---> 1002: Unauthorized Access", NmbrsNoRightsError, False),
        ("---> 2003: No rights to this employee", NmbrsNoRightsError, False),
        ("---> 1006: Generic Login Security Failure", NmbrsLoginSecurityError, True),
        ("---> 2046: Not found", NmbrsNotFoundError, False),
        ("---> 9999: Unknown", NmbrsUnknownFault, False),
        (
            "Server was unable to process request. ---> Invalid combination email/password",
            NmbrsAuthenticationError,
            False,
        ),
        ("Object reference not set to an instance of an object.", NmbrsUnknownFault, False),
    ],
)
def test_fault_codes_map_to_classes(faultstring: str, expected: type, retryable: bool) -> None:
    error = fault_from_string(faultstring, operation="List_GetAll")
    assert type(error) is expected and error.retryable is retryable
    assert "List_GetAll" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        (DATA / "schedules.xml").read_bytes()[:900],  # truncated
        b"",
        b"<html><body>Bad gateway</body></html>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>',
    ],
)
def test_malformed_bodies_raise_malformed(body: bytes) -> None:
    with pytest.raises(NmbrsMalformedResponse):
        convert.result_element(body, "Schedule_GetAll_AllEmployeesByCompany")


def test_answer_to_another_operation_is_malformed() -> None:
    with pytest.raises(NmbrsMalformedResponse):
        _result("schedules.xml", "Contract_GetAll_AllEmployeesByCompany")


def test_periods() -> None:
    assert convert.period_of(date(2026, 11, 15), "Month") == (2026, 11)
    assert convert.period_of(date(2026, 1, 29), "Week4") == (2026, 2)
    assert convert.period_of(date(2026, 12, 31), "Week4") == (2026, 13)


def test_a_listed_employee_without_personal_info_makes_the_answer_unusable_not_a_nameless_person() -> None:
    listed = {101: convert.Listed("7", "Anouk van der Berg"), 999: convert.Listed("9", "Nog Onbekend")}
    with pytest.raises(ValueError, match="999"):
        convert.build_snapshot(_company_data(listed=listed), date(2026, 11, 1), datetime.now(UTC), 9)


def test_an_employment_answer_without_any_listed_employee_makes_the_answer_unusable() -> None:
    # A nil or empty bulk answer would otherwise end or blank every employee of the company downstream.
    with pytest.raises(ValueError, match="employment answer"):
        convert.build_snapshot(_company_data(employments={}), date(2026, 11, 1), datetime.now(UTC), 9)


@pytest.mark.parametrize(
    ("name", "operation", "parse"),
    [
        ("personal_info.xml", PERSONAL, lambda r: convert.parse_personal_infos(r, KEY)),
        ("functions.xml", "Function_GetAll_AllEmployeesByCompany_V2", convert.parse_functions),
        ("schedules.xml", "Schedule_GetAll_AllEmployeesByCompany", convert.parse_schedules),
    ],
)
def test_an_answer_with_a_prefixed_service_namespace_parses_the_same(name: str, operation: str, parse: object) -> None:
    # The default service namespace is dropped before parsing (speed); other spellings must not depend on it.
    body = (DATA / name).read_bytes()
    assert b' xmlns="https://api.nmbrs.nl/soap/v3/EmployeeService"' in body
    prefixed = body.replace(
        b' xmlns="https://api.nmbrs.nl/soap/v3/EmployeeService"',
        b' xmlns:n="https://api.nmbrs.nl/soap/v3/EmployeeService"',
    )
    prefixed = re.sub(rb"<(/?)(?!soap:|\?)([A-Za-z_])", rb"<\1n:\2", prefixed)
    assert prefixed != body and b"<n:EmployeeId>" in prefixed
    as_sent = parse(convert.result_element(body, operation))  # type: ignore[operator]
    assert as_sent and parse(convert.result_element(prefixed, operation)) == as_sent  # type: ignore[operator]
