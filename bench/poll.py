"""Benchmark: one poll of 10,000 employees in 10 companies, without changes and with 1% changes.

Run: `python bench/poll.py [--companies 10] [--employees 10000] [--largest N] [--change-pct 1] [--repeats 3]
[--database-url URL]` (`--largest`: the first company's head count, the others share the rest evenly).
A real Poller (NmbrsClient over HTTP, PollStore on PostgreSQL, KafkaPublisher) polls the sandbox, which
runs in its own process so its CPU time is not ours. Sequence: a first poll (every record is a create),
`--repeats` no-change polls, then `--change-pct` % of the employees change through the sandbox admin API
(department changes, hours changes and leavers) and one more poll picks them up.
The split is the poller's own: fetch (list the companies, then fetch each, read its stored rows and stage its
plan, a few companies at a time), diff (planning, whose time the loop waits for, and what is planned after the
last company: companies, reference data, removals, the breaker) and publish (from the staged rows until the
broker acknowledged every event). The diff overhead is diff / fetch.
Memory is measured by the benchmark itself: the peak RSS of this process (Linux VmHWM, reset before each poll)
while each poll runs; own CPU is this process's CPU time during the poll (the sandbox's is not in it).
It uses topics with a unique prefix and a database of its own (--database-url, else $BENCH_DATABASE_URL,
else `nmbrs_sync_bench` next to the configured one; created when missing), whose public schema it drops and
migrates: never the demo or test database. Prints a human summary and, last, one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession
from support import (
    DOMAIN,
    TOKEN,
    USERNAME,
    add_database_url_argument,
    bench_database_url,
    bench_settings,
    bench_topics,
    prepare_database,
    sandbox,
    utc_now,
)

from worker.adapters.database import create_pool
from worker.adapters.kafka import KafkaPublisher
from worker.adapters.nmbrs.client import NmbrsClient
from worker.adapters.poll_store import PollStore
from worker.config import Settings
from worker.domain.events import PollReport
from worker.service.poller import Poller, PollOptions

if TYPE_CHECKING:
    from worker.sandbox.dataset import Dataset

DEPARTMENTS = 10  # the generator's departments have ids 1..10


def changeable_employees(dataset: Dataset) -> tuple[int, list[tuple[int, int]]]:
    """What the sandbox reports besides its port: the employee count and the employees that can change, as
    (employee id, current department id)."""
    today = dataset.reference_date
    # Employed now and without an end date: each can take any of the three changes (a leaver too).
    employees = [
        (e.id, max(e.departments, key=lambda a: (a.start_year, a.start_period, a.created)).ref_id)
        for e in dataset.employees
        if e.employments
        and e.departments
        and all(p.end is None for p in e.employments)
        and min(p.start for p in e.employments) <= today
    ]
    return len(dataset.employees), employees


def resident_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak since the last reset_peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Start a new peak-RSS reading (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    Path("/proc/self/clear_refs").write_text("5")


async def timed_poll(poller: Poller) -> tuple[PollReport, float, float, float]:
    """One poll: its report, wall seconds, process CPU seconds and the peak RSS (MB) of the process while it ran."""
    gc.collect()
    reset_peak()
    started, cpu = time.perf_counter(), time.process_time()
    report = await poller.poll(PollOptions())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if report.result != "published":
        raise RuntimeError(f"poll {report.result}: {'; '.join(report.reasons)}")
    return report, wall, cpu, resident_mb("VmHWM")


async def change_employees(base_url: str, changeable: list[tuple[int, int]], count: int, seed: int) -> dict[str, int]:
    """`count` employees change in Nmbrs: 40% department, 40% hours, 20% leavers."""
    rng = random.Random(seed)
    chosen = rng.sample(changeable, count)
    leavers = count // 5
    departments = (count - leavers) // 2
    bodies: list[tuple[int, dict[str, Any]]] = []
    for index, (employee_id, department) in enumerate(chosen):
        if index < leavers:
            bodies.append((employee_id, {"end": date(2026, 12, 31).isoformat()}))
        elif index < leavers + departments:
            new = department % DEPARTMENTS + 1
            bodies.append((employee_id, {"department": {"id": new, "code": new, "description": f"Afdeling {new}"}}))
        else:
            bodies.append((employee_id, {"hours_per_week": 36}))
    async with ClientSession() as session:
        for employee_id, body in bodies:  # one at a time: the sandbox edits a shared dataset
            async with session.patch(f"{base_url}/admin/employees/{employee_id}", json=body) as response:
                if response.status >= 300:
                    raise RuntimeError(f"PATCH employee {employee_id}: {response.status} {await response.text()}")
    return {"leavers": leavers, "department": departments, "hours": count - leavers - departments}


def split(report: PollReport, wall: float, cpu: float, peak_mb: float) -> dict[str, float]:
    return {
        "poll_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "fetch_s": report.fetch_s,
        "diff_s": report.diff_s,
        "publish_s": report.publish_s,
        # poll lock, poll run bookkeeping, storing the snapshot, the status report
        "other_s": round(wall - report.fetch_s - report.diff_s - report.publish_s, 3),
    }


async def run(args: argparse.Namespace, port: int, changeable: list[tuple[int, int]]) -> dict[str, Any]:
    prefix = f"bench-poll-{uuid.uuid4().hex[:8]}"
    url = bench_database_url(args.database_url)
    settings = bench_settings(prefix, url)
    await prepare_database(url)
    async with bench_topics(settings):
        base_url = f"http://127.0.0.1:{port}"
        pool = await create_pool(settings)
        nmbrs = NmbrsClient.from_settings(
            settings,
            base_url=f"{base_url}/soap/v3/",
            username=USERNAME,
            token=TOKEN,
            domain=DOMAIN,
            rate_limit_per_s=args.rate_limit,
        )
        store = PollStore(pool)
        try:
            async with KafkaPublisher(settings) as publisher:
                poller = Poller(nmbrs, store, publisher, settings, utc_now)
                idle_mb = resident_mb("VmRSS")
                first, *first_measures = await timed_poll(poller)
                first_split = split(first, *first_measures)
                nochange = [split(*await timed_poll(poller)) for _ in range(args.repeats)]
                snapshot_rows = await pool.fetchval("SELECT count(*) FROM nmbrs_snapshots")

                count = max(1, round(args.employees * args.change_pct / 100))
                mix = await change_employees(base_url, changeable, count, args.seed)
                changed, *changed_measures = await timed_poll(poller)
        finally:
            await nmbrs.close()
            await pool.close()

        employees = sum(c.employees for c in first.companies)
        # The median run as a whole (by poll time), so its fetch and diff belong to one and the same poll.
        median = sorted(nochange, key=lambda run: run["poll_s"])[len(nochange) // 2]
        change = split(changed, *changed_measures)
        events = sum(changed.changes.values())
        largest = max(c.employees for c in first.companies)
        return {
            "prefix": prefix,
            "mix": mix,
            "changes": changed.changes,
            "nochange_runs": nochange,
            "figures": {
                "companies": len(first.companies),
                "employees": employees,
                "largest_company": largest,
                "soap_calls_per_poll": first.soap_calls,
                "rate_limit_per_s": args.rate_limit,
                # What the rate limit alone makes a poll last, whatever the client and the sandbox cost.
                "rate_floor_s": round(first.soap_calls / args.rate_limit, 1),
                "idle_rss_mb": round(idle_mb, 1),
                "peak_rss_mb": max(run["peak_rss_mb"] for run in (first_split, *nochange, change)),
                "first_poll_s": first_split["poll_s"],
                "first_fetch_s": first.fetch_s,
                "first_diff_s": first.diff_s,
                "first_publish_s": first.publish_s,
                "first_other_s": first_split["other_s"],
                "first_peak_rss_mb": first_split["peak_rss_mb"],
                "first_events": sum(first.changes.values()),
                "nochange_repeats": args.repeats,
                "nochange_poll_s": median["poll_s"],
                "nochange_fetch_s": median["fetch_s"],
                "nochange_diff_s": median["diff_s"],
                "nochange_diff_ratio": round(median["diff_s"] / median["fetch_s"], 3),
                "nochange_publish_s": median["publish_s"],
                "nochange_other_s": median["other_s"],
                "nochange_cpu_s": median["cpu_s"],
                # Our own process only: the sandbox runs in a process of its own.
                "nochange_cpu_s_per_10k": round(median["cpu_s"] / employees * 10_000, 3),
                "nochange_peak_rss_mb": max(run["peak_rss_mb"] for run in nochange),
                "snapshot_rows": snapshot_rows,
                "change_pct": args.change_pct,
                "changed_employees": count,
                "change1pct_poll_s": change["poll_s"],
                "change1pct_fetch_s": change["fetch_s"],
                "change1pct_diff_s": change["diff_s"],
                "change1pct_diff_ratio": round(change["diff_s"] / change["fetch_s"], 3),
                "change1pct_publish_s": change["publish_s"],
                "change1pct_other_s": change["other_s"],
                "change1pct_peak_rss_mb": change["peak_rss_mb"],
                "change1pct_events": events,
                "change1pct_employee_updates": changed.changes.get("employee:u", 0),
            },
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--largest", type=int, help="the first company's head count (default: all companies alike)")
    parser.add_argument("--change-pct", type=float, default=1.0, help="share of employees changed, in percent")
    parser.add_argument("--repeats", type=int, default=3, help="no-change polls; the median is reported")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=Settings.model_fields["nmbrs_rate_limit_per_s"].default,
        help="SOAP calls per second (default: the worker's, Nmbrs' fair-use 150): higher shows the poll's own cost",
    )
    add_database_url_argument(parser)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    with sandbox(args.companies, args.employees, args.seed, changeable_employees, largest=args.largest) as (
        port,
        _,
        employees,
    ):
        result = asyncio.run(run(args, port, employees))

    f = result["figures"]
    print(
        f"Poll of {f['employees']} employees in {f['companies']} companies (largest {f['largest_company']};"
        f" {f['soap_calls_per_poll']} SOAP calls at {f['rate_limit_per_s']:g}/s: at least {f['rate_floor_s']} s)"
    )
    print(f"  topics {result['prefix']}.*")
    print(f"  peak RSS:        {f['peak_rss_mb']:.0f} MB  (idle before the first poll {f['idle_rss_mb']:.0f} MB)")
    print(
        f"  first poll:      {f['first_poll_s']:.3f} s  (fetch {f['first_fetch_s']:.3f}, diff {f['first_diff_s']:.3f},"
        f" publish {f['first_publish_s']:.3f}, other {f['first_other_s']:.3f}; {f['first_events']} events;"
        f" peak RSS {f['first_peak_rss_mb']:.0f} MB)"
    )
    runs = ", ".join(f"{r['poll_s']:.3f}" for r in result["nochange_runs"])
    print(f"  no-change poll:  {f['nochange_poll_s']:.3f} s  (median of {f['nochange_repeats']}: {runs})")
    print(f"    fetch          {f['nochange_fetch_s']:.3f} s")
    print(f"    diff           {f['nochange_diff_s']:.3f} s  = {f['nochange_diff_ratio']:.1%} of the fetch")
    print(f"    publish        {f['nochange_publish_s']:.3f} s")
    print(f"    other          {f['nochange_other_s']:.3f} s  (lock, run bookkeeping, status report)")
    print(
        f"    own CPU        {f['nochange_cpu_s']:.3f} s = {f['nochange_cpu_s_per_10k']:.3f} s per 10,000 employees;"
        f" peak RSS {f['nochange_peak_rss_mb']:.0f} MB"
    )
    mix = result["mix"]
    print(
        f"  {f['change_pct']:g}% changed: {f['changed_employees']} employees ({mix['department']} department,"
        f" {mix['hours']} hours, {mix['leavers']} leavers) -> {f['change1pct_events']} events {result['changes']}"
    )
    print(f"  change poll:     {f['change1pct_poll_s']:.3f} s")
    print(f"    fetch          {f['change1pct_fetch_s']:.3f} s")
    print(f"    diff           {f['change1pct_diff_s']:.3f} s  = {f['change1pct_diff_ratio']:.1%} of the fetch")
    print(f"    publish        {f['change1pct_publish_s']:.3f} s")
    print(f"    other          {f['change1pct_other_s']:.3f} s  (incl. storing {f['change1pct_events']} snapshot rows)")
    print(f"    peak RSS       {f['change1pct_peak_rss_mb']:.0f} MB")
    if f["change1pct_employee_updates"] != f["changed_employees"]:
        print(f"  WARNING: {f['change1pct_employee_updates']} employee updates for {f['changed_employees']} changes")
    print(json.dumps(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
