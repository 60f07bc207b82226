"""Nmbrs data as the rest of the system sees it: normalised, frozen pydantic records (no zeep, no BSN)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from worker.domain.naamstelling import NameUsage

# Nmbrs dates are Dutch local dates: "today" for history, leave and contracts is today in Amsterdam.
NMBRS_TIMEZONE = ZoneInfo("Europe/Amsterdam")


def nmbrs_today(at: datetime) -> date:
    """The Dutch calendar date at the (aware) moment `at`."""
    return at.astimezone(NMBRS_TIMEZONE).date()


class Record(BaseModel):
    """Base of every normalised record: immutable, unknown fields ignored (additive changes are safe)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    # JSON values of later-added fields that hash as their absence (see snapshot_diff.fingerprint).
    fingerprint_optional: ClassVar[dict[str, Any]] = {}


class CodeRef(Record):
    """A department or function as Nmbrs assigns it: defined per debtor, referenced by id."""

    id: int
    code: str
    description: str


class LabourAgreementRef(Record):
    """The CAO (collective labour agreement) of an employee or company."""

    id: int
    guid: str | None = None
    number: str | None = None
    description: str


class EmploymentPeriod(Record):
    """A period of service (in dienst); start and end of service come from here. end None = open."""

    employment_id: int
    start: date
    end: date | None = None


class ContractPeriod(Record):
    """An employment contract; v3 carries hours per week on the contract itself."""

    contract_id: int
    start: date
    end: date | None = None
    hours_per_week: Decimal | None = None
    indefinite: bool = False


class SchedulePeriod(Record):
    """A work schedule (rooster) valid from `start` until the next schedule starts."""

    start: date
    hours_per_week: Decimal
    parttime_percentage: Decimal | None = None


class Gender(StrEnum):
    UNDEFINED = "undefined"
    MALE = "male"
    FEMALE = "female"


class NmbrsEmployee(Record):
    """One Nmbrs employee = one employment relationship, resolved to what is current on `as_of`.

    The same human in two companies is two records sharing `bsn_hash` (HMAC of the BSN; the clear BSN
    never leaves the Nmbrs adapter).
    """

    # Added after records were first stored: while at their default they are left out of the fingerprint, so
    # that the release adding them does not make every stored record look changed.
    fingerprint_optional: ClassVar[dict[str, Any]] = {
        "partner_prefix": None,
        "partner_last_name": None,
        "name_usage": "own",
    }

    employee_id: int
    company_id: int
    number: str | None = None
    bsn_hash: str | None = None
    first_name: str | None = None
    initials: str | None = None
    prefix: str | None = Field(None, description="Tussenvoegsel, e.g. 'van der'.")
    last_name: str
    partner_prefix: str | None = Field(None, description="The partner's tussenvoegsel.")
    partner_last_name: str | None = Field(None, description="The partner's surname (for the naamstelling).")
    name_usage: NameUsage = Field(
        NameUsage.OWN, description="Naamstelling: own surname, the partner's, or both joined in either order."
    )
    nickname: str | None = None
    gender: Gender = Gender.UNDEFINED
    birthday: date | None = None
    email_work: str | None = None
    email_private: str | None = None
    phone_work: str | None = None
    phone_mobile: str | None = None
    phone_private: str | None = None
    postcode: str | None = Field(
        None, description="Postcode of the home address current on `as_of`, normalised: '1234 ab' -> '1234AB'."
    )
    function: CodeRef | None = None
    department: CodeRef | None = None
    labour_agreement: LabourAgreementRef | None = None
    employments: tuple[EmploymentPeriod, ...] = ()
    contracts: tuple[ContractPeriod, ...] = ()
    schedules: tuple[SchedulePeriod, ...] = ()


class NmbrsCompany(Record):
    """An Nmbrs company (werkmaatschappij) as listed by CompanyService.List_GetAll."""

    company_id: int
    number: str | None = None
    name: str
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    kvk_number: str | None = None
    period_type: str | None = Field(None, description="Payroll period type: Month, Week4, ...")


class CompanySnapshot(Record):
    """Everything fetched for one company in one poll. `employees` is complete or the fetch raised."""

    company: NmbrsCompany
    current_period: str | None = Field(None, description="Nmbrs 'yyyy-pp-type' string, e.g. 2026-11-M.")
    labour_agreements: tuple[LabourAgreementRef, ...] = ()
    employees: tuple[NmbrsEmployee, ...] = ()
    fetched_at: datetime
    soap_calls: int = Field(0, description="SOAP calls this snapshot cost.")
