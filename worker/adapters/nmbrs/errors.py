"""Typed errors of the Nmbrs adapter: one class per fault class, each knowing whether a retry can help.

Messages name the operation and, where known, the Nmbrs code; they never carry the API token, a BSN or
a response body (bodies can hold personal data).
"""

from __future__ import annotations

import re

# Nmbrs business faults carry the code as '---> NNNN: text' in the faultstring (the SDKs match this).
_CODE = re.compile(r"--->\s*(\d{4})\s*:\s*([^\r\n]*)")


class NmbrsError(Exception):
    """Base of every Nmbrs adapter error."""

    retryable = False
    # SOAP calls spent on the failed fetch (retries included), set by fetch_company: what a poll cost.
    soap_calls = 0

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        super().__init__(f"{operation}: {message}" if operation else message)
        self.operation = operation


class NmbrsFault(NmbrsError):
    """A SOAP fault from Nmbrs; `code` is the Nmbrs error code or None when the fault has none."""

    def __init__(self, message: str, *, code: int | None = None, operation: str | None = None) -> None:
        super().__init__(f"Nmbrs fault {code if code is not None else '(no code)'}: {message}", operation=operation)
        self.code = code


class NmbrsAuthenticationError(NmbrsFault):
    """1001: wrong user name, token or (v3) domain. Retrying cannot help."""


class NmbrsNoRightsError(NmbrsFault):
    """1002/1003/2003/2004: the API user template does not allow this call or this company/employee."""


class NmbrsLoginSecurityError(NmbrsFault):
    """1006 'Generic login security failure': Nmbrs says retrying tends to solve it."""

    retryable = True


class NmbrsNotFoundError(NmbrsFault):
    """2046: the requested entity does not exist."""


class NmbrsUnknownFault(NmbrsFault):
    """Any other fault, with or without a code."""


class NmbrsTransportError(NmbrsError):
    """The call did not produce a usable HTTP answer (connection refused or reset, TLS, ...)."""

    retryable = True


class NmbrsTimeoutError(NmbrsTransportError):
    """The call took longer than the configured timeout."""


class NmbrsServerError(NmbrsTransportError):
    """HTTP 5xx without a SOAP fault (gateway, overload, maintenance)."""

    def __init__(self, status: int, *, operation: str | None = None) -> None:
        super().__init__(f"HTTP {status} without a SOAP fault", operation=operation)
        self.status = status


class NmbrsThrottledError(NmbrsTransportError):
    """HTTP 429: the fair-use limit was hit; `retry_after_s` is the server's hint, if any."""

    def __init__(self, retry_after_s: float | None, *, operation: str | None = None) -> None:
        super().__init__("HTTP 429 throttled", operation=operation)
        self.retry_after_s = retry_after_s


class NmbrsHttpError(NmbrsError):
    """Any other unexpected HTTP status (404 for a wrong base URL, 401 at a proxy, ...): not retried."""

    def __init__(self, status: int, *, operation: str | None = None) -> None:
        super().__init__(f"unexpected HTTP {status}", operation=operation)
        self.status = status


class NmbrsMalformedResponse(NmbrsError):
    """The body is not the XML we expect (truncated, not XML, wrong envelope). Retried once or more
    because truncation is usually a cut connection rather than a deterministic server bug."""

    retryable = True


_BY_CODE: dict[int, type[NmbrsFault]] = {
    1001: NmbrsAuthenticationError,
    1002: NmbrsNoRightsError,
    1003: NmbrsNoRightsError,
    2003: NmbrsNoRightsError,
    2004: NmbrsNoRightsError,
    1006: NmbrsLoginSecurityError,
    2046: NmbrsNotFoundError,
}


def fault_from_string(faultstring: str, *, operation: str | None = None) -> NmbrsFault:
    """Map an Nmbrs faultstring to its typed error. The caller scrubs secrets from the string first."""
    match = _CODE.search(faultstring)
    if match is None:
        # Nmbrs sometimes answers bad credentials without a code ('---> Invalid combination email/password').
        if "invalid combination" in faultstring.lower():
            return NmbrsAuthenticationError(faultstring.strip(), operation=operation)
        return NmbrsUnknownFault(faultstring.strip()[:300], operation=operation)
    code = int(match.group(1))
    return _BY_CODE.get(code, NmbrsUnknownFault)(match.group(2).strip(), code=code, operation=operation)
