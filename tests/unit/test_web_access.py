"""Who may do what in the HR web app: roles, the sign-in throttle, trusted proxies, user names, passwords."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.domain.web_access import (
    Permission,
    Role,
    SignInThrottle,
    may,
    proxy_address_trusted,
    trusted_networks,
    valid_password,
    valid_user_name,
)

# --- roles ------------------------------------------------------------------------------------------------

ALLOWED = {
    Role.LEZER: {Permission.READ},
    Role.HR: {Permission.READ, Permission.DECIDE, Permission.SYNC_EMPLOYEE},  # one employee: no mass change
    Role.BEHEER: set(Permission),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_may_exactly_what_it_is_for(role: Role, permission: Permission) -> None:
    assert may(role, permission) is (permission in ALLOWED[role])


@pytest.mark.parametrize("permission", list(Permission))
def test_without_a_role_nothing_is_allowed(permission: Permission) -> None:
    assert may(None, permission) is False


def test_roles_are_the_dutch_words_stored_in_the_database() -> None:
    assert [role.value for role in Role] == ["lezer", "hr", "beheer"]


# --- the sign-in throttle ---------------------------------------------------------------------------------

T0 = datetime(2026, 11, 28, 9, tzinfo=UTC)
THROTTLE = SignInThrottle()


def minutes(*offsets: float) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets]


def test_the_defaults_are_five_per_name_twenty_per_address_fifteen_minutes() -> None:
    assert (THROTTLE.max_per_name, THROTTLE.max_per_address) == (5, 20)
    assert THROTTLE.window == THROTTLE.lock == timedelta(minutes=15)


def test_four_failures_do_not_lock_the_fifth_does_until_fifteen_minutes_after_it() -> None:
    assert THROTTLE.locked_until(minutes(0, 1, 2, 3), [], T0 + timedelta(minutes=4)) is None
    assert THROTTLE.locked_until(minutes(0, 1, 2, 3, 4), [], T0 + timedelta(minutes=4)) == T0 + timedelta(minutes=19)


def test_the_lock_ends_exactly_lock_after_the_last_failure() -> None:
    failures = minutes(0, 1, 2, 3, 4)
    assert THROTTLE.locked_until(failures, [], T0 + timedelta(minutes=19) - timedelta(microseconds=1)) is not None
    assert THROTTLE.locked_until(failures, [], T0 + timedelta(minutes=19)) is None


def test_a_lock_lasts_its_full_time_after_its_first_failures_left_the_window() -> None:
    # At 16 minutes the failure at 0 is older than the window, but the lock the fifth one caused still holds.
    assert THROTTLE.locked_until(minutes(0, 1, 2, 3, 4), [], T0 + timedelta(minutes=16)) == T0 + timedelta(minutes=19)


def test_failures_spread_wider_than_the_window_never_lock() -> None:
    spread = minutes(0, 4, 8, 12, 16, 20, 24)  # never five within fifteen minutes
    assert THROTTLE.locked_until(spread, [], T0 + timedelta(minutes=24)) is None


def test_the_window_is_half_open_a_failure_exactly_one_window_earlier_is_outside() -> None:
    assert THROTTLE.locked_until(minutes(0, 5, 10, 12, 15), [], T0 + timedelta(minutes=15)) is None
    inside = minutes(0.001, 5, 10, 12, 15)
    assert THROTTLE.locked_until(inside, [], T0 + timedelta(minutes=15)) == T0 + timedelta(minutes=30)


def test_a_failure_recorded_while_locked_extends_the_lock_and_never_ends_it() -> None:
    assert THROTTLE.locked_until(minutes(0, 1, 2, 3, 4, 10), [], T0 + timedelta(minutes=20)) == T0 + timedelta(
        minutes=25
    )
    # The failure at 18 is not the fifth within its own window, yet the lock from 4 still runs until 19.
    assert THROTTLE.locked_until(minutes(0, 1, 2, 3, 4, 18), [], T0 + timedelta(minutes=18)) == T0 + timedelta(
        minutes=19
    )


def test_the_order_of_the_failures_does_not_matter() -> None:
    assert THROTTLE.locked_until(minutes(4, 0, 3, 1, 2), [], T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=19)


def test_an_address_locks_after_twenty_failures_whatever_the_names() -> None:
    nineteen = minutes(*range(19))
    assert THROTTLE.locked_until([], nineteen, T0 + timedelta(minutes=18)) is None
    twenty = minutes(*(m / 2 for m in range(20)))
    assert THROTTLE.locked_until([], twenty, T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=9.5 + 15)


def test_five_failures_of_one_address_do_not_lock_the_address() -> None:
    assert THROTTLE.locked_until([], minutes(0, 1, 2, 3, 4), T0 + timedelta(minutes=5)) is None


def test_the_later_of_the_name_and_the_address_lock_wins() -> None:
    by_name = minutes(0, 1, 2, 3, 4)
    by_address = minutes(*(m / 4 for m in range(20, 40)))  # the twentieth at 9.75
    assert THROTTLE.locked_until(by_name, by_address, T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=24.75)
    assert THROTTLE.locked_until(by_name, [], T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=19)


def test_since_reaches_back_far_enough_for_every_lock_that_may_still_hold() -> None:
    now = T0 + timedelta(minutes=18)  # locked until 19 by failures at 0..4
    failures = minutes(0, 1, 2, 3, 4)
    kept = [f for f in failures if f >= THROTTLE.since(now)]
    assert (
        THROTTLE.locked_until(kept, [], now) == THROTTLE.locked_until(failures, [], now) == T0 + timedelta(minutes=19)
    )


def test_the_throttle_can_be_configured() -> None:
    strict = SignInThrottle(max_per_name=2, window=timedelta(minutes=1), lock=timedelta(hours=1))
    assert strict.locked_until(minutes(0, 0.5), [], T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=60.5)
    with pytest.raises(ValueError):
        SignInThrottle(max_per_name=0)


# --- trusted proxies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "trusted", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1", "::1"], True),
        ("::1", ["127.0.0.1", "::1"], True),
        ("127.0.0.2", ["127.0.0.1", "::1"], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("11.0.0.1", ["10.0.0.0/8"], False),
        ("192.168.1.255", ["192.168.1.0/24"], True),
        ("192.168.2.0", ["192.168.1.0/24"], False),
        ("10.1.2.3", ["10.1.2.3/8"], True),  # host bits set: read as the network
        ("2001:db8::5", ["2001:db8::/32"], True),
        ("2001:db9::5", ["2001:db8::/32"], False),
        ("fe80::1%eth0", ["fe80::/10"], True),
        ("::ffff:127.0.0.1", ["127.0.0.1"], True),  # an IPv4 peer on a dual-stack socket
        ("::ffff:10.0.0.9", ["127.0.0.1"], False),
        ("127.0.0.1", [], False),
        ("", ["127.0.0.1"], False),
        ("not-an-address", ["127.0.0.1"], False),
        ("127.0.0.1:8080", ["127.0.0.1"], False),
    ],
)
def test_only_configured_proxy_addresses_are_trusted(address: str, trusted: list[str], expected: bool) -> None:
    assert proxy_address_trusted(address, trusted) is expected


def test_a_bad_trusted_proxy_entry_is_a_configuration_error_that_names_it() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example'"):
        proxy_address_trusted("127.0.0.1", ["127.0.0.1", "proxy.example"])
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        trusted_networks(["10.0.0.0/33"])
    assert [str(n) for n in trusted_networks([" 10.0.0.0/8 ", "::1"])] == ["10.0.0.0/8", "::1/128"]


# --- user names and passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jan", "J.de-Vries_2", "jan@example.nl", "jan+hr@example.nl", "a", "x" * 64, "0123"])
def test_valid_user_names(name: str) -> None:
    assert valid_user_name(name) is None


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("", "leeg"),
        ("x" * 65, "64"),
        ("jan de vries", "letters"),
        ("jan/../x", "letters"),
        ("josé", "letters"),  # look-alike letters of other scripts would make names that read the same
        ("јan", "letters"),  # Cyrillic j
        ("jan\n", "letters"),
        ("jan'--", "letters"),
    ],
)
def test_invalid_user_names_are_refused_in_dutch(name: str, complaint: str) -> None:
    problem = valid_user_name(name)
    assert problem is not None and complaint in problem


def test_a_password_needs_twelve_characters_and_the_complaint_does_not_repeat_it() -> None:
    assert valid_password("elf-tekens!") is not None and "elf-tekens!" not in (valid_password("elf-tekens!") or "")
    assert "12" in (valid_password("kort") or "")
    assert valid_password("twaalf-teken") is None
    assert valid_password("x" * 1024) is None
    assert valid_password("x" * 1025) is not None
