"""Property tests (hypothesis) for the candidate scoring in worker.domain.person_scoring."""

from __future__ import annotations

import random
import unicodedata
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.domain.matching import Level
from worker.domain.nmbrs_records import NmbrsEmployee
from worker.domain.person_scoring import PERSON_WEIGHTS, PersonCandidate, score_person
from worker.domain.similarity import jaro_winkler

PROPERTY = settings(max_examples=200, deadline=None)

word = st.text(alphabet="abcdefghijklmnoprstuvwyz", min_size=2, max_size=9).map(str.capitalize)
given_names = st.lists(word, min_size=1, max_size=3).map(" ".join)
prefixes = st.sampled_from(["van", "de", "van der", "van den", "ter", "in 't", "op de", "d'"])
initials = st.lists(st.sampled_from("ABCDEHJKLMPSTW"), min_size=1, max_size=3).map(lambda ls: ".".join(ls) + ".")
birthdays = st.dates(min_value=date(1940, 1, 1), max_value=date(2008, 12, 31))
emails = st.builds(lambda local, domain: f"{local.lower()}@{domain.lower()}.nl", word, word)
phones = st.text(alphabet="0123456789", min_size=8, max_size=8).map(lambda digits: "06" + digits)
postcodes = st.builds(
    lambda number, letters: f"{number}{letters}",
    st.integers(min_value=1000, max_value=9999),
    st.text(alphabet="ABCDEFGHJKLMNPRSTVWXZ", min_size=2, max_size=2),
)


@st.composite
def employees(draw: st.DrawFn) -> NmbrsEmployee:
    return NmbrsEmployee(
        employee_id=draw(st.integers(min_value=1, max_value=10_000)),
        company_id=1,
        first_name=draw(st.none() | given_names),
        nickname=draw(st.none() | word),
        initials=draw(st.none() | initials),
        prefix=draw(st.none() | prefixes),
        last_name=draw(word),
        birthday=draw(st.none() | birthdays),
        email_work=draw(st.none() | emails),
        email_private=draw(st.none() | emails),
        phone_work=draw(st.none() | phones),
        phone_mobile=draw(st.none() | phones),
        postcode=draw(st.none() | postcodes),
    )


@st.composite
def candidates(draw: st.DrawFn) -> PersonCandidate:
    return PersonCandidate(
        person_id=draw(st.integers(min_value=1, max_value=10_000)),
        first_name=draw(st.none() | given_names),
        initials=draw(st.none() | initials),
        prefix=draw(st.none() | prefixes),
        last_name=draw(st.none() | word),
        birthday=draw(st.none() | birthdays),
        emails=tuple(draw(st.lists(emails, max_size=2))),
        phones=tuple(draw(st.lists(phones, max_size=2))),
        postcode=draw(st.none() | postcodes),
        has_login_account=draw(st.booleans()),
    )


def same_data(employee: NmbrsEmployee, postcode: str | None) -> PersonCandidate:
    """A RegiCRM person typed from the same facts as the Nmbrs employee."""
    return PersonCandidate(
        person_id=1,
        first_name=employee.first_name or employee.nickname,
        initials=employee.initials,
        prefix=employee.prefix,
        last_name=employee.last_name,
        birthday=employee.birthday,
        emails=tuple(e for e in (employee.email_work, employee.email_private) if e),
        phones=tuple(p for p in (employee.phone_work, employee.phone_mobile, employee.phone_private) if p),
        postcode=postcode,
    )


_MARKS = ("\u0301", "\u0308", "\u0300", "\u0302", "\u0327")  # acute, diaeresis, grave, circumflex, cedilla


def noisy(text: str | None, rng: random.Random, *, diacritics: bool = True) -> str | None:
    """The same text as a sloppy typist or another system would store it: case, accents, spaces."""
    if text is None:
        return None
    out: list[str] = []
    for char in text:
        char = char.upper() if rng.random() < 0.5 else char.lower()
        if diacritics and char.isalpha() and rng.random() < 0.3:
            char = unicodedata.normalize("NFC", char + rng.choice(_MARKS))
        out.append(char + (" " if char == " " and rng.random() < 0.5 else ""))
    return " " * rng.randint(0, 2) + "".join(out) + " " * rng.randint(0, 2)


def noisy_phone(phone: str, rng: random.Random) -> str:
    national = phone[1:]  # "6xxxxxxxx"
    return rng.choice(
        [
            f"+31 {national[0]} {national[1:]}",
            f"0031-{national}",
            f"+31 (0){national}",
            f"0{national[:1]}-{national[1:]}",
        ]
    )


@PROPERTY
@given(employee=employees(), candidate=candidates())
def test_score_is_between_zero_and_one_and_sums_the_contributions(
    employee: NmbrsEmployee, candidate: PersonCandidate
) -> None:
    scored = score_person(employee, candidate)
    assert 0.0 <= scored.score <= 1.0
    total = sum(c.contribution for c in scored.comparisons)
    assert abs(scored.score - min(1.0, max(0.0, total))) < 1e-4
    assert [c.field for c in scored.comparisons] == list(PERSON_WEIGHTS)


@PROPERTY
@given(
    first=st.text(max_size=15),
    last=st.text(min_size=1, max_size=15),
    prefix=st.none() | st.text(max_size=8),
    other=st.text(max_size=15),
)
def test_arbitrary_unicode_never_breaks_scoring(first: str, last: str, prefix: str | None, other: str) -> None:
    employee = NmbrsEmployee(employee_id=1, company_id=1, first_name=first, last_name=last, prefix=prefix)
    scored = score_person(employee, PersonCandidate(person_id=1, first_name=other, last_name=other, initials=other))
    assert 0.0 <= scored.score <= 1.0
    assert 0.0 <= jaro_winkler(first, other) <= 1.0


@PROPERTY
@given(employee=employees())
def test_person_built_from_the_same_data_scores_the_maximum_for_the_available_fields(
    employee: NmbrsEmployee,
) -> None:
    scored = score_person(employee, same_data(employee, employee.postcode))
    available = {
        "last_name": True,
        "first_name": bool(employee.first_name or employee.nickname or employee.initials),
        "birthday": employee.birthday is not None,
        "email": bool(employee.email_work or employee.email_private),
        "phone": bool(employee.phone_work or employee.phone_mobile or employee.phone_private),
        "postcode": employee.postcode is not None,
    }
    for comparison in scored.comparisons:
        assert comparison.level is (Level.EXACT if available[comparison.field] else Level.MISSING), comparison
    maximum = sum(PERSON_WEIGHTS[field].exact for field, present in available.items() if present)
    assert abs(scored.score - min(1.0, maximum)) < 1e-4


@PROPERTY
@given(employee=employees(), candidate=candidates(), share=st.booleans(), rng=st.randoms(use_true_random=False))
def test_score_is_unchanged_by_diacritic_case_and_whitespace_noise(
    employee: NmbrsEmployee, candidate: PersonCandidate, share: bool, rng: random.Random
) -> None:
    if share:  # often compare the person with (a variant of) itself, not only strangers
        candidate = same_data(employee, candidate.postcode).model_copy(update={"person_id": candidate.person_id})
    noise: dict[str, Any] = {
        "first_name": noisy(candidate.first_name, rng),
        "initials": noisy(candidate.initials, rng),
        "prefix": noisy(candidate.prefix, rng),
        "last_name": noisy(candidate.last_name, rng),
        "emails": tuple(noisy(e, rng, diacritics=False) or "" for e in candidate.emails),
        "phones": tuple(noisy_phone(p, rng) for p in candidate.phones),
        "postcode": (f"{candidate.postcode[:4]} {candidate.postcode[4:].lower()}" if candidate.postcode else None),
    }
    employee = employee.model_copy(update={"postcode": candidate.postcode})
    plain = score_person(employee, candidate)
    varied = score_person(employee, candidate.model_copy(update=noise))
    assert varied.score == plain.score
    assert [c.level for c in varied.comparisons] == [c.level for c in plain.comparisons]


@PROPERTY
@given(
    employee=employees(),
    candidate=candidates(),
    field=st.sampled_from(["last_name", "first_name", "birthday", "email", "phone", "postcode"]),
    new_email=emails,
    new_phone=phones,
    new_birthday=birthdays,
    new_postcode=postcodes,
)
def test_adding_agreeing_evidence_never_lowers_the_score(
    employee: NmbrsEmployee,
    candidate: PersonCandidate,
    field: str,
    new_email: str,
    new_phone: str,
    new_birthday: date,
    new_postcode: str,
) -> None:
    before = score_person(employee, candidate)
    if field == "last_name":
        candidate = candidate.model_copy(update={"last_name": employee.last_name, "prefix": employee.prefix})
    elif field == "first_name":
        candidate = candidate.model_copy(
            update={"first_name": employee.first_name or employee.nickname, "initials": employee.initials}
        )
    elif field == "birthday":
        employee = employee.model_copy(update={"birthday": new_birthday})
        candidate = candidate.model_copy(update={"birthday": new_birthday})
    elif field == "email":
        employee = employee.model_copy(update={"email_private": new_email})
        candidate = candidate.model_copy(update={"emails": (*candidate.emails, new_email.upper())})
    elif field == "phone":
        employee = employee.model_copy(update={"phone_private": new_phone})
        candidate = candidate.model_copy(update={"phones": (*candidate.phones, new_phone)})
    else:
        employee = employee.model_copy(update={"postcode": new_postcode})
        candidate = candidate.model_copy(update={"postcode": new_postcode.lower()})
    after = score_person(employee, candidate)
    assert after.score >= before.score
    assert [c.level for c in after.comparisons if c.field != field] == [
        c.level for c in before.comparisons if c.field != field
    ]
