"""Nmbrs SOAP v3 client: zeep builds and sends the calls, convert.py turns the answers into records.

zeep runs with `raw_response=True`: it serialises requests from the WSDL (bundled subset or the
endpoint's ?WSDL) and adds the AuthHeaderWithDomain header, while the response XML goes straight to
the pure parsers in convert.py. Every call passes the rate limiter and is retried on retryable errors
with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import httpx
import zeep
from lxml import etree
from pydantic import SecretStr, ValidationError
from zeep.exceptions import Error as ZeepError
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport
from zeep.wsdl.utils import etree_to_string

from worker.adapters import metrics
from worker.adapters.nmbrs import WSDL_DIR, convert
from worker.adapters.nmbrs.errors import (
    NmbrsError,
    NmbrsHttpError,
    NmbrsMalformedResponse,
    NmbrsServerError,
    NmbrsThrottledError,
    NmbrsTimeoutError,
    NmbrsTransportError,
    fault_from_string,
)
from worker.adapters.nmbrs.ratelimit import RateLimiter
from worker.domain.nmbrs_records import CompanySnapshot, NmbrsCompany

if TYPE_CHECKING:
    from worker.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICES = ("EmployeeService", "CompanyService")
USER_AGENT = "nmbrs-sync (zeep)"
NAMESPACE = "https://api.nmbrs.nl/soap/v3/{service}"

# The per-company bulk calls; the personal-info one is chosen by the read_bsn setting.
PERSONAL_INFO = "PersonalInfo_GetAll_AllEmployeesByCompany"
PERSONAL_INFO_WITHOUT_BSN = "PersonalInfoWithoutBSN_Get_GetAllEmployeesByCompany"


# Seconds the current task's last HTTP exchange took. A coroutine awaited directly runs in its caller's
# context, so _send reads here what the transport wrote for this very call, even with calls in parallel.
_LAST_EXCHANGE_S: contextvars.ContextVar[float] = contextvars.ContextVar("nmbrs_last_exchange_s", default=0.0)


@dataclass(frozen=True)
class _Answer:
    """An HTTP answer as the client reads it."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]


class _TimedTransport(AsyncTransport):
    """zeep's async transport posting through aiohttp rather than httpx (whose stack costs some 2.5 ms of CPU a
    request against 0.3 ms: at 500 companies, 6,500 calls a poll, that was a quarter of the poll's CPU), without
    zeep's DEBUG log of the request body (which holds the token), measuring the time spent in HTTP exchanges.
    WSDLs (bundled files, or the endpoint's ?WSDL, loaded once) still come through zeep's own httpx client."""

    def __init__(
        self, timeout_s: float, max_connections: int, on_answer: Callable[[bytes], None] | None = None
    ) -> None:
        # zeep is unannotated.
        super().__init__(wsdl_client=httpx.Client(timeout=timeout_s))  # type: ignore[no-untyped-call]
        self.seconds = 0.0
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._on_answer = on_answer
        self._session: aiohttp.ClientSession | None = None  # made on the loop that uses it

    async def post(self, address: str, message: bytes, headers: dict[str, str]) -> _Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers={"User-Agent": USER_AGENT},
            )
        started = time.perf_counter()
        try:
            async with self._session.post(address, data=message, headers=headers) as response:
                content = await response.read()
                answer = _Answer(response.status, content, response.headers)
            if self._on_answer is not None:
                self._on_answer(content)
            return answer
        finally:
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
            _LAST_EXCHANGE_S.set(elapsed)

    async def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> _Answer:
        # zeep's own would convert the answer into an httpx one; the client reads this one as it is.
        return await self.post(address, etree_to_string(envelope), headers)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.wsdl_client.close()


@dataclass
class _Tally:
    """SOAP calls made for one snapshot (retries included: each is a call Nmbrs counts)."""

    calls: int = 0


class NmbrsClient:
    """Async Nmbrs client: `list_companies()` and `fetch_company()`; close it with `close()`."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        token: str | SecretStr,
        domain: str,
        bsn_hash_key: str | SecretStr,
        read_bsn: bool = True,
        rate_limit_per_s: float = 150.0,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        wsdl_dir: Path | None = WSDL_DIR,
        rng: random.Random | None = None,
        on_answer: Callable[[bytes], None] | None = None,
    ) -> None:
        """`wsdl_dir` None loads each service's WSDL from the endpoint's ?WSDL instead of the bundle;
        `on_answer` sees the body of every HTTP answer as received (the fetch benchmark keeps them)."""
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._username = username
        self._token = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._domain = domain
        key = bsn_hash_key.get_secret_value() if isinstance(bsn_hash_key, SecretStr) else bsn_hash_key
        self._bsn_key = key.encode("utf-8") if read_bsn else None
        self._limiter = RateLimiter(rate_limit_per_s, max_concurrency)
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._wsdl_dir = wsdl_dir
        self._rng = rng or random.Random()
        self._transport = _TimedTransport(timeout_s, max_concurrency, on_answer)
        self._proxies: dict[str, AsyncServiceProxy] | None = None
        self._setup_lock = asyncio.Lock()
        self._types: asyncio.Future[list[int]] | None = None
        self.soap_calls = 0
        # Our own work: building requests, parsing and normalising answers (not the HTTP exchange).
        self.processing_seconds = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> NmbrsClient:
        """A client configured from the worker settings; keyword overrides win (tests, benchmarks)."""
        params: dict[str, Any] = {
            "base_url": settings.nmbrs_base_url,
            "username": settings.nmbrs_username,
            "token": settings.nmbrs_token,
            "domain": settings.nmbrs_domain,
            "bsn_hash_key": settings.nmbrs_bsn_hash_key,
            "read_bsn": settings.nmbrs_read_bsn,
            "rate_limit_per_s": settings.nmbrs_rate_limit_per_s,
            "max_concurrency": settings.nmbrs_max_concurrency,
            "timeout_s": settings.nmbrs_timeout_s,
            "max_retries": settings.nmbrs_max_retries,
        }
        return cls(**{**params, **overrides})

    async def close(self) -> None:
        await self._transport.aclose()
        self._transport.wsdl_client.close()

    async def __aenter__(self) -> NmbrsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the port --------------------------------------------------------------------------------

    async def list_companies(self) -> list[NmbrsCompany]:
        """Every company the API user can see (CompanyService.List_GetAll). The employee types are read again
        by the first company fetched after it (see _employee_types)."""
        companies = await self._call("CompanyService", "List_GetAll", _Tally(), convert.parse_companies)
        self._types = None
        return companies

    async def fetch_company(self, company: NmbrsCompany, as_of: date) -> CompanySnapshot:
        """A complete snapshot of one company resolved to `as_of`, or an NmbrsError: never a partial one."""
        tally = _Tally()
        try:
            snapshot = await self._fetch_snapshot(company, as_of, tally)
        except NmbrsError as error:
            error.soap_calls = tally.calls
            raise
        log.info(
            "Nmbrs company %s fetched: %d employees, %d SOAP calls",
            company.company_id,
            len(snapshot.employees),
            tally.calls,
        )
        return snapshot

    async def _fetch_snapshot(self, company: NmbrsCompany, as_of: date, tally: _Tally) -> CompanySnapshot:
        try:
            data = await self._fetch(company, tally)
        except ExceptionGroup as group:
            # Concurrent calls fail as a group; the caller gets the first typed error (the others were
            # cancelled siblings or the same cause).
            found = _first_nmbrs_error(group)
            raise (found if isinstance(found, NmbrsError) else _unexpected(company, group)) from None
        try:
            with self._own_work():
                return convert.build_snapshot(data, as_of, datetime.now(UTC), tally.calls)
        except (ValueError, KeyError, TypeError) as error:  # includes pydantic's ValidationError
            # An answer we cannot make sense of fails this company only, never the whole poll.
            raise _unexpected(company, error) from None

    async def _fetch(self, company: NmbrsCompany, tally: _Tally) -> convert.CompanyData:
        cid = company.company_id
        personal_op = PERSONAL_INFO if self._bsn_key is not None else PERSONAL_INFO_WITHOUT_BSN
        async with asyncio.TaskGroup() as group:
            period = group.create_task(
                self._call("CompanyService", "Company_GetCurrentPeriod", tally, convert.parse_text, CompanyId=cid)
            )
            agreements = group.create_task(
                self._call(
                    "CompanyService",
                    "LabourAgreements_GetCurrent",
                    tally,
                    convert.parse_company_labour_agreements,
                    CompanyId=cid,
                )
            )
            types = group.create_task(self._employee_types(tally))
            # Each task's result is the parsed field of CompanyData it is named after.
            bulk: dict[str, asyncio.Task[Any]] = {
                name: group.create_task(self._call("EmployeeService", op, tally, parse, CompanyID=cid))
                for name, op, parse in (
                    ("personal", personal_op, partial(convert.parse_personal_infos, bsn_key=self._bsn_key)),
                    ("employments", "Employment_GetAll_AllEmployeesByCompany", convert.parse_employments),
                    ("functions", "Function_GetAll_AllEmployeesByCompany_V2", convert.parse_functions),
                    ("departments", "Department_GetAll_AllEmployeesByCompany", convert.parse_departments),
                    ("contracts", "Contract_GetAll_AllEmployeesByCompany", convert.parse_contracts),
                    ("schedules", "Schedule_GetAll_AllEmployeesByCompany", convert.parse_schedules),
                    ("addresses", "Address_GetAll_AllEmployeesByCompany", convert.parse_addresses),
                )
            }
            # v3 lists employees per EmployeeType and nobody documents what the types mean: union them all.
            per_type = [
                group.create_task(
                    self._call(
                        "EmployeeService",
                        "List_GetByCompany",
                        tally,
                        convert.parse_employee_list,
                        CompanyId=cid,
                        EmployeeType=employee_type,
                    )
                )
                for employee_type in await types
            ]
            listed: dict[int, convert.Listed] = {}
            for task in per_type:
                listed.update(await task)
            employee_agreements = None
            if len(await agreements) > 1:
                # More than one CAO in the company: only a per-employee call tells which one applies.
                employee_agreements = {
                    employee_id: group.create_task(
                        self._call(
                            "EmployeeService",
                            "LabourAgreements_GetCurrent",
                            tally,
                            convert.parse_employee_labour_agreement,
                            EmployeeId=employee_id,
                        )
                    )
                    for employee_id in sorted(listed)
                }
        return convert.CompanyData(
            company=company,
            current_period=period.result(),
            labour_agreements=agreements.result(),
            listed=listed,
            employee_labour_agreements=(
                {employee_id: task.result() for employee_id, task in employee_agreements.items()}
                if employee_agreements is not None
                else None
            ),
            **{name: task.result() for name, task in bulk.items()},
        )

    async def _employee_types(self, tally: _Tally) -> list[int]:
        """The environment's employee types, read once per company listing: the list is the environment's, not
        a company's, so a poll of 500 companies makes one call, not 500. The call counts for the company whose
        fetch made it; after one that failed, the next company's fetch makes it again."""
        known = self._types
        if known is None or (known.done() and (known.cancelled() or known.exception() is not None)):
            known = self._types = asyncio.ensure_future(
                self._call("EmployeeService", "EmployeeType_GetList", tally, convert.parse_employee_types)
            )
        # Shielded: a company whose fetch is cancelled does not cancel the call the others wait for.
        return await asyncio.shield(known)

    # --- plumbing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _own_work(self) -> Iterator[None]:
        """A synchronous section of our own work (parsing, building records), timed, with the cyclic
        garbage collector paused: a bulk answer allocates some 100,000 acyclic objects, and the collection
        passes they would trigger (over an ever larger heap) cost a third of the parsing time and find
        nothing. Nothing else runs on the loop meanwhile; the collector resumes as it was."""
        started = time.perf_counter()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            if was_enabled:
                gc.enable()
            self.processing_seconds += time.perf_counter() - started

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "********") if self._token else text

    async def _services(self) -> dict[str, AsyncServiceProxy]:
        async with self._setup_lock:
            if self._proxies is None:
                # zeep loads WSDLs synchronously (a remote ?WSDL over blocking HTTP): keep it off the loop.
                try:
                    self._proxies = await asyncio.to_thread(self._build_proxies)
                except (ZeepError, httpx.HTTPError, OSError, etree.XMLSyntaxError) as error:
                    raise NmbrsTransportError(f"cannot load the WSDL ({type(error).__name__})") from None
            return self._proxies

    def _build_proxies(self) -> dict[str, AsyncServiceProxy]:
        proxies = {}
        settings = zeep.Settings(strict=False, xml_huge_tree=True, raw_response=True)
        for service in SERVICES:
            address = f"{self._base_url}{service}.asmx"
            wsdl = str(self._wsdl_dir / f"{service}.wsdl") if self._wsdl_dir else f"{address}?WSDL"
            client = zeep.AsyncClient(wsdl, transport=self._transport, settings=settings)
            client.set_default_soapheaders(
                {
                    "AuthHeaderWithDomain": {
                        "Username": self._username,
                        "Token": self._token,
                        "Domain": self._domain,
                    }
                }
            )
            # AsyncClient.create_service returns a sync proxy (zeep #1168): build the async one directly.
            binding = client.wsdl.bindings[f"{{{NAMESPACE.format(service=service)}}}{service}Soap"]
            proxies[service] = AsyncServiceProxy(client, binding, address=address)
        return proxies

    async def _call(
        self,
        service: str,
        operation: str,
        tally: _Tally,
        parse: Callable[[etree._Element | None], T],
        **params: Any,
    ) -> T:
        """One SOAP call, parsed by `parse(result_element)`, retried while the error is retryable."""
        proxy = (await self._services())[service]
        attempt = 0
        while True:
            try:
                async with self._limiter.slot():
                    tally.calls += 1
                    self.soap_calls += 1
                    response = await self._send(proxy, operation, params)
                try:
                    with self._own_work():
                        parsed = parse(self._interpret(operation, response))
                except (ValueError, ValidationError):
                    raise NmbrsMalformedResponse("unexpected content", operation=operation) from None
                metrics.SOAP_CALLS.labels(operation, metrics.soap_result(None)).inc()
                return parsed
            except NmbrsError as error:
                metrics.SOAP_CALLS.labels(operation, metrics.soap_result(error)).inc()
                if isinstance(error, NmbrsThrottledError):
                    metrics.SOAP_THROTTLED.labels(operation).inc()
                if not error.retryable or attempt >= self._max_retries:
                    log.warning("Nmbrs %s %s failed: %s", operation, params, error)
                    raise
                delay = self._backoff(attempt, error)
                attempt += 1
                log.info(
                    "Nmbrs %s %s failed (%s), retry %d/%d in %.2f s",
                    operation,
                    params,
                    type(error).__name__,
                    attempt,
                    self._max_retries,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _send(self, proxy: AsyncServiceProxy, operation: str, params: dict[str, Any]) -> _Answer:
        # Transport exceptions are re-raised without their cause: they can carry the request, whose body holds
        # the token.
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                response: _Answer = await proxy[operation](**params)
            # zeep serialises the request before the exchange without yielding: that part is ours.
            self.processing_seconds += time.perf_counter() - started - _LAST_EXCHANGE_S.get()
            return response
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too
            raise NmbrsTimeoutError(f"no answer within {self._timeout_s:g} s", operation=operation) from None
        except (aiohttp.ClientError, OSError) as error:
            raise NmbrsTransportError(type(error).__name__, operation=operation) from None

    def _interpret(self, operation: str, response: _Answer) -> etree._Element | None:
        status = response.status_code
        if status == 200:
            return convert.result_element(response.content, operation, self._scrub)
        fault = convert.fault_string(response.content)
        if fault is not None:
            raise fault_from_string(self._scrub(fault), operation=operation)
        if status == 429:
            retry_after = response.headers.get("Retry-After", "")
            raise NmbrsThrottledError(float(retry_after) if retry_after.isdigit() else None, operation=operation)
        if status >= 500:
            raise NmbrsServerError(status, operation=operation)
        raise NmbrsHttpError(status, operation=operation)

    def _backoff(self, attempt: int, error: NmbrsError) -> float:
        """Exponential backoff with equal jitter; a throttling hint from the server is a lower bound."""
        ceiling = min(self._backoff_max_s, self._backoff_base_s * 2**attempt)
        delay: float = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        if isinstance(error, NmbrsThrottledError) and error.retry_after_s is not None:
            delay = max(delay, error.retry_after_s)
        return delay


def _unexpected(company: NmbrsCompany, error: BaseException) -> NmbrsMalformedResponse:
    # The type only: the message of a parsing error can quote personal data from the answer.
    return NmbrsMalformedResponse(f"company {company.company_id}: unusable answer ({type(error).__name__})")


def _first_nmbrs_error(group: BaseExceptionGroup) -> BaseException:
    """The first NmbrsError in a (nested) exception group, or the group itself when there is none."""
    for error in group.exceptions:
        if isinstance(error, NmbrsError):
            return error
        if isinstance(error, BaseExceptionGroup):
            found = _first_nmbrs_error(error)
            if found is not error:
                return found
    return group
