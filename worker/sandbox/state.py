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
    """The dataset with its indexes, what a caller must present, and what the admin API injects or counts."""

    dataset: Dataset
    username: str
    token: str
    domain: str
    data_path: Path | None = None
    faults: Faults = field(default_factory=Faults)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    calls_by_company: collections.Counter[int] = field(default_factory=collections.Counter)
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
