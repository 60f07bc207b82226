"""Who may do what in the HR web app: roles and permissions, the sign-in throttle, trusted auth proxies and
valid user names and passwords. Pure rules; the accounts themselves are in worker/adapters/web_accounts.py."""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    LEZER = "lezer"  # reads everything, changes nothing
    HR = "hr"  # also decides (Koppelen, Aanmaken, ...) and completes follow-ups
    BEHEER = "beheer"  # also syncs now, releases a held poll, decides in bulk and manages users


class Permission(StrEnum):
    READ = "read"
    DECIDE = "decide"
    SYNC_NOW = "sync_now"
    SYNC_EMPLOYEE = "sync_employee"  # re-read one employee: no mass change can come of it, so HR may
    RELEASE_HOLD = "release_hold"
    BULK = "bulk"
    MANAGE_USERS = "manage_users"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.LEZER: frozenset({Permission.READ}),
    Role.HR: frozenset({Permission.READ, Permission.DECIDE, Permission.SYNC_EMPLOYEE}),
    Role.BEHEER: frozenset(Permission),
}


def may(role: Role | None, permission: Permission) -> bool:
    """Whether a user of `role` may do `permission`; nobody without a role may do anything."""
    return role is not None and permission in PERMISSIONS[role]


# --- the sign-in throttle ----------------------------------------------------------------------------------


class SignInThrottle(BaseModel):
    """Failed sign-ins lock further attempts: `max_per_name` failures for one user name, or `max_per_address`
    from one client address (someone trying many names), within `window` lock for `lock` from the last failure.
    The address limit is higher because colleagues behind one NAT share an address."""

    model_config = ConfigDict(frozen=True)

    max_per_name: int = Field(5, ge=1)
    max_per_address: int = Field(20, ge=1)
    window: timedelta = Field(timedelta(minutes=15), gt=timedelta(0))
    lock: timedelta = Field(timedelta(minutes=15), gt=timedelta(0))

    def since(self, now: datetime) -> datetime:
        """The oldest failure that can still lock at `now`: what to read from the store."""
        return now - self.window - self.lock

    def locked_until(
        self, by_name: Sequence[datetime], by_address: Sequence[datetime], now: datetime
    ) -> datetime | None:
        """Until when sign-in is locked at `now`, given the failures of the user name and of the client
        address (AccountStore.failures); None when it is not locked."""
        ends = [
            end
            for end in (_lock_end(by_name, self.max_per_name, self), _lock_end(by_address, self.max_per_address, self))
            if end is not None and end > now
        ]
        return max(ends, default=None)


def _lock_end(failures: Sequence[datetime], limit: int, throttle: SignInThrottle) -> datetime | None:
    """When the latest lock these failures caused ends: every failure that is the `limit`-th within the window
    (counting back from itself) locks until `lock` after it. Judged per failure, not by counting back from now,
    so that a lock lasts its full time although its first failures leave the window meanwhile, and so that a
    failure recorded while locked does not end the lock early."""
    ordered = sorted(failures)
    end = None
    for index, failed_at in enumerate(ordered):
        # The window is half-open, (failed_at - window, failed_at]: a failure exactly one window earlier is out.
        first_in_window = bisect_right(ordered, failed_at - throttle.window, hi=index)
        if index - first_in_window + 1 >= limit:
            end = failed_at + throttle.lock
    return end


# --- trusted auth proxies ----------------------------------------------------------------------------------


def trusted_networks(trusted: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of HR_WEB_TRUSTED_PROXIES (single addresses or CIDR networks, IPv4 or IPv6); ValueError
    naming the entry that is neither. The app calls it at start: a typo found at the first request would lock
    everybody out."""
    networks = []
    for entry in trusted:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"'{entry}' is neither an IP address nor a CIDR network") from None
    return networks


def proxy_address_trusted(address: str, trusted: Sequence[str]) -> bool:
    """Whether a request's peer `address` is one of the `trusted` proxies (see trusted_networks); only then is
    the proxy's user header believed. An unparseable address is not trusted."""
    networks = trusted_networks(trusted)
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d; the configuration names it as a.b.c.d.
    candidates = [peer, peer.ipv4_mapped] if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped else [peer]
    return any(candidate in network for candidate in candidates for network in networks)


# --- user names and passwords ------------------------------------------------------------------------------

MAX_USER_NAME_LENGTH = 64
MIN_PASSWORD_LENGTH = 12
# argon2 takes any length, but a megabyte "password" only costs us hashing time.
MAX_PASSWORD_LENGTH = 1024
# ASCII only: look-alike letters from other scripts would make two accounts that read the same. '+' and '@'
# because an auth proxy often passes an e-mail address (jan+hr@example.nl) as the user name.
_USER_NAME = re.compile(r"[A-Za-z0-9.\-_@+]+")


def valid_user_name(name: str) -> str | None:
    """What is wrong with `name` as a user name, in Dutch; None when it is fine."""
    if not name:
        return "de gebruikersnaam is leeg"
    if len(name) > MAX_USER_NAME_LENGTH:
        return f"de gebruikersnaam is langer dan {MAX_USER_NAME_LENGTH} tekens"
    if not _USER_NAME.fullmatch(name):
        return "een gebruikersnaam bestaat alleen uit letters (a-z, A-Z), cijfers en . - _ @ +"
    return None


def valid_password(password: str) -> str | None:
    """What is wrong with `password`, in Dutch, without repeating it; None when it is fine."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"het wachtwoord moet minstens {MIN_PASSWORD_LENGTH} tekens hebben"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"het wachtwoord mag hoogstens {MAX_PASSWORD_LENGTH} tekens hebben"
    return None
