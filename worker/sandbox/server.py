"""Local Nmbrs sandbox: an aiohttp SOAP 1.1/1.2 server answering the v3 calls nmbrs-sync uses.

SOAP endpoints (same paths as Nmbrs):
  POST /soap/v3/EmployeeService.asmx, POST /soap/v3/CompanyService.asmx   (GET ...asmx?WSDL for the WSDL)
  The AuthHeaderWithDomain header must carry the configured Username and Token (and Domain when sent);
  anything else gets the Nmbrs fault '---> 1001: Invalid Authentication' with HTTP 500.

Admin endpoints (JSON), to simulate what happens in Nmbrs and to inject faults:
  GET    /admin/dataset                  the whole dataset
  POST   /admin/reload                   reload the data file; body {"path": "..."} to load another one
  POST   /admin/employees                a hire: a full Employee object, or the short form
                                         {"company_id", "first_name", "prefix", "last_name", "start",
                                          "hours_per_week", "bsn", "function": {id, code, description},
                                          "department": {...}, "address": {street, house_number,
                                          house_number_addition?, postal_code, city}}; answers 201 {"id": ...}
  PATCH  /admin/employees/{id}           a change from "as_of" (date, default: the dataset's reference date):
                                         {"function": {...}} | {"department": {...}} | {"hours_per_week": 32}
                                         | {"end": "2026-12-31"} (a leaver) | {"labour_agreement_id": 12}
                                         | {"personal_info": {"last_name": ...}}
                                         | {"address": {...}} (a move: a new home address from as_of)
                                         | {"company_id": 2} (a move: ends this employment the day before
                                           as_of and creates a new employee, same BSN; answers "new_id")
  DELETE /admin/employees/{id}           remove an employee altogether
  POST   /admin/companies                add a company (Company object)
  POST   /admin/companies/{id}/labour-agreements   add a CAO to a company (LabourAgreement object)
  POST   /admin/faults                   inject a fault: {"operation"?, "company_id"?, "count"? (default:
                                         until cleared), "code"? (SOAP fault with this Nmbrs code),
                                         "http_status"? (plain HTTP error, e.g. 503 or 429), "truncate"?
                                         (cut the body in half), "latency_ms"?, "throttle_per_s"? (above
                                         this rate every call is delayed 0.5 s, as Nmbrs documents),
                                         "retry_after_s"? (a Retry-After header on http_status answers)}
  DELETE /admin/faults                   clear all faults
  GET    /admin/calls                    call counters {"total", "by_operation", "by_company"}
  DELETE /admin/calls                    reset the counters
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from lxml import etree
from pydantic import BaseModel, ValidationError

from worker.adapters.nmbrs import WSDL_DIR
from worker.sandbox.dataset import (
    Address,
    Assignment,
    Company,
    Contract,
    Dataset,
    Employee,
    Employment,
    LabourAgreement,
    LabourAgreementAssignment,
    PersonalInfo,
    Schedule,
    load_dataset,
)

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
_NIL = f"{{{XSI}}}nil"
NAMESPACE = "https://api.nmbrs.nl/soap/v3/{service}"
FAULT_TEXT = {
    1001: "Invalid Authentication",
    1002: "Unauthorized Access",
    1003: "Unauthorized Access: data filtered by tags",
    1006: "Generic Login Security Failure",
    2003: "No rights to this employee",
    2004: "No rights to this company",
    2046: "Not found",
    9999: "Unknown error",
}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class SoapFault(Exception):
    """Raised by a handler to answer a Nmbrs business fault."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class FaultSpec(BaseModel):
    """An injected fault; fields left out do not apply."""

    model_config = {"extra": "forbid"}

    operation: str | None = None
    company_id: int | None = None
    count: int | None = None
    code: int | None = None
    http_status: int | None = None
    truncate: bool = False
    latency_ms: int = 0
    throttle_per_s: float | None = None
    retry_after_s: int | None = None


@dataclass
class SandboxState:
    """The fake Nmbrs environment: dataset, credentials, faults and call counters."""

    dataset: Dataset
    username: str
    token: str
    domain: str
    data_path: Path | None = None
    faults: list[FaultSpec] = field(default_factory=list)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    calls_by_company: collections.Counter[int] = field(default_factory=collections.Counter)
    recent: collections.deque[float] = field(default_factory=collections.deque)
    by_company: dict[int, list[Employee]] = field(default_factory=dict)
    by_id: dict[int, Employee] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        self.by_id = {employee.id: employee for employee in self.dataset.employees}
        self.by_company = {company.id: [] for company in self.dataset.companies}
        for employee in self.dataset.employees:
            self.by_company.setdefault(employee.company_id, []).append(employee)

    def company(self, company_id: int) -> Company:
        company = self.dataset.company(company_id)
        if company is None:
            raise SoapFault(2004)
        return company

    def employee(self, employee_id: int) -> Employee:
        employee = self.by_id.get(employee_id)
        if employee is None:
            raise SoapFault(2003)
        return employee


STATE = web.AppKey("state", SandboxState)


# --- XML helpers ----------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat() + "T00:00:00"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class _Writer:
    """Appends elements in the service namespace; None becomes xsi:nil (nillable) or is left out."""

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def el(self, parent: etree._Element, name: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{self.ns}}}{name}")

    def put(self, parent: etree._Element, name: str, value: Any, nillable: bool = False) -> None:
        if value is None:
            if nillable:
                etree.SubElement(parent, f"{{{self.ns}}}{name}").set(_NIL, "true")
            return
        etree.SubElement(parent, f"{{{self.ns}}}{name}").text = _fmt(value)


def _envelope(envelope_ns: str) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{envelope_ns}}}Envelope", nsmap={"soap": envelope_ns, "xsi": XSI, "xsd": XSD})
    return root, etree.SubElement(root, f"{{{envelope_ns}}}Body")


def _xml_response(root: etree._Element, envelope_ns: str, status: int = 200) -> web.Response:
    content_type = "text/xml" if envelope_ns == SOAP11 else "application/soap+xml"
    body = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    return web.Response(body=body, status=status, content_type=content_type, charset="utf-8")


def fault_response(code: int | None, envelope_ns: str = SOAP11, client: str | None = None) -> web.Response:
    """A fault as ASMX sends it: HTTP 500, the Nmbrs code after '--->' in the faultstring."""
    if client is not None:
        text, kind = client, "Client"
    else:
        text = (
            "System.Web.Services.Protocols.SoapException: Server was unable to process request. "
            f"---> {code}: {FAULT_TEXT.get(code or 9999, 'Unknown error')}"
        )
        kind = "Server"
    root, body = _envelope(envelope_ns)
    fault = etree.SubElement(body, f"{{{envelope_ns}}}Fault")
    if envelope_ns == SOAP11:
        etree.SubElement(fault, "faultcode").text = f"soap:{kind}"
        etree.SubElement(fault, "faultstring").text = text
        etree.SubElement(fault, "detail")
    else:
        code_el = etree.SubElement(fault, f"{{{envelope_ns}}}Code")
        etree.SubElement(code_el, f"{{{envelope_ns}}}Value").text = (
            "soap:Receiver" if kind == "Server" else "soap:Sender"
        )
        reason = etree.SubElement(fault, f"{{{envelope_ns}}}Reason")
        text_el = etree.SubElement(reason, f"{{{envelope_ns}}}Text")
        text_el.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text_el.text = text
        etree.SubElement(fault, f"{{{envelope_ns}}}Detail")
    return _xml_response(root, envelope_ns, status=500)


# --- history helpers ------------------------------------------------------------------------------


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


# --- operation handlers: (state, params, writer, result element) -> None -----------------------------

Handler = Callable[[SandboxState, dict[str, str], _Writer, etree._Element], None]


def _company_id(params: dict[str, str]) -> int:
    return int(params.get("CompanyId") or params.get("CompanyID") or 0)


def op_list_companies(state: SandboxState, params: dict[str, str], w: _Writer, result: etree._Element) -> None:
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


def op_current_period(state: SandboxState, params: dict[str, str], w: _Writer, result: etree._Element) -> None:
    result.text = state.company(_company_id(params)).current_period


def op_company_agreements(state: SandboxState, params: dict[str, str], w: _Writer, result: etree._Element) -> None:
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


def op_employee_types(state: SandboxState, params: dict[str, str], w: _Writer, result: etree._Element) -> None:
    for employee_type in state.dataset.employee_types:
        item = w.el(result, "EmployeeType")
        w.put(item, "Id", employee_type.id)
        w.put(item, "Description", employee_type.description)


def op_list_by_company(state: SandboxState, params: dict[str, str], w: _Writer, result: etree._Element) -> None:
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

    def handler(state: SandboxState, params: dict[str, str], w: _Writer, result: etree._Element) -> None:
        company = state.company(_company_id(params))
        for employee in state.by_company.get(company.id, []):
            item = w.el(result, item_name)
            w.put(item, "EmployeeId", employee.id)
            history = w.el(item, container)
            for record in rows(employee):
                write(w, w.el(history, row_name), employee, record)

    return handler


def _write_personal(with_bsn: bool) -> Callable[..., None]:
    def write(w: _Writer, el: etree._Element, employee: Employee, p: PersonalInfo) -> None:
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
        w.put(el, "TelephonePrivate", p.phone_private)
        w.put(el, "TelephoneWork", p.phone_work)
        w.put(el, "TelephoneMobilePrivate", p.phone_mobile)
        w.put(el, "EmailPrivate", p.email_private)
        w.put(el, "EmailWork", p.email_work)
        w.put(el, "BurgerlijkeStaat", 0)
        w.put(el, "Naamstelling", 0)
        w.put(el, "Birthday", p.birthday, nillable=True)
        w.put(el, "CreationDate", p.created, nillable=True)
        w.put(el, "StartPeriod", p.start_period)
        w.put(el, "StartYear", p.start_year)

    return write


def _write_employment(w: _Writer, el: etree._Element, employee: Employee, e: Employment) -> None:
    w.put(el, "EmploymentId", e.employment_id)
    w.put(el, "CreationDate", e.created, nillable=True)
    w.put(el, "StartDate", e.start, nillable=True)
    w.put(el, "EndDate", e.end, nillable=True)
    w.put(el, "InitialStartDate", e.initial_start, nillable=True)


def _write_function(w: _Writer, el: etree._Element, employee: Employee, a: Assignment) -> None:
    w.put(el, "RecordId", a.record_id)
    function = w.el(el, "Function")
    w.put(function, "Id", a.ref_id)
    w.put(function, "Code", a.code)
    w.put(function, "Description", a.description)
    w.put(el, "CreationDate", a.created, nillable=True)
    w.put(el, "StartPeriod", a.start_period)
    w.put(el, "StartYear", a.start_year)


def _write_department(w: _Writer, el: etree._Element, employee: Employee, a: Assignment) -> None:
    w.put(el, "Id", a.ref_id)
    w.put(el, "Code", a.code)
    w.put(el, "Description", a.description)
    w.put(el, "CreationDate", a.created, nillable=True)
    w.put(el, "StartPeriod", a.start_period)
    w.put(el, "StartYear", a.start_year)


def _write_contract(w: _Writer, el: etree._Element, employee: Employee, c: Contract) -> None:
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


def _write_schedule(w: _Writer, el: etree._Element, employee: Employee, s: Schedule) -> None:
    w.put(el, "Id", s.id)
    for suffix, week in (("", s.week1), ("2", s.week2)):
        for day, hours in zip(_DAYS, week, strict=True):
            w.put(el, f"Hours{day}{suffix}", hours)
    w.put(el, "ParttimePercentage", s.parttime_percentage)
    w.put(el, "StartDate", s.start)
    w.put(el, "CreationDate", s.created)


def _write_address(w: _Writer, el: etree._Element, employee: Employee, a: Address) -> None:
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


def op_employee_agreement(state: SandboxState, params: dict[str, str], w: _Writer, result: etree._Element) -> None:
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
            "PersonalInfoItem", "EmployeePersonalInfos", "PersonalInfo_V2", lambda e: e.personal_info,
            _write_personal(with_bsn=True),
        ),
        "PersonalInfoWithoutBSN_Get_GetAllEmployeesByCompany": _bulk(
            "PersonalInfoItem", "EmployeePersonalInfos", "PersonalInfo_V2", lambda e: e.personal_info,
            _write_personal(with_bsn=False),
        ),
        "Employment_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeEmploymentItem", "EmployeeEmployments", "Employment", lambda e: e.employments,
            _write_employment,
        ),
        "Function_GetAll_AllEmployeesByCompany_V2": _bulk(
            "EmployeeFunctionItem_V2", "EmployeeFunctions", "EmployeeFunction", lambda e: e.functions,
            _write_function,
        ),
        "Department_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeDepartmentItem", "EmployeeDepartments", "Department_V2", lambda e: e.departments,
            _write_department,
        ),
        "Contract_GetAll_AllEmployeesByCompany": _bulk(
            "EmployeeContractItemGlobal", "EmployeeContracts", "EmployeeContract", lambda e: e.contracts,
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
}  # fmt: skip


# --- SOAP endpoint --------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _authorised(state: SandboxState, header: etree._Element | None, ns: str) -> bool:
    if header is None:
        return False
    username = header.findtext(f"{{{ns}}}Username")
    token = header.findtext(f"{{{ns}}}Token")
    domain = header.findtext(f"{{{ns}}}Domain")
    # Nmbrs calls Domain optional; a wrong one is an authentication failure in v3.
    return username == state.username and token == state.token and domain in (None, "", state.domain)


def _fault_target(state: SandboxState, params: dict[str, str]) -> int | None:
    if "EmployeeId" in params:
        employee = state.by_id.get(int(params["EmployeeId"] or 0))
        return employee.company_id if employee else None
    return _company_id(params) or None


async def soap(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    service = request.match_info["service"]
    ns = NAMESPACE.format(service=service)
    try:
        root = etree.fromstring(await request.read(), _PARSER)
    except etree.XMLSyntaxError:
        return web.Response(status=400, text="Bad Request: the body is not XML")
    envelope_ns = _local(root.tag) == "Envelope" and root.tag[1:].partition("}")[0]
    if envelope_ns not in (SOAP11, SOAP12):
        return web.Response(status=400, text="Bad Request: not a SOAP envelope")
    call = next(iter(root.findall(f"{{{envelope_ns}}}Body/*")), None)
    operation = _local(call.tag) if call is not None else ""
    handler = HANDLERS[service].get(operation)
    if call is None or handler is None or not call.tag.startswith(f"{{{ns}}}"):
        return fault_response(
            None,
            envelope_ns,
            client=f"Server did not recognize the value of HTTP Header SOAPAction: {ns}/{operation}.",
        )
    params = {_local(child.tag): (child.text or "").strip() for child in call}
    state.calls[operation] += 1
    target = _fault_target(state, params)
    if target is not None:
        state.calls_by_company[target] += 1
    if not _authorised(state, root.find(f"{{{envelope_ns}}}Header/{{{ns}}}AuthHeaderWithDomain"), ns):
        return fault_response(1001, envelope_ns)

    effect = await _apply_faults(state, operation, target)
    if effect is not None and effect.code is not None:
        return fault_response(effect.code, envelope_ns)
    if effect is not None and effect.http_status is not None:
        headers = {"Retry-After": str(effect.retry_after_s)} if effect.retry_after_s is not None else {}
        return web.Response(status=effect.http_status, text=f"HTTP {effect.http_status}", headers=headers)

    out, body = _envelope(envelope_ns)
    response = etree.SubElement(body, f"{{{ns}}}{operation}Response", nsmap={None: ns})
    result = etree.SubElement(response, f"{{{ns}}}{operation}Result")
    try:
        handler(state, params, _Writer(ns), result)
    except SoapFault as fault:
        return fault_response(fault.code, envelope_ns)
    except ValueError:  # a non-numeric id: ASMX answers a client fault
        return fault_response(None, envelope_ns, client="Server was unable to read request.")
    reply = _xml_response(out, envelope_ns)
    if effect is not None and effect.truncate:
        assert reply.body is not None and isinstance(reply.body, bytes)
        reply.body = reply.body[: len(reply.body) // 2]
    return reply


async def _apply_faults(state: SandboxState, operation: str, company_id: int | None) -> FaultSpec | None:
    """Apply latency and throttling of every matching fault; return the first one with an outcome."""
    now = time.monotonic()
    state.recent.append(now)
    while state.recent and state.recent[0] < now - 1:
        state.recent.popleft()
    delay = 0.0
    outcome = None
    for fault in list(state.faults):
        if fault.operation not in (None, operation) or fault.company_id not in (None, company_id):
            continue
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                state.faults.remove(fault)
        delay += fault.latency_ms / 1000
        if fault.throttle_per_s is not None and len(state.recent) > fault.throttle_per_s:
            delay += 0.5  # "if exceeded a delay of half a second will occur"
        if outcome is None and (fault.code is not None or fault.http_status is not None or fault.truncate):
            outcome = fault
    if delay:
        await asyncio.sleep(delay)
    return outcome


async def wsdl(request: web.Request) -> web.StreamResponse:
    if not any(key.lower() == "wsdl" for key in request.query):
        return web.Response(status=404, text="Only ?WSDL is served here")
    service = request.match_info["service"]
    text = (WSDL_DIR / f"{service}.wsdl").read_text(encoding="utf-8")
    address = str(request.url.with_query(None))
    text = text.replace(f"http://localhost/soap/v3/{service}.asmx", address)
    return web.Response(text=text, content_type="text/xml", charset="utf-8")


# --- admin API ------------------------------------------------------------------------------------


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def admin_dataset(request: web.Request) -> web.StreamResponse:
    return web.json_response(text=request.app[STATE].dataset.model_dump_json())


async def admin_reload(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.json() if request.can_read_body else {}
    path = Path(body["path"]) if body.get("path") else state.data_path
    if path is None:
        return _json_error(400, "no data file to reload: pass {'path': ...}")
    state.dataset = load_dataset(path)
    state.data_path = path
    state.reindex()
    return web.json_response({"employees": len(state.dataset.employees)})


def _new_employee(state: SandboxState, body: dict[str, Any]) -> Employee:
    """The short hire form: one record in each history, starting on `start`."""
    start = date.fromisoformat(body["start"])
    company = state.company(int(body["company_id"]))
    created = datetime.combine(state.dataset.reference_date, datetime.min.time())
    record = max([0, *(e.id for e in state.dataset.employees)]) * 10  # record ids: above any employee id
    hours = float(body.get("hours_per_week", 40))
    function = body.get("function", {"id": 1, "code": 1, "description": "Medewerker"})
    department = body.get("department", {"id": 1, "code": 1, "description": "Algemeen"})
    agreement = next((a for a in company.labour_agreements if a.default), None) or next(
        iter(company.labour_agreements), None
    )
    numbers = [e.number for e in state.by_company.get(company.id, [])]
    return Employee(
        id=max([100_000, *(e.id for e in state.dataset.employees)]) + 1,
        company_id=company.id,
        number=max([0, *numbers]) + 1,
        bsn=body.get("bsn", ""),
        personal_info=[
            PersonalInfo(
                id=record + 1,
                start_year=start.year,
                start_period=start.month,
                created=created,
                first_name=body.get("first_name"),
                prefix=body.get("prefix"),
                last_name=body["last_name"],
                gender=body.get("gender", "undefined"),
                email_work=body.get("email_work"),
            )
        ],
        employments=[Employment(employment_id=record + 2, created=created, start=start, initial_start=start)],
        functions=[_assignment(record + 3, function, start, created)],
        departments=[_assignment(record + 4, department, start, created)],
        contracts=[
            Contract(contract_id=record + 5, created=created, start=start, indefinite=True, hours_per_week=hours)
        ],
        schedules=[_schedule(record + 6, hours, start, created)],
        addresses=[_address(record + 7, body["address"], start, created)] if body.get("address") else [],
        labour_agreements=(
            [
                LabourAgreementAssignment(
                    start_year=start.year, start_period=start.month, labour_agreement_id=agreement.id
                )
            ]
            if agreement
            else []
        ),
    )


def _assignment(record_id: int, ref: dict[str, Any], start: date, created: datetime) -> Assignment:
    return Assignment(
        record_id=record_id,
        ref_id=int(ref["id"]),
        code=int(ref.get("code", ref["id"])),
        description=ref["description"],
        start_year=start.year,
        start_period=start.month,
        created=created,
    )


def _address(record_id: int, address: dict[str, Any], start: date, created: datetime) -> Address:
    """A home address from `start` (the short form: street, house_number, postal_code, city, ...)."""
    return Address.model_validate(
        {"id": record_id, "start_year": start.year, "start_period": start.month, "created": created, **address}
    )


def _schedule(record_id: int, hours: float, start: date, created: datetime) -> Schedule:
    week1 = [round(hours / 5, 2)] * 5 + [0.0, 0.0]
    return Schedule(id=record_id, created=created, start=start, week1=week1, parttime_percentage=hours / 40 * 100)


async def admin_add_employee(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.json()
    try:
        employee = Employee.model_validate(body) if "personal_info" in body else _new_employee(state, body)
    except (ValidationError, KeyError, ValueError) as error:
        return _json_error(400, str(error))
    except SoapFault:
        return _json_error(404, "no such company")
    if employee.id in state.by_id:
        return _json_error(409, f"employee {employee.id} exists")
    state.dataset.employees.append(employee)
    state.reindex()
    return web.json_response({"id": employee.id}, status=201)


def _open_end(records: list[Any], end: date) -> None:
    for record in records:
        if record.end is None or record.end > end:
            record.end = end
            if isinstance(record, Contract):
                record.indefinite = False


async def admin_change_employee(request: web.Request) -> web.StreamResponse:
    """One or more changes to an employee, effective from `as_of` (see the module docstring)."""
    state = request.app[STATE]
    employee = state.by_id.get(int(request.match_info["employee_id"]))
    if employee is None:
        return _json_error(404, "no such employee")
    body = await request.json()
    as_of = date.fromisoformat(body["as_of"]) if "as_of" in body else state.dataset.reference_date
    created = datetime.now().replace(microsecond=0)
    record = max(
        [
            0,
            *(r.record_id for r in employee.functions + employee.departments),
            *(s.id for s in employee.schedules),
            *(a.id for a in employee.addresses),
        ]
    )
    answer: dict[str, Any] = {"id": employee.id}
    try:
        if "function" in body:
            employee.functions.append(_assignment(record + 1, body["function"], as_of, created))
        if "department" in body:
            employee.departments.append(_assignment(record + 2, body["department"], as_of, created))
        if "hours_per_week" in body:
            hours = float(body["hours_per_week"])
            employee.schedules.append(_schedule(record + 3, hours, as_of, created))
            for contract in employee.contracts:
                if contract.start <= as_of and (contract.end is None or contract.end >= as_of):
                    contract.hours_per_week = hours
        if "labour_agreement_id" in body:
            employee.labour_agreements.append(
                LabourAgreementAssignment(
                    start_year=as_of.year,
                    start_period=as_of.month,
                    labour_agreement_id=int(body["labour_agreement_id"]),
                )
            )
        if "personal_info" in body:
            latest = employee.current_personal_info()
            update = {"id": latest.id + 1_000_000, "start_year": as_of.year, "start_period": as_of.month}
            changed = latest.model_copy(update={**update, "created": created})
            employee.personal_info.append(
                PersonalInfo.model_validate({**changed.model_dump(), **body["personal_info"]})
            )
        if "address" in body:
            _move_house(employee, _address(record + 4, body["address"], as_of, created))
        if "end" in body:
            end = date.fromisoformat(body["end"])
            _open_end(employee.employments, end)
            _open_end(employee.contracts, end)
        if "company_id" in body and int(body["company_id"]) != employee.company_id:
            answer["new_id"] = _move(state, employee, state.company(int(body["company_id"])), as_of)
    except (ValidationError, KeyError, ValueError) as error:
        return _json_error(400, str(error))
    except SoapFault:
        return _json_error(404, "no such company")
    state.reindex()
    return web.json_response(answer)


def _move_house(employee: Employee, new: Address) -> None:
    """A new home address: the open home addresses end with the period before it starts."""
    year, period = (new.start_year, new.start_period - 1) if new.start_period > 1 else (new.start_year - 1, 12)
    for address in employee.addresses:
        if address.type == new.type and address.end_year is None:
            address.end_year, address.end_period = year, period
    employee.addresses.append(new)


def _home_address(employee: Employee) -> dict[str, Any] | None:
    """The latest home address as the short form, to carry over to a new employment."""
    homes = [a for a in employee.addresses if a.type == "HomeAddress"]
    latest = max(homes, key=lambda a: (a.start_year, a.start_period, a.created), default=None)
    if latest is None:
        return None
    return latest.model_dump(include={"street", "house_number", "house_number_addition", "postal_code", "city"})


def _move(state: SandboxState, employee: Employee, target: Company, as_of: date) -> int:
    """A move to another company is, in Nmbrs, an end here and a new employee there (same BSN)."""
    _open_end(employee.employments, as_of - timedelta(days=1))
    _open_end(employee.contracts, as_of - timedelta(days=1))
    person = employee.current_personal_info()
    hours = employee.schedules[-1].hours_per_week() if employee.schedules else 40.0
    new = _new_employee(
        state,
        {
            "company_id": target.id,
            "start": as_of.isoformat(),
            "first_name": person.first_name,
            "prefix": person.prefix,
            "last_name": person.last_name,
            "gender": person.gender,
            "hours_per_week": hours,
            "bsn": employee.bsn,
            "address": _home_address(employee),
            **({"function": _ref(employee.functions[-1])} if employee.functions else {}),
            **({"department": _ref(employee.departments[-1])} if employee.departments else {}),
        },
    )
    state.dataset.employees.append(new)
    return new.id


def _ref(assignment: Assignment) -> dict[str, Any]:
    return {"id": assignment.ref_id, "code": assignment.code, "description": assignment.description}


async def admin_delete_employee(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    employee_id = int(request.match_info["employee_id"])
    if employee_id not in state.by_id:
        return _json_error(404, "no such employee")
    state.dataset.employees = [e for e in state.dataset.employees if e.id != employee_id]
    state.reindex()
    return web.Response(status=204)


async def admin_add_company(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        company = Company.model_validate(await request.json())
    except ValidationError as error:
        return _json_error(400, str(error))
    if state.dataset.company(company.id) is not None:
        return _json_error(409, f"company {company.id} exists")
    state.dataset.companies.append(company)
    state.reindex()
    return web.json_response({"id": company.id}, status=201)


async def admin_add_agreement(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    company = state.dataset.company(int(request.match_info["company_id"]))
    if company is None:
        return _json_error(404, "no such company")
    try:
        agreement = LabourAgreement.model_validate(await request.json())
    except ValidationError as error:
        return _json_error(400, str(error))
    company.labour_agreements.append(agreement)
    return web.json_response({"id": agreement.id}, status=201)


async def admin_add_fault(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        fault = FaultSpec.model_validate(await request.json())
    except ValidationError as error:
        return _json_error(400, str(error))
    state.faults.append(fault)
    return web.json_response({"faults": len(state.faults)}, status=201)


async def admin_clear_faults(request: web.Request) -> web.StreamResponse:
    request.app[STATE].faults.clear()
    return web.Response(status=204)


async def admin_calls(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return web.json_response(
        {
            "total": sum(state.calls.values()),
            "by_operation": dict(state.calls),
            "by_company": {str(k): v for k, v in state.calls_by_company.items()},
        }
    )


async def admin_reset_calls(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.calls.clear()
    state.calls_by_company.clear()
    return web.Response(status=204)


def create_app(
    dataset: Dataset, username: str, token: str, domain: str, data_path: Path | None = None
) -> web.Application:
    """The sandbox application; `data_path` is the file POST /admin/reload reads again."""
    app = web.Application(client_max_size=64 * 1024**2)
    app[STATE] = SandboxState(dataset=dataset, username=username, token=token, domain=domain, data_path=data_path)
    service = "/soap/v3/{service:EmployeeService|CompanyService}.asmx"
    app.router.add_post(service, soap)
    app.router.add_get(service, wsdl)
    app.router.add_get("/admin/dataset", admin_dataset)
    app.router.add_post("/admin/reload", admin_reload)
    app.router.add_post("/admin/employees", admin_add_employee)
    app.router.add_patch("/admin/employees/{employee_id:\\d+}", admin_change_employee)
    app.router.add_delete("/admin/employees/{employee_id:\\d+}", admin_delete_employee)
    app.router.add_post("/admin/companies", admin_add_company)
    app.router.add_post("/admin/companies/{company_id:\\d+}/labour-agreements", admin_add_agreement)
    app.router.add_post("/admin/faults", admin_add_fault)
    app.router.add_delete("/admin/faults", admin_clear_faults)
    app.router.add_get("/admin/calls", admin_calls)
    app.router.add_delete("/admin/calls", admin_reset_calls)
    return app


def run(data: Path, port: int, host: str, username: str, token: str, domain: str) -> None:
    """Serve the dataset in `data` until interrupted."""
    app = create_app(load_dataset(data), username, token, domain, data_path=data)
    web.run_app(app, host=host, port=port, print=None)
