"""Deterministic generator of realistic Dutch sandbox datasets, from 60 employees to 10,000+.

The same (companies, employees, seed, reference_date, two_cao_companies) always gives the same dataset.
Addresses come from a random stream of their own, so adding them left every other value of a seed unchanged.
Every dataset of 10 or more employees contains the hard cases: tussenvoegsels, diacritics, a human with
two employments (same BSN), part-timers incl. a two-week rota, a leaver, a future hire, near-identical
names, and contracts without HoursPerWeek (so the schedule fallback is exercised).
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from worker.domain.naamstelling import NameUsage
from worker.sandbox.dataset import (
    Address,
    AddressType,
    Assignment,
    Company,
    Contract,
    Dataset,
    Employee,
    EmployeeType,
    Employment,
    LabourAgreement,
    LabourAgreementAssignment,
    PersonalInfo,
    Schedule,
)
from worker.sandbox.sample_data import (
    CAOS,
    CITIES,
    COMPANY_NAMES,
    DEPARTMENTS,
    EMPLOYEE_TYPES,
    FIRST_NAMES_FEMALE,
    FIRST_NAMES_MALE,
    FUNCTIONS,
    HOUSE_NUMBER_ADDITIONS,
    LAST_NAMES,
    POSTCODE_LETTERS,
    POSTCODE_SKIPPED,
    STREETS,
)

# A fixed default keeps `generate-dataset` reproducible from day to day; pass another date to move 'today'.
DEFAULT_REFERENCE_DATE = date(2026, 11, 1)


def is_valid_bsn(bsn: str) -> bool:
    """The BSN 11-proef: 9 digits, 9*d1 + 8*d2 + ... + 2*d8 - d9 divisible by 11 (and not all zero)."""
    if len(bsn) != 9 or not bsn.isdigit() or bsn == "000000000":
        return False
    total = sum(int(digit) * weight for digit, weight in zip(bsn[:8], range(9, 1, -1), strict=True))
    return (total - int(bsn[8])) % 11 == 0


def _bsn(rng: random.Random, used: set[str]) -> str:
    while True:
        head = f"{rng.randrange(10_000_000, 100_000_000):08d}"
        check = sum(int(digit) * weight for digit, weight in zip(head, range(9, 1, -1), strict=True)) % 11
        bsn = head + str(check)
        if check < 10 and bsn not in used:
            used.add(bsn)
            return bsn


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _moment(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randrange(8, 18), rng.randrange(60), rng.randrange(60)))


@dataclass(frozen=True)
class _Home:
    street: str
    house_number: str
    addition: str | None
    postal_code: str
    city: str


@dataclass
class _Human:
    """The person behind one or more employments."""

    bsn: str
    gender: str
    first_name: str
    prefix: str
    last_name: str
    birthday: date
    mobile: str
    homes: list[tuple[date, _Home]]  # (moved in, home), oldest first
    post_box: _Home | None = None
    partner: tuple[str, str] | None = None  # (prefix, last name) of a partner whose surname may be used
    name_usage: NameUsage = NameUsage.OWN


class _Generator:
    def __init__(self, seed: int, reference_date: date) -> None:
        self.rng = random.Random(seed)
        # Addresses draw from their own stream: the main stream, and so every other value, stays as it was.
        self.address_rng = random.Random(f"{seed}/addresses")
        self.partner_rng = random.Random(f"{seed}/partners")
        self.today = reference_date
        self.bsns: set[str] = set()
        self.next_ids = {"employee": 100_001, "record": 1, "address": 1}
        self.numbers: dict[int, int] = {}
        self.emails: set[str] = set()

    def new_id(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] += 1
        return value

    def human(self, first_name: str | None = None, prefix: str | None = None, last_name: str | None = None) -> _Human:
        rng = self.rng
        gender = rng.choice(("male", "female"))
        names = FIRST_NAMES_MALE if gender == "male" else FIRST_NAMES_FEMALE
        default_prefix, default_last = rng.choice(LAST_NAMES)
        homes, post_box = self.homes()
        partner, name_usage = self.partner()
        return _Human(
            partner=partner,
            name_usage=name_usage,
            bsn=_bsn(rng, self.bsns),
            gender=gender,
            first_name=first_name or rng.choice(names),
            prefix=default_prefix if prefix is None else prefix,
            last_name=last_name or default_last,
            birthday=self.today - timedelta(days=rng.randrange(18 * 365, 66 * 365)),
            mobile=f"06-{rng.randrange(10_000_000, 100_000_000)}",
            homes=homes,
            post_box=post_box,
        )

    def partner(self) -> tuple[tuple[str, str] | None, NameUsage]:
        """About a third of employees have a partner's surname in Nmbrs; of those, roughly (as Dutch payroll
        sees it) 40% go by their own name, 35% by the partner's then their own, 15% by the partner's only and
        10% by their own then the partner's."""
        rng = self.partner_rng
        if rng.random() >= 0.33:
            return None, NameUsage.OWN
        usage = rng.choices(list(NameUsage), weights=(40, 15, 35, 10))[0]
        return rng.choice(LAST_NAMES), usage

    def home(self, *, post_box: bool = False) -> _Home:
        rng = self.address_rng
        city, low, high = rng.choice(CITIES)
        while (letters := "".join(rng.choices(POSTCODE_LETTERS, k=2))) in POSTCODE_SKIPPED:
            pass
        digits = rng.randrange(low, high + 1)
        # Mostly as Nmbrs shows it ('1234 AB'); some typed without the space.
        postal_code = f"{digits}{letters}" if rng.random() < 0.15 else f"{digits} {letters}"
        if post_box:
            return _Home("Postbus", str(rng.randrange(1, 9999)), None, postal_code, city)
        addition = rng.choice(HOUSE_NUMBER_ADDITIONS) if rng.random() < 0.12 else None
        return _Home(rng.choice(STREETS), str(rng.randrange(1, 181)), addition, postal_code, city)

    def homes(self) -> tuple[list[tuple[date, _Home]], _Home | None]:
        """Where a new human lives: about one in five moved in the last five years, a few use a post box."""
        rng = self.address_rng
        homes = [(date(1900, 1, 1), self.home())]
        if rng.random() < 0.2:
            homes.append((self.today - timedelta(days=rng.randrange(30, 5 * 365)), self.home()))
        return homes, self.home(post_box=True) if rng.random() < 0.05 else None

    def addresses(self, human: _Human, start: date) -> list[Address]:
        """The address records of an employment starting on `start`: the home from then on (a move ends
        the previous record the period before), plus the post box, if any."""
        rng = self.address_rng
        records: list[Address] = []
        for index, (moved_in, home) in enumerate(human.homes):
            moved_out = human.homes[index + 1][0] if index + 1 < len(human.homes) else None
            begin = max(moved_in, start)
            if moved_out is not None and (moved_out.year, moved_out.month) <= (begin.year, begin.month):
                continue  # moved on before this employment's first period
            last = moved_out.replace(day=1) - timedelta(days=1) if moved_out is not None else None
            records.append(self.address(home, begin, last, "HomeAddress", rng))
        if human.post_box is not None:
            records.append(self.address(human.post_box, start, None, "PostAddress", rng))
        return records

    def address(self, home: _Home, begin: date, last: date | None, kind: AddressType, rng: random.Random) -> Address:
        return Address(
            id=self.new_id("address"),
            start_year=begin.year,
            start_period=begin.month,
            end_year=last.year if last else None,
            end_period=last.month if last else None,
            created=_moment(begin - timedelta(days=rng.randrange(0, 20)), rng),
            type=kind,
            street=home.street,
            house_number=home.house_number,
            house_number_addition=home.addition,
            postal_code=home.postal_code,
            city=home.city,
        )

    def email(self, human: _Human, company: Company) -> str:
        local = _ascii(f"{human.first_name}.{human.prefix}{human.last_name}").replace(" ", "").replace("'", "")
        domain = company.website.removeprefix("https://www.") if company.website else "example.nl"
        candidate, n = f"{local}@{domain}", 2
        while candidate in self.emails:  # two people with the same name get distinct addresses
            candidate, n = f"{local}{n}@{domain}", n + 1
        self.emails.add(candidate)
        return candidate

    def company(self, index: int, caos: int) -> Company:
        rng = self.rng
        name = COMPANY_NAMES[index % len(COMPANY_NAMES)] + (
            f" {index // len(COMPANY_NAMES) + 1}" if index >= 10 else ""
        )
        slug = _ascii(name).replace(" ", "").replace("'", "").replace("&", "").replace("-", "")
        agreements = [
            LabourAgreement(
                id=index * 10 + k + 1,
                guid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                number=rng.randrange(100, 999),
                description=CAOS[(index + k) % len(CAOS)],
                default=k == 0,
            )
            for k in range(caos)
        ]
        return Company(
            id=index + 1,
            number=index + 1,
            name=f"{name} B.V.",
            phone=f"0{rng.randrange(10, 80)}-{rng.randrange(1_000_000, 10_000_000)}",
            email=f"info@{slug}.nl",
            website=f"https://www.{slug}.nl",
            kvk=f"{rng.randrange(10_000_000, 100_000_000)}",
            current_period=f"{self.today.year}-{self.today.month}-M",
            labour_agreements=agreements,
        )

    def schedule(self, start: date, kind: str) -> Schedule:
        day = 8.0
        if kind == "full":
            week1 = [day] * 5 + [0.0, 0.0]
            week2 = [0.0] * 7
        elif kind == "rota":  # two-week rota: 4 days then 3 days, 28 hours on average
            week1 = [day] * 4 + [0.0] * 3
            week2 = [day] * 3 + [0.0] * 4
        else:  # part-time: 2, 3 or 4 days
            days = {"part2": 2, "part3": 3, "part4": 4}[kind]
            week1 = [day] * days + [0.0] * (7 - days)
            week2 = [0.0] * 7
        schedule = Schedule(
            id=self.new_id("record"), created=_moment(start, self.rng), start=start, week1=week1, week2=week2
        )
        schedule.parttime_percentage = round(schedule.hours_per_week() / 40 * 100, 2)
        return schedule

    def employee(
        self,
        company: Company,
        human: _Human,
        *,
        start: date,
        end: date | None = None,
        schedule_kind: str | None = None,
        employee_type: int = 1,
    ) -> Employee:
        rng = self.rng
        self.numbers[company.id] = self.numbers.get(company.id, 0) + 1
        initials = human.first_name[0] + "." + (rng.choice("ABCDEHJMPW") + "." if rng.random() < 0.3 else "")
        info = PersonalInfo(
            id=self.new_id("record"),
            start_year=start.year,
            start_period=start.month,
            created=_moment(start - timedelta(days=rng.randrange(1, 30)), rng),
            first_name=human.first_name,
            initials=initials,
            prefix=human.prefix or None,
            last_name=human.last_name,
            partner_prefix=(human.partner[0] or None) if human.partner else None,
            partner_last_name=human.partner[1] if human.partner else None,
            name_usage=human.name_usage,
            gender=human.gender,
            birthday=human.birthday,
            email_work=self.email(human, company),
            email_private=_ascii(f"{human.first_name}{rng.randrange(10, 99)}@ziggo.nl"),
            phone_mobile=human.mobile,
        )
        personal = [info]
        if rng.random() < 0.1 and start < self.today - timedelta(days=400):
            # A later personal-info record: a new work phone number.
            moved = self.today - timedelta(days=rng.randrange(30, 300))
            personal.append(
                info.model_copy(
                    update={
                        "id": self.new_id("record"),
                        "start_year": moved.year,
                        "start_period": moved.month,
                        "created": _moment(moved, rng),
                        "phone_work": f"085-{rng.randrange(1_000_000, 10_000_000)}",
                    }
                )
            )
        kind = schedule_kind or rng.choices(("full", "part2", "part3", "part4", "rota"), weights=(60, 8, 12, 14, 6))[0]
        schedules = [self.schedule(start, kind)]
        if rng.random() < 0.1 and start < self.today - timedelta(days=200):
            schedules.append(self.schedule(self.today - timedelta(days=rng.randrange(10, 150)), "part4"))
        contracts = self.contracts(start, end, rng.random() < 0.3, schedules)
        functions = [self.assignment(FUNCTIONS, start)]
        if rng.random() < 0.25 and start < self.today - timedelta(days=200):
            functions.append(self.assignment(FUNCTIONS, self.today - timedelta(days=rng.randrange(10, 180))))
        departments = [self.assignment(DEPARTMENTS, start)]
        if rng.random() < 0.15 and start < self.today - timedelta(days=200):
            departments.append(self.assignment(DEPARTMENTS, self.today - timedelta(days=rng.randrange(10, 180))))
        agreement = rng.choice(company.labour_agreements) if company.labour_agreements else None
        return Employee(
            id=self.new_id("employee"),
            company_id=company.id,
            number=self.numbers[company.id],
            employee_type=employee_type,
            bsn=human.bsn,
            personal_info=personal,
            employments=[
                Employment(
                    employment_id=self.new_id("record"),
                    created=_moment(start - timedelta(days=rng.randrange(1, 30)), rng),
                    start=start,
                    end=end,
                    initial_start=start,
                )
            ],
            functions=functions,
            departments=departments,
            contracts=contracts,
            schedules=schedules,
            labour_agreements=(
                [
                    LabourAgreementAssignment(
                        start_year=start.year, start_period=start.month, labour_agreement_id=agreement.id
                    )
                ]
                if agreement
                else []
            ),
            addresses=self.addresses(human, start),
        )

    def contracts(
        self, start: date, end: date | None, temporary_first: bool, schedules: list[Schedule]
    ) -> list[Contract]:
        rng = self.rng
        # About one contract in ten leaves HoursPerWeek empty, as older v3 records may.
        hours = None if rng.random() < 0.1 else schedules[0].hours_per_week()
        first_end = start + timedelta(days=364)
        if temporary_first and first_end < (end or self.today):
            return [
                Contract(
                    contract_id=self.new_id("record"),
                    created=_moment(start, rng),
                    start=start,
                    end=first_end,
                    trial_end=start + timedelta(days=30),
                    hours_per_week=hours,
                ),
                Contract(
                    contract_id=self.new_id("record"),
                    created=_moment(first_end, rng),
                    start=first_end + timedelta(days=1),
                    end=end,
                    indefinite=end is None,
                    hours_per_week=schedules[-1].hours_per_week(),
                ),
            ]
        return [
            Contract(
                contract_id=self.new_id("record"),
                created=_moment(start, rng),
                start=start,
                end=end,
                indefinite=end is None,
                hours_per_week=hours,
            )
        ]

    def assignment(self, pool: tuple[str, ...], start: date) -> Assignment:
        index = self.rng.randrange(len(pool))
        return Assignment(
            record_id=self.new_id("record"),
            ref_id=index + 1,
            code=index + 1,
            description=pool[index],
            start_year=start.year,
            start_period=start.month,
            created=_moment(start, self.rng),
        )

    def start_date(self) -> date:
        return self.today - timedelta(days=self.rng.randrange(30, 15 * 365))


# The hard cases take this many employments of the first and of the second company.
_HARD_CASES_FIRST, _HARD_CASES_SECOND = 5, 3


def _quotas(companies: int, employees: int, largest: int) -> list[int]:
    """Employments per company: `largest` for the first, the rest spread evenly over the others."""
    if not 0 <= largest <= employees:
        raise ValueError(f"largest must be between 0 and the {employees} employees, not {largest}")
    if largest < employees and companies < 2:
        raise ValueError("largest below the number of employees needs at least two companies")
    others, extra = divmod(employees - largest, companies - 1) if companies > 1 else (0, 0)
    quotas = [largest] + [others + (index < extra) for index in range(companies - 1)]
    if employees >= 10:  # the hard cases must fit (see generate)
        second = quotas[1] if companies > 1 else 0
        needed = _HARD_CASES_FIRST + (0 if second >= _HARD_CASES_SECOND else _HARD_CASES_SECOND)
        if largest < needed:
            raise ValueError(f"largest must be at least {needed}: the first company holds {needed} hard cases")
    return quotas


def generate(
    companies: int,
    employees: int,
    seed: int,
    reference_date: date = DEFAULT_REFERENCE_DATE,
    two_cao_companies: int = 0,
    largest: int | None = None,
) -> Dataset:
    """A dataset of `companies` companies and `employees` employments, spread evenly over the companies; with
    `largest`, the first company gets that many and the others share the rest evenly (a skewed debtor).

    The first `two_cao_companies` companies get two CAOs (their employees need per-employee calls).
    """
    if companies < 1 or employees < 0:
        raise ValueError("at least one company and a non-negative number of employees are required")
    quotas = None if largest is None else _quotas(companies, employees, largest)
    gen = _Generator(seed, reference_date)
    rng = gen.rng
    company_list = [gen.company(index, 2 if index < two_cao_companies else 1) for index in range(companies)]
    result: list[Employee] = []
    humans: list[_Human] = []
    placed = [0] * companies  # by company index: the ids are 1, 2, ...

    def next_company() -> Company:
        """Round robin over the companies; with quotas, over those not yet full."""
        turn = len(result) % companies
        if quotas is not None:
            while placed[turn] >= quotas[turn]:
                turn = (turn + 1) % companies
        return company_list[turn]

    def add(
        company: Company,
        human: _Human,
        start: date,
        end: date | None = None,
        schedule_kind: str | None = None,
        employee_type: int = 1,
    ) -> None:
        result.append(
            gen.employee(company, human, start=start, end=end, schedule_kind=schedule_kind, employee_type=employee_type)
        )
        humans.append(human)
        placed[company.id - 1] += 1

    if employees >= 10:
        # The hard cases, present in every dataset of a useful size.
        first, second = company_list[0], company_list[min(1, companies - 1)]
        if quotas is not None and quotas[second.id - 1] < _HARD_CASES_SECOND:
            second = first  # `largest` leaves the others too small: the first company holds every hard case
        add(first, gen.human(first_name="Jan", prefix="van der", last_name="Berg"), start=gen.start_date())
        add(first, gen.human(first_name="Jan", prefix="van den", last_name="Berg"), start=gen.start_date())
        add(
            first,
            gen.human(first_name="Chloë", prefix="", last_name="Öztürk"),
            start=gen.start_date(),
            schedule_kind="part3",
        )
        add(
            first,
            gen.human(first_name="Anouk", prefix="de", last_name="Vries"),
            start=gen.start_date(),
            schedule_kind="rota",
        )
        leaver_start = gen.today - timedelta(days=900)
        add(
            second,
            gen.human(first_name="René", prefix="van 't", last_name="Hek"),
            start=leaver_start,
            end=gen.today - timedelta(days=45),
        )
        add(
            second,
            gen.human(first_name="Fenna", prefix="ter", last_name="Horst"),
            start=gen.today + timedelta(days=21),
        )
        # One human, two employments (second company when there is one), sharing the BSN.
        twice = gen.human(first_name="Joël", prefix="in 't", last_name="Veld")
        add(first, twice, start=gen.start_date(), schedule_kind="part3")
        add(second, twice, start=gen.start_date(), schedule_kind="part2")
    while len(result) < employees:
        company = next_company()
        roll = rng.random()
        if roll < 0.02 and humans and companies > 1:
            # A human already employed elsewhere takes a second job.
            human = rng.choice(humans)
            add(company, human, start=gen.start_date(), schedule_kind=rng.choice(("part2", "part3")))
        elif roll < 0.07:
            start = gen.today - timedelta(days=rng.randrange(400, 3000))
            add(company, gen.human(), start=start, end=gen.today - timedelta(days=rng.randrange(1, 360)))
        elif roll < 0.09:
            add(company, gen.human(), start=gen.today + timedelta(days=rng.randrange(7, 90)))
        else:
            kind = 1 if rng.random() < 0.95 else rng.choice((2, 3))
            add(company, gen.human(), start=gen.start_date(), employee_type=kind)
    return Dataset(
        reference_date=reference_date,
        employee_types=[EmployeeType(id=i, description=d) for i, d in EMPLOYEE_TYPES],
        companies=company_list,
        employees=result,
    )
