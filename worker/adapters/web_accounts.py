"""Accounts, sessions and failed sign-ins of the HR web app in PostgreSQL, passwords as argon2id hashes (asyncpg,
argon2-cffi).

Neither a password nor a session token is ever logged, put in an exception message or stored: passwords only
as argon2 hashes, session tokens only as their sha256 (a token is random and long, so a slow hash adds nothing).
Who may do what is decided in worker/domain/web_access.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import cache

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict

from worker.adapters.database import CONNECT_ERRORS, Connection, Pool, create_pool, transaction
from worker.adapters.hr_queries import StoreUnavailable
from worker.config import Settings
from worker.domain.web_access import Role, valid_password, valid_user_name

log = logging.getLogger(__name__)

# last_seen_at is for "who was here lately", not a clock: writing it on every request would make each page
# view a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Failed sign-ins older than this are deleted by purge_expired; the throttle looks back only half an hour.
FAILURE_RETENTION = timedelta(days=1)

_USER_COLUMNS = "u.user_name, u.display_name, u.email, u.role, u.password_hash IS NOT NULL AS has_password, u.disabled"


class AccountError(Exception):
    """A user cannot be added or changed as asked; the message (Dutch) says why and can be shown as is."""


class UnknownUser(AccountError):
    """There is no user of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"gebruiker '{name}' bestaat niet")


class WebUser(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_name: str
    display_name: str | None
    email: str | None
    role: Role
    has_password: bool  # False: signs in only through the auth proxy
    disabled: bool


class WebSession(BaseModel):
    """A signed-in user's session as a request finds it; the CSRF token is what its forms must send back."""

    model_config = ConfigDict(frozen=True)

    user: WebUser
    csrf_token: str
    expires_at: datetime


class AccountStore:
    """The web app's users and sessions. Password hashing runs in a thread: argon2 takes tens of milliseconds
    of CPU on purpose, which would stall every other request on the event loop."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._hasher = PasswordHasher()

    # --- users ------------------------------------------------------------------------------------------

    async def add_user(
        self,
        name: str,
        role: Role,
        password: str | None,
        display_name: str | None = None,
        email: str | None = None,
    ) -> WebUser:
        """Add a user; without a password (None) the user signs in only through the auth proxy."""
        problem = valid_user_name(name) or (valid_password(password) if password is not None else None)
        if problem:
            raise AccountError(problem)
        password_hash = await self._hash(password) if password is not None else None
        try:
            row = await self._pool.fetchrow(
                f"""INSERT INTO web_users AS u (user_name, display_name, email, role, password_hash)
                    VALUES ($1, $2, $3, $4, $5) RETURNING {_USER_COLUMNS}""",
                name,
                display_name,
                email,
                role.value,
                password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise AccountError(
                f"er is al een gebruiker '{name}' (hoofd- en kleine letters tellen niet als verschil)"
            ) from None
        assert row is not None  # INSERT ... RETURNING returns the row it inserted
        log.info("web user %s added with role %s, %s", name, role, "with a password" if password else "proxy only")
        return _user(row)

    async def set_password(self, name: str, password: str) -> None:
        """Give `name` a new password and end its sessions: a password is changed because the old one may be
        known to someone else, who may be signed in with it."""
        problem = valid_password(password)
        if problem:
            raise AccountError(problem)
        password_hash = await self._hash(password)
        async with transaction(self._pool) as connection:
            await self._update(connection, name, "password_hash = $2", password_hash)
            await connection.execute("DELETE FROM web_sessions WHERE user_name = $1", name)
        log.info("web user %s has a new password; their sessions were ended", name)

    async def set_role(self, name: str, role: Role) -> None:
        """Takes effect at the user's next request: a session reads the role of its user each time."""
        await self._update(self._pool, name, "role = $2", role.value)
        log.info("web user %s now has role %s", name, role)

    async def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or enable again) a user; disabling ends the user's sessions at once."""
        async with transaction(self._pool) as connection:
            await self._update(connection, name, "disabled = $2", disabled)
            if disabled:
                await connection.execute("DELETE FROM web_sessions WHERE user_name = $1", name)
        log.info("web user %s %s", name, "disabled, sessions ended" if disabled else "enabled")

    async def user(self, name: str) -> WebUser | None:
        row = await self._pool.fetchrow(f"SELECT {_USER_COLUMNS} FROM web_users u WHERE u.user_name = $1", name)
        return _user(row) if row else None

    async def users(self) -> list[WebUser]:
        return [
            _user(row)
            for row in await self._pool.fetch(f"SELECT {_USER_COLUMNS} FROM web_users u ORDER BY u.user_name")
        ]

    async def verify_password(self, name: str, password: str) -> WebUser | None:
        """The user when `password` is theirs and they may sign in (not disabled), else None. An unknown name,
        a proxy-only user and a disabled one cost the same argon2 verification as a real one, so the time
        taken tells nobody which names exist."""
        row = await self._pool.fetchrow(
            f"SELECT {_USER_COLUMNS}, u.password_hash FROM web_users u WHERE u.user_name = $1", name
        )
        stored = row["password_hash"] if row else None
        verified = await self._verify(stored or _dummy_hash(), password)
        if not verified or row is None or stored is None or row["disabled"]:
            return None
        if self._hasher.check_needs_rehash(stored):
            # Hashed with older (cheaper) parameters: now that we know the password, store it the current way.
            rehashed = await self._hash(password)
            await self._pool.execute(
                "UPDATE web_users SET password_hash = $2 WHERE user_name = $1 AND password_hash = $3",
                name,
                rehashed,
                stored,
            )
            log.info("web user %s: password hash renewed with the current argon2 parameters", name)
        return _user(row)

    # --- failed sign-ins --------------------------------------------------------------------------------

    async def record_failure(self, name: str, address: str, at: datetime) -> None:
        await self._pool.execute(
            "INSERT INTO web_sign_in_failures (user_name, address, failed_at) VALUES ($1, $2, $3)", name, address, at
        )

    async def failures(self, name: str, address: str, since: datetime) -> tuple[list[datetime], list[datetime]]:
        """The failed sign-ins since `since` (oldest first) of user name `name` and from `address`, for
        SignInThrottle.locked_until; read them since SignInThrottle.since(now)."""
        by_name = await self._pool.fetch(
            "SELECT failed_at FROM web_sign_in_failures WHERE user_name = $1 AND failed_at >= $2 ORDER BY 1",
            name,
            since,
        )
        by_address = await self._pool.fetch(
            "SELECT failed_at FROM web_sign_in_failures WHERE address = $1 AND failed_at >= $2 ORDER BY 1",
            address,
            since,
        )
        return [row["failed_at"] for row in by_name], [row["failed_at"] for row in by_address]

    async def clear_failures(self, name: str) -> None:
        """After a successful sign-in: the name's failures no longer count, for the name nor for the addresses
        they came from (failures of other names from those addresses still do)."""
        await self._pool.execute("DELETE FROM web_sign_in_failures WHERE user_name = $1", name)

    # --- sessions ---------------------------------------------------------------------------------------

    async def create_session(self, user_name: str, lifetime: timedelta, now: datetime) -> tuple[str, str]:
        """A new session for an enabled user: (the token for the cookie, the CSRF token for its forms)."""
        token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        created = await self._pool.fetchval(
            """INSERT INTO web_sessions (token_hash, user_name, csrf_token, created_at, expires_at, last_seen_at)
               SELECT $1, user_name, $3, $4, $5, $4 FROM web_users WHERE user_name = $2 AND NOT disabled
               RETURNING true""",
            _token_hash(token),
            user_name,
            csrf_token,
            now,
            now + lifetime,
        )
        if not created:
            raise AccountError(f"gebruiker '{user_name}' bestaat niet of is uitgeschakeld")
        return token, csrf_token

    async def session(self, token: str, now: datetime) -> WebSession | None:
        """The session of a cookie's token; None when unknown, expired, or its user is disabled."""
        row = await self._pool.fetchrow(
            f"""SELECT {_USER_COLUMNS}, s.csrf_token, s.expires_at, s.last_seen_at
                FROM web_sessions s JOIN web_users u USING (user_name)
                WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT u.disabled""",
            _token_hash(token),
            now,
        )
        if row is None:
            return None
        if now - row["last_seen_at"] >= LAST_SEEN_RESOLUTION:
            await self._pool.execute(
                "UPDATE web_sessions SET last_seen_at = $2 WHERE token_hash = $1", _token_hash(token), now
            )
        return WebSession(user=_user(row), csrf_token=row["csrf_token"], expires_at=row["expires_at"])

    async def end_session(self, token: str) -> None:
        await self._pool.execute("DELETE FROM web_sessions WHERE token_hash = $1", _token_hash(token))

    async def end_sessions_of(self, user_name: str) -> int:
        """End every session of `user_name`; the number ended."""
        status = await self._pool.execute("DELETE FROM web_sessions WHERE user_name = $1", user_name)
        return _row_count(status)

    async def purge_expired(self, now: datetime) -> tuple[int, int]:
        """Delete expired sessions and failed sign-ins older than FAILURE_RETENTION: (sessions, failures)."""
        async with transaction(self._pool) as connection:
            sessions = await connection.execute("DELETE FROM web_sessions WHERE expires_at <= $1", now)
            failures = await connection.execute(
                "DELETE FROM web_sign_in_failures WHERE failed_at < $1", now - FAILURE_RETENTION
            )
        return _row_count(sessions), _row_count(failures)

    # --- helpers ----------------------------------------------------------------------------------------

    async def _update(self, executor: Pool | Connection, name: str, assignment: str, value: object) -> None:
        """Set one column of user `name` (`assignment` is a constant of this module, never user input)."""
        status = await executor.execute(
            f"UPDATE web_users SET {assignment}, updated_at = now() WHERE user_name = $1", name, value
        )
        if _row_count(status) == 0:
            raise UnknownUser(name)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except VerificationError:  # also VerifyMismatchError: the wrong password
            return False
        except InvalidHashError:
            log.warning("a stored web password hash is not an argon2 hash; that user cannot sign in")
            return False


@cache
def _dummy_hash() -> str:
    """What an unknown or proxy-only user is verified against, made once per process with the same parameters
    as a real hash so that it costs as much."""
    return PasswordHasher().hash(secrets.token_urlsafe(32))


def _token_hash(token: str) -> bytes:
    # A cookie may carry anything; what does not encode cannot be one of our (ASCII) tokens anyway.
    return hashlib.sha256(token.encode("utf-8", errors="replace")).digest()


def _user(row: asyncpg.Record) -> WebUser:
    return WebUser(
        user_name=row["user_name"],
        display_name=row["display_name"],
        email=row["email"],
        role=Role(row["role"]),
        has_password=row["has_password"],
        disabled=row["disabled"],
    )


def _row_count(status: str) -> int:
    """The count at the end of asyncpg's command status ('DELETE 3', 'UPDATE 1')."""
    return int(status.rpartition(" ")[2])


@asynccontextmanager
async def account_store(settings: Settings) -> AsyncIterator[AccountStore]:
    """An AccountStore on a pool of its own, for a short command; StoreUnavailable when the database cannot
    be reached or is not migrated yet (as hr_queries.read_only_connection)."""
    try:
        pool = await create_pool(settings)
    except CONNECT_ERRORS as error:
        raise StoreUnavailable(f"cannot connect to the database: {error}") from error
    try:
        yield AccountStore(pool)
    except asyncpg.UndefinedTableError as error:
        raise StoreUnavailable(f"the database is not migrated ({error}): run 'nmbrs-sync migrate'") from error
    finally:
        await pool.close()
