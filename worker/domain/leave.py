"""Leave (verlof) and overtime: pure entitlement, expiry, FIFO deduction and balance calculation.

Rules (docs/domain.md, "Leave"; issue "Leave and hours"):

* Entitlement per calendar year, computed per employed day and summed::

      statutory = sum_d 4 x hours_per_week(d) / days_in_year
      extra     = sum_d cao_extra_hours_fulltime(d) x hours_per_week(d) / cao_fulltime_hours_per_week(d)
                  / days_in_year

  where the CAO of day d is the one that applied that day (`earlier_caos`, else the current one).

  Each component is rounded once, at the end, to 2 decimals (half up); 366 days in a leap year.
  Consecutive days with the same hours are summed exactly first (sum of hours x days), so the year
  total is one exact division followed by one rounding.
* Statutory leave of year Y expires on 1 July Y+1; extra-statutory leave on 1 January Y+6.
* Leave taken is deducted first-in-first-out: oldest non-expired statutory, then oldest non-expired
  extra-statutory.
* Balance = non-expired remaining entitlement + adjustments - leave taken that found no entitlement.
  Overtime balance = overtime worked - overtime paid out. Negative balances are shown, never clipped.

Everything here is pure: no I/O, no clock (the as-of date is an input), Decimal arithmetic only.
"""

from __future__ import annotations

import calendar
import functools
import itertools
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A schedule cannot exceed the hours in a week; anything above is a typo in the input file.
HOURS_IN_A_WEEK = Decimal(168)
# Expiry of year Y's extra leave is 1 January Y+6, which must still be a valid `date`.
MAX_YEAR = 9990

STATUTORY_WEEKS = Decimal(4)
_CENT = Decimal("0.01")
_SHOWN = Decimal("0.0001")
# Exact numerators (hours x days) divided once; 50 digits make the single division's own rounding
# irrelevant to the final 2-decimal half-up rounding.
_PRECISION = 50
_CONTEXT = Context(prec=_PRECISION)  # its own: the caller's decimal context never changes a result
_OPEN = date.max.toordinal() + 1  # the end ordinal of an open period: after every real day

NonNegativeHours = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
SignedHours = Annotated[Decimal, Field(allow_inf_nan=False)]


class LeaveComponent(StrEnum):
    STATUTORY = "statutory"  # wettelijk
    EXTRA = "extra"  # bovenwettelijk


# In deduction order; iterating the enum class itself is slow, and this runs for every year of every employee.
_COMPONENTS = (LeaveComponent.STATUTORY, LeaveComponent.EXTRA)


# --------------------------------------------------------------------------------------------------
# Input models (the JSON input of `nmbrs-sync leave calc --input FILE`): frozen, unknown keys rejected
# because they come from a hand-written file and a typo must not be silently ignored.
# --------------------------------------------------------------------------------------------------


class LeaveInputModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EmploymentPeriod(LeaveInputModel):
    """A period of service (in dienst), as nmbrs_records.EmploymentPeriod. `end` is the last employed
    day (inclusive); None = still employed. Overlapping periods count each day once."""

    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _end_not_before_start(self) -> EmploymentPeriod:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"employment end {self.end} is before its start {self.start}")
        return self


class HoursPeriod(LeaveInputModel):
    """Contractual hours per week from `start` to `end` (inclusive; None = open).

    When periods overlap, the one that started latest wins from its start (a schedule is valid until
    the next one begins). If that later period ends while an earlier, longer one is still open, the
    earlier one applies again (e.g. a temporary reduction of hours)."""

    start: date
    end: date | None = None
    hours_per_week: Annotated[Decimal, Field(ge=0, le=HOURS_IN_A_WEEK, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _end_not_before_start(self) -> HoursPeriod:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"hours period end {self.end} is before its start {self.start}")
        return self


class CaoLeave(LeaveInputModel):
    """Extra-statutory leave of a CAO: hours per year at full time, and what full time is."""

    name: str | None = None
    extra_hours_fulltime: NonNegativeHours = Decimal(0)
    fulltime_hours_per_week: Annotated[Decimal, Field(gt=0, le=HOURS_IN_A_WEEK, allow_inf_nan=False)] = Decimal(40)


class EarlierCao(LeaveInputModel):
    """A labour agreement that applied before the current one (`LeaveInput.cao`), up to and including
    `until`: a CAO change earns the new CAO's extra leave from its day on and leaves earlier days alone."""

    until: date
    cao: CaoLeave


class LeaveAdjustment(LeaveInputModel):
    """A manual leave adjustment (aanpassing verlof); negative hours subtract."""

    booked_on: date
    hours: SignedHours
    reason: str | None = None


class LeaveTaken(LeaveInputModel):
    taken_on: date
    hours: NonNegativeHours


class OvertimeEntry(LeaveInputModel):
    on: date
    hours: NonNegativeHours


class OvertimePayout(LeaveInputModel):
    """Overtime hours paid out (uitbetaling overuren)."""

    on: date
    hours: NonNegativeHours


class LeaveInput(LeaveInputModel):
    """Everything needed to calculate one employee's leave and overtime on `as_of`.

    `years` only selects which years are reported in `LeaveResult.years` (e.g. a future year as a
    forecast); the balance always uses every year from the first employment up to `as_of`.
    """

    employee_id: int | None = None
    as_of: date
    employments: tuple[EmploymentPeriod, ...] = ()
    hours_periods: tuple[HoursPeriod, ...] = ()
    cao: CaoLeave = CaoLeave()
    earlier_caos: tuple[EarlierCao, ...] = ()
    adjustments: tuple[LeaveAdjustment, ...] = ()
    leave_taken: tuple[LeaveTaken, ...] = ()
    overtime_worked: tuple[OvertimeEntry, ...] = ()
    overtime_paid_out: tuple[OvertimePayout, ...] = ()
    years: tuple[Annotated[int, Field(ge=1, le=MAX_YEAR)], ...] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LeaveInput:
        if self.as_of.year > MAX_YEAR:
            raise ValueError(f"as_of year must be at most {MAX_YEAR}")
        starts = [p.start for p in self.hours_periods]
        duplicates = sorted({s for s in starts if starts.count(s) > 1})
        if duplicates:
            # Two schedules starting the same day: which one applies is undecidable, so refuse.
            raise ValueError(f"several hours periods start on {', '.join(map(str, duplicates))}")
        untils = [c.until for c in self.earlier_caos]
        if len(set(untils)) != len(untils):
            raise ValueError("several earlier labour agreements end on the same day")
        return self


# --------------------------------------------------------------------------------------------------
# Output models: frozen, JSON-serialisable with model_dump_json() (Decimals become strings).
# --------------------------------------------------------------------------------------------------


class LeaveOutputModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EntitlementSegment(LeaveOutputModel):
    """Consecutive employed days of one year under one hours period. `end` is inclusive.
    Earned hours are shown to 4 decimals; the year total is computed from the exact sum."""

    start: date
    end: date
    days: int
    hours_per_week: Decimal
    statutory_earned: Decimal
    extra_earned: Decimal
    note: str | None = None


class YearEntitlement(LeaveOutputModel):
    year: int
    days_in_year: int
    employed_days: int
    statutory: Decimal
    extra: Decimal
    statutory_expires_on: date
    extra_expires_on: date
    segments: tuple[EntitlementSegment, ...]


class AllocationPart(LeaveOutputModel):
    year: int
    component: LeaveComponent
    hours: Decimal


class TakenAllocation(LeaveOutputModel):
    """Where one booking of leave taken was deducted from; `unallocated` found no entitlement."""

    taken_on: date
    hours: Decimal
    parts: tuple[AllocationPart, ...]
    unallocated: Decimal


class YearReport(LeaveOutputModel):
    """One calendar year on `as_of`: entitlement, what was taken from it, what expired, adjustments."""

    year: int
    entitlement: YearEntitlement
    statutory_taken: Decimal
    extra_taken: Decimal
    statutory_remaining: Decimal
    extra_remaining: Decimal
    statutory_expired: bool
    extra_expired: bool
    statutory_expired_hours: Decimal = Field(description="Remaining statutory hours lost at expiry.")
    extra_expired_hours: Decimal = Field(description="Remaining extra-statutory hours lost at expiry.")
    adjustments: tuple[LeaveAdjustment, ...]
    adjustments_total: Decimal


class LeaveBalance(LeaveOutputModel):
    """total = statutory + extra + adjustments - unallocated_taken (may be negative)."""

    statutory: Decimal = Field(description="Non-expired statutory hours remaining.")
    extra: Decimal = Field(description="Non-expired extra-statutory hours remaining.")
    adjustments: Decimal = Field(description="Sum of adjustments booked up to as_of.")
    unallocated_taken: Decimal = Field(description="Leave taken that found no non-expired entitlement.")
    total: Decimal


class OvertimeBalance(LeaveOutputModel):
    worked: Decimal
    paid_out: Decimal
    balance: Decimal


class LeaveResult(LeaveOutputModel):
    employee_id: int | None
    as_of: date
    years: tuple[YearReport, ...]
    allocations: tuple[TakenAllocation, ...]
    balance: LeaveBalance
    overtime: OvertimeBalance
    explanation: tuple[str, ...]


# --------------------------------------------------------------------------------------------------
# Calculation
# --------------------------------------------------------------------------------------------------


def days_in_year(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def statutory_expires_on(year: int) -> date:
    """Statutory leave of `year` expires on 1 July of the next year (gone from that day on)."""
    return date(year + 1, 7, 1)


def extra_expires_on(year: int) -> date:
    """Extra-statutory leave of `year` expires after 5 years: on 1 January of year + 6."""
    return date(year + 6, 1, 1)


def _expires_on(year: int, component: LeaveComponent) -> date:
    return statutory_expires_on(year) if component is LeaveComponent.STATUTORY else extra_expires_on(year)


def _divide(numerator: Decimal, denominator: Decimal, quantum: Decimal) -> Decimal:
    return _CONTEXT.divide(numerator, denominator).quantize(quantum, rounding=ROUND_HALF_UP, context=_CONTEXT)


def hours_from(schedules: Sequence[HoursPeriod], contracts: Sequence[HoursPeriod]) -> tuple[HoursPeriod, ...]:
    """The hours periods of an employee: the schedule (rooster) is the finer source and applies from its first
    start on; the contracts' hours cover the days before it, or every day when there is no schedule."""
    if not schedules:
        return tuple(contracts)
    day_before = min(s.start for s in schedules) - timedelta(days=1)
    earlier = tuple(
        c.model_copy(update={"end": min(c.end or day_before, day_before)}) for c in contracts if c.start <= day_before
    )
    return (*earlier, *schedules)


def entitlement_for_year(
    year: int,
    employments: Sequence[EmploymentPeriod],
    hours_periods: Sequence[HoursPeriod],
    cao: CaoLeave | None = None,
    earlier_caos: Sequence[EarlierCao] = (),
) -> YearEntitlement:
    """Statutory and extra-statutory entitlement earned in calendar `year`, with one explanation
    segment per run of consecutive employed days under the same hours period.

    Employed days not covered by any hours period earn nothing (hours 0, with a note)."""
    return _entitlements([year], employments, hours_periods, cao or CaoLeave(), earlier_caos)[year][0]


# A CAO as a run carries it: (name, extra hours at full time, full-time hours), Decimals as text: 40 and 40.00
# are equal (one cache entry) but are shown differently.
CaoKey = tuple[str | None, str, str]
Run = tuple[int, int, str | None, CaoKey]  # first and last ordinal, hours per week (None: no period), CAO


def _cao_key(cao: CaoLeave) -> CaoKey:
    return cao.name, str(cao.extra_hours_fulltime), str(cao.fulltime_hours_per_week)


def _entitlements(
    years: Sequence[int],
    employments: Sequence[EmploymentPeriod],
    hours_periods: Sequence[HoursPeriod],
    cao: CaoLeave,
    earlier_caos: Sequence[EarlierCao] = (),
) -> dict[int, tuple[YearEntitlement, tuple[str, ...]]]:
    """Per year: its entitlement and the lines explaining it."""
    caos = [(c.until.toordinal(), _cao_key(c.cao)) for c in sorted(earlier_caos, key=lambda c: c.until)]
    runs = _employed_runs(years, employments, hours_periods, caos, _cao_key(cao))
    return {year: _entitlement(year, runs[year]) for year in years}


def _employed_runs(
    years: Iterable[int],
    employments: Sequence[EmploymentPeriod],
    hours_periods: Sequence[HoursPeriod],
    earlier_caos: Sequence[tuple[int, CaoKey]],
    current_cao: CaoKey,
) -> dict[int, tuple[Run, ...]]:
    """Per year: the runs of consecutive employed days of the year under the same hours period and CAO.
    `earlier_caos`: (last ordinal, CAO) by end; the current CAO applies after them."""
    wanted = sorted(set(years))
    found: dict[int, list[tuple[int, int, HoursPeriod | None, CaoKey]]] = {year: [] for year in wanted}
    if wanted:
        # The state (employed? which hours period? which year?) only changes at these days; walk the
        # intervals between them instead of every day, all years in one pass, on ordinals (cheap to
        # compare, and no date overflow at the end of the calendar).
        employed = [(p.start.toordinal(), p.end.toordinal() if p.end else _OPEN) for p in employments]
        # By start: the covering period that started last is the last one found (starts are unique).
        hours = sorted(
            ((p.start.toordinal(), p.end.toordinal() if p.end else _OPEN, p) for p in hours_periods), key=lambda h: h[0]
        )
        cuts = {date(year, 1, 1).toordinal() for year in wanted}
        cuts.update(date(year, 12, 31).toordinal() + 1 for year in wanted)
        for start, end in [*employed, *((s, e) for s, e, _ in hours)]:
            cuts.add(start)
            if end != _OPEN:
                cuts.add(end + 1)
        cuts.update(until + 1 for until, _ in earlier_caos)
        first, last = date(wanted[0], 1, 1).toordinal(), date(wanted[-1], 12, 31).toordinal() + 1
        bounds = sorted(c for c in cuts if first <= c <= last)
        for lo, hi in itertools.pairwise(bounds):
            runs = found.get(date.fromordinal(lo).year)
            if runs is None or not any(start <= lo <= end for start, end in employed):
                continue
            period = None
            for start, end, candidate in hours:
                if start > lo:
                    break
                if lo <= end:
                    period = candidate
            cao = next((key for until, key in earlier_caos if lo <= until), current_cao)
            if runs and runs[-1][1] + 1 == lo and runs[-1][2] is period and runs[-1][3] == cao:
                runs[-1] = (runs[-1][0], hi - 1, period, cao)
            else:
                runs.append((lo, hi - 1, period, cao))
    return {
        year: tuple(
            (lo, hi, str(period.hours_per_week) if period is not None else None, cao) for lo, hi, period, cao in runs
        )
        for year, runs in found.items()
    }


# Most years of most employees are the same few runs (a whole year at 40 hours, say): their entitlement
# and its explanation are built once. Pure, so memoising cannot change a result.
@functools.lru_cache(maxsize=4096)
def _entitlement(year: int, runs: tuple[Run, ...]) -> tuple[YearEntitlement, tuple[str, ...]]:
    n_days = days_in_year(year)
    n = Decimal(n_days)
    hour_days = Decimal(0)  # exact sum over days of hours_per_week(d)
    # The extra leave is summed exactly per CAO (hours x days), then divided once: one rounding per year.
    hour_days_by_cao: dict[CaoKey, Decimal] = {}
    segments: list[EntitlementSegment] = []
    for lo, hi, period_hours, cao in runs:
        extra_fulltime, fulltime = Decimal(cao[1]), Decimal(cao[2])
        days = hi - lo + 1
        hours = Decimal(period_hours) if period_hours is not None else Decimal(0)
        hour_days += hours * days
        hour_days_by_cao[cao] = hour_days_by_cao.get(cao, Decimal(0)) + hours * days
        segments.append(
            EntitlementSegment(
                start=date.fromordinal(lo),
                end=date.fromordinal(hi),
                days=days,
                hours_per_week=hours,
                statutory_earned=_divide(STATUTORY_WEEKS * hours * days, n, _SHOWN),
                extra_earned=_divide(extra_fulltime * hours * days, fulltime * n, _SHOWN),
                note=None if period_hours is not None else "no hours period covers these days",
            )
        )
    entitlement = YearEntitlement(
        year=year,
        days_in_year=n_days,
        employed_days=sum(s.days for s in segments),
        statutory=_divide(STATUTORY_WEEKS * hour_days, n, _CENT),
        extra=_extra_for_year(hour_days_by_cao, n),
        statutory_expires_on=statutory_expires_on(year),
        extra_expires_on=extra_expires_on(year),
        segments=tuple(segments),
    )
    return entitlement, tuple(_entitlement_lines(entitlement, [cao for *_, cao in runs]))


def _extra_for_year(hour_days_by_cao: dict[CaoKey, Decimal], n: Decimal) -> Decimal:
    # Exact as a fraction (the full-time hours differ per CAO), divided once: one CAO gives the very
    # division extra x hour_days / (fulltime x n).
    total = sum(
        (Fraction(cao[1]) * Fraction(hour_days) / Fraction(cao[2]) for cao, hour_days in hour_days_by_cao.items()),
        Fraction(0),
    ) / Fraction(n)
    return _divide(Decimal(total.numerator), Decimal(total.denominator), _CENT)


def _entitlement_lines(e: YearEntitlement, caos: Sequence[CaoKey]) -> Iterable[str]:
    yield f"{e.year}: {e.employed_days} of {e.days_in_year} days employed"
    several = len(set(caos)) > 1
    for s, (name, extra_fulltime, fulltime) in zip(e.segments, caos, strict=True):
        line = (
            f"  {s.start}..{s.end}: {s.days} days x {s.hours_per_week} h/week -> statutory "
            f"4 x {s.hours_per_week} x {s.days} / {e.days_in_year} = {s.statutory_earned}"
        )
        if Decimal(extra_fulltime) or several:
            line += (
                f", extra {extra_fulltime} x {s.hours_per_week} / "
                f"{fulltime} x {s.days} / {e.days_in_year} = {s.extra_earned}"
            )
            if several:
                line += f" (CAO {name or 'none'})"
        if s.note:
            line += f" ({s.note})"
        yield line


def _employed_years(employments: Sequence[EmploymentPeriod], up_to: int) -> list[int]:
    years: set[int] = set()
    for e in employments:
        end_year = min(e.end.year if e.end is not None else up_to, up_to)
        years.update(range(e.start.year, end_year + 1))
    return sorted(years)


def _total(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def leave_balance(data: LeaveInput) -> LeaveResult:
    """Leave and overtime of one employee on `data.as_of` (inclusive), fully explained.

    Choices where the issue is silent:

    * The entitlement of a year is available in full from 1 January of that year (computed from the
      known employment and hours periods), so leave may be taken ahead of accrual within the year.
    * Only bookings dated on or before `as_of` count (leave taken, adjustments, overtime, payouts).
    * Leave taken is processed in date order (input order breaks ties). Each booking is deducted only
      from entitlements of years <= the year of the taken date that are not expired on the taken
      date: oldest statutory first, then oldest extra-statutory. It never borrows from a later year.
    * Leave taken beyond all such entitlement is recorded as `unallocated` on its booking and lowers
      the balance, which then goes negative; it is not re-allocated to later years.
    * Adjustments count for the year they are booked in (reported there) and are added to the balance
      as they are: they do not expire and leave taken is not deducted from them.
    * Expired remainders are reported per year and component (`*_expired_hours`).
    """
    as_of = data.as_of
    balance_years = _employed_years(data.employments, as_of.year)
    adjustments = [a for a in data.adjustments if a.booked_on <= as_of]
    balance_years = sorted(set(balance_years) | {a.booked_on.year for a in adjustments})
    report_years = sorted(data.years) if data.years is not None else balance_years

    explained = _entitlements(
        sorted(set(balance_years) | set(report_years)),
        data.employments,
        data.hours_periods,
        data.cao,
        data.earlier_caos,
    )
    entitlements = {y: entitlement for y, (entitlement, _) in explained.items()}
    remaining: dict[tuple[int, LeaveComponent], Decimal] = {}
    for y in balance_years:
        remaining[(y, LeaveComponent.STATUTORY)] = entitlements[y].statutory
        remaining[(y, LeaveComponent.EXTRA)] = entitlements[y].extra

    expires_on = {(y, c): _expires_on(y, c) for y in entitlements for c in _COMPONENTS}
    expired = {key: as_of >= day for key, day in expires_on.items()}

    fifo_order = [(y, c) for c in _COMPONENTS for y in balance_years]
    taken = sorted(
        (t for t in data.leave_taken if t.taken_on <= as_of), key=lambda t: t.taken_on
    )  # sorted() is stable: input order breaks ties
    allocations: list[TakenAllocation] = []
    taken_from: dict[tuple[int, LeaveComponent], Decimal] = dict.fromkeys(remaining, Decimal(0))
    for booking in taken:
        left = booking.hours
        parts: list[AllocationPart] = []
        for key in fifo_order:
            year, component = key
            if left <= 0:
                break
            if year > booking.taken_on.year or booking.taken_on >= expires_on[key]:
                continue
            used = min(left, remaining[key])
            if used <= 0:
                continue
            remaining[key] -= used
            taken_from[key] += used
            left -= used
            parts.append(AllocationPart(year=year, component=component, hours=used))
        allocations.append(
            TakenAllocation(taken_on=booking.taken_on, hours=booking.hours, parts=tuple(parts), unallocated=left)
        )

    reports: list[YearReport] = []
    for y in report_years:
        ent = entitlements[y]
        stat_key, extra_key = (y, LeaveComponent.STATUTORY), (y, LeaveComponent.EXTRA)
        stat_left = remaining.get(stat_key, ent.statutory)
        extra_left = remaining.get(extra_key, ent.extra)
        year_adjustments = tuple(a for a in adjustments if a.booked_on.year == y)
        reports.append(
            YearReport(
                year=y,
                entitlement=ent,
                statutory_taken=taken_from.get(stat_key, Decimal(0)),
                extra_taken=taken_from.get(extra_key, Decimal(0)),
                statutory_remaining=stat_left,
                extra_remaining=extra_left,
                statutory_expired=expired[stat_key],
                extra_expired=expired[extra_key],
                statutory_expired_hours=stat_left if expired[stat_key] else Decimal(0),
                extra_expired_hours=extra_left if expired[extra_key] else Decimal(0),
                adjustments=year_adjustments,
                adjustments_total=_total(a.hours for a in year_adjustments),
            )
        )

    def live(component: LeaveComponent) -> Decimal:
        return _total(v for key, v in remaining.items() if key[1] is component and not expired[key])

    unallocated = _total(a.unallocated for a in allocations)
    adjustments_total = _total(a.hours for a in adjustments)
    statutory_live, extra_live = live(LeaveComponent.STATUTORY), live(LeaveComponent.EXTRA)
    balance = LeaveBalance(
        statutory=statutory_live,
        extra=extra_live,
        adjustments=adjustments_total,
        unallocated_taken=unallocated,
        total=statutory_live + extra_live + adjustments_total - unallocated,
    )
    worked = _total(o.hours for o in data.overtime_worked if o.on <= as_of)
    paid = _total(p.hours for p in data.overtime_paid_out if p.on <= as_of)
    overtime = OvertimeBalance(worked=worked, paid_out=paid, balance=worked - paid)

    return LeaveResult(
        employee_id=data.employee_id,
        as_of=as_of,
        years=tuple(reports),
        allocations=tuple(allocations),
        balance=balance,
        overtime=overtime,
        explanation=tuple(_explain(explained, reports, allocations, balance, overtime, as_of)),
    )


def _explain(
    entitlements: dict[int, tuple[YearEntitlement, tuple[str, ...]]],
    reports: Sequence[YearReport],
    allocations: Sequence[TakenAllocation],
    balance: LeaveBalance,
    overtime: OvertimeBalance,
    as_of: date,
) -> list[str]:
    lines: list[str] = []
    for r in reports:
        e = r.entitlement
        lines.extend(entitlements[r.year][1])
        lines.append(
            f"  statutory {e.statutory} h (expires {e.statutory_expires_on}), taken "
            f"{r.statutory_taken}, remaining {r.statutory_remaining}"
            + (f", expired {r.statutory_expired_hours}" if r.statutory_expired else "")
        )
        lines.append(
            f"  extra {e.extra} h (expires {e.extra_expires_on}), taken {r.extra_taken}, "
            f"remaining {r.extra_remaining}" + (f", expired {r.extra_expired_hours}" if r.extra_expired else "")
        )
        for a in r.adjustments:
            reason = f" ({a.reason})" if a.reason else ""
            lines.append(f"  adjustment {a.booked_on}: {a.hours:+} h{reason}")
    for alloc in allocations:
        used = ", ".join(f"{p.hours} from {p.year} {p.component.value}" for p in alloc.parts) or "nothing"
        line = f"taken {alloc.taken_on}: {alloc.hours} h <- {used}"
        if alloc.unallocated:
            line += f"; {alloc.unallocated} h without entitlement"
        lines.append(line)
    lines.append(
        f"balance on {as_of}: statutory {balance.statutory} + extra {balance.extra} + adjustments "
        f"{balance.adjustments} - taken without entitlement {balance.unallocated_taken} = {balance.total}"
    )
    lines.append(f"overtime on {as_of}: worked {overtime.worked} - paid out {overtime.paid_out} = {overtime.balance}")
    return lines


def leave_input_json_schema() -> dict[str, Any]:
    """JSON Schema of the `leave calc` input file (written to schemas/ by the integrator)."""
    return LeaveInput.model_json_schema()
