"""SOAP 1.1/1.2 as ASMX speaks it: reading a call, writing a result or a fault envelope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from aiohttp import web
from lxml import etree

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


class NotSoap(Exception):
    """A body that is no SOAP envelope; ASMX answers it with HTTP 400 and this text."""


class Credentials(NamedTuple):
    """The AuthHeaderWithDomain header; a field left out is None."""

    username: str | None
    token: str | None
    domain: str | None


@dataclass(frozen=True)
class SoapCall:
    """One request: the Body's first element, its parameters and the auth header."""

    envelope_ns: str
    operation: str  # the element's local name, "" for an empty Body
    namespace: str | None
    params: dict[str, str]
    credentials: Credentials | None


def parse_call(body: bytes, ns: str) -> SoapCall:
    """Read a request to the service with namespace `ns`; raises NotSoap."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        raise NotSoap("Bad Request: the body is not XML") from None
    name = etree.QName(root)
    envelope_ns = name.namespace
    if name.localname != "Envelope" or envelope_ns not in (SOAP11, SOAP12):
        raise NotSoap("Bad Request: not a SOAP envelope")
    call = next(iter(root.findall(f"{{{envelope_ns}}}Body/*")), None)
    header = root.find(f"{{{envelope_ns}}}Header/{{{ns}}}AuthHeaderWithDomain")
    return SoapCall(
        envelope_ns=envelope_ns,
        operation=etree.QName(call).localname if call is not None else "",
        namespace=etree.QName(call).namespace if call is not None else None,
        params=(
            {etree.QName(child).localname: (child.text or "").strip() for child in call.iterchildren("*")}
            if call is not None
            else {}
        ),
        credentials=(
            Credentials(
                header.findtext(f"{{{ns}}}Username"),
                header.findtext(f"{{{ns}}}Token"),
                header.findtext(f"{{{ns}}}Domain"),
            )
            if header is not None
            else None
        ),
    )


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


class Writer:
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


def result_envelope(envelope_ns: str, ns: str, operation: str) -> tuple[etree._Element, etree._Element]:
    """An envelope holding `{operation}Response/{operation}Result`; returns the root and the result element."""
    root, body = _envelope(envelope_ns)
    response = etree.SubElement(body, f"{{{ns}}}{operation}Response", nsmap={None: ns})
    return root, etree.SubElement(response, f"{{{ns}}}{operation}Result")


def xml_response(root: etree._Element, envelope_ns: str, status: int = 200) -> web.Response:
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
    return xml_response(root, envelope_ns, status=500)
