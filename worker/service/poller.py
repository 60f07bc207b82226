"""The poller: Nmbrs snapshots become change events on Kafka; the snapshot advances only after the acks.

One poll: take the poll lock, list companies, then company by company (a few at a time) fetch it, diff it against
its stored snapshot rows and stage the planned changes in the database; plan the companies, the reference data and
the removals from what the companies added up; check the mass-change breaker; publish the staged changes (or hold,
or publish them to the plan topic for a dry run), and only then store the new snapshot. A company whose fetch
failed keeps its records untouched. Memory is bounded by the largest companies, not by the domain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from worker.adapters import metrics
from worker.adapters.nmbrs import NmbrsPort
from worker.adapters.nmbrs.errors import NmbrsError
from worker.adapters.poll_store import PollStore
from worker.config import Settings
from worker.domain.breaker import BreakerPolicy
from worker.domain.changes import ChangeSource, Entity, record_key
from worker.domain.events import CompanyFetch, Message, PollReport
from worker.domain.nmbrs_records import NmbrsCompany, nmbrs_today
from worker.domain.poll_tally import PollTally
from worker.domain.snapshot_diff import (
    PlannedChange,
    employee_fingerprints,
    plan_company,
    plan_one_employee,
    plan_removals,
    plan_shared,
    records_to_read,
)

log = logging.getLogger(__name__)

# Companies fetched and planned at once: what bounds the poll's memory (a few companies' records).
COMPANY_FETCH_CONCURRENCY = 4
PUBLISH_BATCH = 2_000  # staged events sent before their acknowledgements are awaited
REMOVAL_BATCH = 2_000  # removal candidates read and planned at a time
# The poll loop's longest wait after a failed iteration: a database back after an outage is polled soon.
POLL_RETRY_CAP_S = 15.0


class _Stopwatch:
    """Adds up the time spent inside `with` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self.seconds += time.perf_counter() - self._started


class IncompleteFetch(Exception):
    """Nmbrs answered, but not with everything: the poll publishes nothing."""


class ChangePublisher(Protocol):
    async def publish_many(self, items: list[tuple[str, str, Message]]) -> None:
        """Publish all and return once the broker acknowledged every one."""
        ...

    async def publish_bodies(self, items: list[tuple[str, str, bytes]]) -> None:
        """publish_many for messages serialised already: (topic, key, body)."""
        ...


@dataclass(frozen=True)
class PollOptions:
    full: bool = False
    dry_run: bool = False
    release_hold: bool = False
    request_id: uuid.UUID | None = None
    employee_id: int | None = None  # re-read just this Nmbrs employee ("sync this employee now")
    repair: bool = False  # set by the poller itself after a poll was cut off while publishing


class Poller:
    """Runs polls. Dependencies are explicit; `now` is injectable for tests."""

    def __init__(
        self,
        nmbrs: NmbrsPort,
        store: PollStore,
        publisher: ChangePublisher,
        settings: Settings,
        now: Callable[[], datetime],
    ) -> None:
        self.nmbrs = nmbrs
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.now = now
        self.policy = BreakerPolicy(max_share=settings.breaker_max_share)

    def _topic(self, entity: Entity, dry_run: bool) -> str:
        topics = self.settings.topics
        if dry_run:
            return topics.plan
        if entity is Entity.EMPLOYEE:
            return topics.employee_changes
        if entity is Entity.COMPANY:
            return topics.company_changes
        return topics.reference_changes

    async def poll(self, options: PollOptions = PollOptions()) -> PollReport:
        poll_id, started = uuid.uuid4(), self.now()
        async with self.store.poll_lock() as held:
            if not held:
                log.info("poll %s skipped: another poll is running", poll_id, extra={"poll_id": poll_id})
                report = self._report(poll_id, options, "skipped", started, reasons=("another poll is running",))
            else:
                report = await self._poll_held(poll_id, options, started)
        await self._publish_report(report)
        return report

    async def poll_requested(self) -> PollReport | None:
        """Run the oldest open sync request (None: there is none; a 'skipped' report: another replica polls).

        The request is taken under the poll lock, so one left 'running' is one whose runner died (its lock went
        with its database connection): it is taken again at once, by the next poll of any replica."""
        poll_id, started = uuid.uuid4(), self.now()
        async with self.store.poll_lock() as held:
            if not held:
                return self._report(poll_id, PollOptions(), "skipped", started, reasons=("another poll is running",))
            request = await self.store.claim_request()
            if request is None:
                return None
            options = PollOptions(
                request.full, request.dry_run, request.release_hold, request.request_id, request.employee_id
            )
            report = await self._poll_held(poll_id, options, started)
            await self.store.close_request(request.request_id, report.result != "failed")
        await self._publish_report(report)
        return report

    async def _poll_held(self, poll_id: uuid.UUID, options: PollOptions, started: datetime) -> PollReport:
        # Also when the poll is full anyway (the nightly one, the likeliest to be cut off): its reads must carry
        # the repair's new versions. A one-employee request becomes that repair too: it re-reads everyone.
        if not options.dry_run and await self.store.publish_interrupted():
            log.warning(
                "poll %s runs as a repair reconciliation: an earlier poll was cut off while publishing",
                poll_id,
                extra={"poll_id": poll_id},
            )
            options = dataclasses.replace(options, full=True, repair=True, employee_id=None)
        # A one-employee poll is no full reconciliation of the domain, though its employee is read in full.
        whole_domain_full = options.full and options.employee_id is None
        await self.store.start_run(
            poll_id, options.request_id, whole_domain_full, options.dry_run, started, options.employee_id
        )
        try:
            if options.employee_id is not None:
                return await self._poll_one(poll_id, options, options.employee_id, started)
            return await self._poll_locked(poll_id, options, started)
        except Exception as error:
            # Nothing was stored; the next poll starts from the same snapshot (as a full reconciliation if this
            # one had begun publishing).
            log.exception("poll %s failed", poll_id, extra={"poll_id": poll_id})
            report = self._report(poll_id, options, "failed", started, reasons=(f"{type(error).__name__}: {error}",))
            await self.store.finish_run(poll_id, "failed", report.model_dump(mode="json"))
            return report

    async def _poll_locked(self, poll_id: uuid.UUID, options: PollOptions, started: datetime) -> PollReport:
        clock = time.perf_counter()
        calls_before = self.nmbrs.soap_calls
        as_of = nmbrs_today(started)
        companies = await self.nmbrs.list_companies()
        shared = await self.store.load_shared()
        known = sum(1 for e in shared.snapshot.values() if e.entity is Entity.COMPANY and not e.deleted)
        if not companies and known:
            # An empty company list is far more likely a failed or filtered answer than the end of payroll.
            raise IncompleteFetch(f"Nmbrs listed no companies while {known} are known: nothing is removed")
        await self.store.clear_staged()
        source = ChangeSource(poll_id=poll_id, fetched_at=self.now(), full=options.full, repair=options.repair)
        tally, planning = PollTally(), _Stopwatch()
        fetches = await self._plan_companies(companies, as_of, source, tally, planning)
        # The loop waits while a company is planned: that time is the diff's, the rest (fetching, reading and
        # staging rows, overlapping between companies) the fetch's.
        planned_while_fetching = planning.seconds
        fetch_s = time.perf_counter() - clock - planned_while_fetching

        clock = time.perf_counter()
        fetched_ok = {f.company_id for f in fetches if f.ok}
        all_fetched = bool(companies) and len(fetched_ok) == len(companies)
        with planning:
            shared_planned = plan_shared(source, shared, companies, tally.references, all_fetched, source.fetched_at)
        await self._stage(poll_id, shared_planned, tally)
        if all_fetched:
            # Only when every company was fetched: an employee may have moved into a company that failed.
            unlisted = await self.store.unlisted_employee_keys([c.company_id for c in companies])
            candidates = tally.removal_candidates(unlisted)
            for start in range(0, len(candidates), REMOVAL_BATCH):
                stored = await self.store.load_keys(candidates[start : start + REMOVAL_BATCH])
                with planning:
                    removals = plan_removals(source, stored, source.fetched_at)
                await self._stage(poll_id, removals, tally)
        verdict = tally.verdict(await self.store.active_employees_by_company(), fetched_ok, self.policy)
        diff_s = planned_while_fetching + time.perf_counter() - clock

        failed = [f for f in fetches if not f.ok]
        reasons = tuple(f"company {f.company_id} ({f.name}) not fetched: {f.error}" for f in failed)
        common: dict[str, Any] = {
            "changes": dict(tally.changes),
            "breaker_counts": verdict.counts,
            "companies": tuple(fetches),
            # The listing and failed companies included: what the poll cost of the fair-use budget.
            "soap_calls": self.nmbrs.soap_calls - calls_before,
            "fetch_s": round(fetch_s, 3),
            "diff_s": round(diff_s, 3),
        }
        if verdict.tripped and not options.release_hold and not options.dry_run:
            log.warning(
                "poll %s held by the breaker: %s", poll_id, "; ".join(verdict.reasons), extra={"poll_id": poll_id}
            )
            await self.store.clear_staged()
            report = self._report(poll_id, options, "held", started, reasons=verdict.reasons + reasons, **common)
            await self.store.finish_run(poll_id, "held", report.model_dump(mode="json"))
            return report

        publish_s = await self._publish_staged(poll_id, options)
        result = "planned" if options.dry_run else "published"
        report = self._report(
            poll_id, options, result, started, reasons=reasons, publish_s=round(publish_s, 3), **common
        )
        await self._close_published(poll_id, options, report)
        log.info(
            "poll %s %s: %s in %.2f s (%d SOAP calls)",
            poll_id,
            result,
            dict(tally.changes) or "no changes",
            fetch_s + diff_s + publish_s,
            report.soap_calls,
            extra={"poll_id": poll_id},
        )
        return report

    async def _poll_one(
        self, poll_id: uuid.UUID, options: PollOptions, employee_id: int, started: datetime
    ) -> PollReport:
        """Re-read one employee with its company's bulk calls and publish its changes through the same diff and
        topics as a poll: an update when it changed, else a snapshot read (the reconciler then corrects drift).
        The breaker has nothing to weigh in one record; removal and moves wait for a poll of every company."""
        calls_before = self.nmbrs.soap_calls
        key = record_key(Entity.EMPLOYEE, employee_id)
        stored = await self.store.load_keys([key])
        entry = stored.snapshot.get(key)
        if entry is None or entry.deleted or entry.company_id is None:
            reason = f"employee {employee_id} is not in the last poll's snapshot: the next poll reads it, if listed"
            return await self._finish_one(poll_id, options, employee_id, "failed", started, (reason,), calls_before)
        clock = time.perf_counter()
        companies = {c.company_id: c for c in await self.nmbrs.list_companies()}
        company = companies.get(entry.company_id)
        if company is None:
            reason = (
                f"company {entry.company_id} of employee {employee_id} is not listed by Nmbrs: the next poll decides"
            )
            return await self._finish_one(poll_id, options, employee_id, "failed", started, (reason,), calls_before)
        try:
            snapshot = await self.nmbrs.fetch_company(company, nmbrs_today(started))
        except NmbrsError as error:
            # Never read as "removed": nothing is planned, the snapshot stays as it was.
            reason = f"company {company.company_id} ({company.name}) not fetched: {error}"
            fetch = CompanyFetch(
                company_id=company.company_id,
                name=company.name,
                ok=False,
                soap_calls=error.soap_calls,
                error=str(error),
            )
            return await self._finish_one(
                poll_id, options, employee_id, "failed", started, (reason,), calls_before, companies=(fetch,)
            )
        fetch_s = time.perf_counter() - clock
        clock = time.perf_counter()
        source = ChangeSource(poll_id=poll_id, fetched_at=self.now(), full=True)
        planned = plan_one_employee(
            source, snapshot, employee_id, stored, await self.store.load_shared(), source.fetched_at
        )
        fetched = CompanyFetch(
            company_id=company.company_id,
            name=company.name,
            ok=True,
            employees=len(snapshot.employees),
            soap_calls=snapshot.soap_calls,
        )
        common: dict[str, Any] = {"companies": (fetched,), "fetch_s": round(fetch_s, 3)}
        if planned is None:
            reason = (
                f"company {company.company_id} ({company.name}) no longer lists employee {employee_id}: whether it "
                "moved or left, the next poll decides (it reads every company)"
            )
            return await self._finish_one(
                poll_id, options, employee_id, "failed", started, (reason,), calls_before, **common
            )
        tally = PollTally()
        await self._stage(poll_id, planned, tally)
        common["diff_s"] = round(time.perf_counter() - clock, 3)
        publish_s = await self._publish_staged(poll_id, options)
        result = "planned" if options.dry_run else "published"
        report = self._report(
            poll_id,
            options,
            result,
            started,
            changes=dict(tally.changes),
            employee_id=employee_id,
            event_ids=tuple(p.event.event_id for p in planned),
            soap_calls=self.nmbrs.soap_calls - calls_before,
            publish_s=round(publish_s, 3),
            **common,
        )
        await self._close_published(poll_id, options, report)
        log.info(
            "poll %s of employee %s %s: %s",
            poll_id,
            employee_id,
            result,
            dict(tally.changes),
            extra={"poll_id": poll_id, "employee_id": employee_id},
        )
        return report

    async def _publish_staged(self, poll_id: uuid.UUID, options: PollOptions) -> float:
        """Send the staged events (to the plan topic for a dry run), once recorded as publishing; the seconds."""
        clock = time.perf_counter()
        if not options.dry_run:
            await self.store.mark_publishing(poll_id)
        async for batch in self.store.staged(poll_id, PUBLISH_BATCH):
            await self.publisher.publish_bodies(
                [(self._topic(entity, options.dry_run), key, body) for entity, key, body in batch]
            )
        return time.perf_counter() - clock

    async def _close_published(self, poll_id: uuid.UUID, options: PollOptions, report: PollReport) -> None:
        """After the broker acked everything: the new snapshot stored (a dry run stores none)."""
        if options.dry_run:
            await self.store.clear_staged()
            await self.store.finish_run(poll_id, "planned", report.model_dump(mode="json"))
        else:
            await self.store.advance(poll_id, report.model_dump(mode="json"), options.employee_id)

    async def _finish_one(
        self,
        poll_id: uuid.UUID,
        options: PollOptions,
        employee_id: int,
        result: str,
        started: datetime,
        reasons: tuple[str, ...],
        calls_before: int,
        **fields: Any,
    ) -> PollReport:
        """A one-employee poll that published nothing: recorded with why."""
        report = self._report(
            poll_id,
            options,
            result,
            started,
            reasons=reasons,
            employee_id=employee_id,
            soap_calls=self.nmbrs.soap_calls - calls_before,
            **fields,
        )
        await self.store.finish_run(poll_id, result, report.model_dump(mode="json"))
        return report

    async def _plan_companies(
        self,
        companies: list[NmbrsCompany],
        as_of: date,
        source: ChangeSource,
        tally: PollTally,
        planning: _Stopwatch,
    ) -> list[CompanyFetch]:
        """Fetch, plan and stage company by company, a few at a time: no more than that many companies' records
        are held at once, whatever the size of the domain. What the whole poll needs goes into `tally`."""
        gate = asyncio.Semaphore(COMPANY_FETCH_CONCURRENCY)

        async def one(company: NmbrsCompany) -> CompanyFetch:
            async with gate:
                try:
                    snapshot = await self.nmbrs.fetch_company(company, as_of)
                except NmbrsError as error:
                    log.warning(
                        "company %s fetch failed: %s",
                        company.company_id,
                        error,
                        extra={"company_id": company.company_id},
                    )
                    return CompanyFetch(
                        company_id=company.company_id,
                        name=company.name,
                        ok=False,
                        soap_calls=error.soap_calls,
                        error=str(error),
                    )
                keys = [record_key(Entity.EMPLOYEE, e.employee_id) for e in snapshot.employees]
                stored = await self.store.load_company(company.company_id, keys)
                with planning:
                    prints = employee_fingerprints(snapshot)
                    wanted = records_to_read(stored, prints)
                if wanted:
                    stored = stored.with_records(await self.store.load_records(wanted))
                with planning:
                    plan = plan_company(source, snapshot, stored, source.fetched_at, prints)
                tally.add_company(plan)
                await self.store.stage(source.poll_id, plan.planned)
                return CompanyFetch(
                    company_id=company.company_id,
                    name=company.name,
                    ok=True,
                    employees=plan.fetched,
                    soap_calls=snapshot.soap_calls,
                )

        # A task group: when one company fails with something other than Nmbrs (the database away), the others
        # stop too, rather than staging on behind the failed poll.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(company)) for company in companies]
        except ExceptionGroup as failure:
            raise failure.exceptions[0] from None  # the cause; the others are the same one or none
        return [task.result() for task in tasks]

    async def _stage(self, poll_id: uuid.UUID, planned: list[PlannedChange], tally: PollTally) -> None:
        tally.add(planned)
        await self.store.stage(poll_id, planned)

    def _report(
        self,
        poll_id: uuid.UUID,
        options: PollOptions,
        result: str,
        started: datetime,
        reasons: tuple[str, ...] = (),
        **fields: Any,
    ) -> PollReport:
        failed_companies = any(not c.ok for c in fields.get("companies", ()))
        red = result in ("held", "failed") or failed_companies
        return PollReport(
            poll_id=poll_id,
            request_id=options.request_id,
            full=options.full,
            dry_run=options.dry_run,
            result=result,
            status="red" if red else "green",
            reasons=reasons,
            started_at=started,
            finished_at=self.now(),
            **fields,
        )

    async def _publish_report(self, report: PollReport) -> None:
        # Key 'poll' is the latest poll of the domain (compacted): a one-employee poll has a key of its own.
        key = "poll" if report.employee_id is None else "poll-employee"
        await self.publisher.publish_many([(self.settings.topics.status, key, report)])
        _count(report)


def _count(report: PollReport) -> None:
    """The poll in the metrics; a skipped one (another replica polls) says nothing about this one, a one-employee
    one nothing about polling the domain."""
    if report.result == "skipped" or report.employee_id is not None:
        return
    metrics.POLLS.labels(report.result).inc()
    metrics.POLL_DURATION.observe((report.finished_at - report.started_at).total_seconds())


async def run_poll_loop(poller: Poller, store: PollStore, settings: Settings, wake: asyncio.Event) -> None:
    """Poll on requests (sync-now) and on schedule: a change poll every `poll_interval_s`, a full
    reconciliation when the last one is older than `full_reconciliation_interval_s`. Runs until cancelled."""
    next_scheduled = time.monotonic()
    failures = 0
    while True:
        try:
            report = await poller.poll_requested()
            if report is not None:
                if report.result == "skipped":
                    await asyncio.sleep(1.0)  # another replica polls: an open request is for the poll after it
            elif time.monotonic() >= next_scheduled:
                last_full = await store.last_full_poll_at()
                full = last_full is None or (poller.now() - last_full).total_seconds() >= (
                    settings.full_reconciliation_interval_s
                )
                await poller.poll(PollOptions(full=full))
                next_scheduled = time.monotonic() + settings.poll_interval_s
            else:
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=max(next_scheduled - time.monotonic(), 0.05))
                except TimeoutError:
                    pass
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database or broker is away: nothing was advanced, so waiting and retrying is safe.
            failures += 1
            delay = min(POLL_RETRY_CAP_S, 2.0**failures)
            log.exception("poll loop iteration failed; retrying in %.0f s", delay)
            await asyncio.sleep(delay)
