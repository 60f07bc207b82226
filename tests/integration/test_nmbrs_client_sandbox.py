"""The Nmbrs client against the local sandbox over real HTTP on 127.0.0.1: every call, every fault class."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from worker.adapters.nmbrs.client import NmbrsClient
from worker.adapters.nmbrs.errors import (
    NmbrsAuthenticationError,
    NmbrsError,
    NmbrsLoginSecurityError,
    NmbrsMalformedResponse,
    NmbrsNoRightsError,
    NmbrsServerError,
    NmbrsThrottledError,
    NmbrsTimeoutError,
    NmbrsTransportError,
)
from worker.config import Settings
from worker.domain.naamstelling import NameUsage
from worker.domain.nmbrs_records import NmbrsCompany
from worker.domain.normalisation import normalise_postcode
from worker.sandbox.dataset import Dataset, Employee
from worker.sandbox.generate import generate
from worker.sandbox.server import create_app

USERNAME, TOKEN, DOMAIN = "api@example.nl", "s3cr3t-T0ken-value", "acme"
BULK = (
    "PersonalInfo_GetAll_AllEmployeesByCompany",
    "Employment_GetAll_AllEmployeesByCompany",
    "Function_GetAll_AllEmployeesByCompany_V2",
    "Department_GetAll_AllEmployeesByCompany",
    "Contract_GetAll_AllEmployeesByCompany",
    "Schedule_GetAll_AllEmployeesByCompany",
    "Address_GetAll_AllEmployeesByCompany",
)


@pytest.fixture
def dataset() -> Dataset:
    # Company 1 has two CAOs, companies 2 and 3 one each; every hard case is in it.
    return generate(3, 45, seed=42, two_cao_companies=1)


@pytest.fixture
async def sandbox(dataset: Dataset) -> AsyncIterator[TestClient]:
    server = TestServer(create_app(dataset, USERNAME, TOKEN, DOMAIN), host="127.0.0.1", port=0)
    async with TestClient(server) as admin:
        yield admin


@pytest.fixture
async def make_client(sandbox: TestClient) -> AsyncIterator[Callable[..., NmbrsClient]]:
    clients: list[NmbrsClient] = []

    def make(**overrides: Any) -> NmbrsClient:
        params: dict[str, Any] = {
            "base_url": str(sandbox.make_url("/soap/v3/")),
            "username": USERNAME,
            "token": TOKEN,
            "domain": DOMAIN,
            "bsn_hash_key": "integration-key",
            "backoff_base_s": 0.01,
            "timeout_s": 5.0,
        }
        client = NmbrsClient(**{**params, **overrides})
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def _calls(sandbox: TestClient) -> dict[str, Any]:
    response = await sandbox.get("/admin/calls")
    return await response.json()


async def _fault(sandbox: TestClient, **fault: Any) -> None:
    response = await sandbox.post("/admin/faults", json=fault)
    assert response.status == 201, await response.text()


def _employees_of(dataset: Dataset, company_id: int) -> list[Employee]:
    return [e for e in dataset.employees if e.company_id == company_id]


async def _company(client: NmbrsClient, company_id: int) -> NmbrsCompany:
    return next(c for c in await client.list_companies() if c.company_id == company_id)


async def test_every_call_round_trips(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    client = make_client()
    companies = await client.list_companies()
    assert [c.company_id for c in companies] == [1, 2, 3]
    assert companies[0].name == dataset.companies[0].name and companies[0].period_type == "Month"
    snapshots = [await client.fetch_company(c, dataset.reference_date) for c in companies]

    for snapshot in snapshots:
        expected = [e for e in dataset.employees if e.company_id == snapshot.company.company_id]
        assert sorted(e.employee_id for e in snapshot.employees) == sorted(e.id for e in expected)
        assert snapshot.current_period == f"{dataset.reference_date.year}-{dataset.reference_date.month}-M"
    by_operation = (await _calls(sandbox))["by_operation"]
    for operation in (
        *BULK,
        "List_GetAll",
        "Company_GetCurrentPeriod",
        "LabourAgreements_GetCurrent",
        "EmployeeType_GetList",
        "List_GetByCompany",
    ):
        assert by_operation.get(operation), operation
    assert client.soap_calls == sum(by_operation.values())

    source = dataset.employees[0]  # 'Jan van der Berg', company 1
    person = source.current_personal_info()
    employee = next(e for s in snapshots for e in s.employees if e.employee_id == source.id)
    assert (employee.first_name, employee.prefix, employee.last_name) == ("Jan", "van der", "Berg")
    assert employee.email_work == person.email_work and employee.birthday == person.birthday
    assert employee.employments[0].start == source.employments[0].start
    assert employee.function is not None and employee.function.description == source.functions[-1].description
    assert employee.schedules[-1].hours_per_week == pytest.approx(source.schedules[-1].hours_per_week())


async def test_on_answer_sees_every_answer_body_as_received(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient
) -> None:
    answers: list[bytes] = []
    client = make_client(on_answer=answers.append)
    await client.list_companies()
    await _fault(sandbox, operation="List_GetAll", code=2004, count=1)
    with pytest.raises(NmbrsNoRightsError):
        await client.list_companies()
    assert len(answers) == 2 and client.soap_calls == 2
    assert b"<List_GetAllResult>" in answers[0] and b"2004" in answers[1]


async def test_snapshots_carry_the_postcode_of_the_current_home_address(
    make_client: Callable[..., NmbrsClient], dataset: Dataset
) -> None:
    client = make_client()
    snapshots = [await client.fetch_company(c, dataset.reference_date) for c in await client.list_companies()]
    postcodes = {e.employee_id: e.postcode for s in snapshots for e in s.employees}
    moved = post_box = 0
    for source in dataset.employees:
        home = next(a for a in source.addresses if a.type == "HomeAddress" and a.end_year is None)
        assert postcodes[source.id] == normalise_postcode(home.postal_code)
        assert postcodes[source.id] is not None and " " not in postcodes[source.id]  # type: ignore[operator]
        moved += any(a.end_year for a in source.addresses)
        post_box += any(a.type == "PostAddress" for a in source.addresses)
    assert moved and post_box  # the history and the address types were exercised


async def test_one_cao_needs_no_per_employee_call_and_two_caos_do(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    client = make_client()
    companies = {c.company_id: c for c in await client.list_companies()}
    single = await client.fetch_company(companies[2], dataset.reference_date)
    assert single.soap_calls == 3 + 3 + len(BULK)  # period, CAOs, types; one list per type; bulk calls
    assert (await _calls(sandbox))["by_operation"]["LabourAgreements_GetCurrent"] == 1  # the company's
    only_cao = dataset.companies[1].labour_agreements[0].id
    assert {e.labour_agreement.id for e in single.employees if e.labour_agreement} == {only_cao}
    calls_single = single.soap_calls

    double = await client.fetch_company(companies[1], dataset.reference_date)
    # The employee types were read once, for the first company since the listing.
    assert double.soap_calls == calls_single - 1 + len(double.employees)
    assigned = {e.employee_id: e.labour_agreement for e in double.employees}
    for source in _employees_of(dataset, 1):
        assert assigned[source.id] is not None
        assert assigned[source.id].id == source.labour_agreements[-1].labour_agreement_id


async def test_calls_do_not_grow_with_head_count(make_client: Callable[..., NmbrsClient], dataset: Dataset) -> None:
    client = make_client()
    small, large = (await client.list_companies())[1:3]
    first = await client.fetch_company(small, dataset.reference_date)
    second = await client.fetch_company(large, dataset.reference_date)
    assert first.soap_calls == 3 + 3 + len(BULK)  # period, CAOs, types; one list per type; bulk calls
    assert second.soap_calls == first.soap_calls - 1  # the types are the environment's: read once per listing


async def test_the_employee_types_are_read_once_per_listing_and_again_after_a_failure(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    client = make_client(max_retries=0)
    companies = await client.list_companies()
    await sandbox.delete("/admin/calls")
    await asyncio.gather(*(client.fetch_company(c, dataset.reference_date) for c in companies))
    assert (await _calls(sandbox))["by_operation"]["EmployeeType_GetList"] == 1
    await client.list_companies()
    fault = {"operation": "EmployeeType_GetList", "code": 9999, "count": 1}
    assert (await sandbox.post("/admin/faults", json=fault)).status < 300
    with pytest.raises(NmbrsError):
        await client.fetch_company(companies[0], dataset.reference_date)
    again = await client.fetch_company(companies[1], dataset.reference_date)
    assert again.soap_calls == 3 + 3 + len(BULK)
    assert (await _calls(sandbox))["by_operation"]["EmployeeType_GetList"] == 3


async def test_bsn_never_leaves_the_adapter_but_links_humans(
    make_client: Callable[..., NmbrsClient], dataset: Dataset
) -> None:
    client = make_client()
    snapshots = [await client.fetch_company(c, dataset.reference_date) for c in await client.list_companies()]
    text = "".join(s.model_dump_json() for s in snapshots)
    assert not any(e.bsn in text for e in dataset.employees)
    hashes: dict[str, set[int]] = {}
    for employee in (e for s in snapshots for e in s.employees):
        assert employee.bsn_hash
        hashes.setdefault(employee.bsn_hash, set()).add(employee.company_id)
    assert any(len(companies) == 2 for companies in hashes.values())


async def test_without_bsn_setting_uses_the_personal_info_call_without_bsn(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    client = make_client(read_bsn=False)
    snapshot = await client.fetch_company(await _company(client, 2), dataset.reference_date)
    by_operation = (await _calls(sandbox))["by_operation"]
    assert by_operation.get("PersonalInfoWithoutBSN_Get_GetAllEmployeesByCompany") == 1
    assert "PersonalInfo_GetAll_AllEmployeesByCompany" not in by_operation
    assert all(e.bsn_hash is None for e in snapshot.employees)


async def test_from_settings_and_wsdl_from_the_endpoint(sandbox: TestClient, dataset: Dataset) -> None:
    settings = Settings(
        nmbrs_base_url=str(sandbox.make_url("/soap/v3/")),
        nmbrs_username=USERNAME,
        nmbrs_token=TOKEN,
        nmbrs_domain=DOMAIN,
    )
    async with NmbrsClient.from_settings(settings, wsdl_dir=None) as client:
        snapshot = await client.fetch_company(await _company(client, 3), dataset.reference_date)
    assert len(snapshot.employees) == len(_employees_of(dataset, 3))


@pytest.mark.parametrize("wsdl_from_endpoint", [False, True])
async def test_unreachable_endpoint_is_a_transport_error(
    make_client: Callable[..., NmbrsClient], wsdl_from_endpoint: bool
) -> None:
    overrides = {"wsdl_dir": None} if wsdl_from_endpoint else {}
    client = make_client(base_url="http://127.0.0.1:9/soap/v3/", max_retries=1, **overrides)
    with pytest.raises(NmbrsTransportError):
        await client.list_companies()


async def test_wrong_token_is_an_authentication_error_and_not_retried(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient
) -> None:
    client = make_client(token="wrong-token")
    with pytest.raises(NmbrsAuthenticationError) as error:
        await client.list_companies()
    assert error.value.code == 1001
    assert (await _calls(sandbox))["total"] == 1


async def test_no_rights_for_one_call_of_one_company(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    await _fault(sandbox, operation="Contract_GetAll_AllEmployeesByCompany", company_id=2, code=2004)
    client = make_client()
    assert await client.fetch_company(await _company(client, 3), dataset.reference_date)
    with pytest.raises(NmbrsNoRightsError) as error:
        await client.fetch_company(await _company(client, 2), dataset.reference_date)
    assert error.value.code == 2004 and error.value.operation == "Contract_GetAll_AllEmployeesByCompany"
    assert (await _calls(sandbox))["by_operation"]["Contract_GetAll_AllEmployeesByCompany"] == 2


async def test_1006_is_retried_until_it_succeeds(make_client: Callable[..., NmbrsClient], sandbox: TestClient) -> None:
    await _fault(sandbox, operation="List_GetAll", code=1006, count=2)
    client = make_client(max_retries=3)
    assert len(await client.list_companies()) == 3
    assert (await _calls(sandbox))["by_operation"]["List_GetAll"] == 3


async def test_1006_gives_up_after_the_retries(make_client: Callable[..., NmbrsClient], sandbox: TestClient) -> None:
    await _fault(sandbox, operation="List_GetAll", code=1006)
    with pytest.raises(NmbrsLoginSecurityError):
        await make_client(max_retries=2).list_companies()
    assert (await _calls(sandbox))["by_operation"]["List_GetAll"] == 3


@pytest.mark.parametrize(
    ("status", "error"), [(503, NmbrsServerError), (500, NmbrsServerError), (429, NmbrsThrottledError)]
)
async def test_http_errors_are_retried(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, status: int, error: type[Exception]
) -> None:
    await _fault(sandbox, http_status=status, count=2)
    client = make_client(max_retries=2)
    assert len(await client.list_companies()) == 3
    await _fault(sandbox, http_status=status)
    with pytest.raises(error):
        await client.list_companies()


async def test_throttling_hint_is_a_lower_bound_for_the_backoff(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient
) -> None:
    await _fault(sandbox, http_status=429, retry_after_s=1, count=1)
    started = time.monotonic()
    assert len(await make_client().list_companies()) == 3
    assert time.monotonic() - started >= 1.0


async def test_truncated_body_is_malformed(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    client = make_client(max_retries=1)
    await _fault(sandbox, operation="Schedule_GetAll_AllEmployeesByCompany", truncate=True, count=1)
    assert await client.fetch_company(await _company(client, 2), dataset.reference_date)  # retried once
    await _fault(sandbox, operation="Schedule_GetAll_AllEmployeesByCompany", truncate=True)
    with pytest.raises(NmbrsMalformedResponse):
        await client.fetch_company(await _company(client, 2), dataset.reference_date)


async def test_slow_answer_is_a_timeout(make_client: Callable[..., NmbrsClient], sandbox: TestClient) -> None:
    await _fault(sandbox, operation="List_GetAll", latency_ms=1500)
    started = time.monotonic()
    with pytest.raises(NmbrsTimeoutError):
        await make_client(timeout_s=0.3, max_retries=0).list_companies()
    assert time.monotonic() - started < 1.2


async def test_rate_limit_is_respected(make_client: Callable[..., NmbrsClient], sandbox: TestClient) -> None:
    client = make_client(rate_limit_per_s=20, max_concurrency=4)
    await client.list_companies()  # loads the WSDLs outside the measurement
    started = time.monotonic()
    await asyncio.gather(*(client.list_companies() for _ in range(21)))
    assert time.monotonic() - started >= 0.95  # 21 calls at 20/s, one token in the bucket at the start


async def test_token_never_appears_in_errors_or_logs(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(max_retries=1)
    await _fault(sandbox, operation="List_GetAll", http_status=503)
    with pytest.raises(NmbrsServerError) as server_error:
        await client.list_companies()
    await sandbox.delete("/admin/faults")
    await _fault(sandbox, operation="List_GetAll", latency_ms=800)
    with pytest.raises(NmbrsTimeoutError) as timeout:
        await make_client(timeout_s=0.2, max_retries=0).list_companies()
    with pytest.raises(NmbrsAuthenticationError) as auth:
        await make_client(token="another-" + TOKEN).list_companies()
    for error in (server_error.value, timeout.value, auth.value):
        assert TOKEN not in str(error) and TOKEN not in repr(error)
        assert error.__cause__ is None
    assert caplog.records, "the client is expected to log its retries and failures"
    assert TOKEN not in caplog.text


async def test_changes_in_nmbrs_show_up_in_the_next_snapshot(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    today = dataset.reference_date
    client = make_client()
    company2, company3 = await _company(client, 2), await _company(client, 3)
    before = {e.employee_id: e for e in (await client.fetch_company(company2, today)).employees}
    someone = next(e for e in _employees_of(dataset, 2) if not e.employments[0].end and e.employments[0].start < today)

    hire = await sandbox.post(
        "/admin/employees",
        json={
            "company_id": 2,
            "first_name": "Noël",
            "prefix": "van",
            "last_name": "Dijk",
            "start": str(today),
            "hours_per_week": 24,
        },
    )
    hired_id = (await hire.json())["id"]
    change = {
        "as_of": str(today),
        "function": {"id": 99, "code": 99, "description": "Hoofd bakkerij"},
        "department": {"id": 98, "code": 98, "description": "Innovatie"},
        "hours_per_week": 32,
        "address": {"street": "Dorpsstraat", "house_number": "1", "postal_code": "1234 ab", "city": "Amsterdam"},
    }
    assert (await sandbox.patch(f"/admin/employees/{someone.id}", json=change)).status == 200
    leaver = next(
        e
        for e in _employees_of(dataset, 2)
        if e.id not in (someone.id, hired_id) and not e.employments[0].end and e.employments[0].start < today
    )
    end = today + timedelta(days=30)
    assert (await sandbox.patch(f"/admin/employees/{leaver.id}", json={"end": str(end)})).status == 200
    mover = next(
        e
        for e in _employees_of(dataset, 2)
        if e.id not in (someone.id, leaver.id, hired_id) and not e.employments[0].end and e.employments[0].start < today
    )
    moved = await sandbox.patch(f"/admin/employees/{mover.id}", json={"as_of": str(today), "company_id": 3})
    new_id = (await moved.json())["new_id"]

    after = {e.employee_id: e for e in (await client.fetch_company(company2, today)).employees}
    assert set(after) == set(before) | {hired_id}
    assert after[hired_id].prefix == "van" and after[hired_id].contracts[0].hours_per_week == 24
    assert after[someone.id].function is not None and after[someone.id].function.description == "Hoofd bakkerij"
    assert after[someone.id].department is not None and after[someone.id].department.code == "98"
    assert after[someone.id].schedules[-1].hours_per_week == 32
    assert after[someone.id].postcode == "1234AB" != before[someone.id].postcode
    assert after[hired_id].postcode is None  # hired without an address
    assert after[leaver.id].employments[-1].end == end
    assert after[mover.id].employments[-1].end == today - timedelta(days=1)
    elsewhere = {e.employee_id: e for e in (await client.fetch_company(company3, today)).employees}
    assert elsewhere[new_id].bsn_hash == after[mover.id].bsn_hash
    assert elsewhere[new_id].postcode == after[mover.id].postcode is not None
    assert elsewhere[new_id].employments[0].start == today


async def test_a_removed_employee_and_a_new_company_show_up_in_the_next_fetch(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    client = make_client()
    gone = _employees_of(dataset, 3)[0].id
    assert (await sandbox.delete(f"/admin/employees/{gone}")).status == 204
    company = {"id": 4, "number": 4, "name": "Nieuw B.V.", "current_period": "2026-11-M"}
    assert (await sandbox.post("/admin/companies", json=company)).status == 201
    hire = {"company_id": 4, "last_name": "Eerste", "start": "2026-01-01"}
    hired = (await (await sandbox.post("/admin/employees", json=hire)).json())["id"]

    companies = await client.list_companies()
    fetched = {c.company_id: await client.fetch_company(c, dataset.reference_date) for c in companies}
    assert gone not in {e.employee_id for e in fetched[3].employees}
    assert len(fetched[3].employees) == len(_employees_of(dataset, 3))
    assert [(e.employee_id, e.last_name) for e in fetched[4].employees] == [(hired, "Eerste")]


async def test_new_cao_in_a_company_triggers_per_employee_calls(
    make_client: Callable[..., NmbrsClient], sandbox: TestClient, dataset: Dataset
) -> None:
    client = make_client()
    company = await _company(client, 3)
    before = await client.fetch_company(company, dataset.reference_date)
    cao = {
        "id": 77,
        "guid": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "number": 777,
        "description": "CAO Nieuw",
    }
    assert (await sandbox.post("/admin/companies/3/labour-agreements", json=cao)).status == 201
    target = _employees_of(dataset, 3)[0].id
    await sandbox.patch(f"/admin/employees/{target}", json={"labour_agreement_id": 77})
    after = await client.fetch_company(company, dataset.reference_date)
    assert after.soap_calls == before.soap_calls - 1 + len(after.employees)  # the types read once per listing
    assert next(e for e in after.employees if e.employee_id == target).labour_agreement.id == 77  # type: ignore[union-attr]


async def test_partner_names_and_the_naamstelling_are_read_as_nmbrs_serves_them(
    make_client: Callable[..., NmbrsClient], dataset: Dataset
) -> None:
    client = make_client()
    snapshots = [await client.fetch_company(c, dataset.reference_date) for c in await client.list_companies()]
    read = {e.employee_id: e for s in snapshots for e in s.employees}
    usages = set()
    for source in dataset.employees:
        info, employee = source.current_personal_info(), read[source.id]
        assert (employee.partner_prefix, employee.partner_last_name) == (info.partner_prefix, info.partner_last_name)
        assert employee.name_usage is info.name_usage
        usages.add(employee.name_usage)
    assert usages == set(NameUsage)  # every naamstelling went over the wire
    assert sum(e.partner_last_name is not None for e in read.values()) >= len(read) // 5
