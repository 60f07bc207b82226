"""The admin API (JSON), to simulate what happens in Nmbrs and to inject faults.

GET    /admin/dataset                  the whole dataset
POST   /admin/reload                   reload the data file; body {"path": "..."} to load another one
POST   /admin/employees                a hire: a full Employee object, or the short form
                                       {"company_id", "first_name", "prefix", "last_name", "partner_prefix"?,
                                        "partner_last_name"?, "name_usage"? (own | partner | partner_then_own
                                        | own_then_partner: the naamstelling), "start",
                                        "hours_per_week", "bsn", "function": {id, code, description},
                                        "department": {...}, "address": {street, house_number,
                                        house_number_addition?, postal_code, city}}; answers 201 {"id": ...}
PATCH  /admin/employees/{id}           a change from "as_of" (date, default: the dataset's reference date):
                                       {"function": {...}} | {"department": {...}} | {"hours_per_week": 32}
                                       | {"end": "2026-12-31"} (a leaver) | {"labour_agreement_id": 12}
                                       | {"personal_info": {"last_name": ...}} (also a marriage:
                                         {"partner_last_name": "Groot", "partner_prefix": "de",
                                          "name_usage": "partner_then_own"})
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

from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from worker.sandbox.dataset import Company, Employee, LabourAgreement, load_dataset
from worker.sandbox.edits import change_employee, new_employee
from worker.sandbox.faults import FaultSpec
from worker.sandbox.soap_xml import SoapFault
from worker.sandbox.state import STATE


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
    state.load(load_dataset(path))
    state.data_path = path
    return web.json_response({"employees": len(state.dataset.employees)})


async def admin_add_employee(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.json()
    try:
        employee = Employee.model_validate(body) if "personal_info" in body else new_employee(state, body)
    except (ValidationError, KeyError, ValueError) as error:
        return _json_error(400, str(error))
    except SoapFault:
        return _json_error(404, "no such company")
    if employee.id in state.by_id:
        return _json_error(409, f"employee {employee.id} exists")
    state.add_employee(employee)
    return web.json_response({"id": employee.id}, status=201)


async def admin_change_employee(request: web.Request) -> web.StreamResponse:
    """One or more changes to an employee, effective from `as_of` (see the module docstring)."""
    state = request.app[STATE]
    employee = state.by_id.get(int(request.match_info["employee_id"]))
    if employee is None:
        return _json_error(404, "no such employee")
    body = await request.json()
    as_of = date.fromisoformat(body["as_of"]) if "as_of" in body else state.dataset.reference_date
    try:
        new_id = change_employee(state, employee, body, as_of)
    except (ValidationError, KeyError, ValueError) as error:
        return _json_error(400, str(error))
    except SoapFault:
        return _json_error(404, "no such company")
    answer: dict[str, Any] = {"id": employee.id}
    if new_id is not None:
        answer["new_id"] = new_id
    return web.json_response(answer)


async def admin_delete_employee(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    employee_id = int(request.match_info["employee_id"])
    if employee_id not in state.by_id:
        return _json_error(404, "no such employee")
    state.remove_employee(employee_id)
    return web.Response(status=204)


async def admin_add_company(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        company = Company.model_validate(await request.json())
    except ValidationError as error:
        return _json_error(400, str(error))
    if company.id in state.companies_by_id:
        return _json_error(409, f"company {company.id} exists")
    state.add_company(company)
    return web.json_response({"id": company.id}, status=201)


async def admin_add_agreement(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    company = state.companies_by_id.get(int(request.match_info["company_id"]))
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
    return web.json_response({"faults": state.faults.add(fault)}, status=201)


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


ROUTES = [
    web.get("/admin/dataset", admin_dataset),
    web.post("/admin/reload", admin_reload),
    web.post("/admin/employees", admin_add_employee),
    web.patch("/admin/employees/{employee_id:\\d+}", admin_change_employee),
    web.delete("/admin/employees/{employee_id:\\d+}", admin_delete_employee),
    web.post("/admin/companies", admin_add_company),
    web.post("/admin/companies/{company_id:\\d+}/labour-agreements", admin_add_agreement),
    web.post("/admin/faults", admin_add_fault),
    web.delete("/admin/faults", admin_clear_faults),
    web.get("/admin/calls", admin_calls),
    web.delete("/admin/calls", admin_reset_calls),
]
