"""The SOAP endpoints (same paths as Nmbrs): authentication, call counting, faults, then the operation.

POST /soap/v3/EmployeeService.asmx, POST /soap/v3/CompanyService.asmx   (GET ...asmx?WSDL for the WSDL)
The AuthHeaderWithDomain header must carry the configured Username and Token (and Domain when sent);
anything else gets the Nmbrs fault '---> 1001: Invalid Authentication' with HTTP 500.
"""

from __future__ import annotations

from aiohttp import web

from worker.adapters.nmbrs import WSDL_DIR
from worker.sandbox.soap_operations import HANDLERS, target_company
from worker.sandbox.soap_xml import (
    NAMESPACE,
    Credentials,
    NotSoap,
    SoapFault,
    Writer,
    fault_response,
    parse_call,
    result_response,
)
from worker.sandbox.state import STATE, SandboxState


def _authorised(state: SandboxState, credentials: Credentials | None) -> bool:
    if credentials is None:
        return False
    # Nmbrs calls Domain optional; a wrong one is an authentication failure in v3.
    return (
        credentials.username == state.username
        and credentials.token == state.token
        and credentials.domain in (None, "", state.domain)
    )


async def soap(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    service = request.match_info["service"]
    ns = NAMESPACE.format(service=service)
    try:
        call = parse_call(await request.read(), ns)
    except NotSoap as error:
        return web.Response(status=400, text=str(error))
    handler = HANDLERS[service].get(call.operation)
    if handler is None or call.namespace != ns:
        return fault_response(
            None,
            call.envelope_ns,
            client=f"Server did not recognize the value of HTTP Header SOAPAction: {ns}/{call.operation}.",
        )
    state.calls[call.operation] += 1
    target = target_company(state, call.params)
    if target is not None:
        state.calls_by_company[target] += 1
    if not _authorised(state, call.credentials):
        return fault_response(1001, call.envelope_ns)

    effect = await state.faults.apply(call.operation, target)
    if effect is not None and effect.code is not None:
        return fault_response(effect.code, call.envelope_ns)
    if effect is not None and effect.http_status is not None:
        headers = {"Retry-After": str(effect.retry_after_s)} if effect.retry_after_s is not None else {}
        return web.Response(status=effect.http_status, text=f"HTTP {effect.http_status}", headers=headers)

    writer = Writer()
    try:
        handler(state, call.params, writer)
    except SoapFault as fault:
        return fault_response(fault.code, call.envelope_ns)
    except ValueError:  # a non-numeric id: ASMX answers a client fault
        return fault_response(None, call.envelope_ns, client="Server was unable to read request.")
    reply = result_response(call.envelope_ns, ns, call.operation, writer)
    if effect is not None and effect.truncate:
        assert reply.body is not None and isinstance(reply.body, bytes)
        reply.body = reply.body[: len(reply.body) // 2]
    return reply


async def wsdl(request: web.Request) -> web.StreamResponse:
    if not any(key.lower() == "wsdl" for key in request.query):
        return web.Response(status=404, text="Only ?WSDL is served here")
    service = request.match_info["service"]
    text = (WSDL_DIR / f"{service}.wsdl").read_text(encoding="utf-8")
    address = str(request.url.with_query(None))
    text = text.replace(f"http://localhost/soap/v3/{service}.asmx", address)
    return web.Response(text=text, content_type="text/xml", charset="utf-8")


_SERVICE = "/soap/v3/{service:EmployeeService|CompanyService}.asmx"
ROUTES = [web.post(_SERVICE, soap), web.get(_SERVICE, wsdl)]
