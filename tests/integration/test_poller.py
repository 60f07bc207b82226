"""The poller against the Nmbrs sandbox over HTTP, the real broker and the real database."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.builders import nmbrs_employee
from worker.adapters.kafka import KafkaPublisher
from worker.adapters.nmbrs.client import NmbrsClient
from worker.adapters.nmbrs.errors import NmbrsServerError
from worker.adapters.poll_store import POLL_LOCK_ID, PollStore, insert_sync_request
from worker.adapters.step_status_store import poll_outcome
from worker.config import Settings
from worker.domain.events import SyncRequested
from worker.domain.nmbrs_records import CompanySnapshot, NmbrsCompany
from worker.service.poller import COMPANY_FETCH_CONCURRENCY, Poller, PollOptions

TopicReader = Callable[..., Awaitable[list[dict[str, Any]]]]


def utc_now() -> datetime:
    return datetime.now(UTC)


PollerFactory = Callable[..., Poller]


@pytest.fixture
def make_poller(
    nmbrs: NmbrsClient, clean_poller_state: asyncpg.Pool, publisher: KafkaPublisher, kafka_topics: Settings
) -> PollerFactory:
    """`make_poller(nmbrs=None, store=PollStore)`: a poller on the test state, with another Nmbrs (default:
    the sandbox client) or another PollStore class."""

    def make(other_nmbrs: Any = None, store: type[PollStore] = PollStore) -> Poller:
        return Poller(other_nmbrs or nmbrs, store(clean_poller_state), publisher, kafka_topics, utc_now)

    return make


@pytest.fixture
def poller(make_poller: PollerFactory) -> Poller:
    return make_poller()


class NmbrsVariant:
    """The sandbox's Nmbrs with one behaviour changed by a subclass."""

    def __init__(self, nmbrs: NmbrsClient) -> None:
        self.nmbrs = nmbrs

    @property
    def soap_calls(self) -> int:
        return self.nmbrs.soap_calls

    async def list_companies(self) -> list[Any]:
        return await self.nmbrs.list_companies()

    async def fetch_company(self, company: Any, as_of: Any) -> Any:
        return await self.nmbrs.fetch_company(company, as_of)


async def first_poll(poller: Poller) -> int:
    report = await poller.poll()
    assert report.result == "published", report.reasons
    return report.changes["employee:c"]


async def test_first_poll_emits_a_create_per_employee_company_and_reference(
    poller: Poller, kafka_topics: Settings, read_topic: TopicReader, sandbox: Any
) -> None:
    await sandbox.admin("DELETE", "calls")
    report = await poller.poll()
    dataset = await sandbox.admin("GET", "dataset")
    # The poll's SOAP calls are every call Nmbrs received, the company listing included.
    assert report.soap_calls == (await sandbox.admin("GET", "calls"))["total"]
    assert report.soap_calls == 1 + sum(c.soap_calls for c in report.companies)

    assert report.result == "published" and report.status == "green"
    employees = await read_topic(kafka_topics.topics.employee_changes, report.changes["employee:c"])
    companies = await read_topic(kafka_topics.topics.company_changes, 3)
    assert {e["op"] for e in employees} == {"c"} and {c["op"] for c in companies} == {"c"}
    assert len({e["key"] for e in employees}) == len(employees) == len(dataset["employees"])
    assert all(e["key"] == f"employee:{e['after']['employee_id']}" for e in employees)
    assert report.changes["department:c"] >= 1 and report.changes["function:c"] >= 1
    # Companies with one CAO cost a fixed number of bulk calls, whatever their head count.
    single_cao = [c for c in report.companies if c.company_id in (2, 3)]
    assert len({c.soap_calls for c in single_cao}) == 1 and single_cao[0].soap_calls <= 13
    # BSNs never leave the adapter: only a 64-hex-digit HMAC travels.
    hashes = [e["after"]["bsn_hash"] for e in employees]
    assert all(h is None or len(h) == 64 for h in hashes)
    assert len({h for h in hashes if h}) > len(hashes) // 2  # hashing is on, and humans are told apart
    bsns = {e["bsn"] for e in dataset["employees"]}
    assert not any(bsn in str(e) for e in employees for bsn in bsns)


async def test_an_unchanged_second_poll_publishes_nothing(
    poller: Poller, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    report = await poller.poll()
    assert report.result == "published" and report.changes == {}
    assert len(await read_topic(kafka_topics.topics.employee_changes, None)) == created


async def test_an_edit_in_nmbrs_emits_exactly_one_update_with_the_changed_fields(
    poller: Poller, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    await sandbox.admin(
        "PATCH", "employees/100001", {"department": {"id": 99, "code": 99, "description": "Klantenservice"}}
    )
    report = await poller.poll()

    assert report.changes == {"employee:u": 1, "department:c": 1}
    events = await read_topic(kafka_topics.topics.employee_changes, created + 1)
    (update,) = [e for e in events if e["op"] == "u"]
    assert update["key"] == "employee:100001"
    assert update["changed_fields"] == ["department"]
    assert update["after"]["department"]["description"] == "Klantenservice"
    assert update["before"]["department"]["description"] != "Klantenservice"


async def test_a_leaver_is_an_update_with_an_employment_end_not_a_removal(
    poller: Poller, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    await sandbox.admin("PATCH", "employees/100001", {"end": "2026-12-31"})
    report = await poller.poll()

    assert report.changes == {"employee:u": 1}
    events = await read_topic(kafka_topics.topics.employee_changes, created + 1)
    (update,) = [e for e in events if e["op"] != "c"]
    assert update["op"] == "u" and "employments" in update["changed_fields"]
    assert update["after"]["employments"][-1]["end"] == "2026-12-31"


async def test_a_company_whose_fetch_fails_produces_no_removals_and_turns_red(
    poller: Poller, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    await sandbox.admin(
        "POST",
        "faults",
        {"operation": "Contract_GetAll_AllEmployeesByCompany", "company_id": 2, "code": 2004},
    )
    await sandbox.admin("PATCH", "employees/100001", {"personal_info": {"last_name": "Bergen"}})
    report = await poller.poll()

    assert report.result == "published" and report.status == "red"
    (failed,) = [c for c in report.companies if not c.ok]
    assert failed.company_id == 2 and "company 2" in report.reasons[0] and "2004" in report.reasons[0]
    # What the failed company cost still counts: the period, CAO and type calls, the lists, the bulk calls.
    assert failed.soap_calls >= 3
    assert report.soap_calls == 1 + sum(c.soap_calls for c in report.companies)
    # Company 1 still synced; nobody of company 2 was removed.
    assert report.changes == {"employee:u": 1}
    events = await read_topic(kafka_topics.topics.employee_changes, created + 1)
    assert not [e for e in events if e["op"] == "d"]


async def test_the_breaker_holds_a_mass_removal_until_released(
    poller: Poller,
    sandbox: Any,
    kafka_topics: Settings,
    read_topic: TopicReader,
    clean_poller_state: asyncpg.Pool,
) -> None:
    created = await first_poll(poller)
    dataset = await sandbox.admin("GET", "dataset")
    doomed = [e["id"] for e in dataset["employees"]][:12]
    for employee_id in doomed:
        await sandbox.admin("DELETE", f"employees/{employee_id}")

    held = await poller.poll()
    assert held.result == "held" and held.status == "red"
    assert "12 of" in held.reasons[0] and held.breaker_counts["removed"] == 12
    assert len(await read_topic(kafka_topics.topics.employee_changes, None)) == created
    assert await clean_poller_state.fetchval("SELECT count(*) FROM nmbrs_snapshots WHERE deleted") == 0

    still_held = await poller.poll()
    assert still_held.result == "held"

    released = await poller.poll(PollOptions(release_hold=True))
    assert released.result == "published" and released.changes["employee:d"] == 12
    removals = [e for e in await read_topic(kafka_topics.topics.employee_changes, created + 12) if e["op"] == "d"]
    assert sorted(e["key"] for e in removals) == sorted(f"employee:{i}" for i in doomed)


class CrashingStore(PollStore):
    """Crashes once after the events were published, before the snapshot is stored."""

    crashed = False

    async def advance(self, poll_id: uuid.UUID, summary: dict[str, Any], employee_id: int | None = None) -> None:
        if not self.crashed:
            self.crashed = True
            raise ConnectionResetError("worker killed between publish and snapshot commit")
        await super().advance(poll_id, summary, employee_id)


async def test_a_crash_between_publish_and_snapshot_commit_loses_nothing_and_repeats_the_same_ids(
    make_poller: PollerFactory, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    poller = make_poller(store=CrashingStore)
    crashed = await poller.poll()
    assert crashed.result == "failed" and "killed" in crashed.reasons[0]
    first_count = len(await read_topic(kafka_topics.topics.employee_changes, None))
    assert first_count > 0

    repeated = await poller.poll()
    assert repeated.result == "published" and repeated.changes["employee:c"] == first_count

    events = await read_topic(kafka_topics.topics.employee_changes, 2 * first_count)
    # Every event was published twice with the same id: consumers deduplicate the repeat.
    assert set(Counter(e["event_id"] for e in events).values()) == {2}
    assert (await poller.poll()).changes == {}


async def test_a_change_published_before_a_crash_and_undone_in_nmbrs_is_published_again(
    poller: Poller, make_poller: PollerFactory, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    await sandbox.admin("PATCH", "employees/100001", {"personal_info": {"last_name": "Bergen"}})
    crashing = make_poller(store=CrashingStore)
    assert (await crashing.poll()).result == "failed"  # 'Bergen' went out; the snapshot still says the old name
    (edit,) = [e for e in await read_topic(kafka_topics.topics.employee_changes, created + 1) if e["op"] == "u"]
    await asyncio.sleep(1.1)  # Nmbrs dates records to the second: the undo must be the later record
    await sandbox.admin("PATCH", "employees/100001", {"personal_info": {"last_name": edit["before"]["last_name"]}})

    # Against the snapshot nothing changed, yet consumers hold 'Bergen': the next poll republishes everything,
    # as a repair also when it was asked as a full one (the nightly reconciliation).
    repaired = await crashing.poll(PollOptions(full=True))
    assert repaired.result == "published" and repaired.full
    republished = sum(n for change, n in repaired.changes.items() if change.startswith("employee:"))
    events = await read_topic(kafka_topics.topics.employee_changes, created + 1 + republished)
    latest = [e for e in events if e["key"] == "employee:100001"][-1]
    assert latest["op"] == "r" and latest["after"]["last_name"] == edit["before"]["last_name"]
    # Above the version of the change that went out: a consumer would ignore an older one as stale, and one at
    # the same version could be taken for a change it has seen.
    assert latest["version"] == edit["version"] + 1 and latest["source"]["repair"]
    assert not (await crashing.poll()).full  # repaired: back to normal polls


class AlwaysCrashingStore(PollStore):
    """Every poll is cut off after it published, before the snapshot is stored (a crash loop)."""

    async def advance(self, poll_id: uuid.UUID, summary: dict[str, Any], employee_id: int | None = None) -> None:
        raise ConnectionResetError("worker killed between publish and snapshot commit")


async def test_a_value_that_goes_back_over_cut_off_polls_is_a_new_event_each_time(
    make_poller: PollerFactory, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    # Seen from outside: hours A -> B -> A, every poll cut off, so the snapshot never advanced. The second A got
    # the id of the first, the consumer's inbox dropped it, and the store stayed on B for good.
    await first_poll(make_poller())
    crashing = make_poller(store=AlwaysCrashingStore)
    for name in ("Bergen", "Berk", "Bergen"):
        await asyncio.sleep(1.1)  # Nmbrs dates records to the second: each edit must be the later record
        await sandbox.admin("PATCH", "employees/100001", {"personal_info": {"last_name": name}})
        assert (await crashing.poll()).result == "failed"
    events = await read_topic(kafka_topics.topics.employee_changes, None, quiet_s=3)
    mine = [e for e in events if e["key"] == "employee:100001" and e["op"] == "u"]
    assert [e["after"]["last_name"] for e in mine] == ["Bergen", "Berk", "Bergen"]
    assert len({e["event_id"] for e in mine}) == 3
    versions = [e["version"] for e in mine]
    assert versions == sorted(set(versions))  # strictly increasing

    # The next poll sends the last change again as the same event (a consumer that saw it ignores it) and stores
    # it all; afterwards the record is quiet.
    assert (await make_poller().poll()).result == "published"
    events = await read_topic(kafka_topics.topics.employee_changes, None, quiet_s=3)
    again = [e for e in events if e["key"] == "employee:100001" and e["op"] == "u"][len(mine) :]
    assert [(e["event_id"], e["version"]) for e in again] == [(mine[-1]["event_id"], versions[-1])]
    assert (await make_poller().poll()).changes == {}
    stored = await make_poller().store.load_keys(["employee:100001"])
    assert stored.snapshot["employee:100001"].version == versions[-1]


async def test_a_dry_run_publishes_the_plan_only_and_leaves_the_snapshot_alone(
    poller: Poller, kafka_topics: Settings, read_topic: TopicReader, clean_poller_state: asyncpg.Pool
) -> None:
    plan = await poller.poll(PollOptions(dry_run=True))
    assert plan.result == "planned"
    planned = await read_topic(kafka_topics.topics.plan, sum(plan.changes.values()))
    assert {e["event_type"] for e in planned} == {"employee_changed", "company_changed", "reference_changed"}
    assert await read_topic(kafka_topics.topics.employee_changes, None) == []
    assert await clean_poller_state.fetchval("SELECT count(*) FROM nmbrs_snapshots") == 0
    assert (await poller.poll()).changes == plan.changes


async def test_full_reconciliation_reads_every_record_again(
    poller: Poller, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    report = await poller.poll(PollOptions(full=True))
    assert report.changes["employee:r"] == created
    reads = [e for e in await read_topic(kafka_topics.topics.employee_changes, 2 * created) if e["op"] == "r"]
    assert len(reads) == created and all(e["source"]["full"] for e in reads)


async def test_every_poll_reports_on_the_status_topic(
    poller: Poller, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    await first_poll(poller)
    (report,) = await read_topic(kafka_topics.topics.status, 1)
    assert report["key"] == "poll" and report["result"] == "published"
    assert report["soap_calls"] > 0 and len(report["companies"]) == 3


async def test_only_one_poll_runs_at_a_time(poller: Poller, clean_poller_state: asyncpg.Pool) -> None:
    store = PollStore(clean_poller_state)
    async with store.poll_lock() as held:
        assert held
        skipped = await poller.poll()
    assert skipped.result == "skipped"


class NoCompanies:
    """An Nmbrs that suddenly lists no companies (a filtered API user, a half answer)."""

    soap_calls = 1

    async def list_companies(self) -> list[Any]:
        return []

    async def fetch_company(self, company: Any, as_of: Any) -> Any:
        raise AssertionError("nothing to fetch")


async def test_an_empty_company_list_removes_nothing(
    poller: Poller, make_poller: PollerFactory, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    empty = make_poller(NoCompanies())
    report = await empty.poll()
    assert report.result == "failed" and "listed no companies" in report.reasons[0]
    assert len(await read_topic(kafka_topics.topics.employee_changes, None)) == created
    assert not [e for e in await read_topic(kafka_topics.topics.company_changes, None) if e["op"] == "d"]


class WithoutCompany2(NmbrsVariant):
    """Nmbrs as the API user sees it after company 2 was hidden from it (a template or tag change)."""

    async def list_companies(self) -> list[Any]:
        return [c for c in await super().list_companies() if c.company_id != 2]


async def test_a_company_missing_from_the_list_is_held_with_its_employees_until_released(
    poller: Poller,
    make_poller: PollerFactory,
    nmbrs: NmbrsClient,
    clean_poller_state: asyncpg.Pool,
    kafka_topics: Settings,
    read_topic: TopicReader,
) -> None:
    created = await first_poll(poller)
    hiding = make_poller(WithoutCompany2(nmbrs))
    held = await hiding.poll()
    assert held.result == "held" and "company 2 is no longer listed by Nmbrs" in held.reasons
    assert any(reason.startswith("all ") and "of company 2 removed" in reason for reason in held.reasons)
    assert len(await read_topic(kafka_topics.topics.employee_changes, None)) == created
    assert await clean_poller_state.fetchval("SELECT count(*) FROM nmbrs_snapshots WHERE deleted") == 0

    released = await hiding.poll(PollOptions(release_hold=True))
    assert released.result == "published" and released.changes["company:d"] == 1
    assert released.changes["employee:d"] == held.breaker_counts["removed"] > 0


class LosesTheLock(NmbrsVariant):
    """Nmbrs answering while the poll lock's database connection is cut (a failover, an idle timeout)."""

    def __init__(self, nmbrs: NmbrsClient, pool: asyncpg.Pool) -> None:
        super().__init__(nmbrs)
        self.pool = pool

    async def list_companies(self) -> list[Any]:
        await self.pool.execute(
            """SELECT pg_terminate_backend(pid) FROM pg_locks
               WHERE locktype = 'advisory' AND objid = $1 AND objsubid = 1 AND granted""",
            POLL_LOCK_ID,
        )
        return await super().list_companies()


async def test_a_poll_that_lost_its_lock_publishes_and_stores_nothing(
    poller: Poller,
    make_poller: PollerFactory,
    nmbrs: NmbrsClient,
    clean_poller_state: asyncpg.Pool,
    kafka_topics: Settings,
    read_topic: TopicReader,
) -> None:
    cut = make_poller(LosesTheLock(nmbrs, clean_poller_state))
    report = await cut.poll()
    assert report.result == "failed" and "poll lock was lost" in report.reasons[0]
    assert await read_topic(kafka_topics.topics.employee_changes, None) == []
    assert await clean_poller_state.fetchval("SELECT count(*) FROM nmbrs_snapshots") == 0
    # The lock went with its connection: the next poll takes it and runs normally.
    assert (await cut.poll()).result == "failed"  # (this Nmbrs cuts the lock again)
    assert (await poller.poll()).result == "published"


async def test_a_sync_request_left_running_by_a_dead_worker_is_taken_again_at_once(
    poller: Poller, clean_poller_state: asyncpg.Pool
) -> None:
    # Seen from outside: after a kill -9 mid-poll the request stayed 'running' for 30 minutes, so wait-idle failed
    # and nothing polled on request. The runner's poll lock went with its connection: that is the lease.
    pool = clean_poller_state
    await pool.execute("DELETE FROM sync_requests")
    request = SyncRequested(event_id=uuid.uuid4(), requested_by="hr", requested_at=utc_now())
    async with pool.acquire() as connection:
        await insert_sync_request(connection, request)
    await pool.execute(
        "UPDATE sync_requests SET status = 'running', claimed_at = now() WHERE request_id = $1", request.event_id
    )

    async with pool.acquire() as other_replica:  # a live runner holds the lock: the request is left to it
        await other_replica.execute("SELECT pg_advisory_lock($1)", POLL_LOCK_ID)
        busy = await poller.poll_requested()
        await other_replica.execute("SELECT pg_advisory_unlock($1)", POLL_LOCK_ID)
    assert busy is not None and busy.result == "skipped"
    status = "SELECT status FROM sync_requests WHERE request_id = $1"
    assert await pool.fetchval(status, request.event_id) == "running"

    report = await poller.poll_requested()  # the runner is gone
    assert report is not None and report.result == "published" and report.request_id == request.event_id
    assert await pool.fetchval(status, request.event_id) == "done"
    assert await poller.poll_requested() is None


async def test_the_poll_outcome_every_replica_reports_comes_from_the_database(clean_poller_state: asyncpg.Pool) -> None:
    pool = clean_poller_state
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)

    async def run(minutes: int, status: str) -> None:
        await pool.execute(
            """INSERT INTO poll_runs (poll_id, full_sync, dry_run, started_at, finished_at, status)
               VALUES ($1, false, false, $2::timestamptz, $2::timestamptz + interval '5 seconds', $3)""",
            uuid.uuid4(),
            at + timedelta(minutes=minutes),
            status,
        )

    async with pool.acquire() as connection:
        assert await poll_outcome(connection) == (None, False)
        await run(0, "published")
        await run(5, "held")
        await run(10, "failed")  # a failure after a hold: the hold still stands
        await run(15, "planned")  # a dry run neither
        assert await poll_outcome(connection) == (at + timedelta(seconds=5), True)
        await run(20, "published")  # released (or Nmbrs corrected)
        assert await poll_outcome(connection) == (at + timedelta(minutes=20, seconds=5), False)


class ListedUnder(NmbrsVariant):
    """Nmbrs listing employee 100001 of company 1 under company `to` (the same id: an API that moves a record
    across companies), or with `failing` companies whose fetch fails."""

    def __init__(self, nmbrs: NmbrsClient, to: int | None = None, failing: tuple[int, ...] = ()) -> None:
        super().__init__(nmbrs)
        self.to, self.failing = to, failing

    async def fetch_company(self, company: Any, as_of: Any) -> Any:
        if company.company_id in self.failing:
            raise NmbrsServerError(500, operation="Employment_GetAll_AllEmployeesByCompany")
        snapshot = await super().fetch_company(company, as_of)
        if self.to is None:
            return snapshot
        kept = tuple(e for e in snapshot.employees if e.employee_id != 100001)
        if company.company_id == self.to:
            first = await super().fetch_company(company.model_copy(update={"company_id": 1}), as_of)
            (mover,) = (e for e in first.employees if e.employee_id == 100001)
            kept += (mover.model_copy(update={"company_id": self.to}),)
        return snapshot.model_copy(update={"employees": kept})


async def test_an_employee_listed_by_another_company_is_one_update_there_and_removed_nowhere(
    poller: Poller, make_poller: PollerFactory, nmbrs: NmbrsClient, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    created = await first_poll(poller)
    report = await make_poller(ListedUnder(nmbrs, to=3)).poll()
    assert report.result == "published" and report.changes == {"employee:u": 1}
    assert report.breaker_counts["moved"] == 1 and report.breaker_counts["removed"] == 0
    (update,) = [e for e in await read_topic(kafka_topics.topics.employee_changes, created + 1) if e["op"] != "c"]
    assert update["key"] == "employee:100001" and "company_id" in update["changed_fields"]
    assert update["after"]["company_id"] == 3 and update["source"]["company_id"] == 3


async def test_an_employee_gone_from_its_company_is_not_removed_while_another_company_failed(
    poller: Poller, make_poller: PollerFactory, nmbrs: NmbrsClient, sandbox: Any, clean_poller_state: asyncpg.Pool
) -> None:
    await first_poll(poller)
    await sandbox.admin("DELETE", "employees/100001")  # or moved into company 3, which does not answer
    failing = await make_poller(ListedUnder(nmbrs, failing=(3,))).poll()
    assert failing.result == "published" and failing.status == "red" and failing.changes == {}
    assert await clean_poller_state.fetchval("SELECT count(*) FROM nmbrs_snapshots WHERE deleted") == 0
    answered = await poller.poll()
    assert answered.changes == {"employee:d": 1}


async def test_a_move_in_nmbrs_ends_the_old_employment_and_creates_the_new_one_in_one_poll(
    poller: Poller, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader
) -> None:
    # How Nmbrs moves someone: the employment in the old company ends the day before, a new employee id starts.
    created = await first_poll(poller)
    moved = await sandbox.admin("PATCH", "employees/100001", {"company_id": 3})
    report = await poller.poll()
    assert report.changes == {"employee:u": 1, "employee:c": 1}
    events = await read_topic(kafka_topics.topics.employee_changes, created + 2)
    (left,) = [e for e in events if e["op"] == "u"]
    (joined,) = [e for e in events if e["key"] == f"employee:{moved['new_id']}"]
    assert left["key"] == "employee:100001" and left["after"]["employments"][-1]["end"]
    assert joined["op"] == "c" and joined["after"]["company_id"] == 3
    assert joined["after"]["bsn_hash"] == left["after"]["bsn_hash"]


class GeneratedNmbrs:
    """Nmbrs with `companies` companies of `size` employees, whose records are built at each fetch and kept nowhere:
    what the poll itself holds is all the memory a poll adds."""

    soap_calls = 0

    def __init__(self, companies: int, size: int) -> None:
        self.companies, self.size = companies, size

    async def list_companies(self) -> list[NmbrsCompany]:
        return [NmbrsCompany(company_id=c, name=f"Bedrijf {c}") for c in range(1, self.companies + 1)]

    async def fetch_company(self, company: NmbrsCompany, as_of: Any) -> CompanySnapshot:
        await asyncio.sleep(0)
        employees = tuple(
            nmbrs_employee(company.company_id * 10_000 + n, company_id=company.company_id, number=str(n))
            for n in range(self.size)
        )
        return CompanySnapshot(company=company, employees=employees, fetched_at=utc_now())


class CountingPublisher:
    """Counts what it is given and keeps none of it."""

    def __init__(self) -> None:
        self.events = 0

    async def publish_many(self, items: list[tuple[str, str, Any]]) -> None:
        pass  # the poll report

    async def publish_bodies(self, items: list[tuple[str, str, bytes]]) -> None:
        self.events += len(items)


async def _poll_peak_bytes(pool: asyncpg.Pool, settings: Settings, companies: int, size: int) -> tuple[int, int]:
    """The most memory a first poll and then a full poll of that domain took above what was in use before it."""
    await pool.execute("TRUNCATE nmbrs_snapshots, nmbrs_published_ahead, poll_runs")
    publisher = CountingPublisher()
    poller = Poller(GeneratedNmbrs(companies, size), PollStore(pool), publisher, settings, utc_now)  # type: ignore[arg-type]
    peaks = []
    for options in (PollOptions(), PollOptions(full=True)):
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        report = await poller.poll(options)
        assert report.result == "published", report.reasons
        peaks.append(tracemalloc.get_traced_memory()[1] - before)
    assert publisher.events == 2 * (
        companies * size + companies + 2
    )  # employees, companies, one department, one function
    return peaks[0], peaks[1]


async def test_the_memory_a_poll_takes_does_not_grow_with_the_number_of_companies(
    clean_poller_state: asyncpg.Pool, kafka_topics: Settings
) -> None:
    tracemalloc.start()
    try:
        few = await _poll_peak_bytes(clean_poller_state, kafka_topics, COMPANY_FETCH_CONCURRENCY, 120)
        many = await _poll_peak_bytes(clean_poller_state, kafka_topics, 6 * COMPANY_FETCH_CONCURRENCY, 120)
    finally:
        tracemalloc.stop()
    # Six times the domain: a poll holding the domain would take some six times the memory. Per company only the
    # summaries remain (its fetch line in the report, the keys it lost or gained).
    for first, second in zip(few, many, strict=True):
        assert second < 1.5 * first, (few, many)


# --- one employee re-read ("sync this employee now") ----------------------------------------------------------


async def request_employee(pool: asyncpg.Pool, employee_id: int) -> SyncRequested:
    request = SyncRequested(event_id=uuid.uuid4(), employee_id=employee_id, requested_by="hr", requested_at=utc_now())
    async with pool.acquire() as connection:
        await insert_sync_request(connection, request)
    return request


async def test_a_one_employee_request_publishes_that_employee_only_through_the_normal_events(
    poller: Poller, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader, clean_poller_state: asyncpg.Pool
) -> None:
    created = await first_poll(poller)
    last_poll = await poll_outcome(clean_poller_state)
    colleague = next(
        e["id"]
        for e in (await sandbox.admin("GET", "dataset"))["employees"]
        if e["company_id"] == 1 and e["id"] != 100001
    )
    await sandbox.admin(
        "PATCH", "employees/100001", {"department": {"id": 99, "code": 99, "description": "Klantenservice"}}
    )
    await sandbox.admin("PATCH", f"employees/{colleague}", {"personal_info": {"last_name": "Anders"}})
    await sandbox.admin("DELETE", "calls")
    request = await request_employee(clean_poller_state, 100001)

    report = await poller.poll_requested()
    assert report is not None and report.request_id == request.event_id, report
    assert report.result == "published" and report.employee_id == 100001, report.reasons
    assert {k: n for k, n in report.changes.items() if k.startswith("employee")} == {"employee:u": 1}
    assert report.changes["department:c"] == 1  # the new department it uses; nothing else removed or created
    assert not [k for k in report.changes if k.endswith(":d") or k.startswith("company")]
    # Its company's bulk calls and the listing, nothing more.
    assert report.soap_calls == (await sandbox.admin("GET", "calls"))["total"] == 1 + report.companies[0].soap_calls
    events = await read_topic(kafka_topics.topics.employee_changes, created + 1)
    (update,) = [e for e in events if e["op"] != "c"]
    assert (update["key"], update["op"], update["changed_fields"]) == ("employee:100001", "u", ["department"])
    assert uuid.UUID(update["event_id"]) in report.event_ids
    # The status topic's 'poll' stays the domain's poll; the run is not "the last poll" of the overview either.
    statuses = await read_topic(kafka_topics.topics.status, 2)
    assert [s["key"] for s in statuses] == ["poll", "poll-employee"]
    assert await poll_outcome(clean_poller_state) == last_poll
    assert (
        await clean_poller_state.fetchval("SELECT status FROM sync_requests WHERE request_id = $1", request.event_id)
        == "done"
    )

    # The snapshot moved on for that employee only: the next poll publishes the colleague's change, once.
    report = await poller.poll()
    assert report.changes == {"employee:u": 1}
    events = await read_topic(kafka_topics.topics.employee_changes, created + 2)
    assert sorted(e["key"] for e in events if e["op"] == "u") == sorted(["employee:100001", f"employee:{colleague}"])


async def test_an_unchanged_employee_re_read_is_a_snapshot_read(
    poller: Poller, kafka_topics: Settings, read_topic: TopicReader, clean_poller_state: asyncpg.Pool
) -> None:
    created = await first_poll(poller)
    await request_employee(clean_poller_state, 100001)
    report = await poller.poll_requested()
    assert report is not None and report.changes.get("employee:r") == 1 and "employee:u" not in report.changes
    events = await read_topic(kafka_topics.topics.employee_changes, created + 1)
    (read,) = [e for e in events if e["op"] != "c"]
    assert (read["key"], read["op"], read["version"]) == ("employee:100001", "r", 1)


async def test_a_one_employee_re_read_whose_fetch_fails_changes_and_removes_nothing(
    poller: Poller, sandbox: Any, kafka_topics: Settings, read_topic: TopicReader, clean_poller_state: asyncpg.Pool
) -> None:
    created = await first_poll(poller)
    await sandbox.admin(
        "POST", "faults", {"operation": "Contract_GetAll_AllEmployeesByCompany", "company_id": 1, "code": 2004}
    )
    await request_employee(clean_poller_state, 100001)
    report = await poller.poll_requested()
    assert report is not None and report.result == "failed" and report.status == "red"
    assert "company 1" in report.reasons[0] and "2004" in report.reasons[0]
    assert report.changes == {} and report.event_ids == ()
    assert len(await read_topic(kafka_topics.topics.employee_changes, None)) == created

    await request_employee(clean_poller_state, 999_999)  # never polled: nothing to re-read
    unknown = await poller.poll_requested()
    assert unknown is not None and unknown.result == "failed" and "999999" in unknown.reasons[0]
