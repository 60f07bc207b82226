"""Benchmark: a full Nmbrs snapshot of 10,000 employees in 10 companies, fetched from the local sandbox.

Run: `python bench/nmbrs_fetch.py [--companies 10] [--employees 10000] [--seed 1] [--largest N]`.
The sandbox runs in its own process so its CPU time is not ours. Own processing is the time the client
spends in its own code (building requests, parsing XML, resolving histories, building records), measured
around those synchronous sections; waiting is the rest of the wall time (HTTP exchanges, the sandbox).
The process CPU time is the client side's CPU (its own processing plus the HTTP client's work); per 10,000
employees it stands next to the floor for any Python parser: a bare lxml.etree.fromstring of the very same
answer bytes, kept as the client received them and parsed again after the fetch.
Prints a human summary and, last, one JSON line of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import date
from typing import TYPE_CHECKING

from lxml import etree
from support import DOMAIN, TOKEN, USERNAME, sandbox

from worker.adapters.nmbrs.client import NmbrsClient

if TYPE_CHECKING:
    from worker.sandbox.dataset import Dataset


def reference_date(dataset: Dataset) -> tuple[date]:
    """What the sandbox reports besides its port: the dataset's reference date (the fetch's as-of)."""
    return (dataset.reference_date,)


def _per_10k(seconds: float, employees: int) -> float:
    return round(seconds / max(employees, 1) * 10_000, 3)


def _parse_seconds(answers: list[bytes]) -> float:
    """Process CPU of a bare lxml parse of every answer (the trees are dropped at once, as the client's are)."""
    started = time.process_time()
    for body in answers:
        etree.fromstring(body)
    return time.process_time() - started


async def _fetch(port: int, as_of: object) -> dict[str, float | int]:
    answers: list[bytes] = []
    client = NmbrsClient(
        base_url=f"http://127.0.0.1:{port}/soap/v3/",
        username=USERNAME,
        token=TOKEN,
        domain=DOMAIN,
        bsn_hash_key="bench-key",
        on_answer=answers.append,
    )
    try:
        await client.list_companies()  # loads the WSDLs and warms the connection pool
        client.soap_calls, client.processing_seconds = 0, 0.0
        answers.clear()
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        companies = await client.list_companies()
        snapshots = await asyncio.gather(*(client.fetch_company(c, as_of) for c in companies))  # type: ignore[arg-type]
        wall = time.perf_counter() - wall_started
        cpu = time.process_time() - cpu_started
        own = client.processing_seconds
    finally:
        await client.close()
    employees = sum(len(s.employees) for s in snapshots)
    parse = _parse_seconds(answers)
    return {
        "companies": len(companies),
        "employees": employees,
        "soap_calls": client.soap_calls,
        "calls_per_employee": round(client.soap_calls / max(employees, 1), 4),
        "wall_s": round(wall, 3),
        "waiting_s": round(wall - own, 3),
        "own_processing_s": round(own, 3),
        "own_share": round(own / wall, 3),
        "process_cpu_s": round(cpu, 3),
        "answer_mb": round(sum(map(len, answers)) / 1e6, 1),
        "cpu_s_per_10k": _per_10k(cpu, employees),
        "lxml_parse_s_per_10k": _per_10k(parse, employees),
        "cpu_to_lxml_parse": round(cpu / parse, 1) if parse else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--largest", type=int, help="employees of the first company (the rest spread evenly)")
    args = parser.parse_args()

    with sandbox(args.companies, args.employees, args.seed, reference_date, args.largest) as (port, as_of):
        figures = asyncio.run(_fetch(port, as_of))

    print(f"Fetched {figures['employees']} employees in {figures['companies']} companies from the sandbox")
    print(f"  SOAP calls:          {figures['soap_calls']} ({figures['calls_per_employee']} per employee)")
    print(f"  wall time:           {figures['wall_s']:.3f} s")
    print(f"  waiting on sandbox:  {figures['waiting_s']:.3f} s")
    own, share = figures["own_processing_s"], figures["own_share"]
    print(f"  own processing:      {own:.3f} s ({share:.0%} of wall time)")
    print(f"  process CPU time:    {figures['process_cpu_s']:.3f} s (own processing plus the HTTP client)")
    print(
        f"  per 10,000:          {figures['cpu_s_per_10k']:.3f} s CPU; a bare lxml parse of the same"
        f" {figures['answer_mb']} MB {figures['lxml_parse_s_per_10k']:.3f} s ({figures['cpu_to_lxml_parse']}x)"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
