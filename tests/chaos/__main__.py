"""`python -m tests.chaos [NAME ...] [--short] [options]` (`./dev chaos`): run the scenarios (all by default) on
a stack of the suite's own, print one JSON object per scenario as it ends and one JSON line with all of them last;
exit 1 when a scenario lost or doubled an effect, needed a restart by hand or failed another of its checks."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tests.chaos.harness import FULL, SHORT, Harness, Sizes
from tests.chaos.scenarios import SCENARIOS, run_scenario
from tests.chaos.services import Child


async def run_all(sizes: Sizes, names: list[str], keep_logs: Path | None) -> list[dict[str, Any]]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)  # stop everything, as on Ctrl-C
    results = []
    async with Harness(sizes, keep_logs) as harness:
        for name in names:
            result = await run_scenario(harness, name)
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev chaos", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"scenarios (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--short", action="store_true", help="the small sizes of the CI form")
    for name, meaning in (
        ("companies", "companies in the dataset"),
        ("employees", "employees in the dataset"),
        ("cycles", "kill-cycles: cycles"),
        ("changes", "kill-cycles: changes in total"),
        ("fuzz", "fuzz: malformed messages"),
        ("seed", "dataset and randomness seed"),
    ):
        parser.add_argument(f"--{name}", type=int, help=meaning)
    parser.add_argument("--converge-limit", type=float, dest="converge_limit_s", help="seconds to converge at most")
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs to this directory at the end")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; have: {', '.join(SCENARIOS)}")
    names = args.names or list(SCENARIOS)
    chosen = {
        f: getattr(args, f)
        for f in ("companies", "employees", "cycles", "changes", "fuzz", "seed", "converge_limit_s")
        if getattr(args, f) is not None
    }
    sizes = replace(SHORT if args.short else FULL, **chosen)
    try:
        results = asyncio.run(run_all(sizes, names, args.keep_logs))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("chaos: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        Child.kill_all()
    failed = [r["scenario"] for r in results if r["failures"]]
    print(
        json.dumps(
            {
                "suite": "chaos",
                "sizes": asdict(sizes),
                "failed": failed,
                "scenarios": {r["scenario"]: r for r in results},
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
