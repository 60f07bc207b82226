"""Pure conversion of Nmbrs SOAP v3 responses to normalised records, resolving histories to a date.

Works on the response XML (lxml) rather than on zeep objects: zeep's object building costs more than
the whole rest of a snapshot for large companies, and reading children by local name tolerates the
uncertain v3 shapes (EmployeeContractItemGlobal vs EmployeeContractItem, extra or missing fields).
No I/O, no clock: `as_of` and `fetched_at` come from the caller.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar, cast

from lxml import etree

from worker.adapters.nmbrs.errors import NmbrsMalformedResponse, fault_from_string
from worker.domain.naamstelling import parse_name_usage
from worker.domain.nmbrs_records import (
    CodeRef,
    CompanySnapshot,
    ContractPeriod,
    EmploymentPeriod,
    Gender,
    LabourAgreementRef,
    NmbrsCompany,
    NmbrsEmployee,
    SchedulePeriod,
)
from worker.domain.normalisation import normalise_postcode

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True, remove_pis=True
)
_HOURS = Decimal("0.01")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEK1 = tuple(f"Hours{day}" for day in _DAYS)
_WEEK2 = tuple(f"Hours{day}2" for day in _DAYS)

_EMPLOYEE_ID_NAMES = ("EmployeeId", "EmployeeID")
_EMPLOYEE_ID_TAGS = tuple("}" + name for name in _EMPLOYEE_ID_NAMES)

T = TypeVar("T")
Element: TypeAlias = etree._Element


def _tag(element: Element) -> str:
    # The parser drops comments and processing instructions, so every tag left is a (namespaced) str.
    return cast(str, element.tag)


# --- envelope -------------------------------------------------------------------------------------


# lxml builds an element's tag from namespace and name on every access, a million times per 10,000
# employees. Nmbrs declares its service namespace once, as the default on the response element: without
# that declaration every field's tag is its bare name. The parsers read children by local name, so an
# answer with prefixed or further namespaces parses the same, only slower.
_SERVICE_NAMESPACE = re.compile(rb' xmlns="https://api\.nmbrs\.nl/soap/v3/[A-Za-z]+"')


def _parse(body: bytes, operation: str) -> tuple[Element, str]:
    try:
        root = etree.fromstring(_SERVICE_NAMESPACE.sub(b"", body, count=1), _PARSER)
    except etree.XMLSyntaxError:
        raise NmbrsMalformedResponse("response is not well-formed XML", operation=operation) from None
    ns, _, name = _tag(root).rpartition("}")
    ns = ns.lstrip("{")
    if name != "Envelope" or ns not in (SOAP11, SOAP12):
        raise NmbrsMalformedResponse("response is not a SOAP envelope", operation=operation)
    soap_body = root.find(f"{{{ns}}}Body")
    if soap_body is None:
        raise NmbrsMalformedResponse("SOAP envelope without a Body", operation=operation)
    return soap_body, ns


def _fault_text(soap_body: Element, ns: str) -> str | None:
    fault = soap_body.find(f"{{{ns}}}Fault")
    if fault is None:
        return None
    if ns == SOAP11:
        return fault.findtext("faultstring") or ""
    # SOAP 1.2: Reason/Text
    return fault.findtext(f"{{{ns}}}Reason/{{{ns}}}Text") or ""


def fault_string(body: bytes) -> str | None:
    """The faultstring when `body` is a SOAP fault envelope, else None (also for non-XML bodies)."""
    try:
        soap_body, ns = _parse(body, "")
    except NmbrsMalformedResponse:
        return None
    return _fault_text(soap_body, ns)


def result_element(body: bytes, operation: str, scrub: Callable[[str], str] = str) -> Element | None:
    """The `<{operation}Result>` element of a response; None when Nmbrs omitted it (an empty result).

    Raises the typed fault for a fault envelope (its text passed through `scrub` to drop secrets) and
    NmbrsMalformedResponse for anything that is not the expected response.
    """
    soap_body, ns = _parse(body, operation)
    fault = _fault_text(soap_body, ns)
    if fault is not None:
        raise fault_from_string(scrub(fault), operation=operation)
    response = next(iter(soap_body), None)
    if response is None or _local(_tag(response)) != f"{operation}Response":
        raise NmbrsMalformedResponse(f"expected {operation}Response", operation=operation)
    for child in response:
        if _local(_tag(child)) == f"{operation}Result":
            return None if child.get(_NIL) == "true" else child
    return None


# --- scalar helpers ---------------------------------------------------------------------------------
# These run for every field of every employee (about a million per 10,000 employees), so they stay lean:
# a record becomes one {local name: text} dict and only the fields we use are converted.

Fields = dict[str, str | None]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _fields(element: Element) -> Fields:
    """{local name: text} of the children; nil and empty elements have no text and read as None.

    All children of an ASMX record share one namespace (elementFormDefault="qualified"), so the prefix
    length is measured once per record; without one (as _parse leaves Nmbrs' answers) the tag is the name.
    """
    cut = _tag(element).find("}") + 1
    if not cut:
        return cast(Fields, {child.tag: child.text for child in element})
    return {_tag(child)[cut:]: child.text for child in element}


def _text(fields: Fields, name: str) -> str | None:
    return fields.get(name) or None


def _name(fields: Fields, name: str) -> str | None:
    # NFC so that 'Chloë' typed with a combining diaeresis equals the precomposed form.
    text = fields.get(name)
    return unicodedata.normalize("NFC", text.strip()) or None if text else None


def _int(fields: Fields, name: str) -> int | None:
    text = fields.get(name)
    return int(text) if text else None


def _decimal(fields: Fields, name: str) -> Decimal | None:
    text = fields.get(name)
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} is not a decimal") from None


def _hours(fields: Fields, name: str) -> Decimal | None:
    """A decimal field rounded to hundredths, as hours and percentages are stored."""
    value = _decimal(fields, name)
    return value.quantize(_HOURS) if value is not None else None


def _date(fields: Fields, name: str) -> date | None:
    # Nmbrs sends naive local date-times (2017-08-11T00:00:00); the date part is what counts.
    text = fields.get(name)
    return date.fromisoformat(text[:10]) if text else None


def _bool(fields: Fields, name: str) -> bool | None:
    text = fields.get(name)
    return None if not text else text.strip().lower() in ("true", "1")


def _items(result: Element | None) -> Iterable[Element]:
    """The non-nil children of an array element (a nil item has no children)."""
    if result is None:
        return ()
    return (child for child in result if len(child))


# --- BSN ------------------------------------------------------------------------------------------


def bsn_hash(bsn: str | None, key: bytes) -> str | None:
    """HMAC-SHA256 (hex) of the BSN as 9 digits. None for an empty or all-zero BSN, which Nmbrs uses
    for 'unknown' and which must not make unrelated people look like the same human."""
    digits = bsn if bsn and bsn.isascii() and bsn.isdigit() else re.sub(r"[^0-9]", "", bsn or "")
    if not digits.strip("0"):
        return None
    return hmac.digest(key, digits.zfill(9).encode("ascii"), "sha256").hex()


# --- periods and histories ------------------------------------------------------------------------


def period_of(day: date, period_type: str | None) -> tuple[int, int]:
    """(year, payroll period) containing `day` for the company's period type (Month when unknown)."""
    if period_type == "Week4":
        return day.year, min(13, (day.timetuple().tm_yday - 1) // 28 + 1)
    return day.year, day.month


# The rows of a history are NamedTuples: immutable like a frozen dataclass at half its construction cost, and a
# large poll builds one for every history record.


class PeriodRow(NamedTuple, Generic[T]):
    """One record of a period-based history (personal info, function, department)."""

    year: int
    period: int
    created: str  # ISO 8601 as sent: compares in time order, and parsing it would cost for nothing
    value: T


def resolve_period(rows: list[PeriodRow[T]], current: tuple[int, int]) -> T | None:
    """The record valid in `current`: the latest start not after it, ties broken by creation date.

    When every record starts later (a future hire), the earliest one is used so the employee still
    has a name and function before the start date.
    """
    if not rows:
        return None

    def key(row: PeriodRow[T]) -> tuple[int, int, str]:
        return row.year, row.period, row.created

    started = [row for row in rows if (row.year, row.period) <= current]
    return max(started, key=key).value if started else min(rows, key=key).value


# --- per-operation parsers ------------------------------------------------------------------------


def parse_companies(result: Element | None) -> list[NmbrsCompany]:
    companies = []
    for item in _items(result):
        f = _fields(item)
        number = _text(f, "Number")
        companies.append(
            NmbrsCompany(
                company_id=_int(f, "ID"),
                number=number,
                name=_name(f, "Name") or "",
                phone=_text(f, "PhoneNumber"),
                email=_text(f, "Email"),
                website=_text(f, "Website"),
                kvk_number=_text(f, "KvkNr"),
                period_type=_text(f, "LoonaangifteTijdvak"),
            )
        )
    return companies


def parse_text(result: Element | None) -> str | None:
    return result.text.strip() if result is not None and result.text and result.text.strip() else None


def _labour_agreement(f: Fields) -> LabourAgreementRef | None:
    agreement_id = _int(f, "Id")
    if not agreement_id:  # Nmbrs answers Id 0 for 'no labour agreement'
        return None
    return LabourAgreementRef(
        id=agreement_id,
        guid=_text(f, "Guid"),
        number=_text(f, "Number"),
        description=_name(f, "Description") or "",
    )


def parse_company_labour_agreements(result: Element | None) -> list[LabourAgreementRef]:
    agreements = (_labour_agreement(_fields(item)) for item in _items(result))
    return [agreement for agreement in agreements if agreement is not None]


def parse_employee_labour_agreement(result: Element | None) -> LabourAgreementRef | None:
    return None if result is None else _labour_agreement(_fields(result))


def parse_employee_types(result: Element | None) -> list[int]:
    types = (_int(_fields(item), "Id") for item in _items(result))
    return [type_id for type_id in types if type_id is not None]


class Listed(NamedTuple):
    """An employee as List_GetByCompany shows it."""

    number: str | None
    display_name: str | None


def parse_employee_list(result: Element | None) -> dict[int, Listed]:
    listed = {}
    for item in _items(result):
        f = _fields(item)
        listed[_int(f, "Id") or 0] = Listed(_text(f, "Number"), _name(f, "DisplayName"))
    listed.pop(0, None)
    return listed


def _per_employee(result: Element | None, row: Callable[[Element], T | None]) -> dict[int, list[T]]:
    """Group the history rows of a bulk '..._AllEmployeesByCompany' answer by EmployeeId.

    Tolerant of the item element's name and of the history container's name: any child that is not
    EmployeeId holds rows. Items repeated for one employee are merged.
    """
    grouped: dict[int, list[T]] = {}
    for item in _items(result):
        employee_id = None
        rows: list[T] = []
        for child in item:
            tag = _tag(child)
            if tag in _EMPLOYEE_ID_NAMES or tag.endswith(_EMPLOYEE_ID_TAGS):
                employee_id = int(child.text or "")
            else:
                for element in child:
                    if len(element):  # a nil record has no children
                        value = row(element)
                        if value is not None:
                            rows.append(value)
        if employee_id is None:
            raise ValueError("bulk item without EmployeeId")
        grouped.setdefault(employee_id, []).extend(rows)
    return grouped


_GENDERS = {gender.value: gender for gender in Gender}


def _gender(text: str | None) -> Gender:
    return _GENDERS.get((text or "").lower(), Gender.UNDEFINED)


def parse_personal_infos(result: Element | None, bsn_key: bytes | None) -> dict[int, list[PeriodRow[dict[str, Any]]]]:
    """Personal info histories; the BSN is hashed right here and the clear value dropped.

    `bsn_key` None means the answer came from PersonalInfoWithoutBSN (or BSNs must not be read).
    """

    def row(element: Element) -> PeriodRow[dict[str, Any]]:
        f = _fields(element)
        person = {
            "bsn_hash": bsn_hash(_text(f, "BSN"), bsn_key) if bsn_key is not None else None,
            "first_name": _name(f, "FirstName"),
            "initials": _name(f, "Initials"),
            "prefix": _name(f, "Prefix"),
            "last_name": _name(f, "LastName"),
            "partner_prefix": _name(f, "PartnerPrefix"),
            "partner_last_name": _name(f, "PartnerLastName"),
            "name_usage": parse_name_usage(_text(f, "Naamstelling")),
            "nickname": _name(f, "Nickname"),
            "gender": _gender(_text(f, "Gender")),
            "birthday": _date(f, "Birthday"),
            "email_work": _text(f, "EmailWork"),
            "email_private": _text(f, "EmailPrivate"),
            "phone_work": _text(f, "TelephoneWork"),
            "phone_mobile": _text(f, "TelephoneMobileWork") or _text(f, "TelephoneMobilePrivate"),
            "phone_private": _text(f, "TelephonePrivate"),
        }
        return PeriodRow(_int(f, "StartYear") or 0, _int(f, "StartPeriod") or 0, f.get("CreationDate") or "", person)

    return _per_employee(result, row)


def _code_ref(f: Fields) -> CodeRef | None:
    ref_id = _int(f, "Id")
    if not ref_id:  # nil or Id 0: 'no function/department' (as HelloID treats it)
        return None
    description = _name(f, "Description") or ""
    return CodeRef(id=ref_id, code=_text(f, "Code") or "", description=description)


def parse_functions(result: Element | None) -> dict[int, list[PeriodRow[CodeRef | None]]]:
    def row(element: Element) -> PeriodRow[CodeRef | None]:
        f = _fields(element)
        function = element.find("{*}Function")
        ref = _code_ref(_fields(function)) if function is not None and len(function) else None
        return PeriodRow(_int(f, "StartYear") or 0, _int(f, "StartPeriod") or 0, f.get("CreationDate") or "", ref)

    return _per_employee(result, row)


def parse_departments(result: Element | None) -> dict[int, list[PeriodRow[CodeRef | None]]]:
    def row(element: Element) -> PeriodRow[CodeRef | None]:
        f = _fields(element)
        return PeriodRow(
            _int(f, "StartYear") or 0, _int(f, "StartPeriod") or 0, f.get("CreationDate") or "", _code_ref(f)
        )

    return _per_employee(result, row)


def parse_employments(result: Element | None) -> dict[int, list[EmploymentPeriod]]:
    def row(element: Element) -> EmploymentPeriod | None:
        f = _fields(element)
        start = _date(f, "StartDate") or _date(f, "InitialStartDate")
        if start is None:
            return None
        return EmploymentPeriod(employment_id=_int(f, "EmploymentId") or 0, start=start, end=_date(f, "EndDate"))

    return {emp: sorted(rows, key=lambda p: p.start) for emp, rows in _per_employee(result, row).items()}


class ContractRow(NamedTuple):
    """A contract with its creation date, kept to pick the newest of duplicated ContractIDs."""

    created: str
    period: ContractPeriod


def parse_contracts(result: Element | None) -> dict[int, list[ContractRow]]:
    def row(element: Element) -> ContractRow | None:
        f = _fields(element)
        start = _date(f, "StartDate")
        if start is None:
            return None
        period = ContractPeriod(
            contract_id=_int(f, "ContractID") or 0,
            start=start,
            end=_date(f, "EndDate"),
            hours_per_week=_hours(f, "HoursPerWeek"),
            indefinite=bool(_bool(f, "Indefinite")),
        )
        return ContractRow(f.get("CreationDate") or "", period)

    return _per_employee(result, row)


class ScheduleRow(NamedTuple):
    created: str
    period: SchedulePeriod


def schedule_hours(week1: Decimal, week2: Decimal) -> Decimal:
    """Hours per week of a schedule from its week totals: week 1, or the average of a two-week rota."""
    return ((week1 + week2) / 2 if week2 else week1).quantize(_HOURS)


def _week_total(f: Fields, names: tuple[str, ...]) -> Decimal:
    total = Decimal(0)
    for name in names:
        text = f.get(name)
        if text and text != "0":  # most days of most schedules are 0: skip the Decimal for them
            total += Decimal(text)
    return total


def parse_schedules(result: Element | None) -> dict[int, list[ScheduleRow]]:
    def row(element: Element) -> ScheduleRow | None:
        f = _fields(element)
        start = _date(f, "StartDate")
        if start is None:
            return None
        period = SchedulePeriod(
            start=start,
            hours_per_week=schedule_hours(_week_total(f, _WEEK1), _week_total(f, _WEEK2)),
            parttime_percentage=_hours(f, "ParttimePercentage"),
        )
        return ScheduleRow(f.get("CreationDate") or "", period)

    return _per_employee(result, row)


class AddressRow(NamedTuple):
    """A home address valid from (year, period) up to and including `end` (None: still valid)."""

    year: int
    period: int
    end: tuple[int, int] | None
    created: str
    postcode: str | None


HOME_ADDRESS = "homeaddress"


def parse_addresses(result: Element | None) -> dict[int, list[AddressRow]]:
    """Home-address histories (EmployeeAddress_V2); post, holiday and other address types are dropped.

    A record without a Type counts as a home address. The postcode is normalised ('1234 ab' -> '1234AB').
    """

    def row(element: Element) -> AddressRow | None:
        f = _fields(element)
        if (_text(f, "Type") or HOME_ADDRESS).strip().lower() != HOME_ADDRESS:
            return None
        end_year = _int(f, "EndYear")
        # An end year without a period: valid through that whole year.
        end = (end_year, _int(f, "EndPeriod") or 99) if end_year else None
        return AddressRow(
            _int(f, "StartYear") or 0,
            _int(f, "StartPeriod") or 0,
            end,
            f.get("CreationDate") or "",
            normalise_postcode(_text(f, "PostalCode")),
        )

    return _per_employee(result, row)


def resolve_address(rows: list[AddressRow], current: tuple[int, int]) -> AddressRow | None:
    """The home address valid in `current`, as resolve_period picks among the records not yet ended
    (a future hire gets the earliest address); None when every record has ended."""
    open_rows = [PeriodRow(r.year, r.period, r.created, r) for r in rows if r.end is None or r.end >= current]
    return resolve_period(open_rows, current)


# --- assembly -------------------------------------------------------------------------------------


def _newest_per_key(rows: Iterable[tuple[Any, str, T]]) -> list[T]:
    """Keep, per key, the row created last (Nmbrs can return a record id twice: HelloID saw it)."""
    best: dict[Any, tuple[str, T]] = {}
    for key, created, value in rows:
        if key not in best or created >= best[key][0]:
            best[key] = (created, value)
    return [value for _, value in best.values()]


def _schedule_on(schedules: tuple[SchedulePeriod, ...], day: date) -> SchedulePeriod | None:
    valid = [s for s in schedules if s.start <= day]
    return valid[-1] if valid else (schedules[0] if schedules else None)


def _with_hours(contract: ContractPeriod, schedules: tuple[SchedulePeriod, ...], as_of: date) -> ContractPeriod:
    """v3 contracts carry HoursPerWeek; when absent take the schedule valid on `as_of` within the contract."""
    if contract.hours_per_week is not None:
        return contract
    day = max(contract.start, min(as_of, contract.end or as_of))
    schedule = _schedule_on(schedules, day)
    if schedule is None:
        return contract
    return contract.model_copy(update={"hours_per_week": schedule.hours_per_week})


@dataclass(frozen=True, slots=True)
class CompanyData:
    """Everything fetched for one company, parsed but not yet resolved."""

    company: NmbrsCompany
    current_period: str | None
    labour_agreements: list[LabourAgreementRef]
    listed: dict[int, Listed]
    personal: dict[int, list[PeriodRow[dict[str, Any]]]]
    employments: dict[int, list[EmploymentPeriod]]
    functions: dict[int, list[PeriodRow[CodeRef | None]]]
    departments: dict[int, list[PeriodRow[CodeRef | None]]]
    contracts: dict[int, list[ContractRow]]
    schedules: dict[int, list[ScheduleRow]]
    employee_labour_agreements: dict[int, LabourAgreementRef | None] | None = None
    addresses: dict[int, list[AddressRow]] = field(default_factory=dict)


def build_employee(data: CompanyData, employee_id: int, as_of: date) -> NmbrsEmployee:
    """One employee resolved to `as_of` from the per-company histories."""
    current = period_of(as_of, data.company.period_type)
    listed = data.listed[employee_id]
    history = data.personal.get(employee_id)
    if not history:
        # Listed but absent from the bulk answer: an incomplete answer, not a person without a name
        # (which would blank Nmbrs-owned fields downstream).
        raise ValueError(f"employee {employee_id} is listed but has no personal info")
    person = resolve_period(history, current) or {}
    schedules = tuple(
        sorted(
            _newest_per_key((r.period.start, r.created, r.period) for r in data.schedules.get(employee_id, [])),
            key=lambda s: s.start,
        )
    )
    contracts = sorted(
        _newest_per_key((r.period.contract_id, r.created, r.period) for r in data.contracts.get(employee_id, [])),
        key=lambda c: (c.start, c.contract_id),
    )
    if data.employee_labour_agreements is not None:
        agreement = data.employee_labour_agreements.get(employee_id)
    elif len(data.labour_agreements) == 1:
        # One CAO in the company: every employee has it, no per-employee call needed.
        agreement = data.labour_agreements[0]
    else:
        agreement = None
    address = resolve_address(data.addresses.get(employee_id, []), current)
    return NmbrsEmployee(
        employee_id=employee_id,
        company_id=data.company.company_id,
        number=listed.number,
        **{**person, "last_name": person.get("last_name") or listed.display_name or ""},
        function=resolve_period(data.functions.get(employee_id, []), current),
        department=resolve_period(data.departments.get(employee_id, []), current),
        labour_agreement=agreement,
        postcode=address.postcode if address else None,
        employments=tuple(data.employments.get(employee_id, [])),
        contracts=tuple(_with_hours(c, schedules, as_of) for c in contracts),
        schedules=schedules,
    )


def build_snapshot(data: CompanyData, as_of: date, fetched_at: datetime, soap_calls: int) -> CompanySnapshot:
    """The company snapshot: every listed employee, resolved to `as_of`, in EmployeeId order."""
    if data.listed and not data.employments:
        # Every Nmbrs employee has an employment (its start of service): an answer without any for a company
        # that lists employees is incomplete, and would end or blank them all downstream.
        raise ValueError("the employment answer holds none of the listed employees")
    return CompanySnapshot(
        company=data.company,
        current_period=data.current_period,
        labour_agreements=tuple(data.labour_agreements),
        employees=tuple(build_employee(data, employee_id, as_of) for employee_id in sorted(data.listed)),
        fetched_at=fetched_at,
        soap_calls=soap_calls,
    )
