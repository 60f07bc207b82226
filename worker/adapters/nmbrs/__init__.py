"""Nmbrs SOAP v3 adapter: the port the poller uses, implemented by client.NmbrsClient."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Protocol

from worker.domain.nmbrs_records import CompanySnapshot, NmbrsCompany

# The bundled v3 WSDL subset, one file per service; the sandbox serves the same files at ?WSDL.
WSDL_DIR = Path(__file__).parent / "wsdl"


class NmbrsPort(Protocol):
    """What the poller needs from Nmbrs; tests substitute a fake."""

    soap_calls: int
    """SOAP calls made so far, retries included: a poll reports its own as the difference."""

    async def list_companies(self) -> list[NmbrsCompany]:
        """Every company the API user can see."""
        ...

    async def fetch_company(self, company: NmbrsCompany, as_of: date) -> CompanySnapshot:
        """A complete snapshot of one company resolved to `as_of`; raises NmbrsError otherwise, with the
        calls the attempt cost in its `soap_calls`."""
        ...
