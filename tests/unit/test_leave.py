"""Hand-computed cases for the leave (verlof) calculation in worker.domain.leave."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from worker.domain.leave import (
    AllocationPart,
    CaoLeave,
    EarlierCao,
    EmploymentPeriod,
    HoursPeriod,
    LeaveAdjustment,
    LeaveComponent,
    LeaveInput,
    LeaveResult,
    LeaveTaken,
    OvertimeEntry,
    OvertimePayout,
    YearReport,
    entitlement_for_year,
    hours_from,
    leave_balance,
    leave_input_json_schema,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "leave-calc-example.json"
D = Decimal
STAT, EXTRA = LeaveComponent.STATUTORY, LeaveComponent.EXTRA


def employed(start: str, end: str | None = None) -> tuple[EmploymentPeriod, ...]:
    return (EmploymentPeriod(start=date.fromisoformat(start), end=date.fromisoformat(end) if end else None),)


def hours(*periods: tuple[str, str | None, str]) -> tuple[HoursPeriod, ...]:
    return tuple(
        HoursPeriod(start=date.fromisoformat(s), end=date.fromisoformat(e) if e else None, hours_per_week=D(h))
        for s, e, h in periods
    )


def year(result: LeaveResult, y: int) -> YearReport:
    return next(r for r in result.years if r.year == y)


# --- entitlement per year -------------------------------------------------------------------------


def test_full_year_at_40_hours_earns_160_statutory_hours() -> None:
    # 4 x 40 x 365 / 365 = 160.00
    ent = entitlement_for_year(2023, employed("2020-01-01"), hours(("2020-01-01", None, "40")))
    assert ent.statutory == D("160.00")
    assert ent.extra == D("0.00")
    assert ent.employed_days == 365
    assert [(s.start, s.end, s.days, s.hours_per_week) for s in ent.segments] == [
        (date(2023, 1, 1), date(2023, 12, 31), 365, D(40))
    ]


def test_start_on_1_march_at_32_hours_earns_pro_rata_by_calendar_days() -> None:
    # 1 Mar..31 Dec 2023 = 31+30+31+30+31+31+30+31+30+31 = 306 days
    # 4 x 32 x 306 / 365 = 39168 / 365 = 107.3096 -> 107.31
    ent = entitlement_for_year(2023, employed("2023-03-01"), hours(("2023-03-01", None, "32")))
    assert ent.employed_days == 306
    assert ent.statutory == D("107.31")
    assert ent.segments[0].statutory_earned == D("107.3096")


def test_hours_change_mid_year_is_weighted_per_day_and_rounded_once() -> None:
    # 1 Jan..30 Jun 2023 = 181 days at 40 h; 1 Jul..31 Dec = 184 days at 24 h
    # 4 x (40 x 181 + 24 x 184) / 365 = 4 x 11656 / 365 = 46624 / 365 = 127.7370 -> 127.74
    # (rounding per segment would give 79.34 + 48.39 = 127.73: the spec rounds once, at the end)
    ent = entitlement_for_year(
        2023,
        employed("2023-01-01"),
        hours(("2023-01-01", None, "40"), ("2023-07-01", None, "24")),
    )
    assert ent.statutory == D("127.74")
    assert [(s.days, s.hours_per_week, s.statutory_earned) for s in ent.segments] == [
        (181, D(40), D("79.3425")),  # 28960 / 365
        (184, D(24), D("48.3945")),  # 17664 / 365
    ]


def test_leaver_mid_year_earns_only_up_to_and_including_last_day() -> None:
    # 1 Jan..31 May 2023 = 31+28+31+30+31 = 151 days at 36 h
    # 4 x 36 x 151 / 365 = 21744 / 365 = 59.5726 -> 59.57
    ent = entitlement_for_year(2023, employed("2019-06-01", "2023-05-31"), hours(("2019-06-01", None, "36")))
    assert ent.employed_days == 151
    assert ent.statutory == D("59.57")
    assert ent.segments[-1].end == date(2023, 5, 31)


def test_leap_year_divides_by_366_days() -> None:
    # full 2024: 4 x 40 x 366 / 366 = 160.00
    full = entitlement_for_year(2024, employed("2024-01-01"), hours(("2024-01-01", None, "40")))
    assert (full.days_in_year, full.employed_days, full.statutory) == (366, 366, D("160.00"))
    # start 1 Mar 2024 at 32 h: 306 days; 4 x 32 x 306 / 366 = 39168 / 366 = 107.0164 -> 107.02
    # (the same dates in 2023 give 107.31: the divisor is 366, not 365)
    part = entitlement_for_year(2024, employed("2024-03-01"), hours(("2024-03-01", None, "32")))
    assert (part.employed_days, part.statutory) == (306, D("107.02"))


def test_cao_extra_leave_for_a_part_timer_is_pro_rata_to_fulltime_hours() -> None:
    # CAO: 24 h extra per year at 38 h/week full time; employee works 30 h all of 2023
    # statutory = 4 x 30 = 120.00; extra = 24 x 30 / 38 = 720 / 38 = 18.9474 -> 18.95
    cao = CaoLeave(extra_hours_fulltime=D(24), fulltime_hours_per_week=D(38))
    ent = entitlement_for_year(2023, employed("2022-01-01"), hours(("2022-01-01", None, "30")), cao)
    assert (ent.statutory, ent.extra) == (D("120.00"), D("18.95"))
    assert ent.segments[0].extra_earned == D("18.9474")


def test_cao_extra_leave_for_part_timer_starting_mid_year() -> None:
    # 1 Mar..31 Dec 2023 = 306 days at 30 h, CAO 24 h at 38 h full time
    # statutory = 4 x 30 x 306 / 365 = 36720 / 365 = 100.6027 -> 100.60
    # extra = 24 x 30 x 306 / (38 x 365) = 220320 / 13870 = 15.8847 -> 15.88
    cao = CaoLeave(extra_hours_fulltime=D(24), fulltime_hours_per_week=D(38))
    ent = entitlement_for_year(2023, employed("2023-03-01"), hours(("2023-03-01", None, "30")), cao)
    assert (ent.statutory, ent.extra) == (D("100.60"), D("15.88"))


def test_later_starting_hours_period_wins_and_earlier_resumes_after_it_ends() -> None:
    # 40 h open from 2023-01-01, temporarily 20 h from 1 Apr..30 Jun 2023 (91 days)
    # days at 40: 90 (Jan-Mar) + 184 (Jul-Dec) = 274; at 20: 91
    # 4 x (40 x 274 + 20 x 91) / 365 = 4 x 12780 / 365 = 51120 / 365 = 140.0548 -> 140.05
    ent = entitlement_for_year(
        2023,
        employed("2023-01-01"),
        hours(("2023-01-01", None, "40"), ("2023-04-01", "2023-06-30", "20")),
    )
    assert [(s.days, s.hours_per_week) for s in ent.segments] == [(90, D(40)), (91, D(20)), (184, D(40))]
    assert ent.statutory == D("140.05")


def test_employed_days_without_hours_period_earn_nothing_and_are_flagged() -> None:
    # employed all 2023, hours only from 1 Jul (184 days at 40): 4 x 40 x 184 / 365 = 80.6575 -> 80.66
    ent = entitlement_for_year(2023, employed("2023-01-01"), hours(("2023-07-01", None, "40")))
    assert ent.statutory == D("80.66")
    assert ent.segments[0].days == 181
    assert ent.segments[0].hours_per_week == 0
    assert ent.segments[0].note is not None


def test_expiry_dates_are_1_july_next_year_and_1_january_six_years_later() -> None:
    ent = entitlement_for_year(2023, employed("2023-01-01"), hours(("2023-01-01", None, "40")))
    assert ent.statutory_expires_on == date(2024, 7, 1)
    assert ent.extra_expires_on == date(2029, 1, 1)


# --- balance, expiry, FIFO ------------------------------------------------------------------------


def full_timer(as_of: str, **kwargs: object) -> LeaveInput:
    return LeaveInput.model_validate(
        {
            "as_of": as_of,
            "employments": [{"start": "2023-01-01"}],
            "hours_periods": [{"start": "2023-01-01", "hours_per_week": "40"}],
            **kwargs,
        }
    )


def test_statutory_leave_still_counts_on_30_june_and_expires_on_1_july() -> None:
    # 2023: 160, 2024: 160 (full year 40 h each, available from 1 January)
    before = leave_balance(full_timer("2024-06-30"))
    assert before.balance.statutory == D("320.00")
    assert year(before, 2023).statutory_expired is False
    # on 1 Jul 2024 the 160 h of 2023 expire, nothing was taken: 160 h reported as expired
    after = leave_balance(full_timer("2024-07-01"))
    assert after.balance.statutory == D("160.00")
    assert after.balance.total == D("160.00")
    assert year(after, 2023).statutory_expired is True
    assert year(after, 2023).statutory_expired_hours == D("160.00")


def test_extra_statutory_leave_expires_on_1_january_of_year_plus_six() -> None:
    # CAO 20 h at 40 full time, employee at 40 h: 20.00 extra per year.
    # Employment ended 31 Dec 2023, so only 2023 earns; its extra expires 1 Jan 2029.
    def on(as_of: str) -> LeaveResult:
        return leave_balance(
            LeaveInput.model_validate(
                {
                    "as_of": as_of,
                    "employments": [{"start": "2023-01-01", "end": "2023-12-31"}],
                    "hours_periods": [{"start": "2023-01-01", "hours_per_week": "40"}],
                    "cao": {"extra_hours_fulltime": "20"},
                }
            )
        )

    assert on("2028-12-31").balance.extra == D("20.00")
    expired = on("2029-01-01")
    assert expired.balance.extra == D("0")
    assert year(expired, 2023).extra_expired_hours == D("20.00")
    assert year(expired, 2023).statutory_expired_hours == D("160.00")  # long gone since 1 Jul 2024


def test_leave_taken_is_deducted_fifo_from_the_oldest_year_first() -> None:
    # 2023: 160 earned, 120 taken in 2023 -> 40 left of 2023.
    # 60 h taken on 1 Mar 2024: 40 from 2023 statutory, then 20 from 2024 statutory.
    # balance 31 Dec 2024: 2023 expired with 0 left; 2024: 160 - 20 = 140
    result = leave_balance(
        full_timer(
            "2024-12-31",
            leave_taken=[
                {"taken_on": "2024-03-01", "hours": "60"},
                {"taken_on": "2023-10-02", "hours": "120"},
            ],
        )
    )
    assert [a.taken_on for a in result.allocations] == [date(2023, 10, 2), date(2024, 3, 1)]  # date order
    assert result.allocations[1].parts == (
        AllocationPart(year=2023, component=STAT, hours=D("40.00")),
        AllocationPart(year=2024, component=STAT, hours=D("20.00")),
    )
    assert year(result, 2023).statutory_taken == D("160.00")
    assert year(result, 2023).statutory_expired_hours == D("0.00")
    assert year(result, 2024).statutory_remaining == D("140.00")
    assert result.balance.total == D("140.00")


def test_leave_taken_after_expiry_does_not_use_the_expired_year() -> None:
    # 8 h taken on 1 Jul 2024: 2023 statutory expired that day, so it comes from 2024.
    # 2023's 160 h are reported expired; balance 31 Dec 2024 = 160 - 8 = 152
    result = leave_balance(full_timer("2024-12-31", leave_taken=[{"taken_on": "2024-07-01", "hours": "8"}]))
    assert result.allocations[0].parts == (AllocationPart(year=2024, component=STAT, hours=D(8)),)
    assert year(result, 2023).statutory_expired_hours == D("160.00")
    assert result.balance.total == D("152.00")


def test_statutory_is_used_up_before_extra_statutory() -> None:
    # CAO 20 h at 40, 40 h all of 2023: statutory 160, extra 20. 170 h taken -> 160 stat + 10 extra.
    # balance = 0 + 10 = 10
    result = leave_balance(
        full_timer(
            "2023-12-31",
            cao={"extra_hours_fulltime": "20"},
            leave_taken=[{"taken_on": "2023-11-01", "hours": "170"}],
        )
    )
    assert result.allocations[0].parts == (
        AllocationPart(year=2023, component=STAT, hours=D("160.00")),
        AllocationPart(year=2023, component=EXTRA, hours=D(10)),
    )
    assert (result.balance.statutory, result.balance.extra, result.balance.total) == (
        D("0.00"),
        D("10.00"),
        D("10.00"),
    )


def test_leave_taken_never_borrows_from_a_later_year() -> None:
    # 200 h taken on 20 Dec 2023 with 160 earned in 2023: 40 h without entitlement, even though
    # 2024's 160 h exist by as_of. Balance 10 Jan 2024 = 0 + 160 - 40 = 120
    result = leave_balance(full_timer("2024-01-10", leave_taken=[{"taken_on": "2023-12-20", "hours": "200"}]))
    assert result.allocations[0].unallocated == D("40.00")
    assert year(result, 2024).statutory_taken == 0
    assert result.balance.total == D("120.00")


def test_taking_more_than_the_entitlement_gives_a_negative_balance() -> None:
    # start 1 Jul 2023 at 40 h: 184 days, 4 x 40 x 184 / 365 = 29440 / 365 = 80.6575 -> 80.66
    # 100 h taken: 80.66 allocated, 19.34 without entitlement; balance -19.34 (not clipped)
    result = leave_balance(
        LeaveInput.model_validate(
            {
                "as_of": "2023-12-31",
                "employments": [{"start": "2023-07-01"}],
                "hours_periods": [{"start": "2023-07-01", "hours_per_week": "40"}],
                "leave_taken": [{"taken_on": "2023-12-01", "hours": "100"}],
            }
        )
    )
    assert result.allocations[0].unallocated == D("19.34")
    assert result.balance.unallocated_taken == D("19.34")
    assert result.balance.total == D("-19.34")


def test_adjustments_add_to_the_year_booked_and_to_the_balance() -> None:
    # +8 booked 2023, -3 booked 2024, +50 booked after as_of (ignored).
    # 1 Jul 2024: 2023 statutory expired (160); balance = 160 (2024) + 8 - 3 = 165
    result = leave_balance(
        full_timer(
            "2024-07-01",
            adjustments=[
                {"booked_on": "2023-05-01", "hours": "8", "reason": "previous employer"},
                {"booked_on": "2024-02-01", "hours": "-3"},
                {"booked_on": "2024-07-02", "hours": "50"},
            ],
        )
    )
    assert year(result, 2023).adjustments_total == D(8)
    assert year(result, 2024).adjustments_total == D(-3)
    assert result.balance.adjustments == D(5)
    assert result.balance.total == D("165.00")


def test_leave_taken_after_as_of_is_not_deducted() -> None:
    result = leave_balance(full_timer("2023-06-30", leave_taken=[{"taken_on": "2023-07-01", "hours": "8"}]))
    assert result.allocations == ()
    assert result.balance.total == D("160.00")


def test_overtime_balance_is_worked_minus_paid_out_up_to_as_of() -> None:
    # worked 10 + 2.5 (the 7 on 2 Jan 2024 is after as_of), paid out 4 -> 8.5
    result = leave_balance(
        full_timer(
            "2023-12-31",
            overtime_worked=[
                {"on": "2023-03-01", "hours": "10"},
                {"on": "2023-04-01", "hours": "2.5"},
                {"on": "2024-01-02", "hours": "7"},
            ],
            overtime_paid_out=[{"on": "2023-05-01", "hours": "4"}],
        )
    )
    assert (result.overtime.worked, result.overtime.paid_out, result.overtime.balance) == (
        D("12.5"),
        D(4),
        D("8.5"),
    )


def test_overtime_paid_out_beyond_worked_gives_negative_overtime_balance() -> None:
    result = leave_balance(
        full_timer(
            "2023-12-31",
            overtime_worked=[OvertimeEntry(on=date(2023, 3, 1), hours=D(2))],
            overtime_paid_out=[OvertimePayout(on=date(2023, 4, 1), hours=D(5))],
        )
    )
    assert result.overtime.balance == D(-3)


def test_years_selects_reported_years_but_balance_uses_all_years() -> None:
    result = leave_balance(full_timer("2024-03-01", years=[2025]))
    assert [r.year for r in result.years] == [2025]
    assert result.balance.total == D("320.00")  # 2023 + 2024, both not expired on 1 Mar 2024


# --- the example input file -----------------------------------------------------------------------


def test_example_input_file_computes_the_hand_checked_figures() -> None:
    data = LeaveInput.model_validate_json(EXAMPLE.read_text())
    result = leave_balance(data)
    y2023, y2024 = year(result, 2023), year(result, 2024)
    # 2023: 1 Mar..31 Dec = 306 days at 24 h; CAO 20 h at 40 full time
    #   statutory 4 x 24 x 306 / 365 = 29376 / 365 = 80.4822 -> 80.48
    #   extra 20 x 24 / 40 x 306 / 365 = 3672 / 365 = 10.0603 -> 10.06
    assert (y2023.entitlement.statutory, y2023.entitlement.extra) == (D("80.48"), D("10.06"))
    # 2024 (leap): 1 Jan..31 Mar = 91 days at 24, 1 Apr..31 Dec = 275 days at 32
    #   hour-days = 24 x 91 + 32 x 275 = 2184 + 8800 = 10984
    #   statutory 4 x 10984 / 366 = 43936 / 366 = 120.0437 -> 120.04
    #   extra 20 / 40 x 10984 / 366 = 5492 / 366 = 15.0055 -> 15.01
    assert [(s.days, s.hours_per_week) for s in y2024.entitlement.segments] == [(91, D(24)), (275, D(32))]
    assert (y2024.entitlement.statutory, y2024.entitlement.extra) == (D("120.04"), D("15.01"))
    # taken, in date order: 14 Aug 2023 16 + 27 Dec 2023 24 -> 2023 statutory, 40.48 left;
    # 13 May 2024 40 -> 2023 statutory (not expired until 1 Jul 2024), 0.48 left, which expires;
    # 7 Oct 2024 24 -> 2024 statutory, 96.04 left
    assert [a.taken_on for a in result.allocations] == [
        date(2023, 8, 14),
        date(2023, 12, 27),
        date(2024, 5, 13),
        date(2024, 10, 7),
    ]
    assert result.allocations[2].parts == (AllocationPart(year=2023, component=STAT, hours=D(40)),)
    assert result.allocations[3].parts == (AllocationPart(year=2024, component=STAT, hours=D(24)),)
    assert y2023.statutory_expired_hours == D("0.48")
    assert y2024.statutory_remaining == D("96.04")
    # balance 31 Dec 2024: statutory 96.04 + extra (10.06 + 15.01 = 25.07) + adjustments (8 + 4 - 2 = 10)
    #   = 131.11
    assert result.balance.statutory == D("96.04")
    assert result.balance.extra == D("25.07")
    assert result.balance.adjustments == D(10)
    assert result.balance.total == D("131.11")
    # overtime: 6 + 4.5 - 5 = 5.5
    assert result.overtime.balance == D("5.5")


def test_result_is_json_serialisable_and_explains_every_period() -> None:
    result = leave_balance(LeaveInput.model_validate_json(EXAMPLE.read_text()))
    dumped = json.loads(result.model_dump_json())
    assert dumped["balance"]["total"] == "131.11"
    assert LeaveResult.model_validate_json(result.model_dump_json()) == result
    text = "\n".join(result.explanation)
    assert "2024-01-01..2024-03-31: 91 days x 24 h/week" in text
    assert "2024-04-01..2024-12-31: 275 days x 32 h/week" in text
    assert "expired 0.48" in text
    assert "= 131.11" in text


def test_input_json_schema_describes_the_leave_input() -> None:
    schema = leave_input_json_schema()
    assert schema["title"] == "LeaveInput"
    assert {"as_of", "employments", "hours_periods", "cao", "leave_taken"} <= set(schema["properties"])
    assert schema["required"] == ["as_of"]
    json.dumps(schema)


# --- invalid input ---------------------------------------------------------------------------------


def test_employment_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValidationError, match="before its start"):
        EmploymentPeriod(start=date(2023, 5, 1), end=date(2023, 4, 30))


def test_hours_period_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValidationError, match="before its start"):
        HoursPeriod(start=date(2023, 5, 1), end=date(2023, 4, 30), hours_per_week=D(40))


@pytest.mark.parametrize(
    "build",
    [
        lambda: HoursPeriod(start=date(2023, 1, 1), hours_per_week=D(-1)),
        lambda: HoursPeriod(start=date(2023, 1, 1), hours_per_week=D(169)),
        lambda: LeaveTaken(taken_on=date(2023, 1, 1), hours=D("-8")),
        lambda: OvertimeEntry(on=date(2023, 1, 1), hours=D(-1)),
        lambda: OvertimePayout(on=date(2023, 1, 1), hours=D(-1)),
        lambda: CaoLeave(extra_hours_fulltime=D(-1)),
        lambda: CaoLeave(fulltime_hours_per_week=D(0)),
        lambda: HoursPeriod(start=date(2023, 1, 1), hours_per_week=D("NaN")),
    ],
    ids=[
        "negative-hours",
        "over-168",
        "negative-taken",
        "negative-overtime",
        "negative-payout",
        "negative-cao-extra",
        "zero-fulltime",
        "nan",
    ],
)
def test_negative_or_impossible_hours_are_rejected(build: object) -> None:
    with pytest.raises(ValidationError):
        build()  # type: ignore[operator]


def test_negative_adjustment_is_allowed() -> None:
    assert LeaveAdjustment(booked_on=date(2023, 1, 1), hours=D(-8)).hours == D(-8)


def test_unknown_field_in_input_file_is_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        LeaveInput.model_validate_json('{"as_of": "2024-01-01", "employment": []}')


def test_two_hours_periods_starting_the_same_day_are_rejected() -> None:
    with pytest.raises(ValidationError, match="several hours periods start on 2023-01-01"):
        LeaveInput(
            as_of=date(2024, 1, 1),
            hours_periods=hours(("2023-01-01", None, "40"), ("2023-01-01", None, "32")),
        )


def test_input_models_are_frozen() -> None:
    period = EmploymentPeriod(start=date(2023, 1, 1))
    with pytest.raises(ValidationError):
        period.start = date(2024, 1, 1)  # type: ignore[misc]


def test_contract_hours_cover_the_days_before_the_first_schedule() -> None:
    # A 24 h contract from March 2023; the first schedule (32 h) only from 2024: 2023 still earns leave.
    contracts, schedules = hours(("2023-03-01", None, "24")), hours(("2024-01-01", None, "32"))
    periods = hours_from(schedules, contracts)
    assert periods == (*hours(("2023-03-01", "2023-12-31", "24")), *schedules)
    assert entitlement_for_year(2023, employed("2023-03-01"), periods).statutory == D("80.48")  # 4 x 24 x 306/365
    assert entitlement_for_year(2024, employed("2023-03-01"), periods).statutory == D("128.00")  # the schedule's
    # A contract that starts once the schedule runs adds nothing; without a schedule the contracts are all.
    assert hours_from(schedules, hours(("2024-06-01", None, "36"))) == schedules
    assert hours_from((), contracts) == contracts


def test_a_cao_change_leaves_the_extra_leave_of_earlier_days_alone() -> None:
    # 40 extra hours a year under CAO Bakkers until 30 June 2024, then a CAO without extra leave.
    bakkers = CaoLeave(name="Bakkers", extra_hours_fulltime=D(40))
    result = leave_balance(
        LeaveInput(
            as_of=date(2024, 12, 31),
            employments=employed("2020-01-01"),
            hours_periods=hours(("2020-01-01", None, "40")),
            cao=CaoLeave(name="Schoonmaak"),
            earlier_caos=(EarlierCao(until=date(2024, 6, 30), cao=bakkers),),
        )
    )
    assert [year(result, y).entitlement.extra for y in (2020, 2021, 2022, 2023)] == [D("40.00")] * 4
    assert year(result, 2024).entitlement.extra == D("19.89")  # 40 x 182 / 366
    lines = "\n".join(result.explanation)
    assert "(CAO Bakkers)" in lines and "(CAO Schoonmaak)" in lines
