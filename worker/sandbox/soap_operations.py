"""The Nmbrs v3 operations nmbrs-sync calls, one handler each, answering from the sandbox's dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


# A handler writes the operation's answer, the content of its Result element; it raises SoapFault for a Nmbrs
# fault and ValueError for a non-numeric id.
Handler = Callable[[SandboxState, dict[str, str], Writer], None]


def _company_id(params: dict[str, str]) -> int:
    return int(params.get("CompanyId") or params.get("CompanyID") or 0)


def target_company(state: SandboxState, params: dict[str, str]) -> int | None:
    """The company a call is about, for the call counters and faults limited to one company; None also for
    a non-numeric id (the handler answers that with a client fault)."""
    try:
        if "EmployeeId" in params:
            employee = state.by_id.get(int(params["EmployeeId"] or 0))
            return employee.company_id if employee else None
        return _company_id(params) or None
    except ValueError:
        return None


def op_list_companies(state: SandboxState, params: dict[str, str], w: Writer) -> None:
    for company in state.dataset.companies:
        w.open("Company")
        w.put("ID", company.id)
        w.put("Number", company.number)
        w.put("Name", company.name)
        w.put("PhoneNumber", company.phone)
        w.put("Email", company.email)
        w.put("Website", company.website)
        w.put("LoonaangifteTijdvak", company.period_type)
        w.put("KvkNr", company.kvk)
        w.close("Company")


def op_current_period(state: SandboxState, params: dict[str, str], w: Writer) -> None:
    w.text(state.company(_company_id(params)).current_period)


def op_company_agreements(state: SandboxState, params: dict[str, str], w: Writer) -> None:
    for agreement in state.company(_company_id(params)).labour_agreements:
        w.open("LabourAgreement")
        w.put("Id", agreement.id)
        w.put("Guid", agreement.guid)
        w.put("Number", agreement.number)
        w.put("Description", agreement.description)
        w.put("Default", agreement.default)
        w.open("CAO")
        w.put("Code", agreement.number)
        w.put("Description", agreement.description)
        w.close("CAO")
        w.close("LabourAgreement")


def op_employee_types(state: SandboxState, params: dict[str, str], w: Writer) -> None:
    for employee_type in state.dataset.employee_types:
        w.open("EmployeeType")
        w.put("Id", employee_type.id)
        w.put("Description", employee_type.description)
        w.close("EmployeeType")


def op_list_by_company(state: SandboxState, params: dict[str, str], w: Writer) -> None:
    company = state.company(_company_id(params))
    employee_type = int(params.get("EmployeeType") or 0)
    for employee in state.by_company.get(company.id, []):
        if employee.employee_type == employee_type:
            w.open("Employee")
            w.put("Id", employee.id)
            w.put("Number", employee.number)
            w.put("DisplayName", employee.current_personal_info().display_name())
            w.close("Employee")


def _bulk(
    item_name: str,
    container: str,
    row_name: str,
    rows: Callable[[Employee], list[Any]],
    write: Callable[..., None],
) -> Handler:
    """A '..._AllEmployeesByCompany' handler: one item per employee holding its whole history."""

    def handler(state: SandboxState, params: dict[str, str], w: Writer) -> None:
        company = state.company(_company_id(params))
        for employee in state.by_company.get(company.id, []):
            w.open(item_name)
            w.put("EmployeeId", employee.id)
            w.open(container)
            for record in rows(employee):
                w.open(row_name)
                write(w, employee, record)
                w.close(row_name)
            w.close(container)
            w.close(item_name)

    return handler


# The order of Nmbrs' naamstelling choices (own, partner, partner-own, own-partner); see domain/naamstelling.py.
NAME_USAGE_CODES = {usage: str(number) for number, usage in enumerate(NameUsage)}


def _write_personal(with_bsn: bool) -> Callable[..., None]:
    def write(w: Writer, employee: Employee, p: PersonalInfo) -> None:
        w.put("Id", p.id)
        w.put("DisplayName", p.display_name())
        w.put("EmployeeNumber", employee.number)
        if with_bsn:
            w.put("BSN", employee.bsn)
        w.put("FirstName", p.first_name)
        w.put("Initials", p.initials)
        w.put("Prefix", p.prefix)
        w.put("LastName", p.last_name)
        w.put("Nickname", p.nickname)
        w.put("Gender", p.gender)
        w.put("NationalityCode", p.nationality_code)
        w.put("IdentificationType", 0)
        w.put("PartnerPrefix", p.partner_prefix)
        w.put("PartnerLastName", p.partner_last_name)
        w.put("TelephonePrivate", p.phone_private)
        w.put("TelephoneWork", p.phone_work)
        w.put("TelephoneMobilePrivate", p.phone_mobile)
        w.put("EmailPrivate", p.email_private)
        w.put("EmailWork", p.email_work)
        w.put("BurgerlijkeStaat", 0)
        w.put("Naamstelling", NAME_USAGE_CODES[p.name_usage])
        w.put("Birthday", p.birthday, nillable=True)
        w.put("CreationDate", p.created, nillable=True)
        w.put("StartPeriod", p.start_period)
        w.put("StartYear", p.start_year)

    return write


def _write_employment(w: Writer, employee: Employee, e: Employment) -> None:
    w.put("EmploymentId", e.employment_id)
    w.put("CreationDate", e.created, nillable=True)
    w.put("StartDate", e.start, nillable=True)
    w.put("EndDate", e.end, nillable=True)
    w.put("InitialStartDate", e.initial_start, nillable=True)


def _write_function(w: Writer, employee: Employee, a: Assignment) -> None:
    w.put("RecordId", a.record_id)
    w.open("Function")
    w.put("Id", a.ref_id)
    w.put("Code", a.code)
    w.put("Description", a.description)
    w.close("Function")
    w.put("CreationDate", a.created, nillable=True)
    w.put("StartPeriod", a.start_period)
    w.put("StartYear", a.start_year)


def _write_department(w: Writer, employee: Employee, a: Assignment) -> None:
    w.put("Id", a.ref_id)
    w.put("Code", a.code)
    w.put("Description", a.description)
    w.put("CreationDate", a.created, nillable=True)
    w.put("StartPeriod", a.start_period)
    w.put("StartYear", a.start_year)


def _write_contract(w: Writer, employee: Employee, c: Contract) -> None:
    w.put("ContractID", c.contract_id)
    w.put("CreationDate", c.created, nillable=True)
    w.put("StartDate", c.start, nillable=True)
    w.put("TrialPeriod", c.trial_end, nillable=True)
    w.put("EndDate", c.end, nillable=True)
    w.put("EmployementType", c.employment_type)  # sic, as Nmbrs spells it
    w.put("EmploymentSequenceTaxId", 1)
    w.put("Indefinite", c.indefinite, nillable=True)
    w.put("PhaseClassification", c.phase_classification, nillable=True)
    w.put("WrittenContract", c.written_contract, nillable=True)
    w.put("HoursPerWeek", c.hours_per_week, nillable=True)


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEK1 = tuple(f"Hours{day}" for day in _DAYS)
_WEEK2 = tuple(f"Hours{day}2" for day in _DAYS)


def _write_schedule(w: Writer, employee: Employee, s: Schedule) -> None:
    w.put("Id", s.id)
    for names, week in ((_WEEK1, s.week1), (_WEEK2, s.week2)):
        for name, hours in zip(names, week, strict=True):
            w.put(name, hours)
    w.put("ParttimePercentage", s.parttime_percentage)
    w.put("StartDate", s.start)
    w.put("CreationDate", s.created)


def _write_address(w: Writer, employee: Employee, a: Address) -> None:
    w.put("Id", a.id)
    w.put("StartPeriod", a.start_period)
    w.put("StartYear", a.start_year)
    w.put("EndPeriod", a.end_period, nillable=True)
    w.put("EndYear", a.end_year, nillable=True)
    w.put("Street", a.street)
    w.put("HouseNumber", a.house_number)
    w.put("HouseNumberAddition", a.house_number_addition)
    w.put("PostalCode", a.postal_code)
    w.put("City", a.city)
    w.put("CreationDate", a.created, nillable=True)
    w.put("CountryISOCode", a.country_iso_code)
    w.put("Type", a.type)


def op_employee_agreement(state: SandboxState, params: dict[str, str], w: Writer) -> None:
    agreement = _current_agreement(state, state.employee(int(params.get("EmployeeId") or 0)))
    w.put("Id", agreement.id if agreement else 0)
    w.put("Guid", agreement.guid if agreement else "00000000-0000-0000-0000-000000000000")
    w.put("Number", agreement.number if agreement else 0)
    w.put("Description", agreement.description if agreement else None)


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
