"""The HR web app's accounts against the real PostgreSQL: users and passwords (argon2), sessions, failed
sign-ins, and `nmbrs-sync web add-user` / `users` as a script would run them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg
import pytest
from argon2 import PasswordHasher

from tests.support import REPO, worker_env
from worker.adapters.web_accounts import AccountError, AccountStore, UnknownUser
from worker.config import Settings
from worker.domain.web_access import Role

NOW = datetime(2026, 11, 28, 9, tzinfo=UTC)
PASSWORD = "correct-horse-battery"
HOURS_8 = timedelta(hours=8)


@pytest.fixture
async def store(pool: asyncpg.Pool) -> AsyncIterator[AccountStore]:
    await pool.execute("TRUNCATE web_users, web_sessions, web_sign_in_failures RESTART IDENTITY CASCADE")
    yield AccountStore(pool)


class CountingHasher(PasswordHasher):
    """The default hasher, remembering the hashes it verified a password against."""

    def __init__(self) -> None:
        super().__init__()
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(str(hash))
        return super().verify(hash, password)


# --- users and passwords ----------------------------------------------------------------------------------


async def test_a_user_signs_in_with_their_password_and_not_with_another(store: AccountStore) -> None:
    added = await store.add_user("jan", Role.HR, PASSWORD, display_name="Jan de Vries", email="jan@zon.nl")
    assert added.model_dump() == {
        "user_name": "jan",
        "display_name": "Jan de Vries",
        "email": "jan@zon.nl",
        "role": Role.HR,
        "has_password": True,
        "disabled": False,
    }
    assert await store.verify_password("jan", PASSWORD) == added
    assert await store.verify_password("jan", PASSWORD + "x") is None
    assert await store.verify_password("jan", "") is None
    assert await store.verify_password("JAN", PASSWORD) is None  # names are exact
    assert await store.user("jan") == added
    assert await store.user("piet") is None


async def test_the_password_is_stored_only_as_an_argon2id_hash(store: AccountStore, pool: asyncpg.Pool) -> None:
    await store.add_user("jan", Role.LEZER, PASSWORD)
    stored = await pool.fetchval("SELECT password_hash FROM web_users WHERE user_name = 'jan'")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    row = await pool.fetchrow("SELECT * FROM web_users WHERE user_name = 'jan'")
    assert row is not None
    assert not any(PASSWORD in str(value) for value in row.values())


async def test_passwords_never_reach_the_log(store: AccountStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await store.add_user("jan", Role.HR, PASSWORD)
    await store.verify_password("jan", PASSWORD)
    await store.verify_password("jan", "wrong-password-123")
    await store.set_password("jan", "another-secret-456")
    with pytest.raises(AccountError) as short:
        await store.set_password("jan", "kort-geheim")
    assert "jan" in caplog.text  # the log does name who
    for secret in (PASSWORD, "wrong-password-123", "another-secret-456", "kort-geheim"):
        assert secret not in caplog.text
    assert "kort-geheim" not in str(short.value)


async def test_a_disabled_user_never_signs_in_until_enabled(store: AccountStore) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    await store.set_disabled("jan", True)
    assert await store.verify_password("jan", PASSWORD) is None
    assert (await store.user("jan")).disabled  # type: ignore[union-attr]
    await store.set_disabled("jan", False)
    assert await store.verify_password("jan", PASSWORD) is not None


async def test_unknown_proxy_only_and_disabled_users_cost_one_verification_like_a_real_one(
    store: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    await store.add_user("proxy-only", Role.HR, None)
    await store.add_user("weg", Role.HR, PASSWORD)
    await store.set_disabled("weg", True)
    hasher = CountingHasher()
    monkeypatch.setattr(store, "_hasher", hasher)
    for name in ("jan", "nobody", "proxy-only", "weg"):
        assert await store.verify_password(name, PASSWORD) == (await store.user("jan") if name == "jan" else None)
    assert len(hasher.verified) == 4
    assert all(h.startswith("$argon2id$v=19$m=65536,t=3,p=4$") for h in hasher.verified)
    assert await store.verify_password("proxy-only", "") is None


async def test_a_hash_with_old_parameters_is_renewed_at_the_next_sign_in(
    store: AccountStore, pool: asyncpg.Pool
) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    await pool.execute("UPDATE web_users SET password_hash = $1 WHERE user_name = 'jan'", cheap)
    assert await store.verify_password("jan", "wrong-password-123") is None
    assert await pool.fetchval("SELECT password_hash FROM web_users") == cheap  # only a right password renews
    assert await store.verify_password("jan", PASSWORD) is not None
    renewed = await pool.fetchval("SELECT password_hash FROM web_users")
    assert renewed != cheap and renewed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert await store.verify_password("jan", PASSWORD) is not None


async def test_a_duplicate_name_also_in_other_case_is_refused_in_dutch(store: AccountStore) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    for name in ("jan", "Jan"):
        with pytest.raises(AccountError, match="er is al een gebruiker"):
            await store.add_user(name, Role.BEHEER, PASSWORD)
    assert [u.user_name for u in await store.users()] == ["jan"]


@pytest.mark.parametrize(
    ("name", "password", "complaint"),
    [
        ("jan de vries", PASSWORD, "gebruikersnaam"),
        ("", PASSWORD, "leeg"),
        ("jan", "elf-tekens!", "minstens 12 tekens"),
    ],
)
async def test_a_bad_name_or_short_password_is_refused_and_nothing_is_stored(
    store: AccountStore, name: str, password: str, complaint: str
) -> None:
    with pytest.raises(AccountError, match=complaint) as refused:
        await store.add_user(name, Role.HR, password)
    assert password not in str(refused.value)
    assert await store.users() == []


async def test_users_are_listed_by_name_with_role_password_and_disabled(store: AccountStore) -> None:
    await store.add_user("piet", Role.BEHEER, None, email="piet@zon.nl")
    await store.add_user("anna", Role.LEZER, PASSWORD)
    await store.set_role("anna", Role.HR)
    listed = await store.users()
    assert [(u.user_name, u.role, u.has_password, u.email) for u in listed] == [
        ("anna", Role.HR, True, None),
        ("piet", Role.BEHEER, False, "piet@zon.nl"),
    ]


async def test_changing_an_unknown_user_says_so(store: AccountStore) -> None:
    for change in (
        store.set_role("nobody", Role.HR),
        store.set_disabled("nobody", True),
        store.set_password("nobody", PASSWORD),
    ):
        with pytest.raises(UnknownUser, match="gebruiker 'nobody' bestaat niet"):
            await change


async def test_a_new_password_replaces_the_old_one_and_ends_the_sessions(store: AccountStore) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    token, _ = await store.create_session("jan", HOURS_8, NOW)
    await store.set_password("jan", "another-secret-456")
    assert await store.verify_password("jan", PASSWORD) is None
    assert await store.verify_password("jan", "another-secret-456") is not None
    assert await store.session(token, NOW) is None


# --- sessions ---------------------------------------------------------------------------------------------


async def test_a_session_is_found_by_its_token_until_it_expires(store: AccountStore) -> None:
    user = await store.add_user("jan", Role.HR, PASSWORD)
    token, csrf = await store.create_session("jan", HOURS_8, NOW)
    assert len(token) >= 43 and len(csrf) >= 43 and token != csrf
    found = await store.session(token, NOW + timedelta(hours=1))
    assert found is not None
    assert (found.user, found.csrf_token, found.expires_at) == (user, csrf, NOW + HOURS_8)
    assert await store.session(token, NOW + HOURS_8 - timedelta(microseconds=1)) is not None
    assert await store.session(token, NOW + HOURS_8) is None
    assert await store.session(token + "x", NOW) is None
    assert await store.session("", NOW) is None
    assert await store.session("\udcff", NOW) is None  # what no token encodes to


async def test_only_the_tokens_sha256_is_stored(store: AccountStore, pool: asyncpg.Pool) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    token, _ = await store.create_session("jan", HOURS_8, NOW)
    row = await pool.fetchrow("SELECT * FROM web_sessions")
    assert row is not None
    assert row["token_hash"] == hashlib.sha256(token.encode()).digest()
    assert not any(token in str(value) for value in row.values())


async def test_a_session_follows_its_users_role_and_ends_when_the_user_is_disabled(store: AccountStore) -> None:
    await store.add_user("jan", Role.LEZER, PASSWORD)
    token, _ = await store.create_session("jan", HOURS_8, NOW)
    await store.set_role("jan", Role.BEHEER)
    assert (await store.session(token, NOW)).user.role is Role.BEHEER  # type: ignore[union-attr]
    await store.set_disabled("jan", True)
    await store.set_disabled("jan", False)
    assert await store.session(token, NOW) is None  # disabling ended it for good


async def test_no_session_for_a_disabled_or_unknown_user(store: AccountStore, pool: asyncpg.Pool) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    token, _ = await store.create_session("jan", HOURS_8, NOW)
    await pool.execute("UPDATE web_users SET disabled = true")  # e.g. by another process, sessions still there
    assert await store.session(token, NOW) is None
    for name in ("jan", "nobody"):
        with pytest.raises(AccountError, match="bestaat niet of is uitgeschakeld"):
            await store.create_session(name, HOURS_8, NOW)


async def test_last_seen_is_written_at_most_once_a_minute(store: AccountStore, pool: asyncpg.Pool) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    token, _ = await store.create_session("jan", HOURS_8, NOW)

    async def last_seen() -> datetime:
        seen: datetime = await pool.fetchval("SELECT last_seen_at FROM web_sessions")
        return seen

    await store.session(token, NOW + timedelta(seconds=59))
    assert await last_seen() == NOW
    await store.session(token, NOW + timedelta(seconds=60))
    assert await last_seen() == NOW + timedelta(seconds=60)
    await store.session(token, NOW + timedelta(seconds=90))
    assert await last_seen() == NOW + timedelta(seconds=60)


async def test_ending_one_session_or_all_of_a_user(store: AccountStore) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    await store.add_user("piet", Role.HR, PASSWORD)
    first, _ = await store.create_session("jan", HOURS_8, NOW)
    second, _ = await store.create_session("jan", HOURS_8, NOW)
    third, _ = await store.create_session("jan", HOURS_8, NOW)
    other, _ = await store.create_session("piet", HOURS_8, NOW)
    await store.end_session(first)
    assert await store.session(first, NOW) is None
    assert await store.session(second, NOW) is not None
    assert await store.end_sessions_of("jan") == 2
    assert await store.session(second, NOW) is None and await store.session(third, NOW) is None
    assert await store.session(other, NOW) is not None
    assert await store.end_sessions_of("jan") == 0


async def test_purge_removes_expired_sessions_and_old_failures_only(store: AccountStore, pool: asyncpg.Pool) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    await store.create_session("jan", timedelta(hours=1), NOW - timedelta(hours=2))  # expired an hour ago
    current, _ = await store.create_session("jan", HOURS_8, NOW)
    await store.record_failure("jan", "10.0.0.1", NOW - timedelta(days=2))
    await store.record_failure("jan", "10.0.0.1", NOW - timedelta(hours=1))
    assert await store.purge_expired(NOW) == (1, 1)
    assert await pool.fetchval("SELECT count(*) FROM web_sessions") == 1
    assert await store.session(current, NOW) is not None
    assert await store.failures("jan", "10.0.0.1", NOW - timedelta(days=3)) == (
        [NOW - timedelta(hours=1)],
        [NOW - timedelta(hours=1)],
    )


async def test_deleting_a_user_deletes_their_sessions(store: AccountStore, pool: asyncpg.Pool) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    await store.create_session("jan", HOURS_8, NOW)
    await pool.execute("DELETE FROM web_users")
    assert await pool.fetchval("SELECT count(*) FROM web_sessions") == 0


# --- failed sign-ins --------------------------------------------------------------------------------------


async def test_failures_are_counted_per_name_and_per_address(store: AccountStore) -> None:
    at = [NOW + timedelta(minutes=m) for m in range(5)]
    await store.record_failure("jan", "10.0.0.1", at[0])
    await store.record_failure("jan", "10.0.0.2", at[1])
    await store.record_failure("piet", "10.0.0.1", at[2])
    await store.record_failure("nobody", "10.0.0.1", at[3])  # names without an account count too
    await store.record_failure("jan", "10.0.0.1", NOW - timedelta(hours=1))  # before `since`
    assert await store.failures("jan", "10.0.0.1", NOW) == ([at[0], at[1]], [at[0], at[2], at[3]])
    assert await store.failures("jan", "10.0.0.1", at[1]) == ([at[1]], [at[2], at[3]])  # `since` is inclusive


async def test_clearing_a_names_failures_leaves_the_addresses_count_of_other_names(store: AccountStore) -> None:
    await store.record_failure("jan", "10.0.0.1", NOW)
    await store.record_failure("piet", "10.0.0.1", NOW)
    await store.clear_failures("jan")
    assert await store.failures("jan", "10.0.0.1", NOW) == ([], [NOW])


# --- the command line -------------------------------------------------------------------------------------


async def run_cli(settings: Settings, *args: str, stdin: str = "", **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.entrypoints.cli",
        "web",
        *args,
        cwd=REPO,
        env=worker_env(settings, **env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_add_user_from_a_script_then_users_lists_it(store: AccountStore, integration_settings: Settings) -> None:
    code, out, err = await run_cli(
        integration_settings,
        "add-user",
        "anna@zon.nl",
        "--role",
        "beheer",
        "--display-name",
        "Anna van der Berg",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, err
    assert "anna@zon.nl" in out and PASSWORD not in out + err
    assert await store.verify_password("anna@zon.nl", PASSWORD) is not None

    code, out, err = await run_cli(integration_settings, "add-user", "kees", "--role", "lezer", "--no-password")
    assert code == 0, err
    code, out, _ = await run_cli(integration_settings, "users")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "display", "name", "role", "password", "disabled"]
    assert lines[2].split() == ["anna@zon.nl", "Anna", "van", "der", "Berg", "beheer", "yes", "no"]
    assert lines[3].split() == ["kees", "lezer", "no", "no"]


async def test_the_cli_changes_role_password_and_disabled(store: AccountStore, integration_settings: Settings) -> None:
    await store.add_user("jan", Role.LEZER, PASSWORD)
    token, _ = await store.create_session("jan", HOURS_8, NOW)
    assert (await run_cli(integration_settings, "set-role", "jan", "hr"))[0] == 0
    assert (await store.user("jan")).role is Role.HR  # type: ignore[union-attr]
    code, _, err = await run_cli(
        integration_settings, "set-password", "jan", "--password-stdin", stdin="new-secret-789\n"
    )
    assert code == 0, err
    assert await store.verify_password("jan", "new-secret-789") is not None
    token, _ = await store.create_session("jan", HOURS_8, NOW)
    assert (await run_cli(integration_settings, "disable", "jan"))[0] == 0
    assert await store.verify_password("jan", "new-secret-789") is None
    assert await store.session(token, NOW) is None
    assert (await run_cli(integration_settings, "enable", "jan"))[0] == 0
    assert await store.verify_password("jan", "new-secret-789") is not None


async def test_the_cli_exits_2_for_bad_input_and_3_without_a_database(
    store: AccountStore, integration_settings: Settings
) -> None:
    await store.add_user("jan", Role.HR, PASSWORD)
    for args, stdin, complaint in (
        (("add-user", "jan", "--role", "hr", "--password-stdin"), PASSWORD + "\n", "er is al een gebruiker"),
        (("add-user", "piet", "--role", "hr", "--password-stdin"), "kort\n", "minstens 12"),
        (("add-user", "piet", "--role", "hr", "--password-stdin"), "", "stdin"),
        (("add-user", "jan de vries", "--role", "hr", "--password-stdin"), PASSWORD + "\n", "gebruikersnaam"),
        (("set-role", "nobody", "hr"), "", "bestaat niet"),
        (("disable", "nobody"), "", "bestaat niet"),
        (("set-password", "nobody", "--password-stdin"), PASSWORD + "\n", "bestaat niet"),
    ):
        code, _, err = await run_cli(integration_settings, *args, stdin=stdin)
        assert code == 2 and complaint in err, (args, err)
        assert PASSWORD not in err
    code, _, err = await run_cli(integration_settings, "add-user", "x", "--role", "admin", "--no-password")
    assert code == 2 and "invalid choice" in err  # argparse's own usage error
    assert [u.user_name for u in await store.users()] == ["jan"]

    unreachable = "postgresql://nmbrs_sync:nmbrs_sync@127.0.0.1:1/nmbrs_sync"
    code, _, err = await run_cli(integration_settings, "users", DATABASE_URL=unreachable)
    assert code == 4 and "cannot connect to the database" in err, err
