"""The HR command line, a first frontend: `status`, `pending`, `search`, `decide`, `decisions`, `blocked`, `tasks`,
`followup`.

It reads the store only through the read-only queries (worker/adapters/hr_queries.py) and changes nothing
itself: `decide` posts a Decision event on the decisions topic (and `followup` a follow-up command), exactly as
any other frontend would, and waits for the worker's outcome. Every command prints a fixed-width table, or JSON
with `--json`. Registered on the main parser by `register(subparsers)`.

Exit codes: 0 ok / applied, 1 rejected by the worker, 2 usage error, 3 no outcome in time (is the worker
running?), 4 database or Kafka unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import typing
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from worker.config import Settings
from worker.domain.decisions import (
    ALIASES,
    BULK_ACTIONS,
    TASKS,
    Decision,
    DecisionAction,
    DecisionFilter,
    FollowUpCommand,
)
from worker.domain.events import Message, Outcome, OutcomeKind
from worker.domain.nmbrs_records import nmbrs_today

if TYPE_CHECKING:
    # Imported lazily at run time, as in cli.py: the other commands need not load asyncpg or aiokafka.
    import asyncpg

    from worker.adapters import hr_queries

Entity = Literal["employee", "company"]
EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_NO_OUTCOME, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4

# The words HR knows from the old sync screen.
DUTCH_NAMES = {
    DecisionAction.KOPPELEN: "Koppelen",
    DecisionAction.AANMAKEN: "Aanmaken",
    DecisionAction.BLOKKEREN: "Blokkeren",
    DecisionAction.OVERSLAAN: "Overslaan",
    DecisionAction.ONTBLOKKEREN: "Ontblokkeren",
    DecisionAction.ONGEDAAN_MAKEN: "Ongedaan maken",
}
# Actions that answer an open question, so they carry its version (a newer Nmbrs change makes them stale).
ANSWERS = frozenset({DecisionAction.KOPPELEN, DecisionAction.AANMAKEN, DecisionAction.BLOKKEREN,
                     DecisionAction.OVERSLAAN})  # fmt: skip
# Outcomes that settle a decision; the others (leave recalculated, follow-up tasks, ...) accompany them.
SETTLING = frozenset({OutcomeKind.APPLIED, OutcomeKind.PREVIEW, OutcomeKind.ACCEPTED, OutcomeKind.REJECTED})
# After the settling outcome, how long to keep reading for the outcomes published right after it.
STRAGGLERS_S = 0.5

VersionLookup = Callable[[Entity, int], int | None]
Report = TypeVar("Report", bound=BaseModel | Sequence[BaseModel])


class UsageError(ValueError):
    """A command line that cannot become a valid decision; the message says how to write it."""


# --- registration ----------------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `status`, `pending`, `search`, `decide`, `tasks` and `followup` to the main parser's subcommands."""
    status = subparsers.add_parser("status", help="every sync step green or red, with counts and reasons")
    _json_flag(status)
    status.set_defaults(func=synchronous(run_status))

    pending = subparsers.add_parser(
        "pending", help="open questions (Koppelen/Aanmaken/Blokkeren/Overslaan) with candidates and scores"
    )
    pending.add_argument("--all", action="store_true", help="also show skipped questions (Overslaan)")
    _json_flag(pending)
    pending.set_defaults(func=synchronous(run_pending))

    search = subparsers.add_parser(
        "search", help="find RegiCRM persons and organisations to link to (Koppelen)",
        description="TEXT: name parts (accents and case ignored, 'vanderberg' works), an e-mail address, "
        "a birthday (1980-04-02 or 02-04-1980), a phone number or a KvK number.",
    )  # fmt: skip
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
        "--version", type=int, metavar="N", help="the question's version as 'pending' showed it (default: the "
        "current one); a newer Nmbrs change then rejects the decision as stale instead of applying it blindly",
    )  # fmt: skip
    decide.add_argument("--undo", type=uuid.UUID, metavar="DECISION_ID", help="ongedaan_maken: the decision to undo")
    decide.add_argument(
        "--all-records", action="store_true", help="ongedaan_maken of a bulk decision: every record it answered "
        "(default: only RECORD)",
    )  # fmt: skip
    decide.add_argument("--by", metavar="NAME", help="who decides (default: the operating-system user)")
    decide.add_argument("--note", metavar="TEXT", help="a note kept with the decision")
    decide.add_argument("--company-filter", type=int, metavar="C", help="bulk: every open question of Nmbrs company C")
    decide.add_argument("--situation", choices=["unmatched", "disputed"], help="bulk: only this situation")
    decide.add_argument(
        "--max-best-score", type=float, metavar="X", help="bulk: only where the best candidate scores at most X"
    )
    decide.add_argument("--preview", action="store_true", help="bulk: report what would happen, change nothing")
    decide.add_argument(
        "--confirm", type=uuid.UUID, metavar="PREVIEW_ID", help="bulk: answer exactly what this preview listed "
        "(records changed or answered since are left out and named)",
    )  # fmt: skip
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
        "--employee", metavar="ID", help="only this employee: employee:123 (the Nmbrs id, as 'pending' shows it) or "
        "a bare RegiTijd employee id (as this list and the follow-up commands show it)",
    )  # fmt: skip
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
        "followup", help="complete an employee's data (gegevens aanvullen): manager, is-manager, leave adjustment, "
        "overtime payout, characteristics, time-writing categories; posted as a follow-up command",
    )  # fmt: skip
    followup.add_argument(
        "follow_up", choices=FOLLOW_UP_COMMANDS, metavar="COMMAND", help=", ".join(FOLLOW_UP_COMMANDS)
    )
    followup.add_argument(
        "employee", metavar="EMPLOYEE", help="a bare RegiTijd employee id (as 'tasks' shows it) or employee:123 "
        "(the Nmbrs id)",
    )  # fmt: skip
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
    read: Callable[[asyncpg.Connection], Awaitable[Report]],
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
        _print_json({
            "status": "red" if any(s.status == "red" for s in statuses) else "green",
            "steps": [s.model_dump(mode="json", exclude={"event_type", "schema_version"}) for s in ordered],
            "employees_with_open_tasks": with_tasks,
        })  # fmt: skip
        return EXIT_OK
    rows = [
        (s.step, s.status, " ".join(f"{k}={v}" for k, v in s.counts.items()), "; ".join(s.reasons)) for s in ordered
    ]
    print(_table(("step", "status", "counts", "reasons"), rows))
    red = [s.step for s in ordered if s.status == "red"]
    print()
    print(f"red: {', '.join(red)} (see 'nmbrs-sync pending')" if red else "all steps green")
    if with_tasks:
        print(f"{with_tasks} employee(s) with open follow-up tasks (see 'nmbrs-sync tasks')")
    return EXIT_OK


async def run_pending(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    return await _show(
        args, settings, lambda db: hr_queries.pending_questions(db, include_skipped=args.all), render_pending
    )


def render_pending(questions: Sequence[hr_queries.PendingQuestionView]) -> str:
    """Each question as a row (red, or skipped), its candidates indented under it, and the decide hint."""
    if not questions:
        return "no open questions: employees and companies are green"
    waiting = sum(not q.skipped for q in questions)
    lines = [f"{waiting} open question(s), all red: choose Koppelen, Aanmaken, Blokkeren or Overslaan", ""]
    head = _table(
        ("", "record", "name", "details", "company", "situation", "version", "waiting"),
        [
            (
                "skipped" if q.skipped else "red",
                q.key,
                q.name,
                _details(q),
                # A company's own question is grouped under itself: no need to repeat its name.
                f"{q.company_name or '?'} ({q.company_id})"
                if q.company_id is not None and q.entity == "employee"
                else "-",
                q.situation,
                str(q.version),
                _age(q.age_s),
            )
            for q in questions
        ],
    ).splitlines()
    lines += head[:2]
    for question, row in zip(questions, head[2:], strict=True):
        lines.append(row)
        lines += _candidate_lines(question)
        lines.append("      -> " + decide_hint(question))
        lines.append("")
    return "\n".join(lines).rstrip()


def _details(question: hr_queries.PendingQuestionView) -> str:
    shown = [
        f"nr {question.number}" if question.number else None,
        f"born {question.birthday}" if question.birthday else None,
        question.email,
    ]
    return ", ".join(item for item in shown if item) or "-"


def _candidate_lines(question: hr_queries.PendingQuestionView) -> list[str]:
    why = [f"      why: {question.reason}"] if question.reason else []
    if not question.candidates:
        return [*why, "      no candidates scored high enough: search with 'nmbrs-sync search NAME'"]
    kind = "person" if question.entity == "employee" else "organisation"
    table = _table(
        (kind, "name", "score", "flags", "fields"),
        [
            (
                str(c.crm_id),
                c.name or "(deleted)",
                f"{c.score:.2f}",
                ", ".join(c.flags) or "-",
                # Missing fields say nothing either way: leave them out to keep the line short.
                " ".join(f"{field}={level}" for field, level in c.levels.items() if level != "missing"),
            )
            for c in question.candidates
        ],
    )
    return [*why, *("      " + line for line in table.splitlines())]


def decide_hint(question: hr_queries.PendingQuestionView) -> str:
    """The command that answers the question, with the version shown (so a newer change makes it stale)."""
    version = f"--version {question.version}"
    flag = "--person" if question.entity == "employee" else "--organisation"
    if question.candidates:
        best = question.candidates[0].crm_id
        return (
            f"nmbrs-sync decide koppelen {question.key} {flag} {best} {version}   (or aanmaken | blokkeren | overslaan)"
        )
    return (
        f"nmbrs-sync decide aanmaken {question.key} {version}"
        f"   (or koppelen {flag} ID after 'nmbrs-sync search' | blokkeren | overslaan)"
    )


async def run_search(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    return await _show(args, settings, lambda db: hr_queries.search(db, args.text, limit=args.limit), render_search)


def render_search(result: hr_queries.SearchResult) -> str:
    if not result.persons and not result.organisations:
        return f"nothing found for {result.text!r}"
    parts: list[str] = []
    if result.persons:
        more = ", more match: add a first name, birthday or e-mail" if result.more_persons else ""
        parts.append(f"persons ({len(result.persons)}{more})")
        parts.append(
            _table(
                ("person", "name", "born", "e-mail", "organisation", "account", "flags", "linked to"),
                [
                    (
                        str(p.person_id),
                        p.name,
                        str(p.birthday or "-"),
                        p.email_work or p.email_private or "-",
                        p.organisation_name or "-",
                        p.username or "-",
                        ", ".join(p.flags) or "-",
                        ", ".join(f"employee:{n}" for n in p.linked_nmbrs_employee_ids) or "-",
                    )
                    for p in result.persons
                ],
            )
        )
        parts.append("koppelen: nmbrs-sync decide koppelen employee:NMBRS_ID --person PERSON (duplicates: take the "
                     "card with the login account)")  # fmt: skip
    if result.organisations:
        if parts:
            parts.append("")
        more = ", more match: refine the search" if result.more_organisations else ""
        parts.append(f"organisations ({len(result.organisations)}{more})")
        parts.append(
            _table(
                ("organisation", "name", "kvk", "e-mail", "linked to"),
                [
                    (
                        str(o.organisation_id),
                        o.name,
                        o.kvk_number or "-",
                        o.email or "-",
                        ", ".join(f"company:{n}" for n in o.linked_nmbrs_company_ids) or "-",
                    )
                    for o in result.organisations
                ],
            )
        )
        parts.append("koppelen: nmbrs-sync decide koppelen company:NMBRS_ID --organisation ORGANISATION")
    return "\n".join(parts)


def parse_employee_ref(text: str | None) -> tuple[str, int] | None:
    """'employee:123' -> ('nmbrs', 123); '45' -> ('regitijd', 45); None -> None (every employee)."""
    if text is None:
        return None
    if ":" in text:
        kind, number = parse_record(text)
        if kind != "employee":
            raise UsageError(f"--employee {text!r}: follow-up tasks belong to employees, e.g. employee:123")
        return "nmbrs", number
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"--employee {text!r}: write employee:123 (Nmbrs id) or a bare RegiTijd employee id")
    return "regitijd", int(text)


async def run_tasks(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    wanted = parse_employee_ref(args.employee)

    async def fetch(db: asyncpg.Connection) -> list[hr_queries.EmployeeTasks]:
        found = await hr_queries.open_tasks(db, employee_id=wanted[1] if wanted and wanted[0] == "regitijd" else None)
        return [t for t in found if wanted is None or wanted[0] != "nmbrs" or t.nmbrs_employee_id == wanted[1]]

    return await _show(args, settings, fetch, partial(render_tasks, employee=wanted))


def render_tasks(open_tasks: Sequence[hr_queries.EmployeeTasks], employee: tuple[str, int] | None) -> str:
    if not open_tasks:
        if employee is None:
            return "no open follow-up tasks for any active Nmbrs employee"
        which = f"Nmbrs employee {employee[1]}" if employee[0] == "nmbrs" else f"RegiTijd employee {employee[1]}"
        # Also said when the id is unknown or not linked: the list cannot tell 'nothing open' from 'nobody'.
        return f"no open follow-up tasks for {which} (or it is not an active, linked Nmbrs employee)"
    table = _table(
        ("employee", "nmbrs", "name", "company", "open tasks"),
        [
            (str(t.employee_id), str(t.nmbrs_employee_id or "-"), t.name, t.company_name or "-", ", ".join(t.tasks))
            for t in open_tasks
        ],
    )
    used = {task for t in open_tasks for task in t.tasks}
    return table + "\n\n" + "\n".join(f"{task}: {text}" for task, text in TASKS.items() if task in used)


# --- followup -----------------------------------------------------------------------------------------------

FOLLOW_UP_COMMANDS = typing.get_args(FollowUpCommand.model_fields["command"].annotation)


def follow_up_from_args(args: argparse.Namespace, employee_id: int, now: datetime) -> FollowUpCommand:
    """The FollowUpCommand a `followup` command line stands for (`employee_id`: the RegiTijd id)."""
    try:
        return FollowUpCommand(
            command_id=uuid.uuid4(),
            employee_id=employee_id,
            command=args.follow_up,
            manager_employee_id=args.manager,
            is_manager=None if args.is_manager is None else args.is_manager == "yes",
            hours=args.hours,
            on=args.on,
            characteristic=args.characteristic,
            time_category=args.time_category,
            reason=args.reason,
            issued_by=args.by or _os_user(),
            issued_at=now,
        )
    except ValidationError as error:
        raise UsageError(
            "; ".join(problem["msg"].removeprefix("Value error, ") for problem in error.errors())
        ) from None


async def run_followup(args: argparse.Namespace, settings: Settings) -> int:
    from aiokafka.errors import KafkaError

    from worker.adapters import hr_queries

    try:
        kind, number = parse_employee_ref(args.employee) or ("", 0)
        if kind == "nmbrs":
            async with hr_queries.read_only_connection(_dsn(settings)) as connection:
                found = await connection.fetchval(
                    "SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = $1", number
                )
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
        outcomes = await post_command(settings, settings.topics.followup_commands, command.key, command,
                                      command.command_id, args.wait, line)  # fmt: skip
    except (KafkaError, OSError) as error:
        return _unavailable(RuntimeError(f"cannot post to Kafka at {settings.kafka_bootstrap_servers}: {error!r}"))
    return report_outcomes(args, "follow-up", command.command_id, command, outcomes, "nmbrs-sync tasks")


# --- decisions, blocked ---------------------------------------------------------------------------------------


async def run_decisions(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    try:
        record = parse_record(args.record) if args.record else None
    except UsageError as error:
        print(f"nmbrs-sync decisions: {error}", file=sys.stderr)
        return EXIT_USAGE
    return await _show(args, settings, lambda db: hr_queries.decision_history(db, record, args.limit), render_decisions)


def render_decisions(decisions: Sequence[hr_queries.DecisionView]) -> str:
    if not decisions:
        return "no decisions yet"
    return _table(
        ("decision", "when", "by", "action", "record", "result", "undone", "reason"),
        [
            (d.decision_id, f"{d.decided_at:%Y-%m-%d %H:%M}", d.decided_by, d.action, d.record, d.result,
             "yes" if d.undone_by else "-", d.reason or "-")
            for d in decisions
        ],
    )  # fmt: skip


async def run_blocked(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

    return await _show(args, settings, hr_queries.blocked_records, render_blocked)


def render_blocked(blocks: Sequence[hr_queries.BlockView]) -> str:
    if not blocks:
        return "no blocked records"
    table = _table(
        ("record", "name", "since", "by", "reason"),
        [(b.record, b.name or "-", f"{b.blocked_at:%Y-%m-%d}", b.blocked_by, b.reason or "-") for b in blocks],
    )
    return table + "\n\nunblock: nmbrs-sync decide ontblokkeren RECORD (the question is asked again)"


# --- decide ----------------------------------------------------------------------------------------------


def parse_action(text: str) -> DecisionAction:
    """Dutch or English, any case; 'ongedaan-maken' and 'ongedaan maken' too."""
    word = text.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return ALIASES.get(word) or DecisionAction(word)
    except ValueError:
        choices = ", ".join([*(a.value for a in DecisionAction), *ALIASES])
        raise UsageError(f"unknown action {text!r}; use one of: {choices}") from None


def parse_record(text: str) -> tuple[Entity, int]:
    """'employee:123' -> ('employee', 123), 'company:4' -> ('company', 4), '123' -> ('employee', 123)."""
    kind, colon, number = text.strip().partition(":")
    if not colon:
        kind, number = "employee", kind
    kind, number = kind.strip().lower(), number.strip()
    if not number.isdigit() or int(number) < 1:
        raise UsageError(f"RECORD {text!r}: write employee:123, company:4 or a bare Nmbrs employee id")
    if kind == "employee":
        return "employee", int(number)
    if kind == "company":
        return "company", int(number)
    raise UsageError(f"RECORD {text!r}: the kind is employee or company, e.g. employee:123 or company:4")


def decision_from_args(args: argparse.Namespace, now: datetime, version_lookup: VersionLookup) -> Decision:
    """The Decision a `decide` command line stands for. Pure apart from `version_lookup` (entity, nmbrs_id)
    -> the open question's current version, asked only when the user gave no --version."""
    action = parse_action(args.action)
    bulk = args.company_filter is not None
    if bulk and args.record:
        raise UsageError("give either RECORD (one record) or --company-filter (bulk), not both")
    if not bulk and not args.record:
        raise UsageError("give the RECORD to decide on (employee:123, company:4 or 123), "
                         "or --company-filter C for a bulk decision")  # fmt: skip
    if not bulk and (args.situation is not None or args.max_best_score is not None or args.preview):
        raise UsageError("--situation, --max-best-score and --preview belong to a bulk decision (--company-filter)")
    if args.confirm is not None and (not bulk or args.preview):
        raise UsageError("--confirm PREVIEW_ID carries out a preview: give it to the bulk decision, without --preview")
    if bulk and args.version is not None:
        raise UsageError("--version belongs to one RECORD; a bulk answers each question at its current version")
    if bulk and action not in BULK_ACTIONS:
        allowed = ", ".join(sorted(a.value for a in BULK_ACTIONS))
        raise UsageError(f"a bulk decision can only be {allowed}; {action.value} needs one RECORD")
    entity: Entity = "employee"  # a bulk decision answers employee questions
    nmbrs_id: int | None = None
    if not bulk:
        entity, nmbrs_id = parse_record(args.record)
    if args.person is not None and entity != "employee":
        raise UsageError(f"{args.record} is a company: link it with --organisation ID")
    if args.organisation is not None and entity != "company":
        raise UsageError(f"{args.record} is an employee: link it with --person ID")
    target_id = args.person if args.person is not None else args.organisation
    if action is DecisionAction.KOPPELEN and target_id is None:
        flag = "--person" if entity == "employee" else "--organisation"
        raise UsageError(f"koppelen needs {flag} ID: the RegiCRM card to link to (find it with 'nmbrs-sync search')")
    if action is not DecisionAction.KOPPELEN and target_id is not None:
        raise UsageError("--person and --organisation only go with koppelen")
    if (action is DecisionAction.ONGEDAAN_MAKEN) != (args.undo is not None):
        raise UsageError("ongedaan_maken needs --undo DECISION_ID (the id 'decide' printed), and only it takes --undo")
    if args.all_records and action is not DecisionAction.ONGEDAAN_MAKEN:
        raise UsageError("--all-records only goes with ongedaan_maken")
    version = args.version
    if version is None and nmbrs_id is not None and action in ANSWERS:
        version = version_lookup(entity, nmbrs_id)
    try:
        return Decision(
            decision_id=uuid.uuid4(),
            entity=entity,
            nmbrs_id=nmbrs_id,
            filter=DecisionFilter(
                company_id=args.company_filter, situation=args.situation, max_best_score=args.max_best_score
            )
            if bulk
            else None,
            action=action,
            target_id=target_id,
            version=version if nmbrs_id is not None else None,
            undo_decision_id=args.undo,
            undo_all_records=bool(args.all_records),
            preview=bool(args.preview),
            confirms=args.confirm,
            decided_by=args.by or _os_user(),
            decided_at=now,
            note=args.note,
        )
    except ValidationError as error:
        raise UsageError("; ".join(_message(e) for e in error.errors())) from None


def _message(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    text = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {text}" if where else text


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


def describe(decision: Decision) -> str:
    """One line saying what was posted, with the Dutch action name HR knows."""
    what = DUTCH_NAMES[decision.action]
    if decision.filter is not None:
        f = decision.filter
        criteria = [f"company {f.company_id}"]
        criteria += [f"situation {f.situation}"] if f.situation else []
        criteria += [f"best score <= {f.max_best_score}"] if f.max_best_score is not None else []
        scope = f"every open employee question of {', '.join(criteria)}" + (" (preview)" if decision.preview else "")
    else:
        scope = decision.key
    if decision.target_id is not None:
        scope += f" -> {'person' if decision.entity == 'employee' else 'organisation'} {decision.target_id}"
    if decision.version is not None:
        scope += f" (version {decision.version})"
    if decision.undo_decision_id is not None:
        scope += f" (undo {decision.undo_decision_id}{', every record' if decision.undo_all_records else ''})"
    return f"{what}: {scope}"


async def run_decide(args: argparse.Namespace, settings: Settings) -> int:
    from worker.adapters import hr_queries

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
    from aiokafka.errors import KafkaError

    try:
        outcomes = await post_decision(settings, decision, args.wait, announce=not args.json)
    except (KafkaError, OSError) as error:
        return _unavailable(RuntimeError(f"cannot post to Kafka at {settings.kafka_bootstrap_servers}: {error!r}"))
    return _report(args, decision, outcomes)


async def _current_version(args: argparse.Namespace, settings: Settings) -> int | None:
    """The open question's version now, read only when decision_from_args will ask for it."""
    from worker.adapters import hr_queries

    if args.version is not None or not args.record or args.company_filter is not None:
        return None
    if parse_action(args.action) not in ANSWERS:
        return None
    entity, nmbrs_id = parse_record(args.record)
    async with hr_queries.read_only_connection(_dsn(settings)) as connection:
        return await hr_queries.pending_version(connection, entity, nmbrs_id)


def _report(args: argparse.Namespace, decision: Decision, outcomes: list[Outcome] | None) -> int:
    code = report_outcomes(args, "decision", decision.decision_id, decision, outcomes, "nmbrs-sync pending")
    if decision.preview and code == EXIT_OK and outcomes and not args.json:
        f = decision.filter
        assert f is not None
        narrowing = (f" --situation {f.situation}" if f.situation else "") + (
            f" --max-best-score {f.max_best_score}" if f.max_best_score is not None else ""
        )
        print(f"to answer exactly these: nmbrs-sync decide {decision.action.value} --company-filter {f.company_id}"
              f"{narrowing} --confirm {decision.decision_id}")  # fmt: skip
    return code


def report_outcomes(
    args: argparse.Namespace, kind: str, command_id: uuid.UUID, command: Message, outcomes: list[Outcome] | None,
    check_with: str,
) -> int:  # fmt: skip
    """Print what a posted `kind` ('decision', 'follow-up') caused; the exit code says how it settled."""
    settled = [o for o in outcomes or () if o.kind in SETTLING]
    if outcomes is None:
        result, code = "posted", EXIT_OK
    elif not settled:
        result, code = "no_outcome", EXIT_NO_OUTCOME
    elif any(o.kind is OutcomeKind.REJECTED for o in settled):
        result, code = "rejected", EXIT_REJECTED
    else:
        result, code = settled[0].kind.value, EXIT_OK
    if args.json:
        _print_json({
            f"{kind.replace('-', '_')}_id": str(command_id),
            "result": result,
            kind.replace("-", "_"): command.model_dump(mode="json"),
            "outcomes": [o.model_dump(mode="json") for o in outcomes or ()],
        })  # fmt: skip
    else:
        for outcome in outcomes or ():
            print(f"{outcome.kind.value}: {outcome.reason or outcome.subject}")
            if outcome.kind is OutcomeKind.PREVIEW:
                # What a real run would answer, to check before running it.
                print("\n".join(f"  {record}" for record in outcome.details.get("records", [])))
    if code == EXIT_NO_OUTCOME:
        print(
            f"nmbrs-sync: no outcome for {kind} {command_id} within {args.wait:g} s; the worker may not be running. "
            f"The {kind} stays on the topic and is handled when the worker runs; check with '{check_with}'.",
            file=sys.stderr,
        )
    return code


async def post_decision(
    settings: Settings, decision: Decision, wait_s: float, *, announce: bool = True
) -> list[Outcome] | None:
    """Publish the decision keyed by its record; then, unless `wait_s` is 0 (None), return the outcomes it
    caused within `wait_s` (none of them settling it when the worker did not answer in time)."""
    line = f"decision {decision.decision_id} posted: {describe(decision)}" if announce else None
    return await post_command(settings, settings.topics.decisions, decision.key, decision, decision.decision_id,
                              wait_s, line)  # fmt: skip


async def post_command(
    settings: Settings, topic: str, key: str, command: Message, command_id: uuid.UUID, wait_s: float,
    announce: str | None,
) -> list[Outcome] | None:  # fmt: skip
    """Publish `command` on `topic`; then, unless `wait_s` is 0 (None), the outcomes it caused within `wait_s`."""
    from worker.adapters.kafka import KafkaPublisher

    watcher = OutcomeWatcher(settings) if wait_s > 0 else None
    try:
        if watcher is not None:
            # Positioned before publishing: an outcome faster than us cannot slip by unseen.
            await watcher.start()
        async with KafkaPublisher(settings) as publisher:
            await publisher.publish(topic, key, command)
        if announce:
            print(announce, flush=True)
        if watcher is None:
            return None
        return await watcher.outcomes_of(command_id, wait_s)
    finally:
        if watcher is not None:
            await watcher.stop()


class OutcomeWatcher:
    """Reads the outcomes topic from its end offsets at start() (no consumer group: nothing is committed,
    and the worker's own groups are not disturbed)."""

    def __init__(self, settings: Settings) -> None:
        from aiokafka import AIOKafkaConsumer

        from worker.adapters.kafka import client_kwargs

        self._settings = settings
        self._topic = settings.topics.outcomes
        self._consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
        self._started = False

    async def start(self) -> None:
        from aiokafka import TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        from worker.adapters.kafka import client_kwargs

        admin = AIOKafkaAdminClient(**client_kwargs(self._settings))
        await admin.start()
        try:
            (meta,) = await admin.describe_topics([self._topic])
        finally:
            await admin.close()
        if meta["error_code"] != 0:
            raise OSError(f"topic {self._topic} is not available (error {meta['error_code']}): "
                          "run 'nmbrs-sync topics ensure'")  # fmt: skip
        partitions = [TopicPartition(self._topic, p["partition"]) for p in meta["partitions"]]
        await self._consumer.start()
        self._started = True
        self._consumer.assign(partitions)
        for partition, offset in (await self._consumer.end_offsets(partitions)).items():
            self._consumer.seek(partition, offset)

    async def stop(self) -> None:
        if self._started:
            await self._consumer.stop()

    async def outcomes_of(self, causation_id: uuid.UUID, timeout_s: float) -> list[Outcome]:
        """Outcomes caused by `causation_id` until one settles it (plus those right behind it), or timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        found: list[Outcome] = []
        while (remaining := deadline - loop.time()) > 0:
            found += await self._read(causation_id, min(remaining, 1.0))
            if any(o.kind in SETTLING for o in found):
                # A decision's outcomes are published one after the other: collect the rest of them.
                found += await self._read(causation_id, STRAGGLERS_S)
                break
        return found

    async def _read(self, causation_id: uuid.UUID, timeout_s: float) -> list[Outcome]:
        batch = await self._consumer.getmany(timeout_ms=max(1, int(timeout_s * 1000)))
        found = []
        for records in batch.values():
            for record in records:
                try:
                    outcome = Outcome.model_validate_json(record.value or b"")
                except ValidationError:
                    continue  # not ours to judge: the topic's other producers are checked elsewhere
                if outcome.causation_id == causation_id:
                    found.append(outcome)
        return found


# --- plain fixed-width tables -----------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a dashed rule under the header; no dependency needed."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"
