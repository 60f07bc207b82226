"""HR command lines to commands, without I/O: RECORD and employee selectors, `decide` arguments to a Decision,
`followup` arguments to a FollowUpCommand. A line that cannot become one raises UsageError saying how to write it.
"""

from __future__ import annotations

import argparse
import getpass
import typing
import uuid
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from worker.domain.changes import LinkedEntity
from worker.domain.decisions import ALIASES, BULK_ACTIONS, Decision, DecisionAction, DecisionFilter
from worker.domain.follow_ups import FollowUpCommand

VersionLookup = Callable[[LinkedEntity, int], int | None]

# Actions that answer an open question, so they carry its version (a newer Nmbrs change makes them stale).
ANSWERS = frozenset(
    {DecisionAction.KOPPELEN, DecisionAction.AANMAKEN, DecisionAction.BLOKKEREN, DecisionAction.OVERSLAAN}
)
FOLLOW_UP_COMMANDS = typing.get_args(FollowUpCommand.model_fields["command"].annotation)


class UsageError(ValueError):
    """A command line that cannot become a valid decision; the message says how to write it."""


def parse_action(text: str) -> DecisionAction:
    """Dutch or English, any case; 'ongedaan-maken' and 'ongedaan maken' too."""
    word = text.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return ALIASES.get(word) or DecisionAction(word)
    except ValueError:
        choices = ", ".join([*(a.value for a in DecisionAction), *ALIASES])
        raise UsageError(f"unknown action {text!r}; use one of: {choices}") from None


def parse_record(text: str) -> tuple[LinkedEntity, int]:
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


def needs_version(args: argparse.Namespace) -> tuple[LinkedEntity, int] | None:
    """The record whose open question's version decision_from_args will ask for, if it will."""
    if args.version is not None or not args.record or args.company_filter is not None:
        return None
    if parse_action(args.action) not in ANSWERS:
        return None
    return parse_record(args.record)


def decision_from_args(args: argparse.Namespace, now: datetime, version_lookup: VersionLookup) -> Decision:
    """The Decision a `decide` command line stands for. Pure apart from `version_lookup` (entity, nmbrs_id)
    -> the open question's current version, asked only when the user gave no --version."""
    action = parse_action(args.action)
    bulk = args.company_filter is not None
    if bulk and args.record:
        raise UsageError("give either RECORD (one record) or --company-filter (bulk), not both")
    if not bulk and not args.record:
        raise UsageError(
            "give the RECORD to decide on (employee:123, company:4 or 123), or --company-filter C for a bulk decision"
        )
    if not bulk and (args.situation is not None or args.max_best_score is not None or args.preview):
        raise UsageError("--situation, --max-best-score and --preview belong to a bulk decision (--company-filter)")
    if args.confirm is not None and (not bulk or args.preview):
        raise UsageError("--confirm PREVIEW_ID carries out a preview: give it to the bulk decision, without --preview")
    if bulk and args.version is not None:
        raise UsageError("--version belongs to one RECORD; a bulk answers each question at its current version")
    if bulk and action not in BULK_ACTIONS:
        allowed = ", ".join(sorted(a.value for a in BULK_ACTIONS))
        raise UsageError(f"a bulk decision can only be {allowed}; {action.value} needs one RECORD")
    entity: LinkedEntity = "employee"  # a bulk decision answers employee questions
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
        raise _usage_error(error, located=True) from None


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
            task=args.task,
            reason=args.reason,
            issued_by=args.by or _os_user(),
            issued_at=now,
        )
    except ValidationError as error:
        raise _usage_error(error, located=False) from None


def _usage_error(error: ValidationError, *, located: bool) -> UsageError:
    """The model's complaints in words; `located` names the field of each (a decision has many)."""
    problems = []
    for problem in error.errors():
        text = str(problem["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem["loc"]) if located else ""
        problems.append(f"{where}: {text}" if where else text)
    return UsageError("; ".join(problems))


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "cli"
