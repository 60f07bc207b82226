"""Property tests (hypothesis) for the leave entitlement and balance in worker.domain.leave."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.domain.leave import (
    CaoLeave,
    EarlierCao,
    EmploymentPeriod,
    HoursPeriod,
    LeaveInput,
    LeaveTaken,
    entitlement_for_year,
    leave_balance,
)

PROPERTY = settings(max_examples=200, deadline=None)
CENT = Decimal("0.01")

years = st.integers(min_value=1999, max_value=2040)
hours_per_week = st.decimals(min_value=0, max_value=60, places=2)
caos = st.builds(
    CaoLeave,
    extra_hours_fulltime=st.decimals(min_value=0, max_value=200, places=2),
    fulltime_hours_per_week=st.decimals(min_value=1, max_value=48, places=2),
)


def day_of(year: int, index: int) -> date:
    """The `index`-th day of `year`, clamped to the year."""
    return date(year, 1, 1) + timedelta(days=min(index, 365 if calendar.isleap(year) else 364))


def constant(start: date, end: date | None, hours: Decimal) -> tuple[tuple[EmploymentPeriod], tuple[HoursPeriod]]:
    return (EmploymentPeriod(start=start, end=end),), (HoursPeriod(start=start, end=end, hours_per_week=hours),)


@PROPERTY
@given(year=years, hours=hours_per_week, cao=caos)
def test_full_year_at_constant_hours_earns_exactly_four_times_the_hours(
    year: int, hours: Decimal, cao: CaoLeave
) -> None:
    employments, periods = constant(date(year - 1, 6, 1), None, hours)
    ent = entitlement_for_year(year, employments, periods, cao)
    assert ent.statutory == (4 * hours).quantize(CENT)
    with localcontext() as ctx:
        ctx.prec = 50
        expected_extra = (cao.extra_hours_fulltime * hours / cao.fulltime_hours_per_week).quantize(
            CENT, rounding=ROUND_HALF_UP
        )
    assert ent.extra == expected_extra


@PROPERTY
@given(
    year=years,
    hours=hours_per_week,
    cao=caos,
    a=st.integers(0, 365),
    b=st.integers(0, 365),
    m=st.integers(0, 365),
)
def test_entitlement_is_additive_over_split_periods_up_to_rounding(
    year: int, hours: Decimal, cao: CaoLeave, a: int, b: int, m: int
) -> None:
    start, end = sorted((day_of(year, a), day_of(year, b)))
    split = min(max(day_of(year, m), start), end)
    whole = entitlement_for_year(year, *constant(start, end, hours), cao)
    first = entitlement_for_year(year, *constant(start, split, hours), cao)
    if split < end:
        second = entitlement_for_year(year, *constant(split + timedelta(days=1), end, hours), cao)
        statutory, extra = first.statutory + second.statutory, first.extra + second.extra
    else:
        statutory, extra = first.statutory, first.extra
    # each of the three figures is rounded once (error <= 0.005), so the sum differs by at most a cent
    assert abs(statutory - whole.statutory) <= CENT
    assert abs(extra - whole.extra) <= CENT
    # splitting only the schedule (same hours, two periods) changes nothing at all
    two_schedules = (
        HoursPeriod(start=start, end=split, hours_per_week=hours),
        HoursPeriod(start=split + timedelta(days=1), end=None, hours_per_week=hours),
    )
    same = entitlement_for_year(year, (EmploymentPeriod(start=start, end=end),), two_schedules, cao)
    assert (same.statutory, same.extra) == (whole.statutory, whole.extra)
    # nor does a change to the same CAO
    unchanged = entitlement_for_year(year, *constant(start, end, hours), cao, (EarlierCao(until=split, cao=cao),))
    assert (unchanged.statutory, unchanged.extra) == (whole.statutory, whole.extra)
    # and a change of CAO on the split day earns the first one's extra leave before it, the second's after it
    nothing = CaoLeave(name="none", extra_hours_fulltime=Decimal(0))
    changed = entitlement_for_year(year, *constant(start, end, hours), nothing, (EarlierCao(until=split, cao=cao),))
    assert abs(changed.extra - first.extra) <= CENT and changed.statutory == whole.statutory


@PROPERTY
@given(year=years, low=hours_per_week, high=hours_per_week, cao=caos, a=st.integers(0, 365))
def test_entitlement_is_monotonic_in_hours(year: int, low: Decimal, high: Decimal, cao: CaoLeave, a: int) -> None:
    low, high = sorted((low, high))
    start = day_of(year, a)
    smaller = entitlement_for_year(year, *constant(start, None, low), cao)
    larger = entitlement_for_year(year, *constant(start, None, high), cao)
    assert smaller.statutory <= larger.statutory
    assert smaller.extra <= larger.extra


@PROPERTY
@given(
    year=years,
    hours=hours_per_week,
    cao=caos,
    a=st.integers(0, 365),
    b=st.integers(0, 365),
    c=st.integers(0, 365),
)
def test_entitlement_is_monotonic_in_days(year: int, hours: Decimal, cao: CaoLeave, a: int, b: int, c: int) -> None:
    start, shorter_end, longer_end = sorted((day_of(year, a), day_of(year, b), day_of(year, c)))
    periods = (HoursPeriod(start=start, hours_per_week=hours),)
    shorter = entitlement_for_year(year, (EmploymentPeriod(start=start, end=shorter_end),), periods, cao)
    longer = entitlement_for_year(year, (EmploymentPeriod(start=start, end=longer_end),), periods, cao)
    assert shorter.employed_days <= longer.employed_days
    assert shorter.statutory <= longer.statutory
    assert shorter.extra <= longer.extra


periods_in_year = st.lists(
    st.tuples(st.integers(-400, 400), st.one_of(st.none(), st.integers(0, 400)), hours_per_week),
    max_size=5,
)


def build_periods(
    year: int, raw_employments: list[tuple[int, int | None]], raw_hours: list[tuple[int, int | None, Decimal]]
) -> tuple[tuple[EmploymentPeriod, ...], tuple[HoursPeriod, ...]]:
    origin = date(year, 1, 1)
    employments = tuple(
        EmploymentPeriod(start=origin + timedelta(s), end=None if n is None else origin + timedelta(s + n))
        for s, n in raw_employments
    )
    by_start: dict[date, HoursPeriod] = {}
    for s, n, h in raw_hours:
        start = origin + timedelta(s)
        end = None if n is None else start + timedelta(n)
        by_start[start] = HoursPeriod(start=start, end=end, hours_per_week=h)
    return employments, tuple(by_start.values())


def per_day_reference(
    year: int, employments: tuple[EmploymentPeriod, ...], periods: tuple[HoursPeriod, ...]
) -> tuple[int, Decimal]:
    """The spec read literally: walk every day of the year. Returns (employed days, sum of hours)."""
    days, hour_days = 0, Decimal(0)
    day = date(year, 1, 1)
    while day.year == year:
        if any(e.start <= day and (e.end is None or day <= e.end) for e in employments):
            days += 1
            covering = [p for p in periods if p.start <= day and (p.end is None or day <= p.end)]
            if covering:
                hour_days += max(covering, key=lambda p: p.start).hours_per_week
        day += timedelta(days=1)
    return days, hour_days


@PROPERTY
@given(
    year=years,
    cao=caos,
    raw_employments=st.lists(st.tuples(st.integers(-400, 400), st.one_of(st.none(), st.integers(0, 400))), max_size=3),
    raw_hours=periods_in_year,
)
def test_entitlement_is_never_negative_and_matches_a_per_day_sum(
    year: int,
    cao: CaoLeave,
    raw_employments: list[tuple[int, int | None]],
    raw_hours: list[tuple[int, int | None, Decimal]],
) -> None:
    employments, periods = build_periods(year, raw_employments, raw_hours)
    ent = entitlement_for_year(year, employments, periods, cao)
    assert ent.statutory >= 0
    assert ent.extra >= 0
    assert all(s.statutory_earned >= 0 and s.extra_earned >= 0 and s.days > 0 for s in ent.segments)
    days, hour_days = per_day_reference(year, employments, periods)
    n = 366 if calendar.isleap(year) else 365
    assert ent.employed_days == days == sum(s.days for s in ent.segments)
    with localcontext() as ctx:
        ctx.prec = 50
        assert ent.statutory == (4 * hour_days / n).quantize(CENT, rounding=ROUND_HALF_UP)


@PROPERTY
@given(
    hours=hours_per_week,
    cao=caos,
    start=st.dates(date(2018, 1, 1), date(2024, 12, 31)),
    as_of=st.dates(date(2018, 1, 1), date(2031, 12, 31)),
    taken=st.lists(
        st.builds(
            LeaveTaken,
            taken_on=st.dates(date(2017, 1, 1), date(2031, 12, 31)),
            hours=st.decimals(min_value=0, max_value=120, places=2),
        ),
        max_size=8,
    ),
)
def test_balance_equals_entitlements_minus_taken_minus_expired(
    hours: Decimal, cao: CaoLeave, start: date, as_of: date, taken: list[LeaveTaken]
) -> None:
    data = LeaveInput(
        as_of=as_of,
        employments=(EmploymentPeriod(start=start),),
        hours_periods=(HoursPeriod(start=start, hours_per_week=hours),),
        cao=cao,
        leave_taken=tuple(taken),
    )
    result = leave_balance(data)
    entitled = sum((r.entitlement.statutory + r.entitlement.extra for r in result.years), Decimal(0))
    expired = sum((r.statutory_expired_hours + r.extra_expired_hours for r in result.years), Decimal(0))
    taken_until = sum((t.hours for t in taken if t.taken_on <= as_of), Decimal(0))
    assert result.balance.total == entitled - taken_until - expired
    for alloc in result.allocations:
        assert alloc.unallocated >= 0
        assert sum((p.hours for p in alloc.parts), alloc.unallocated) == alloc.hours
        assert all(p.year <= alloc.taken_on.year and p.hours > 0 for p in alloc.parts)
    for r in result.years:
        assert r.statutory_remaining >= 0 and r.extra_remaining >= 0
