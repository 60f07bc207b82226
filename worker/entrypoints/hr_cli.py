"""The HR command line, a first frontend: `status`, `pending`, `search`, `decide`, `decisions`, `blocked`, `tasks`,
`followup`: the parser and the commands.

It reads the store only through the read-only queries (worker/adapters/hr_queries.py) and changes nothing
itself: `decide` posts a Decision event on the decisions topic (and `followup` a follow-up command), exactly as
any other frontend would, and waits for the worker's outcome (worker/adapters/command_requests.py). Every
command prints a fixed-width table (hr_views.py), or JSON with `--json`; command lines become commands in
hr_decision_args.py. Registered on the main parser by `register(subparsers)`.

Exit codes: 0 ok / applied, 1 rejected by the worker, 2 usage error, 3 no outcome in time (is the worker
running?), 4 database or Kafka unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from worker.config import Settings
from worker.domain.decisions import Decision
from worker.domain.events import SETTLING_OUTCOMES, Message, Outcome, OutcomeKind
from worker.domain.nmbrs_records import nmbrs_today
from worker.entrypoints.hr_decision_args import (
    FOLLOW_UP_COMMANDS,
    UsageError,
    decision_from_args,
    follow_up_from_args,
    needs_version,
    parse_employee_ref,
    parse_record,
)
from worker.entrypoints.hr_views import (
    confirm_hint,
    describe,
    render_blocked,
    render_decisions,
    render_outcomes,
    render_pending,
    render_search,
    render_status,
    render_tasks,
)

if TYPE_CHECKING:
    # Imported lazily at run time, as in cli.py: the other commands need not load asyncpg or aiokafka.
    from worker.adapters import hr_queries
    from worker.adapters.command_requests import FrontendCommand
    from worker.adapters.database import Connection

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_NO_OUTCOME, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4
EXIT_RED = 1  # status --check: a human must act (Nagios reads non-zero as a problem)

Report = TypeVar("Report", bound=BaseModel | Sequence[BaseModel])


# --- registration ----------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `status`, `pending`, `search`, `decide`, `tasks` and `followup` to the main parser's subcommands."""
    status = subparsers.add_parser("status", help="every sync step green or red, with counts and reasons")
    _json_flag(status)
    status.add_argument(
        "--check",
        action="store_true",
        help=f"exit {EXIT_RED} when a step is red, {EXIT_UNAVAILABLE} when the database cannot be read "
        "(for cron or a Nagios check)",
    )
    status.set_defaults(func=synchronous(run_status))

    pending = subparsers.add_parser(
        "pending", help="open questions (Koppelen/Aanmaken/Blokkeren/Overslaan) with candidates and scores"
    )
    pending.add_argument("--all", action="store_true", help="also show skipped questions (Overslaan)")
    _json_flag(pending)
    pending.set_defaults(func=synchronous(run_pending))

    search = subparsers.add_parser(
        "search",
        help="find RegiCRM persons and organisations to link to (Koppelen)",
        description="TEXT: name parts (accents and case ignored, 'vanderberg' works), an e-mail address, "
        "a birthday (1980-04-02 or 02-04-1980), a phone number or a KvK number.",
    )
    search.add_argument("text", metavar="TEXT")
    search.add_argument("--limit", type=int, default=20, help="at most this many of each (default 20)")
    _json_flag(search)
    search.set_defaults(func=synchronous(run_search))

    decide = subparsers.add_parser(
        "decide",
        help="post a decision (as any frontend would) and wait for the worker's outcome",
        description="ACTION: koppelen, aanmaken, blokkeren, overslaan, ontblokkeren, ongedaan_maken (or link, "
        "create, block, skip, unblock, undo). RECORD: employee:123, company:4, or a bare number (an employee). "
        "Bulk: leave out RECORD and give --company-filter.",
    )
    decide.add_argument("action", metavar="ACTION")
    decide.add_argument("record", metavar="RECORD", nargs="?")
    target = decide.add_mutually_exclusive_group()
    target.add_argument("--person", type=int, metavar="ID", help="koppelen an employee: the RegiCRM person id")
    target.add_argument("--organisation", type=int, metavar="ID", help="koppelen a company: the organisation id")
    decide.add_argument(
        "--version",
        type=int,
        metavar="N",
        help="the question's version as 'pending' showed it (default: the "
        "current one); a newer Nmbrs change then rejects the decision as stale instead of applying it blindly",
    )
    decide.add_argument("--undo", type=uuid.UUID, metavar="DECISION_ID", help="ongedaan_maken: the decision to undo")
    decide.add_argument(
        "--all-records",
        action="store_true",
        help="ongedaan_maken of a bulk decision: every record it answered (default: only RECORD)",
    )
    decide.add_argument("--by", metavar="NAME", help="who decides (default: the operating-system user)")
    decide.add_argument("--note", metavar="TEXT", help="a note kept with the decision")
    decide.add_argument("--company-filter", type=int, metavar="C", help="bulk: every open question of Nmbrs company C")
    decide.add_argument("--situation", choices=["unmatched", "disputed"], help="bulk: only this situation")
    decide.add_argument(
        "--max-best-score", type=float, metavar="X", help="bulk: only where the best candidate scores at most X"
    )
    decide.add_argument("--preview", action="store_true", help="bulk: report what would happen, change nothing")
    decide.add_argument(
        "--confirm",
        type=uuid.UUID,
        metavar="PREVIEW_ID",
        help="bulk: answer exactly what this preview listed (records changed or answered since are left out and named)",
    )
    decide.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to wait for the outcome (default 10; 0: post only)",
    )
    _json_flag(decide)
    decide.set_defaults(func=synchronous(run_decide))

    tasks = subparsers.add_parser("tasks", help="open follow-up tasks per employee (gegevens aanvullen)")
    tasks.add_argument(
        "--employee",
        metavar="ID",
        help="only this employee: employee:123 (the Nmbrs id, as 'pending' shows it) or "
        "a bare RegiTijd employee id (as this list and the follow-up commands show it)",
    )
    _json_flag(tasks)
    tasks.set_defaults(func=synchronous(run_tasks))

    history = subparsers.add_parser(
        "decisions", help="the latest decisions with their ids (for 'decide ongedaan_maken --undo ID')"
    )
    history.add_argument("--record", metavar="RECORD", help="only this record (and the bulks that answered it)")
    history.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    _json_flag(history)
    history.set_defaults(func=synchronous(run_decisions))

    blocked = subparsers.add_parser("blocked", help="records blocked (Blokkeren), for 'decide ontblokkeren'")
    _json_flag(blocked)
    blocked.set_defaults(func=synchronous(run_blocked))

    followup = subparsers.add_parser(
        "followup",
        help="complete an employee's data (gegevens aanvullen): manager, is-manager, leave adjustment, "
        "overtime payout, characteristics, time-writing categories; posted as a follow-up command",
    )
    followup.add_argument(
        "follow_up", choices=FOLLOW_UP_COMMANDS, metavar="COMMAND", help=", ".join(FOLLOW_UP_COMMANDS)
    )
    followup.add_argument(
        "employee",
        metavar="EMPLOYEE",
        help="a bare RegiTijd employee id (as 'tasks' shows it) or employee:123 (the Nmbrs id)",
    )
    followup.add_argument("--manager", type=int, metavar="ID", help="set_manager: the manager's RegiTijd employee id")
    followup.add_argument("--is-manager", choices=["yes", "no"], help="set_is_manager")
    followup.add_argument(
        "--hours", type=float, metavar="H", help="leave_adjustment (may be negative), overtime_payout"
    )
    followup.add_argument("--on", type=date.fromisoformat, metavar="DATE", help="the date of an adjustment or payout")
    followup.add_argument(
        "--characteristic", metavar="C", help="set_ or remove_characteristic, e.g. 'RegiAct: Uitvoerder'"
    )
    followup.add_argument("--time-category", metavar="CODE", help="link_ or unlink_time_category")
    followup.add_argument(
        "--task", choices=["account", "roles"], help="mark_task_done: the task done outside RegiTijd (in RegiCRM)"
    )
    followup.add_argument("--reason", metavar="TEXT", help="kept with the change")
    followup.add_argument("--by", metavar="NAME", help="who changes it (default: the operating-system user)")
    followup.add_argument("--wait", type=float, default=10.0, metavar="S", help="seconds to wait for the outcome")
    _json_flag(followup)
    followup.set_defaults(func=synchronous(run_followup))


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


# --- the commands: sync wrappers (Command signature) around async bodies (callable from async tests) -----


def synchronous(body: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]) -> Callable[..., int]:
    """The Command the main parser calls (args, settings) -> exit code, running the async `body`."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        return asyncio.run(body(args, settings))

    return command


def _unavailable(error: Exception) -> int:
    print(f"nmbrs-sync: {error}", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _dsn(settings: Settings) -> str:
    return settings.database_url.get_secret_value()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


async def _show(
    args: argparse.Namespace,
    settings: Settings,
    read: Callable[[Connection], Awaitable[Report]],
    render: Callable[[Report], str],
) -> int:
    """A report of one read on a read-only connection: JSON with --json, else `render`'s text."""
    from worker.adapters import hr_queries

    try:
        async with hr_queries.read_only_connection(_dsn(settings)) as connection:
            report = await read(connection)
    except hr_queries.StoreUnavailable as error:
        return _unavailable(error)
    if args.json:
        _print_json(
            report.model_dump(mode="json")
            if isinstance(report, BaseModel)
            else [item.model_dump(mode="json") for item in report]
        )
    else:
        print(render(report))
    return EXIT_OK


async def run_status(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries
    from worker.adapters.step_status_store import step_statuses

    at = datetime.now(UTC)
    try:
        async with hr_queries.read_only_connection(_dsn(settings)) as connection:
            # 'today' as the worker judges it: Nmbrs dates are Dutch local dates.
            statuses = await step_statuses(connection, nmbrs_today(at), at)
            with_tasks = len(await hr_queries.open_tasks(connection))
    except hr_queries.StoreUnavailable as error:
        return _unavailable(error)
    # Red first, as on the old sync screen; otherwise the steps keep their natural order.
    ordered = sorted(statuses, key=lambda s: s.status != "red")
    if args.json:
        _print_json(
            {
                "status": "red" if any(s.status == "red" for s in statuses) else "green",
                "steps": [s.model_dump(mode="json", exclude={"event_type", "schema_version"}) for s in ordered],
                "employees_with_open_tasks": with_tasks,
            }
        )
    else:
        print(render_status(ordered, with_tasks))
    return EXIT_RED if args.check and any(s.status == "red" for s in statuses) else EXIT_OK


async def run_pending(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    return await _show(
        args, settings, lambda db: hr_queries.pending_questions(db, include_skipped=args.all), render_pending
    )


async def run_search(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import crm_search

    return await _show(args, settings, lambda db: crm_search.search(db, args.text, limit=args.limit), render_search)


async def run_tasks(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    wanted = parse_employee_ref(args.employee)

    async def fetch(db: Connection) -> list[hr_queries.EmployeeTasks]:
        found = await hr_queries.open_tasks(db, employee_id=wanted[1] if wanted and wanted[0] == "regitijd" else None)
        return [t for t in found if wanted is None or wanted[0] != "nmbrs" or t.nmbrs_employee_id == wanted[1]]

    return await _show(args, settings, fetch, partial(render_tasks, employee=wanted))


async def run_decisions(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    try:
        record = parse_record(args.record) if args.record else None
    except UsageError as error:
        print(f"nmbrs-sync decisions: {error}", file=sys.stderr)
        return EXIT_USAGE
    return await _show(args, settings, lambda db: hr_queries.decision_history(db, record, args.limit), render_decisions)


async def run_blocked(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    return await _show(args, settings, hr_queries.blocked_records, render_blocked)


# --- decide, followup: post a command and report its outcomes -------------------------------------------------


async def run_decide(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries
    from worker.adapters.command_requests import BrokerUnavailable

    try:
        looked_up = await _current_version(args, settings)
        decision = decision_from_args(args, datetime.now(UTC), lambda _entity, _nmbrs_id: looked_up)
    except UsageError as error:
        print(f"nmbrs-sync decide: {error}", file=sys.stderr)
        return EXIT_USAGE
    except hr_queries.StoreUnavailable as error:
        return _unavailable(
            RuntimeError(f"{error}; without the database, pass the version 'pending' showed with --version")
        )
    line = None if args.json else f"decision {decision.decision_id} posted: {describe(decision)}"
    try:
        outcomes = await _post(settings, decision, args.wait, line)
    except BrokerUnavailable as error:
        return _unavailable(error)
    return _report(args, decision, outcomes)


async def _current_version(args: argparse.Namespace, settings: Settings) -> int | None:
    """The open question's version now, read only when decision_from_args will ask for it."""
    from worker.adapters import hr_queries

    record = needs_version(args)
    if record is None:
        return None
    async with hr_queries.read_only_connection(_dsn(settings)) as connection:
        return await hr_queries.pending_version(connection, *record)


async def run_followup(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries
    from worker.adapters.command_requests import BrokerUnavailable

    try:
        kind, number = parse_employee_ref(args.employee) or ("", 0)
        if kind == "nmbrs":
            async with hr_queries.read_only_connection(_dsn(settings)) as connection:
                found = await hr_queries.regitijd_employee_id(connection, number)
            if found is None:
                raise UsageError(f"Nmbrs employee {number} has no RegiTijd employee (is it linked?)")
            number = found
        command = follow_up_from_args(args, number, datetime.now(UTC))
    except UsageError as error:
        print(f"nmbrs-sync followup: {error}", file=sys.stderr)
        return EXIT_USAGE
    except hr_queries.StoreUnavailable as error:
        return _unavailable(error)
    line = None if args.json else f"follow-up {command.command_id} posted: {command.command} for {command.key}"
    try:
        outcomes = await _post(settings, command, args.wait, line)
    except BrokerUnavailable as error:
        return _unavailable(error)
    return report_outcomes(args, "follow-up", command.command_id, command, outcomes, "nmbrs-sync tasks")


async def _post(
    settings: Settings, command: FrontendCommand, wait_s: float, announce: str | None
) -> list[Outcome] | None:
    """Post `command` and print `announce` once it is on its topic; then, unless `wait_s` is 0 (then None), the
    outcomes it caused within `wait_s`."""
    from worker.adapters.command_requests import CommandRequests

    def posted() -> None:
        if announce:
            print(announce, flush=True)  # at once: the wait may take a while

    async with CommandRequests(settings) as requests:
        if wait_s <= 0:
            await requests.post(command)
            posted()
            return None
        return await requests.post_and_wait(command, wait_s, on_posted=posted)


def _report(args: argparse.Namespace, decision: Decision, outcomes: list[Outcome] | None) -> int:
    code = report_outcomes(args, "decision", decision.decision_id, decision, outcomes, "nmbrs-sync pending")
    if decision.preview and code == EXIT_OK and outcomes and not args.json:
        print(confirm_hint(decision))
    return code


def report_outcomes(
    args: argparse.Namespace,
    kind: str,
    command_id: uuid.UUID,
    command: Message,
    outcomes: list[Outcome] | None,
    check_with: str,
) -> int:
    """Print what a posted `kind` ('decision', 'follow-up') caused; the exit code says how it settled."""

    settled = [o for o in outcomes or () if o.kind in SETTLING_OUTCOMES]
    if outcomes is None:
        result, code = "posted", EXIT_OK
    elif not settled:
        result, code = "no_outcome", EXIT_NO_OUTCOME
    elif any(o.kind is OutcomeKind.REJECTED for o in settled):
        result, code = "rejected", EXIT_REJECTED
    else:
        result, code = settled[0].kind.value, EXIT_OK
    if args.json:
        _print_json(
            {
                f"{kind.replace('-', '_')}_id": str(command_id),
                "result": result,
                kind.replace("-", "_"): command.model_dump(mode="json"),
                "outcomes": [o.model_dump(mode="json") for o in outcomes or ()],
            }
        )
    elif outcomes:
        print(render_outcomes(outcomes))
    if code == EXIT_NO_OUTCOME:
        print(
            f"nmbrs-sync: no outcome for {kind} {command_id} within {args.wait:g} s; the worker may not be running. "
            f"The {kind} stays on the topic and is handled when the worker runs; check with '{check_with}'.",
            file=sys.stderr,
        )
    return code
