"""The Nmbrs v3 operations nmbrs-sync calls, one handler each, answering from the sandbox's dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from worker.domain.naamstelling import NameUsage
from worker.sandbox.dataset import (
    Address,
    Assignment,
    Contract,
    Employee,
    Employment,
    LabourAgreement,
    PersonalInfo,
    Schedule,
)
from worker.sandbox.soap_xml import Writer
from worker.sandbox.state import SandboxState


def _period(text: str) -> tuple[int, int]:
    year, period, *_ = text.split("-")
    return int(year), int(period)


def _current_agreement(state: SandboxState, employee: Employee) -> LabourAgreement | None:
    company = state.company(employee.company_id)
    current = _period(company.current_period)
    started = [a for a in employee.labour_agreements if (a.start_year, a.start_period) <= current]
    chosen = max(started, key=lambda a: (a.start_year, a.start_period), default=None)
    chosen = chosen or min(employee.labour_agreements, key=lambda a: (a.start_year, a.start_period), default=None)
    if chosen is None:
        return None
    return next((a for a in company.labour_agreements if a.id == chosen.labour_agreement_id), None)


# A handler writes the operation's answer into its Result element; it raises SoapFault for a Nmbrs fault.
Handler = Callable[[SandboxState, dict[str, str], Writer, etree._Element], None]


def _company_id(params: dict[str, str]) -> int:
    return int(params.get("CompanyId") or params.get("CompanyID") or 0)


def target_company(state: SandboxState, params: dict[str, str]) -> int | None:
    """The company a call is about, for the call counters and faults limited to one company."""
    if "EmployeeId" in params:
        employee = state.by_id.get(int(params["EmployeeId"] or 0))
        return employee.company_id if employee else None
    return _company_id(params) or None


def op_list_companies(state: SandboxState, params: dict[str, str], w: Writer, result: etree._Element) -> None:
    for company in state.dataset.companies:
        item = w.el(result, "Company")
        w.put(item, "ID", company.id)
        w.put(item, "Number", company.number)
        w.put(item, "Name", company.name)
        w.put(item, "PhoneNumber", company.phone)
        w.put(item, "Email", company.email)
        w.put(item, "Website", company.website)
        w.put(item, "LoonaangifteTijdvak", company.period_type)
        w.put(item, "KvkNr", company.kvk)


def op_current_period(state: SandboxState, params: dict[str, str], w: Writer, result: etree._Element) -> None:
    result.text = state.company(_company_id(params)).current_period


def op_company_agreements(state: SandboxState, params: dict[str, str], w: Writer, result: etree._Element) -> None:
    for agreement in state.company(_company_id(params)).labour_agreements:
        item = w.el(result, "LabourAgreement")
        w.put(item, "Id", agreement.id)
        w.put(item, "Guid", agreement.guid)
        w.put(item, "Number", agreement.number)
        w.put(item, "Description", agreement.description)
        w.put(item, "Default", agreement.default)
        cao = w.el(item, "CAO")
        w.put(cao, "Code", agreement.number)
        w.put(cao, "Description", agreement.description)


def op_employee_types(state: SandboxState, params: dict[str, str], w: Writer, result: etree._Element) -> None:
    for employee_type in state.dataset.employee_types:
        item = w.el(result, "EmployeeType")
        w.put(item, "Id", employee_type.id)
        w.put(item, "Description", employee_type.description)


def op_list_by_company(state: SandboxState, params: dict[str, str], w: Writer, result: etree._Element) -> None:
    company = state.company(_company_id(params))
    employee_type = int(params.get("EmployeeType") or 0)
    for employee in state.by_company.get(company.id, []):
        if employee.employee_type == employee_type:
            item = w.el(result, "Employee")
            w.put(item, "Id", employee.id)
            w.put(item, "Number", employee.number)
            w.put(item, "DisplayName", employee.current_personal_info().display_name())


def _bulk(
    item_name: str,
    container: str,
    row_name: str,
    rows: Callable[[Employee], list[Any]],
    write: Callable[..., None],
) -> Handler:
    """A '..._AllEmployeesByCompany' handler: one item per employee holding its whole history."""

    def handler(state: SandboxState, params: dict[str, str], w: Writer, result: etree._Element) -> None:
        company = state.company(_company_id(params))
        for employee in state.by_company.get(company.id, []):
            item = w.el(result, item_name)
            w.put(item, "EmployeeId", employee.id)
            history = w.el(item, container)
            for record in rows(employee):
                write(w, w.el(history, row_name), employee, record)

    return handler


# The order of Nmbrs' naamstelling choices (own, partner, partner-own, own-partner); see domain/naamstelling.py.
NAME_USAGE_CODES = {usage: str(number) for number, usage in enumerate(NameUsage)}


def _write_personal(with_bsn: bool) -> Callable[..., None]:
    def write(w: Writer, el: etree._Element, employee: Employee, p: PersonalInfo) -> None:
        w.put(el, "Id", p.id)
        w.put(el, "DisplayName", p.display_name())
        w.put(el, "EmployeeNumber", employee.number)
        if with_bsn:
            w.put(el, "BSN", employee.bsn)
        w.put(el, "FirstName", p.first_name)
        w.put(el, "Initials", p.initials)
        w.put(el, "Prefix", p.prefix)
        w.put(el, "LastName", p.last_name)
        w.put(el, "Nickname", p.nickname)
        w.put(el, "Gender", p.gender)
        w.put(el, "NationalityCode", p.nationality_code)
        w.put(el, "IdentificationType", 0)
        w.put(el, "PartnerPrefix", p.partner_prefix)
        w.put(el, "PartnerLastName", p.partner_last_name)
        w.put(el, "TelephonePrivate", p.phone_private)
        w.put(el, "TelephoneWork", p.phone_work)
        w.put(el, "TelephoneMobilePrivate", p.phone_mobile)
        w.put(el, "EmailPrivate", p.email_private)
        w.put(el, "EmailWork", p.email_work)
        w.put(el, "BurgerlijkeStaat", 0)
        w.put(el, "Naamstelling", NAME_USAGE_CODES[p.name_usage])
        w.put(el, "Birthday", p.birthday, nillable=True)
        w.put(el, "CreationDate", p.created, nillable=True)
        w.put(el, "StartPeriod", p.start_period)
        w.put(el, "StartYear", p.start_year)

    return write


def _write_employment(w: Writer, el: etree._Element, employee: Employee, e: Employment) -> None:
    w.put(el, "EmploymentId", e.employment_id)
    w.put(el, "CreationDate", e.created, nillable=True)
    w.put(el, "StartDate", e.start, nillable=True)
    w.put(el, "EndDate", e.end, nillable=True)
    w.put(el, "InitialStartDate", e.initial_start, nillable=True)


def _write_function(w: Writer, el: etree._Element, employee: Employee, a: Assignment) -> None:
    w.put(el, "RecordId", a.record_id)
    function = w.el(el, "Function")
    w.put(function, "Id", a.ref_id)
    w.put(function, "Code", a.code)
    w.put(function, "Description", a.description)
    w.put(el, "CreationDate", a.created, nillable=True)
    w.put(el, "StartPeriod", a.start_period)
    w.put(el, "StartYear", a.start_year)


def _write_department(w: Writer, el: etree._Element, employee: Employee, a: Assignment) -> None:
    w.put(el, "Id", a.ref_id)
    w.put(el, "Code", a.code)
    w.put(el, "Description", a.description)
    w.put(el, "CreationDate", a.created, nillable=True)
    w.put(el, "StartPeriod", a.start_period)
    w.put(el, "StartYear", a.start_year)


def _write_contract(w: Writer, el: etree._Element, employee: Employee, c: Contract) -> None:
    w.put(el, "ContractID", c.contract_id)
    w.put(el, "CreationDate", c.created, nillable=True)
    w.put(el, "StartDate", c.start, nillable=True)
    w.put(el, "TrialPeriod", c.trial_end, nillable=True)
    w.put(el, "EndDate", c.end, nillable=True)
    w.put(el, "EmployementType", c.employment_type)  # sic, as Nmbrs spells it
    w.put(el, "EmploymentSequenceTaxId", 1)
    w.put(el, "Indefinite", c.indefinite, nillable=True)
    w.put(el, "PhaseClassification", c.phase_classification, nillable=True)
    w.put(el, "WrittenContract", c.written_contract, nillable=True)
    w.put(el, "HoursPerWeek", c.hours_per_week, nillable=True)


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _write_schedule(w: Writer, el: etree._Element, employee: Employee, s: Schedule) -> None:
    w.put(el, "Id", s.id)
    for suffix, week in (("", s.week1), ("2", s.week2)):
        for day, hours in zip(_DAYS, week, strict=True):
            w.put(el, f"Hours{day}{suffix}", hours)
    w.put(el, "ParttimePercentage", s.parttime_percentage)
    w.put(el, "StartDate", s.start)
    w.put(el, "CreationDate", s.created)


def _write_address(w: Writer, el: etree._Element, employee: Employee, a: Address) -> None:
    w.put(el, "Id", a.id)
    w.put(el, "StartPeriod", a.start_period)
    w.put(el, "StartYear", a.start_year)
    w.put(el, "EndPeriod", a.end_period, nillable=True)
    w.put(el, "EndYear", a.end_year, nillable=True)
    w.put(el, "Street", a.street)
    w.put(el, "HouseNumber", a.house_number)
    w.put(el, "HouseNumberAddition", a.house_number_addition)
    w.put(el, "PostalCode", a.postal_code)
    w.put(el, "City", a.city)
    w.put(el, "CreationDate", a.created, nillable=True)
    w.put(el, "CountryISOCode", a.country_iso_code)
    w.put(el, "Type", a.type)


def op_employee_agreement(state: SandboxState, params: dict[str, str], w: Writer, result: etree._Element) -> None:
    agreement = _current_agreement(state, state.employee(int(params.get("EmployeeId") or 0)))
    w.put(result, "Id", agreement.id if agreement else 0)
    w.put(result, "Guid", agreement.guid if agreement else "00000000-0000-0000-0000-000000000000")
    w.put(result, "Number", agreement.number if agreement else 0)
    w.put(result, "Description", agreement.description if agreement else None)


HANDLERS: dict[str, dict[str, Handler]] = {
    "CompanyService": {
        "List_GetAll": op_list_companies,
        "Company_GetCurrentPeriod": op_current_period,
        "LabourAgreements_GetCurrent": op_company_agreements,
    },
    "EmployeeService": {
        "EmployeeType_GetList": op_employee_types,
        "List_GetByCompany": op_list_by_company,
        "PersonalInfo_GetAll_AllEmployeesByCompany": _bulk(
            "PersonalInfoItem",
            "EmployeePersonalInfos",
            "PersonalInfo_V2",
            lambda e: e.personal_info,
            _write_personal(with_bsn=True),
        ),
        "PersonalInfoWithoutBSN_Get_GetAllEmployeesByCompany": _bulk(
            "PersonalInfoItem",
            "EmployeePersonalInfos",
            "PersonalInfo_V2",
            lambda e: e.personal_info,
            _write_personal(with_bsn=False),
        ),
        "Employment_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeEmploymentItem",
            "EmployeeEmployments",
            "Employment",
            lambda e: e.employments,
            _write_employment,
        ),
        "Function_GetAll_AllEmployeesByCompany_V2": _bulk(
            "EmployeeFunctionItem_V2",
            "EmployeeFunctions",
            "EmployeeFunction",
            lambda e: e.functions,
            _write_function,
        ),
        "Department_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeDepartmentItem",
            "EmployeeDepartments",
            "Department_V2",
            lambda e: e.departments,
            _write_department,
        ),
        "Contract_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeContractItemGlobal",
            "EmployeeContracts",
            "EmployeeContract",
            lambda e: e.contracts,
            _write_contract,
        ),
        "Schedule_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeScheduleItem", "EmployeeSchedules", "Schedule_V2", lambda e: e.schedules, _write_schedule
        ),
        "Address_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeAddressItem", "EmployeeAddresses", "EmployeeAddress_V2", lambda e: e.addresses, _write_address
        ),
        "LabourAgreements_GetCurrent": op_employee_agreement,
    },
}
