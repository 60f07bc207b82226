"""Benchmark: the poll at three domain sizes on the same run, to see that time grows with the domain and memory
does not (issue #22: under 300 MB at each size, the no-change poll at 100,000 no more than 10x the one at 10,000).

Run: `python bench/poll_scale.py [--sizes 10000:10,50000:50,100000:500] [--largest 2000] [--repeats 3]`.
Each size is bench/poll.py in a process of its own (so each peak RSS is that size's alone), on the same machine
one after the other; `--largest` is the head count of the largest company at every size. Prints a table and,
last, one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [(int(e), int(c)) for e, c in (part.split(":") for part in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are EMPLOYEES:COMPANIES,... e.g. 10000:10,100000:500") from None


def run_size(employees: int, companies: int, largest: int, repeats: int, rate_limit: float | None) -> dict[str, Any]:
    command = [
        sys.executable,
        str(HERE / "poll.py"),
        f"--employees={employees}",
        f"--companies={companies}",
        f"--largest={largest}",
        f"--repeats={repeats}",
        *([f"--rate-limit={rate_limit:g}"] if rate_limit else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"bench/poll.py {employees}/{companies} failed ({done.returncode})")
    print(done.stdout, end="", flush=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=sizes("10000:10,50000:50,100000:500"))
    parser.add_argument("--largest", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate-limit", type=float, help="SOAP calls per second (default: bench/poll.py's, 150)")
    args = parser.parse_args()

    runs = [
        run_size(employees, companies, args.largest, args.repeats, args.rate_limit)
        for employees, companies in args.sizes
    ]
    print()
    print(
        "| employees / companies | largest | SOAP calls (floor at the rate limit) | no-change poll (fetch, diff)"
        " | own CPU /10k | peak RSS |"
    )
    print("|---|---|---|---|---|---|")
    for f in runs:
        print(
            f"| {f['employees']:,} / {f['companies']} | {f['largest_company']:,} | {f['soap_calls_per_poll']:,}"
            f" ({f['rate_floor_s']:g} s at {f['rate_limit_per_s']:g}/s)"
            f" | {f['nochange_poll_s']:.1f} s ({f['nochange_fetch_s']:.1f}, {f['nochange_diff_s']:.1f})"
            f" | {f['nochange_cpu_s_per_10k']:.2f} s | {f['peak_rss_mb']:.0f} MB |"
        )
    smallest, largest = runs[0], runs[-1]
    ratio = largest["nochange_poll_s"] / smallest["nochange_poll_s"]
    growth = largest["employees"] / smallest["employees"]
    print(
        f"no-change poll at {largest['employees']:,}: {ratio:.1f}x the one at {smallest['employees']:,}"
        f" ({growth:g}x the employees)"
    )
    summary = {
        "sizes": [
            {
                key: f[key]
                for key in (
                    "employees",
                    "companies",
                    "largest_company",
                    "soap_calls_per_poll",
                    "rate_limit_per_s",
                    "rate_floor_s",
                    "first_poll_s",
                    "nochange_poll_s",
                    "nochange_fetch_s",
                    "nochange_diff_s",
                    "nochange_publish_s",
                    "nochange_cpu_s_per_10k",
                    "peak_rss_mb",
                    "first_peak_rss_mb",
                    "nochange_peak_rss_mb",
                )
            }
            for f in runs
        ],
        "nochange_ratio_largest_to_smallest": round(ratio, 2),
        "max_peak_rss_mb": max(f["peak_rss_mb"] for f in runs),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
