"""The sandbox dataset: what a fake Nmbrs environment holds (companies, employees with full histories).

This is Nmbrs' side of the world, so employees carry a clear BSN here; the client hashes it on arrival.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from worker.domain.naamstelling import NameUsage, display_surname


class Model(BaseModel):
    """Base of the dataset models: mutable (the admin API edits them), unknown keys rejected (typos)."""

    model_config = {"extra": "forbid"}


class LabourAgreement(Model):
    """A CAO available in a company."""

    id: int
    guid: str
    number: int
    description: str
    default: bool = False


class Company(Model):
    id: int
    number: int
    name: str
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    kvk: str | None = None
    period_type: Literal["None", "Month", "Week4", "Month6", "Year"] = "Month"
    current_period: str = Field(description="Nmbrs 'yyyy-pp-type', e.g. 2026-11-M.")
    labour_agreements: list[LabourAgreement] = []


class EmployeeType(Model):
    id: int
    description: str


class PersonalInfo(Model):
    """One record of the personal-info history, valid from (start_year, start_period)."""

    id: int
    start_year: int
    start_period: int
    created: datetime
    first_name: str | None = None
    initials: str | None = None
    prefix: str | None = None
    last_name: str
    partner_prefix: str | None = None
    partner_last_name: str | None = None
    name_usage: NameUsage = NameUsage.OWN
    nickname: str | None = None
    gender: Literal["undefined", "male", "female"] = "undefined"
    birthday: date | None = None
    email_work: str | None = None
    email_private: str | None = None
    phone_work: str | None = None
    phone_mobile: str | None = None
    phone_private: str | None = None
    nationality_code: int = 1

    def display_name(self) -> str:
        """As Nmbrs prints it: the surname the naamstelling says."""
        surname = display_surname(
            self.name_usage, self.prefix, self.last_name, self.partner_prefix, self.partner_last_name
        )
        return " ".join(part for part in (self.first_name, surname.written) if part)


class Employment(Model):
    employment_id: int
    created: datetime
    start: date
    end: date | None = None
    initial_start: date | None = None


class Assignment(Model):
    """A function or department assigned from (start_year, start_period); ref_id is the debtor-level id."""

    record_id: int
    ref_id: int
    code: int
    description: str
    start_year: int
    start_period: int
    created: datetime


class Contract(Model):
    contract_id: int
    created: datetime
    start: date
    end: date | None = None
    trial_end: date | None = None
    employment_type: int = 1
    indefinite: bool = False
    hours_per_week: float | None = None
    phase_classification: int | None = None
    written_contract: bool = True


class Schedule(Model):
    """A (two-week) schedule valid from `start`; week2 all zero means a one-week schedule."""

    id: int
    created: datetime
    start: date
    week1: list[float] = Field(min_length=7, max_length=7)
    week2: list[float] = Field(default_factory=lambda: [0.0] * 7, min_length=7, max_length=7)
    parttime_percentage: float = 100.0

    def hours_per_week(self) -> float:
        second = sum(self.week2)
        return (sum(self.week1) + second) / 2 if second else sum(self.week1)


AddressType = Literal["HomeAddress", "PostAddress", "AbsenceAddress", "HolidaysAddress", "WeekendAddress"]


class Address(Model):
    """One record of the address history (EmployeeAddress_V2), valid from (start_year, start_period)
    up to and including (end_year, end_period); no end means still valid."""

    id: int
    start_year: int
    start_period: int
    end_year: int | None = None
    end_period: int | None = None
    created: datetime
    type: AddressType = "HomeAddress"
    street: str
    house_number: str
    house_number_addition: str | None = None
    postal_code: str = Field(description="As typed in Nmbrs, usually '1234 AB'.")
    city: str
    country_iso_code: str = "NL"


class LabourAgreementAssignment(Model):
    start_year: int
    start_period: int
    labour_agreement_id: int


class Employee(Model):
    """One employment relationship (one EmployeeId) in one company, with its histories."""

    id: int
    company_id: int
    number: int
    employee_type: int = 1
    bsn: str = ""
    personal_info: list[PersonalInfo]
    employments: list[Employment] = []
    functions: list[Assignment] = []
    departments: list[Assignment] = []
    contracts: list[Contract] = []
    schedules: list[Schedule] = []
    labour_agreements: list[LabourAgreementAssignment] = []
    addresses: list[Address] = []

    def current_personal_info(self) -> PersonalInfo:
        return max(self.personal_info, key=lambda p: (p.start_year, p.start_period, p.created))


class Dataset(Model):
    """A whole fake Nmbrs environment; `reference_date` is the 'today' it was generated for.

    Plain data: the sandbox looks companies and employees up through the indexes of its state (state.py).
    """

    reference_date: date
    employee_types: list[EmployeeType]
    companies: list[Company]
    employees: list[Employee]


def load_dataset(path: Path) -> Dataset:
    return Dataset.model_validate_json(path.read_bytes())


def save_dataset(dataset: Dataset, path: Path) -> None:
    path.write_text(dataset.model_dump_json(indent=1, exclude_defaults=True) + "\n", encoding="utf-8")
