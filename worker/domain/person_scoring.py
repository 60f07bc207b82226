"""Person scoring for Koppelen: compares an Nmbrs employee with RegiCRM persons field by field and ranks them.

Dutch comparators: tussenvoegsels (in the prefix field, inside the last name or as "Berg, van der"),
diacritics, initials, roepnamen, Dutch phone numbers and postcodes.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from worker.domain.matching import (
    FieldComparison,
    FieldWeights,
    Level,
    compare_single,
    explain_score,
    field_comparison,
    missing_side,
    total_score,
)
from worker.domain.naamstelling import Surname, surname_forms
from worker.domain.nmbrs_records import NmbrsEmployee
from worker.domain.normalisation import (
    agreeing_tussenvoegsel,
    given_names,
    initials_of,
    normalise_email,
    normalise_initials,
    normalise_phone,
    normalise_postcode,
    prefix_readings,
    split_last_name,
    surname_parts,
)
from worker.domain.similarity import CLOSE_NAME_SIMILARITY, jaro_winkler


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PersonCandidate(_Frozen):
    """A RegiCRM person (persoonskaart) offered as a possible match for an Nmbrs employee."""

    person_id: int
    first_name: str | None = None
    initials: str | None = None
    prefix: str | None = Field(None, description="Tussenvoegsel, e.g. 'van der'.")
    last_name: str | None = None
    birthday: date | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    postcode: str | None = None
    has_login_account: bool = Field(
        False, description="The login account hangs off this person: the right one among duplicates."
    )
    is_blue_employee: bool = Field(False, description="A manual ('blue') RegiTijd employee hangs off this person.")
    linked_nmbrs_employee_ids: tuple[int, ...] = ()
    bsn_hash: str | None = Field(None, description="Set when a linked Nmbrs employment carried one.")


class ScoredCandidate(_Frozen):
    """A RegiCRM person with its score, per-field comparisons and flags, for the Koppelen pick list."""

    person_id: int
    score: float = Field(ge=0.0, le=1.0)
    comparisons: tuple[FieldComparison, ...]
    flags: tuple[str, ...] = ()
    has_login_account: bool = False
    explanation: str = Field(min_length=1)


# The weights, in score points (the score is the sum, clamped to [0, 1]). Like Splink's match weights
# they follow how much more often a level is seen for the same human than for two different humans,
# scaled so that "full name + birthday + one contact detail" reaches 1.0:
#
# field       exact  close  different  why
# last_name   +0.30  +0.15  -0.30      the search is by name, so agreement is expected; a different last
#                                      name is strong evidence against, but not decisive (marriage names)
# first_name  +0.15  +0.08  -0.10      many share a first name; roepnaam vs official names often differ,
#                                      so disagreement weighs little
# birthday    +0.30  +0.10  -0.60      Nmbrs needs it for payroll, so it is reliable: a clear
#                                      disagreement outweighs a full name match (below min_score 0.2);
#                                      "near" (day/month swapped, one digit) is a typo, weak support
# email       +0.30   n/a   -0.05      an address belongs to one human; people have several (work,
#                                      private), so a mismatch says little
# phone       +0.20   n/a   -0.05      as e-mail, but numbers are shared within households and reused
# postcode    +0.10   n/a   -0.05      a postcode covers a street; people move
PERSON_WEIGHTS: Mapping[str, FieldWeights] = MappingProxyType(
    {
        "last_name": FieldWeights(exact=0.30, close=0.15, different=-0.30),
        "first_name": FieldWeights(exact=0.15, close=0.08, different=-0.10),
        "birthday": FieldWeights(exact=0.30, close=0.10, different=-0.60),
        "email": FieldWeights(exact=0.30, close=0.0, different=-0.05),
        "phone": FieldWeights(exact=0.20, close=0.0, different=-0.05),
        "postcode": FieldWeights(exact=0.10, close=0.0, different=-0.05),
    }
)


FLAG_BLUE_EMPLOYEE = "blue_employee"
FLAG_LOGIN_ACCOUNT = "has_login_account"
FLAG_LINKED_ELSEWHERE = "already_linked_to_other_employment"
FLAG_SAME_BSN_HASH = "same_bsn_hash"
FLAG_DIFFERENT_BSN_HASH = "different_bsn_hash"


# Common Dutch roepnamen (the name someone goes by) for official first names, both directions.
ROEPNAMEN: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "johannes": frozenset({"jan", "hans", "johan", "joop", "jo", "hannes"}),
        "hendrik": frozenset({"henk", "rik", "henri", "hein", "harry"}),
        "cornelis": frozenset({"kees", "cor", "cees", "niels"}),
        "wilhelmus": frozenset({"wim", "willem", "pim"}),
        "willem": frozenset({"wim", "pim"}),
        "petrus": frozenset({"piet", "peter", "pieter"}),
        "pieter": frozenset({"piet", "peter"}),
        "jacobus": frozenset({"jaap", "koos", "jaco", "co"}),
        "gerardus": frozenset({"gerard", "gert", "gerrit", "geert"}),
        "adrianus": frozenset({"arie", "adri", "ad", "adriaan"}),
        "antonius": frozenset({"toon", "ton", "anton", "teun"}),
        "theodorus": frozenset({"theo", "ruud", "dorus"}),
        "franciscus": frozenset({"frans", "frank", "cis"}),
        "josephus": frozenset({"joop", "jos", "sjef", "joost"}),
        "maria": frozenset({"mies", "mieke", "marieke", "ria", "marie"}),
        "johanna": frozenset({"anneke", "jo", "joke", "hanneke", "annie", "hanna"}),
        "catharina": frozenset({"toos", "tineke", "ina", "karin", "rina", "trijntje"}),
        "elisabeth": frozenset({"els", "lies", "betty", "elise", "liesbeth", "bep"}),
        "wilhelmina": frozenset({"mina", "willemijn", "wil", "mien", "willy"}),
        "geertruida": frozenset({"truus", "geertje", "trudy", "truida"}),
        "hendrika": frozenset({"riek", "rika", "henny", "ria"}),
        "cornelia": frozenset({"corrie", "cor", "nel", "nelleke", "cora"}),
        "petronella": frozenset({"nel", "nelly", "ellen", "pleun"}),
    }
)


def _is_roepnaam_pair(a: str, b: str) -> bool:
    return b in ROEPNAMEN.get(a, frozenset()) or a in ROEPNAMEN.get(b, frozenset())


def _is_subsequence(short: str, long: str) -> bool:
    remaining = iter(long)
    return all(char in remaining for char in short)


def _initials_compatible(a: str, b: str) -> bool:
    """'jp' and 'j' are compatible (one uses fewer names); 'p' and 'jp' too (roepnaam is a second name)."""
    return _is_subsequence(a, b) or _is_subsequence(b, a)


def _show(*parts: str | None) -> str | None:
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return text or None


def _show_all(values: Iterable[str | None]) -> str | None:
    return ", ".join(v.strip() for v in values if v and v.strip()) or None


def _surname_text(prefix: str, core: str) -> str:
    return f"{prefix} {core}".strip()


def _how_read(agreed: str, *typed: str) -> str:
    """What was read into an abbreviated or differently spelled tussenvoegsel, for HR: "; tussenvoegsel 'v.d.'
    read as 'van den' (one of 'van der', 'van den', 'van de')"."""
    notes = []
    for prefix in dict.fromkeys(typed):
        if prefix == agreed:
            continue
        readings = prefix_readings(prefix)
        listed = ", ".join(f"'{r}'" for r in readings)
        options = f" (one of {listed})" if len(readings) > 1 else ""
        notes.append(f"tussenvoegsel '{prefix}' read as '{agreed}'{options}")
    return "".join(f"; {note}" for note in notes)


def _compact(text: str) -> str:
    return re.sub(r"[\s']", "", text)


# Best first: the form of a surname that agrees best with a card is the one that counts.
_LEVEL_ORDER = (Level.EXACT, Level.CLOSE, Level.DIFFERENT, Level.MISSING)
_FORM_NAMES = {
    "partner": "the partner's name",
    "partner-own": "the partner's name then the own",
    "own-partner": "the own name then the partner's",
}


def compare_last_name(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    """Surname after tussenvoegsel handling: exact (an abbreviated tussenvoegsel agrees with each form it stands
    for), close (tussenvoegsel differs, Jaro-Winkler, one part of a double surname) or different. Every form the
    naamstelling allows (own, the partner's, both joined either way) is compared; the best one counts and the
    note names it when it is not the own name."""
    shown_r = _show(candidate.prefix, candidate.last_name)
    best: tuple[Level, str, Surname] | None = None
    for form in surname_forms(employee.prefix, employee.last_name, employee.partner_prefix, employee.partner_last_name):
        level, note = _compare_surname(form.prefix, form.last_name, candidate)
        if best is None or _LEVEL_ORDER.index(level) < _LEVEL_ORDER.index(best[0]):
            best = (level, note, form)
    assert best is not None  # the own form is always there
    level, note, form = best
    if form.form in _FORM_NAMES and level in (Level.EXACT, Level.CLOSE):
        note += f" ({_FORM_NAMES[form.form]}, as the naamstelling allows)"
    shown_n = (
        _show(form.prefix, form.last_name) if form.form in _FORM_NAMES else _show(employee.prefix, employee.last_name)
    )
    return field_comparison("last_name", PERSON_WEIGHTS, shown_n, shown_r, level, note)


def _compare_surname(prefix: str | None, last_name: str, candidate: PersonCandidate) -> tuple[Level, str]:
    n_prefix, n_core = split_last_name(last_name, prefix)
    r_prefix, r_core = split_last_name(candidate.last_name, candidate.prefix)
    if not n_core or not r_core:
        return Level.MISSING, "no last name on " + missing_side(not n_core, not r_core)
    n_full, r_full = _surname_text(n_prefix, n_core), _surname_text(r_prefix, r_core)
    agreed = agreeing_tussenvoegsel(n_prefix, r_prefix)
    if n_core == r_core and agreed is not None:
        with_prefix = f" with tussenvoegsel '{agreed}'" if agreed else ""
        return Level.EXACT, f"surname '{n_core}'{with_prefix} agrees{_how_read(agreed, n_prefix, r_prefix)}"
    # Written together on one side ('Vanderberg'), each reading of an abbreviation counts.
    for n_reading in dict.fromkeys((n_prefix, *prefix_readings(n_prefix))):
        for r_reading in dict.fromkeys((r_prefix, *prefix_readings(r_prefix))):
            if _compact(f"{n_reading}{n_core}") == _compact(f"{r_reading}{r_core}"):
                shown = _surname_text(n_reading, n_core), _surname_text(r_reading, r_core)
                read = _how_read(n_reading, n_prefix) + _how_read(r_reading, r_prefix)
                return Level.EXACT, f"'{shown[0]}' and '{shown[1]}' agree once spaces are ignored{read}"
    if n_core == r_core:
        return Level.CLOSE, f"surname '{n_core}' agrees, tussenvoegsel differs ('{n_prefix}' vs '{r_prefix}')"
    similarity = jaro_winkler(n_core, r_core)
    if similarity >= CLOSE_NAME_SIMILARITY:
        return Level.CLOSE, f"surname '{n_core}' is close to '{r_core}' (Jaro-Winkler {similarity:.2f})"
    shared = surname_parts(last_name, prefix) & surname_parts(candidate.last_name, candidate.prefix)
    if shared:
        return Level.CLOSE, f"one part of a double surname agrees ('{sorted(shared)[0]}')"
    return Level.DIFFERENT, f"surname '{n_full}' differs from '{r_full}' (Jaro-Winkler {similarity:.2f})"


def compare_first_name(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    """First name, roepnaam (nickname) or initials: exact, close (one given name, a known roepnaam, a
    typo, or compatible initials when one side has only initials) or different."""
    n_names = [n for n in dict.fromkeys((given_names(employee.first_name), given_names(employee.nickname))) if n]
    r_name = given_names(candidate.first_name)
    n_initials = [
        i
        for i in dict.fromkeys(
            (
                normalise_initials(employee.initials),
                initials_of(employee.first_name),
                initials_of(employee.nickname),
            )
        )
        if i
    ]
    r_initials = [
        i for i in dict.fromkeys((normalise_initials(candidate.initials), initials_of(candidate.first_name))) if i
    ]
    shown_n = _show(
        employee.first_name,
        f"({employee.nickname})" if employee.nickname else None,
        f"[{employee.initials}]" if employee.initials else None,
    )
    shown_r = _show(candidate.first_name, f"[{candidate.initials}]" if candidate.initials else None)

    def result(level: Level, note: str) -> FieldComparison:
        return field_comparison("first_name", PERSON_WEIGHTS, shown_n, shown_r, level, note)

    if n_names and r_name:
        if r_name in n_names:
            return result(Level.EXACT, f"first name '{r_name}' agrees")
        n_tokens = {t for name in n_names for t in name.split()}
        r_tokens = set(r_name.split())
        if n_tokens & r_tokens:
            return result(Level.CLOSE, f"given name '{sorted(n_tokens & r_tokens)[0]}' appears on both sides")
        for a in n_tokens:
            for b in r_tokens:
                if _is_roepnaam_pair(a, b):
                    return result(Level.CLOSE, f"'{b}' and '{a}' are a common first name and its roepnaam")
        best = max(jaro_winkler(name, r_name) for name in n_names)
        if best >= CLOSE_NAME_SIMILARITY:
            return result(Level.CLOSE, f"first names are close (Jaro-Winkler {best:.2f})")
        return result(Level.DIFFERENT, f"first names '{' / '.join(n_names)}' and '{r_name}' differ")
    if not n_initials or not r_initials:
        side = missing_side(not n_initials, not r_initials)
        return result(Level.MISSING, f"no first name or initials on {side}")
    if not n_names and not r_name and n_initials[0] == r_initials[0]:
        return result(Level.EXACT, f"initials '{n_initials[0].upper()}' agree (no first names on either side)")
    for a in n_initials:
        for b in r_initials:
            if _initials_compatible(a, b):
                if a == b:
                    return result(Level.CLOSE, f"initials '{a.upper()}' agree (first names on one side only)")
                return result(Level.CLOSE, f"initials '{a.upper()}' and '{b.upper()}' are compatible")
    return result(
        Level.DIFFERENT,
        f"initials '{n_initials[0].upper()}' and '{r_initials[0].upper()}' are not compatible",
    )


# Placeholder birthdays some HR systems store when the real one is unknown; they are not evidence.
_PLACEHOLDER_YEAR_MAX = 1900


def compare_birthday(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    """Date of birth: exact, near (day and month swapped, or one digit differs) or different."""
    a, b = employee.birthday, candidate.birthday
    shown_n, shown_r = (a.isoformat() if a else None), (b.isoformat() if b else None)

    def result(level: Level, note: str) -> FieldComparison:
        return field_comparison("birthday", PERSON_WEIGHTS, shown_n, shown_r, level, note)

    if a is None or b is None:
        return result(Level.MISSING, "no date of birth on " + missing_side(a is None, b is None))
    if a.year <= _PLACEHOLDER_YEAR_MAX or b.year <= _PLACEHOLDER_YEAR_MAX:
        return result(Level.MISSING, f"a placeholder date of birth (year {_PLACEHOLDER_YEAR_MAX} or before)")
    if a == b:
        return result(Level.EXACT, f"date of birth {a.isoformat()} agrees")
    if a.year == b.year and a.day == b.month and a.month == b.day:
        return result(Level.CLOSE, "day and month are swapped (a typo)")
    differing = sum(x != y for x, y in zip(a.strftime("%Y%m%d"), b.strftime("%Y%m%d"), strict=True))
    if differing == 1:
        return result(Level.CLOSE, "one digit differs (a typo)")
    return result(Level.DIFFERENT, f"dates of birth differ ({a.isoformat()} vs {b.isoformat()})")


def _compare_sets(
    field: str,
    label: str,
    nmbrs: Sequence[tuple[str, str | None]],
    regi: Sequence[str | None],
    normalise: Callable[[str | None], str | None],
) -> FieldComparison:
    """Any-of comparison of several values per side (work/private e-mail, several phone numbers)."""
    shown_n = _show_all(value for _, value in nmbrs)
    shown_r = _show_all(regi)
    n_values = {normalise(value): kind for kind, value in nmbrs if normalise(value)}
    r_values = {normalise(value) for value in regi} - {None}
    if not n_values or not r_values:
        side = missing_side(not n_values, not r_values)
        return field_comparison(field, PERSON_WEIGHTS, shown_n, shown_r, Level.MISSING, f"no {label} on {side}")
    common = sorted(v for v in n_values if v in r_values and v is not None)
    if common:
        return field_comparison(
            field,
            PERSON_WEIGHTS,
            shown_n,
            shown_r,
            Level.EXACT,
            f"{label} {common[0]} ({n_values[common[0]]}) agrees",
        )
    return field_comparison(field, PERSON_WEIGHTS, shown_n, shown_r, Level.DIFFERENT, f"no {label} in common")


def compare_email(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    return _compare_sets(
        "email",
        "e-mail",
        (("work", employee.email_work), ("private", employee.email_private)),
        candidate.emails,
        normalise_email,
    )


def compare_phone(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    return _compare_sets(
        "phone",
        "phone number",
        (
            ("work", employee.phone_work),
            ("mobile", employee.phone_mobile),
            ("private", employee.phone_private),
        ),
        candidate.phones,
        normalise_phone,
    )


def score_person(employee: NmbrsEmployee, candidate: PersonCandidate) -> ScoredCandidate:
    """Score one RegiCRM person for an Nmbrs employee, with one comparison per field in PERSON_WEIGHTS."""
    comparisons = (
        compare_last_name(employee, candidate),
        compare_first_name(employee, candidate),
        compare_birthday(employee, candidate),
        compare_email(employee, candidate),
        compare_phone(employee, candidate),
        compare_single(
            PERSON_WEIGHTS, "postcode", "postcode", employee.postcode, candidate.postcode, normalise_postcode
        ),
    )
    flags: list[str] = []
    if candidate.has_login_account:
        flags.append(FLAG_LOGIN_ACCOUNT)
    if candidate.is_blue_employee:
        flags.append(FLAG_BLUE_EMPLOYEE)
    if set(candidate.linked_nmbrs_employee_ids) - {employee.employee_id}:
        flags.append(FLAG_LINKED_ELSEWHERE)
    if employee.bsn_hash and candidate.bsn_hash:
        flags.append(FLAG_SAME_BSN_HASH if employee.bsn_hash == candidate.bsn_hash else FLAG_DIFFERENT_BSN_HASH)
    score = total_score(comparisons)
    return ScoredCandidate(
        person_id=candidate.person_id,
        score=score,
        comparisons=comparisons,
        flags=tuple(flags),
        has_login_account=candidate.has_login_account,
        explanation=explain_score(score, comparisons, flags),
    )


def person_rank(scored: ScoredCandidate) -> tuple[float, bool, int]:
    """Sort key of the pick list."""
    # Highest score first; among equals the person with the login account (docs/domain.md: duplicates
    # exist and the right person is the one with the login account), then the lowest id (stable).
    return (-scored.score, not scored.has_login_account, scored.person_id)


def score_candidates(employee: NmbrsEmployee, candidates: Iterable[PersonCandidate]) -> list[ScoredCandidate]:
    """Every candidate scored, best first (see person_rank); a person found twice counts once."""
    unique = {c.person_id: c for c in reversed(list(candidates))}  # a person found twice counts once
    scored = [score_person(employee, c) for c in unique.values()]
    return sorted(scored, key=person_rank)
