"""The `nmbrs-sync` command line: operate the worker, inspect configuration, post commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib.metadata import version as package_version
from pathlib import Path

from worker.config import ConfigurationError, Settings, load_settings
from worker.entrypoints import hr_cli, logs, target_cli, web_cli
from worker.sandbox import cli as sandbox_cli

Command = Callable[[argparse.Namespace, Settings], int]


def cmd_config(_args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(settings.masked(), indent=2))
    return 0


log = logging.getLogger(__name__)


async def _migrate(settings: Settings) -> list[int]:
    from worker.adapters.database import connect
    from worker.adapters.migrations import current_version, migrate

    connection = await connect(settings)
    try:
        applied = await migrate(connection)
        # Logged, not printed: a worker's start is part of its log (one JSON object a line with LOG_FORMAT=json).
        log.info(
            "database at migration %04d%s",
            await current_version(connection),
            f" (applied now: {', '.join(f'{v:04d}' for v in applied)})" if applied else " (up to date)",
        )
        return applied
    finally:
        await connection.close()


STARTUP_REFUSED = 3


def refused(error: Exception) -> int:
    """A start refused for a reason the operator must fix (no traceback: the message says what)."""
    print(f"nmbrs-sync: {error}", file=sys.stderr)
    return STARTUP_REFUSED


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters.migrations import MigrationError

    try:
        asyncio.run(_migrate(settings))
    except MigrationError as error:
        return refused(error)
    return 0


def cmd_topics(_args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters.kafka import TopicsNotReady, ensure_topics

    try:
        created = asyncio.run(ensure_topics(settings, create=settings.topics_ensure))
    except TopicsNotReady as error:
        return refused(error)
    print(f"topics ready ({len(created)} created now)")
    return 0


def cmd_kafka_ready(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters.kafka import wait_until_ready

    asyncio.run(wait_until_ready(settings, args.timeout))
    return 0


def cmd_worker(_args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters.kafka import TopicsNotReady, ensure_topics
    from worker.adapters.migrations import MigrationError
    from worker.entrypoints.worker_app import run_worker

    # Migrations and topics first, so the agents never meet a missing table or an auto-created topic.
    try:
        asyncio.run(_migrate(settings))
        asyncio.run(ensure_topics(settings, create=settings.topics_ensure))
    except (MigrationError, TopicsNotReady) as error:
        return refused(error)
    run_worker(settings)
    return 0


def cmd_sync_now(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters.kafka import KafkaPublisher
    from worker.domain.events import SyncRequested

    request = SyncRequested(
        event_id=uuid.uuid4(),
        full=args.full,
        dry_run=args.dry_run,
        release_hold=args.release_hold,
        employee_id=args.employee,
        requested_by=args.requested_by,
        requested_at=datetime.now(UTC),
    )

    async def post() -> None:
        async with KafkaPublisher(settings) as publisher:
            await publisher.publish(settings.topics.sync_requests, "sync", request)

    asyncio.run(post())
    print(f"sync requested: {request.event_id}")
    return 0


def cmd_schemas(args: argparse.Namespace, _settings: Settings) -> int:
    from worker import contracts

    directory = Path(args.dir)
    if args.action == "check":
        problems = contracts.drift(directory)
        for problem in problems:
            print(f"schema drift: {problem}", file=sys.stderr)
        return 1 if problems else 0
    for name in contracts.write(directory):
        print(f"wrote {directory / name}")
    return 0


def cmd_leave(args: argparse.Namespace, settings: Settings) -> int:
    """`leave calc --input FILE` (pure, from a file) or `leave EMPLOYEE [--year Y] [--on DATE]` (stored)."""
    if args.what == "calc":
        if not args.input:
            print("nmbrs-sync: leave calc needs --input FILE", file=sys.stderr)
            return 2
        return leave_from_file(args.input)
    if not args.what.isdigit():
        print(f"nmbrs-sync: '{args.what}' is neither 'calc' nor a RegiTijd employee id", file=sys.stderr)
        return 2
    return asyncio.run(leave_of_employee(settings, int(args.what), args.on, args.year))


async def leave_of_employee(settings: Settings, employee_id: int, on: str | None, year: int | None) -> int:
    """Print the calculation for a stored employee, with its explanation, as HR checks it."""
    from worker.adapters.database import connect
    from worker.adapters.leave_store import load_leave_input
    from worker.domain.leave import leave_balance
    from worker.domain.nmbrs_records import nmbrs_today

    as_of = date.fromisoformat(on) if on else nmbrs_today(datetime.now(UTC))
    connection = await connect(settings)
    try:
        data = await load_leave_input(connection, employee_id, as_of)
    except LookupError as error:
        print(f"nmbrs-sync: {error}", file=sys.stderr)
        return 1
    finally:
        await connection.close()
    result = leave_balance(data.model_copy(update={"years": (year,) if year else None}))
    print(f"Leave of RegiTijd employee {employee_id} on {as_of}")
    for line in result.explanation:
        print(f"  {line}")
    balance = result.balance
    print(
        f"Balance: {balance.total} h (statutory {balance.statutory}, extra {balance.extra}, "
        f"adjustments {balance.adjustments}); overtime {result.overtime.balance} h"
    )
    return 0


def leave_from_file(path: str) -> int:
    from pydantic import ValidationError

    from worker.domain.leave import LeaveInput, leave_balance

    try:
        data = LeaveInput.model_validate_json(Path(path).read_bytes())
    except OSError as error:
        print(f"nmbrs-sync: cannot read {path}: {error.strerror}", file=sys.stderr)
        return 2
    except ValidationError as error:
        print(
            f"nmbrs-sync: {path} is not a valid leave input (schemas/leave-calc-input.schema.json):",
            file=sys.stderr,
        )
        for problem in error.errors():
            print(f"  {'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}", file=sys.stderr)
        return 2
    print(leave_balance(data).model_dump_json(indent=2))
    return 0


async def _wait_idle(settings: Settings, timeout_s: float) -> bool:
    from worker.adapters.database import connect
    from worker.adapters.poll_store import sync_settled

    connection = await connect(settings)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if await sync_settled(connection):
                    return True
                await asyncio.sleep(0.5)
    except TimeoutError:
        return False
    finally:
        await connection.close()


def cmd_wait_idle(args: argparse.Namespace, settings: Settings) -> int:
    """Wait until the requested polls ran and the reconciler handled every change they published."""
    return 0 if asyncio.run(_wait_idle(settings, args.timeout)) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmbrs-sync", description=__doc__)
    parser.add_argument("--version", action="version", version=f"nmbrs-sync {package_version('nmbrs-sync')}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("config", help="print the effective configuration, secrets masked").set_defaults(func=cmd_config)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    topics = sub.add_parser("topics", help="manage Kafka topics")
    topics.add_argument("action", choices=["ensure"], help="create missing topics with configured partitions")
    topics.set_defaults(func=cmd_topics)
    ready = sub.add_parser("kafka-ready", help="wait until Kafka answers")
    ready.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    ready.set_defaults(func=cmd_kafka_ready)
    sub.add_parser("worker", help="run the worker (migrates and creates topics first)").set_defaults(func=cmd_worker)
    sync_now = sub.add_parser("sync-now", help="ask the worker to poll Nmbrs now ('Synchroniseren')")
    sync_now.add_argument("--full", action="store_true", help="full reconciliation: re-publish every record")
    sync_now.add_argument("--dry-run", action="store_true", help="publish the plan only, change nothing")
    sync_now.add_argument(
        "--release-hold", action="store_true", help="publish a poll the mass-change breaker holds (after checking it)"
    )
    sync_now.add_argument(
        "--employee",
        type=int,
        metavar="NMBRS_ID",
        help="re-read just this Nmbrs employee (its company's bulk calls) through the normal events",
    )
    sync_now.add_argument("--requested-by", default="cli", help="who asks (shown in outcomes)")
    sync_now.set_defaults(func=cmd_sync_now)
    idle = sub.add_parser("wait-idle", help="wait until requested syncs are polled and reconciled")
    idle.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    idle.set_defaults(func=cmd_wait_idle)
    sandbox_cli.register(sub)
    target_cli.register(sub)
    hr_cli.register(sub)
    web_cli.register(sub)
    schemas = sub.add_parser("schemas", help="write or check the JSON Schemas of every contract in schemas/")
    schemas.add_argument("action", choices=["write", "check"])
    schemas.add_argument("--dir", default="schemas", help="target directory (default: schemas)")
    schemas.set_defaults(func=cmd_schemas)
    leave = sub.add_parser(
        "leave", help="leave (verlof): 'leave EMPLOYEE [--on DATE] [--year Y]' or 'leave calc --input FILE'"
    )
    leave.add_argument("what", help="'calc', or a RegiTijd employee id")
    leave.add_argument("--input", help="calc: JSON file (schema: schemas/leave-calc-input.schema.json)")
    leave.add_argument("--on", help="EMPLOYEE: the as-of date (YYYY-MM-DD), default today")
    leave.add_argument("--year", type=int, help="EMPLOYEE: report this year (also a future year, as a forecast)")
    leave.set_defaults(func=cmd_leave)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            # Flushed here, not by the interpreter on its way out: output still buffered then (a piped stdout is
            # block-buffered) would meet a reader gone meanwhile with "Exception ignored ... BrokenPipeError" and
            # exit code 120, whatever the command.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`nmbrs-sync pending | head`): what it wanted it has; no traceback on the way out,
        # and what is left in the buffer goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as error:
        print(f"nmbrs-sync: {error}", file=sys.stderr)
        return 2
    logs.configure(settings)
    command: Command = args.func
    return command(args, settings)


if __name__ == "__main__":
    sys.exit(main())
