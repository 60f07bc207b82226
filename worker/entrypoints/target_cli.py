"""`nmbrs-sync target load FILE`: load a RegiCRM/RegiTijd starting state from YAML or JSON.

Registered on the main parser by `register(subparsers)`; the file format is `TargetState`
(worker/domain/target_state.py, JSON Schema in schemas/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from worker.config import Settings
from worker.domain.target_state import TargetFileError, TargetState, parse_target_file

if TYPE_CHECKING:
    # Imported lazily at run time, as in cli.py: other commands need not load asyncpg.
    from worker.adapters.target_store_load import LoadReport


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `target load FILE [--dry-run] [--json]` to the main parser's subcommands."""
    target = subparsers.add_parser("target", help="the RegiCRM/RegiTijd starting state")
    target_sub = target.add_subparsers(dest="target_command", required=True)
    load = target_sub.add_parser(
        "load",
        help="load organisations, persons, accounts, blue employees, time categories and CAO leave "
        "settings from a YAML or JSON file; loading the same file again changes nothing",
    )
    load.add_argument("file", help="YAML, or JSON when it ends in .json (format: TargetState in schemas/)")
    load.add_argument("--dry-run", action="store_true", help="validate and report what would change; write nothing")
    load.add_argument(
        "--if-empty",
        action="store_true",
        help="load only into an empty store (the demo: a second run keeps what "
        "was decided since, instead of putting the file's values back)",
    )
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.set_defaults(func=cmd_target_load)


def cmd_target_load(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when loaded (or, with --dry-run, loadable), 2 for an unreadable or invalid file, 1 when the
    file conflicts with the store, 4 when the database cannot be reached."""
    from worker.adapters.database import CONNECT_ERRORS
    from worker.adapters.target_store_load import TargetLoadError

    try:
        state = parse_target_file(Path(args.file).read_text(encoding="utf-8"), args.file)
    except OSError as error:
        print(f"nmbrs-sync: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as error:
        print(f"nmbrs-sync: {args.file} is not UTF-8 text: {error.reason}", file=sys.stderr)
        return 2
    except TargetFileError as error:
        print(f"nmbrs-sync: {error}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_load(settings, state, dry_run=args.dry_run, if_empty=args.if_empty))
    except TargetLoadError as error:
        print(f"nmbrs-sync: {args.file}: {error}; nothing was loaded", file=sys.stderr)
        return 1
    except CONNECT_ERRORS as error:
        print(f"nmbrs-sync: cannot connect to the database: {error}; nothing was loaded", file=sys.stderr)
        return 4
    if report is None:
        print(f"{args.file}: not loaded: the store already holds persons or organisations (--if-empty)")
        return 0
    if args.json:
        print(
            json.dumps(
                {
                    "file": args.file,
                    "dry_run": args.dry_run,
                    "counts": report.as_dict(),
                    "leave_recalculated": report.leave_recalculated,
                },
                indent=2,
            )
        )
    else:
        print(_table(report.as_dict()))
        verb = "would change" if args.dry_run else "changed"
        suffix = " (dry run: rolled back, nothing written)" if args.dry_run else ""
        print(f"\n{args.file}: {verb} {report.changes} record(s){suffix}")
        if report.leave_recalculated:
            print(f"leave recalculated for {report.leave_recalculated} employee(s): their CAO's leave settings changed")
    return 0


async def _load(settings: Settings, state: TargetState, *, dry_run: bool, if_empty: bool = False) -> LoadReport | None:
    from worker.adapters.database import connect
    from worker.adapters.migrations import migrate
    from worker.adapters.target_store_load import load_target_state, target_is_empty

    connection = await connect(settings)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            # The load writes into tables of the latest migration; an older database would fail half-way. In the
            # transaction, so that a dry run leaves even the schema as it was.
            await migrate(connection)
            if if_empty and not await target_is_empty(connection):
                await transaction.rollback()
                return None
            report = await load_target_state(connection, state)
        except BaseException:
            await transaction.rollback()
            raise
        # A dry run does all the work, including the comparisons, and then throws it away.
        await (transaction.rollback() if dry_run else transaction.commit())
        return report
    finally:
        await connection.close()


def _table(counts: dict[str, dict[str, int]]) -> str:
    columns = ("inserted", "updated", "deleted", "unchanged")
    width = max(len(kind) for kind in counts)
    lines = [f"{'kind':<{width}}  " + "  ".join(f"{c:>9}" for c in columns)]
    lines += [f"{kind:<{width}}  " + "  ".join(f"{row[c]:>9}" for c in columns) for kind, row in counts.items()]
    return "\n".join(lines)
