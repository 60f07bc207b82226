"""SOAP 1.1/1.2 as ASMX speaks it: reading a call, writing a result or a fault envelope."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from aiohttp import web
from lxml import etree

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
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


# Text lxml would escape, and characters XML 1.0 cannot carry (lxml refuses them with ValueError).
_SPECIAL = re.compile(r"[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape(text: str) -> str:
    if _SPECIAL.search(text) is None:  # nearly every value
        return text
    if _INVALID.search(text):
        raise ValueError("All strings must be XML compatible")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _date(value: date) -> str:
    return value.isoformat() + "T00:00:00"


# By type; bool before int and datetime before date, as a subclass takes the first of its bases listed here.
_FORMATS: dict[type, Callable[[Any], str]] = {
    str: _escape,
    bool: lambda value: "true" if value else "false",
    int: str,
    float: lambda value: f"{value:g}",
    datetime: lambda value: value.isoformat(timespec="seconds"),
    date: _date,
    object: lambda value: _escape(str(value)),
}


def _format(value: Any) -> str:
    kind = type(value)
    # A subclass (an enum, say) is formatted as its nearest base listed.
    format_ = _FORMATS.get(kind) or next(_FORMATS[base] for base in kind.__mro__ if base in _FORMATS)
    return format_(value)


class Writer:
    """Writes a result's content as XML text, every element in the service namespace (which the response
    element declares as the default); a None value becomes xsi:nil (nillable) or is left out.

    Text rather than an lxml tree: a bulk answer holds some 20 elements per history record, and building
    and serialising them one SubElement at a time was most of the sandbox's time in a large poll.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []

    def open(self, name: str) -> None:
        self.parts.append(f"<{name}>")

    def close(self, name: str) -> None:
        self.parts.append(f"</{name}>")

    def text(self, value: Any) -> None:
        self.parts.append(_format(value))

    def put(self, name: str, value: Any, nillable: bool = False) -> None:
        if value is None:
            if nillable:
                self.parts.append(f'<{name} xsi:nil="true"/>')
            return
        # The exact type's format first: `put` runs some ten million times in a large poll.
        format_ = _FORMATS.get(type(value), _format)
        self.parts.append(f"<{name}>{format_(value)}</{name}>")


def _envelope(envelope_ns: str) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{envelope_ns}}}Envelope", nsmap={"soap": envelope_ns, "xsi": XSI, "xsd": XSD})
    return root, etree.SubElement(root, f"{{{envelope_ns}}}Body")


def result_response(envelope_ns: str, ns: str, operation: str, writer: Writer) -> web.Response:
    """The envelope holding `{operation}Response/{operation}Result` with the writer's content, as lxml
    would serialise it (the fault envelopes below are built with lxml)."""
    body = (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f'<soap:Envelope xmlns:soap="{envelope_ns}" xmlns:xsi="{XSI}" xmlns:xsd="{XSD}"><soap:Body>'
        f'<{operation}Response xmlns="{ns}"><{operation}Result>{"".join(writer.parts)}</{operation}Result>'
        f"</{operation}Response></soap:Body></soap:Envelope>"
    )
    return web.Response(body=body.encode("utf-8"), content_type=_content_type(envelope_ns), charset="utf-8")


def _content_type(envelope_ns: str) -> str:
    return "text/xml" if envelope_ns == SOAP11 else "application/soap+xml"


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
    root, soap_body = _envelope(envelope_ns)
    fault = etree.SubElement(soap_body, f"{{{envelope_ns}}}Fault")
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
    return web.Response(
        body=etree.tostring(root, xml_declaration=True, encoding="utf-8"),
        status=500,
        content_type=_content_type(envelope_ns),
        charset="utf-8",
    )
