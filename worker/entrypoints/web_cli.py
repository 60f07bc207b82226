"""`nmbrs-sync web`: run the HR web app (`serve`, the default) and manage its users (`add-user`, `users`,
`set-role`, `set-password`, `disable`, `enable`).

Registered on the main parser by `register(subparsers)`. The accounts are in worker/adapters/web_accounts.py,
loaded only when a command needs them, so that other commands load neither asyncpg nor argon2.

Exit codes: 0 ok, 2 usage or validation error (unknown user, bad name or password), 3 database unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from worker.config import Settings
from worker.domain.web_access import Role, valid_user_name
from worker.entrypoints.hr_views import table

if TYPE_CHECKING:
    from worker.adapters.web_accounts import AccountStore

EXIT_OK, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 2, 4  # as the HR CLI: 4 = the database cannot be reached

ROLES = [role.value for role in Role]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `web [serve|add-user|users|set-role|set-password|disable|enable]` to the main parser's subcommands."""
    web = subparsers.add_parser(
        "web",
        help="the HR web app: 'web' or 'web serve' runs it; add-user, users, set-role, set-password, disable, "
        "enable manage who may sign in",
    )
    web.set_defaults(func=cmd_serve)
    actions = web.add_subparsers(dest="web_command", metavar="ACTION")
    actions.add_parser("serve", help="run the web app (the default)").set_defaults(func=cmd_serve)

    add = actions.add_parser(
        "add-user",
        help="add a user (lezer: reads, hr: also decides, beheer: also syncs, releases holds, bulk, users)",
        description="Asks for the password twice unless --password-stdin or --no-password is given.",
    )
    add.add_argument("name", metavar="NAME", help="user name: letters, digits and . - _ @ + (at most 64)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--display-name", metavar="TEXT", help="the name the app shows")
    add.add_argument("--email", metavar="ADDRESS")
    source = add.add_mutually_exclusive_group()
    source.add_argument("--no-password", action="store_true", help="no password: signs in only through the auth proxy")
    _password_stdin_flag(source)
    add.set_defaults(func=_synchronous(add_user))

    actions.add_parser("users", help="list the users and their roles").set_defaults(func=_synchronous(list_users))

    set_role = actions.add_parser("set-role", help="give a user another role (effective at their next request)")
    set_role.add_argument("name", metavar="NAME")
    set_role.add_argument("role", metavar="ROLE", choices=ROLES, help=", ".join(ROLES))
    set_role.set_defaults(func=_synchronous(change_role))

    set_password = actions.add_parser(
        "set-password", help="give a user a new password (asked twice); ends the user's sessions"
    )
    set_password.add_argument("name", metavar="NAME")
    _password_stdin_flag(set_password)
    set_password.set_defaults(func=_synchronous(change_password))

    for action, disabled, text in (
        ("disable", True, "stop a user from signing in; ends the user's sessions"),
        ("enable", False, "let a disabled user sign in again"),
    ):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("name", metavar="NAME")
        parser.set_defaults(func=_synchronous(change_disabled), disabled=disabled)


def _password_stdin_flag(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin (scripts)"
    )


def cmd_serve(_args: argparse.Namespace, settings: Settings) -> int:
    from worker.entrypoints.web.server import serve  # loads aiohttp, Jinja2 and asyncpg: only for serve

    return serve(settings)


# --- user management -------------------------------------------------------------------------------------


class _UsageError(Exception):
    """Bad input the store does not judge itself: passwords typed differently, an empty stdin."""


def _synchronous(
    body: Callable[[AccountStore, argparse.Namespace, Settings], Awaitable[str]],
) -> Callable[[argparse.Namespace, Settings], int]:
    """The Command the main parser calls: runs `body` with an AccountStore and prints what it reports; maps
    AccountError to exit 2 and an unavailable database to 3."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        from worker.adapters.hr_queries import StoreUnavailable
        from worker.adapters.web_accounts import AccountError, account_store

        async def run() -> str:
            async with account_store(settings) as store:
                return await body(store, args, settings)

        try:
            print(asyncio.run(run()))
        except (AccountError, _UsageError) as error:
            print(f"nmbrs-sync web: {error}", file=sys.stderr)
            return EXIT_USAGE
        except StoreUnavailable as error:
            print(f"nmbrs-sync web: {error}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        return EXIT_OK

    return command


def read_password(from_stdin: bool) -> str:
    """One line of stdin (without its line end), or the password typed twice at a prompt that does not echo."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise _UsageError("--password-stdin: er staat niets op stdin")
        return line.rstrip("\r\n")
    first = getpass.getpass("Wachtwoord: ")
    if getpass.getpass("Nog een keer: ") != first:
        raise _UsageError("de wachtwoorden zijn niet gelijk; er is niets veranderd")
    return first


async def add_user(store: AccountStore, args: argparse.Namespace, settings: Settings) -> str:
    from worker.adapters.web_accounts import AccountError

    # The name first: nobody should type a password twice to learn that the name was wrong.
    problem = valid_user_name(args.name)
    if problem:
        raise AccountError(problem)
    password = None if args.no_password else read_password(args.password_stdin)
    user = await store.add_user(args.name, Role(args.role), password, args.display_name, args.email)
    report = f"user {user.user_name} added with role {user.role}"
    if password is None and settings.hr_web_auth == "accounts":
        report += "; without a password it can sign in only with HR_WEB_AUTH=proxy"
    return report


async def list_users(store: AccountStore, _args: argparse.Namespace, _settings: Settings) -> str:
    users = await store.users()
    if not users:
        return "no users yet: add one with 'nmbrs-sync web add-user NAME --role beheer'"
    rows = [
        (
            user.user_name,
            user.display_name or "",
            user.role.value,
            "yes" if user.has_password else "no",
            "yes" if user.disabled else "no",
        )
        for user in users
    ]
    return table(("name", "display name", "role", "password", "disabled"), rows)


async def change_role(store: AccountStore, args: argparse.Namespace, _settings: Settings) -> str:
    await store.set_role(args.name, Role(args.role))
    return f"user {args.name} now has role {args.role}"


async def change_password(store: AccountStore, args: argparse.Namespace, _settings: Settings) -> str:
    from worker.adapters.web_accounts import UnknownUser

    # Known before a password is asked for: a typo in the name should not cost typing it twice.
    if await store.user(args.name) is None:
        raise UnknownUser(args.name)
    await store.set_password(args.name, read_password(args.password_stdin))
    return f"user {args.name} has a new password; their sessions were ended"


async def change_disabled(store: AccountStore, args: argparse.Namespace, _settings: Settings) -> str:
    await store.set_disabled(args.name, args.disabled)
    return f"user {args.name} disabled; their sessions were ended" if args.disabled else f"user {args.name} enabled"
