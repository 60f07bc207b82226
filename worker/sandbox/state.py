"""The fake Nmbrs environment one sandbox app serves: dataset, credentials, faults and call counters."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from worker.sandbox.dataset import Company, Dataset, Employee
from worker.sandbox.faults import Faults
from worker.sandbox.soap_xml import SoapFault


@dataclass
class SandboxState:
    """The dataset with its indexes, what a caller must present, and what the admin API injects or counts.

    Every SOAP call looks up its company and employees here, so the indexes are kept up to date edit by edit:
    adding and removing employees and companies goes through the methods below. An edit in place (a new
    history record, an end date) changes neither an id nor a company: a move to another company is a new
    employee (see edits.py).
    """

    dataset: Dataset
    username: str
    token: str
    domain: str
    data_path: Path | None = None
    faults: Faults = field(default_factory=Faults)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    calls_by_company: collections.Counter[int] = field(default_factory=collections.Counter)
    companies_by_id: dict[int, Company] = field(default_factory=dict)
    # In dataset order, as Nmbrs lists them; also for a company id no company has (yet).
    by_company: dict[int, list[Employee]] = field(default_factory=dict)
    by_id: dict[int, Employee] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.load(self.dataset)

    def load(self, dataset: Dataset) -> None:
        """Serve `dataset` from now on."""
        self.dataset = dataset
        self.companies_by_id = {company.id: company for company in dataset.companies}
        self.by_id = {employee.id: employee for employee in dataset.employees}
        self.by_company = {company.id: [] for company in dataset.companies}
        for employee in dataset.employees:
            self.by_company.setdefault(employee.company_id, []).append(employee)

    def add_company(self, company: Company) -> None:
        self.dataset.companies.append(company)
        self.companies_by_id[company.id] = company
        self.by_company.setdefault(company.id, [])

    def add_employee(self, employee: Employee) -> None:
        self.dataset.employees.append(employee)
        self.by_id[employee.id] = employee
        self.by_company.setdefault(employee.company_id, []).append(employee)

    def remove_employee(self, employee_id: int) -> None:
        employee = self.by_id.pop(employee_id)
        self.dataset.employees = [e for e in self.dataset.employees if e.id != employee_id]
        self.by_company[employee.company_id] = [e for e in self.by_company[employee.company_id] if e.id != employee_id]

    def company(self, company_id: int) -> Company:
        company = self.companies_by_id.get(company_id)
        if company is None:
            raise SoapFault(2004)
        return company

    def employee(self, employee_id: int) -> Employee:
        employee = self.by_id.get(employee_id)
        if employee is None:
            raise SoapFault(2003)
        return employee


STATE = web.AppKey("state", SandboxState)
