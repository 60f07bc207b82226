"""Local Nmbrs sandbox: an aiohttp SOAP 1.1/1.2 server answering the v3 calls nmbrs-sync uses.

This module only composes the app; each concern has a module of its own:
  soap_endpoint.py    the SOAP endpoints and the WSDL (authentication, call counters, faults)
  soap_operations.py  one handler per Nmbrs operation, answering from the dataset
  soap_xml.py         reading a SOAP call, writing results and faults as ASMX does
  admin_api.py        the admin endpoints (JSON) that change the dataset, inject faults, read counters
  edits.py            what a hire, a change or a company move does to the dataset's histories
  faults.py           the injected faults and which call they hit
  state.py            the dataset, credentials, faults and counters one app serves
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from worker.sandbox import admin_api, soap_endpoint
from worker.sandbox.dataset import Dataset, load_dataset
from worker.sandbox.state import STATE, SandboxState


def create_app(
    dataset: Dataset, username: str, token: str, domain: str, data_path: Path | None = None
) -> web.Application:
    """The sandbox application; `data_path` is the file POST /admin/reload reads again."""
    app = web.Application(client_max_size=64 * 1024**2)
    app[STATE] = SandboxState(dataset=dataset, username=username, token=token, domain=domain, data_path=data_path)
    app.add_routes(soap_endpoint.ROUTES)
    app.add_routes(admin_api.ROUTES)
    return app


def run(data: Path, port: int, host: str, username: str, token: str, domain: str) -> None:
    """Serve the dataset in `data` until interrupted."""
    app = create_app(load_dataset(data), username, token, domain, data_path=data)
    web.run_app(app, host=host, port=port, print=None)
