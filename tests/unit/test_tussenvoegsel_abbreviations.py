"""Tussenvoegsels as people type them on RegiCRM cards ('v.d.', 'v/d', 'vd', "'t", 'Berg, A. van den'): read as
the prefixes they stand for by split_last_name, the matcher and the HR search's criteria (issue 18)."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.adapters.crm_search import FOLDED_FULL_NAME, SearchCriteria, sql_fold_literal
from worker.adapters.migrations import load_migrations
from worker.domain.matching import FieldComparison, Level
from worker.domain.nmbrs_records import NmbrsEmployee
from worker.domain.normalisation import (
    TUSSENVOEGSEL_ABBREVIATIONS,
    TUSSENVOEGSEL_WORDS,
    agreeing_tussenvoegsel,
    prefix_readings,
    split_last_name,
    tussenvoegsel_spellings,
)
from worker.domain.person_scoring import PersonCandidate, compare_last_name

PROPERTY = settings(max_examples=300, deadline=None)


def employee(last_name: str, prefix: str | None = None) -> NmbrsEmployee:
    return NmbrsEmployee(employee_id=1, company_id=1, first_name="Jan", prefix=prefix, last_name=last_name)


def card(last_name: str, prefix: str | None = None) -> PersonCandidate:
    return PersonCandidate(person_id=1, first_name="Jan", prefix=prefix, last_name=last_name)


def surname(nmbrs: tuple[str, str | None], regi: tuple[str, str | None]) -> FieldComparison:
    return compare_last_name(employee(*nmbrs), card(*regi))


# --- reading the cards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_name", "prefix", "expected"),
    [
        # Each abbreviation of van der/den/de, before the surname, in the prefix field or after a comma.
        ("v.d. Meer", None, ("v.d.", "meer")),
        ("v.d Meer", None, ("v.d.", "meer")),
        ("v/d Meer", None, ("v.d.", "meer")),
        ("vd Meer", None, ("v.d.", "meer")),
        ("V.d. Meer", None, ("v.d.", "meer")),
        ("VD Meer", None, ("v.d.", "meer")),
        ("v. d. Meer", None, ("v.d.", "meer")),
        ("Meer", "v.d.", ("v.d.", "meer")),
        ("Meer", "V.D.", ("v.d.", "meer")),  # the prefix field holds nothing but tussenvoegsels
        ("Meer, v.d.", None, ("v.d.", "meer")),
        ("Meer, v/d", None, ("v.d.", "meer")),
        ("v. Dijk", None, ("v.", "dijk")),
        ("v.h. Hof", None, ("v.h.", "hof")),
        ("v.t. Hof", None, ("v.t.", "hof")),
        ("i.d. Betouw", None, ("i.d.", "betouw")),
        ("o.d. Weegh", None, ("o.d.", "weegh")),
        ("a.d. Stegge", None, ("a.d.", "stegge")),
        # d' and de with or without capitals.
        ("D'Ancona", None, ("d'", "ancona")),
        ("d' Ancona", None, ("d'", "ancona")),
        ("De Vries", None, ("de", "vries")),
        ("DE VRIES", None, ("de", "vries")),
        # The tussenvoegsel before or after the initials, initials typed into the last name left out.
        ("Berg, A. van den", None, ("van den", "berg")),
        ("Berg, van den, A.", None, ("van den", "berg")),
        ("A. van den Berg", None, ("van den", "berg")),
        ("J.P. v.d. Berg", None, ("v.d.", "berg")),
        ("Meer, J. van der", None, ("van der", "meer")),
        ("Meer, J. v.d.", None, ("v.d.", "meer")),
        ("Berg, A.", None, ("", "berg")),
        # The prefix field repeating the last name's tussenvoegsel, abbreviated: the spelled-out form is kept.
        ("van der Meer", "v.d.", ("van der", "meer")),
        ("v.d. Meer", "van der", ("van der", "meer")),
    ],
)
def test_typed_tussenvoegsels_split_off_as_their_abbreviation(
    last_name: str, prefix: str | None, expected: tuple[str, str]
) -> None:
    assert split_last_name(last_name, prefix) == expected


@pytest.mark.parametrize(
    ("last_name", "expected"),
    [
        ("V. Dijk", ("", "dijk")),  # a capital with a dot is an initial, not 'van'
        ("A.D. Stegge", ("", "stegge")),  # initials A.D., not 'aan de'
        ("Vd", ("", "vd")),  # a surname that is only an abbreviation keeps it as the surname
        ("Ad Stegge", ("", "ad stegge")),  # 'Ad' is a first name: only 'vd' is read without dots
        ("A.", ("", "a")),  # nothing but an initial: kept rather than no surname at all
    ],
)
def test_initials_and_lookalikes_are_not_read_as_abbreviations(last_name: str, expected: tuple[str, str]) -> None:
    assert split_last_name(last_name) == expected


@pytest.mark.parametrize(
    ("prefix", "readings"),
    [
        ("v.", ("van",)),
        ("v.d.", ("van der", "van den", "van de")),
        ("v.h.", ("van 't",)),
        ("v.t.", ("van 't",)),
        ("i.d.", ("in de", "in den", "in der")),
        ("o.d.", ("op de", "op den", "op der")),
        ("a.d.", ("aan de", "aan den", "aan der")),
        ("v. der", ("van der",)),
        ("van het", ("van 't",)),
        ("in t", ("in 't",)),
        ("van der", ("van der",)),
        ("", ("",)),
    ],
)
def test_an_abbreviation_reads_as_each_tussenvoegsel_it_stands_for(prefix: str, readings: tuple[str, ...]) -> None:
    assert prefix_readings(prefix) == readings


def test_the_table_spells_every_reading_out_in_tussenvoegsel_words() -> None:
    for readings in TUSSENVOEGSEL_ABBREVIATIONS.values():
        for reading in readings:
            assert all(word in TUSSENVOEGSEL_WORDS for word in reading.split()), reading


# --- the matcher ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nmbrs_prefix", ["van der", "van den", "van de"])
@pytest.mark.parametrize("typed", ["v.d. Berg", "v/d Berg", "vd Berg", "Berg, v.d.", "Berg, A. v.d.", "V.d. Berg"])
def test_the_ambiguous_vd_agrees_exactly_with_each_form_and_says_which_it_read(nmbrs_prefix: str, typed: str) -> None:
    comparison = surname(("Berg", nmbrs_prefix), (typed, None))
    assert comparison.level is Level.EXACT
    assert f"tussenvoegsel 'v.d.' read as '{nmbrs_prefix}'" in comparison.note
    assert "one of 'van der', 'van den', 'van de'" in comparison.note


@pytest.mark.parametrize(
    ("nmbrs", "regi", "read"),
    [
        (("Dijk", "van"), ("v. Dijk", None), "'v.' read as 'van'"),
        (("Hof", "van 't"), ("v.h. Hof", None), "'v.h.' read as 'van 't'"),
        (("Hof", "van 't"), ("Hof", "van het"), "'van het' read as 'van 't'"),
        (("Hof", "van het"), ("v.t. Hof", None), "'v.t.' read as 'van het'"),
        (("Veld", "in 't"), ("Veld", "in het"), "'in het' read as 'in 't'"),
        (("Betouw", "in de"), ("i.d. Betouw", None), "'i.d.' read as 'in de'"),
        (("Weegh", "op den"), ("Weegh, o.d.", None), "'o.d.' read as 'op den'"),
        (("Stegge", "aan der"), ("a.d. Stegge", None), "'a.d.' read as 'aan der'"),
        (("Berg", "v.d."), ("Berg", "van den"), "'v.d.' read as 'van den'"),  # abbreviated in Nmbrs
    ],
)
def test_each_abbreviation_agrees_exactly_with_what_it_stands_for(
    nmbrs: tuple[str, str | None], regi: tuple[str, str | None], read: str
) -> None:
    comparison = surname(nmbrs, regi)
    assert comparison.level is Level.EXACT
    assert f"tussenvoegsel {read}" in comparison.note


@pytest.mark.parametrize(
    ("nmbrs", "regi"),
    [
        (("Berg", "van der"), ("v. Berg", None)),  # 'v.' is van, not van der
        (("Berg", "ter"), ("v.d. Berg", None)),
        (("Berg", "in de"), ("o.d. Berg", None)),
        (("Berg", "van der"), ("V.D. Berg", None)),  # initials V.D. typed before the surname: no tussenvoegsel
    ],
)
def test_an_abbreviation_that_stands_for_another_tussenvoegsel_is_only_close(
    nmbrs: tuple[str, str | None], regi: tuple[str, str | None]
) -> None:
    comparison = surname(nmbrs, regi)
    assert comparison.level is Level.CLOSE
    assert "tussenvoegsel differs" in comparison.note


def test_the_same_abbreviation_on_both_sides_needs_no_reading() -> None:
    comparison = surname(("v/d Berg", None), ("Berg", "v.d."))
    assert comparison.level is Level.EXACT
    assert comparison.note == "surname 'berg' with tussenvoegsel 'v.d.' agrees"


def test_an_abbreviation_agrees_with_the_surname_written_together() -> None:
    comparison = surname(("Vandenberg", None), ("v.d. Berg", None))
    assert comparison.level is Level.EXACT
    assert "'vandenberg' and 'van den berg' agree once spaces are ignored" in comparison.note
    assert "tussenvoegsel 'v.d.' read as 'van den'" in comparison.note


def test_spelled_out_names_keep_their_explanation() -> None:
    comparison = surname(("Berg", "van der"), ("van der Berg", None))
    assert comparison.note == "surname 'berg' with tussenvoegsel 'van der' agrees"


# --- the HR search's criteria --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "core", "must_offer"),
    [
        ("van der meer", ["meer"], {"van der", "v.d.", "v.d", "v/d", "vd"}),
        ("v.d. meer", ["meer"], {"van der", "van den", "van de", "v.d", "vd"}),
        ("Meer, v/d", ["meer"], {"van der", "van den", "van de"}),
        ("J. vd Meer", ["j", "meer"], {"van der", "v.d"}),
        ("jan van 't hof", ["jan", "hof"], {"van 't", "van het", "v.h", "v.t"}),
    ],
)
def test_the_search_offers_every_spelling_of_the_typed_tussenvoegsel(
    text: str, core: list[str], must_offer: set[str]
) -> None:
    criteria = SearchCriteria(text)
    assert criteria.core_words == core
    (spellings,) = criteria.prefix_spellings
    assert must_offer <= set(spellings)


def test_the_stored_full_name_folds_the_name_parts_as_the_search_does() -> None:
    # crm_persons.folded_full_name is a generated column: the migration holds the folding written out. A change of
    # normalisation.fold() must come with a migration that writes it anew (as for crm_persons.match_name).
    latest = [m for m in load_migrations() if "folded_full_name" in m.sql][-1]
    assert sql_fold_literal(FOLDED_FULL_NAME) in latest.sql


@pytest.mark.parametrize("text", ["berg", "de vries", "van der", "anna@zon.nl", "06-12345678"])
def test_the_search_reads_no_alternatives_where_the_typed_tokens_say_all(text: str) -> None:
    criteria = SearchCriteria(text)
    assert (criteria.core_words, criteria.prefix_spellings) == ([], [])


# --- properties over generated name variants -----------------------------------------------------------------

_READINGS = sorted({reading for readings in TUSSENVOEGSEL_ABBREVIATIONS.values() for reading in readings})
_CORE_LETTERS = "abcdefghijklmnoprstuwyz"
cores = (
    st.text(alphabet=_CORE_LETTERS, min_size=3, max_size=10)
    .filter(lambda w: w not in TUSSENVOEGSEL_WORDS)
    .map(str.capitalize)
)
initials = st.lists(st.sampled_from("ABCDEHJKLMPSTW"), min_size=1, max_size=3).map(lambda ls: ".".join(ls) + ".")


def typed_forms(key: str) -> list[str]:
    """How people type an abbreviation, written out here independently of the implementation."""
    if len(key) == 1:
        return [f"{key}."]  # 'V.' is an initial
    a, b = key
    forms = [f"{a}.{b}.", f"{a}.{b}", f"{a}/{b}", f"{a}. {b}.", f"{a.upper()}.{b}.", f"{a.upper()}/{b.upper()}"]
    return forms + ([f"{a}{b}", f"{a.upper()}{b.upper()}"] if key == "vd" else [])


@st.composite
def typed_tussenvoegsel(draw: st.DrawFn) -> tuple[str, str]:
    """(the real tussenvoegsel, as someone typed it): spelled out in any case, or abbreviated."""
    key = draw(st.sampled_from(sorted(TUSSENVOEGSEL_ABBREVIATIONS)))
    real = draw(st.sampled_from(TUSSENVOEGSEL_ABBREVIATIONS[key]))
    spelled = draw(st.sampled_from([real, real.capitalize(), real.upper(), real.replace("'t", "het")]))
    return real, draw(st.sampled_from([spelled, *typed_forms(key)]))


class Card(NamedTuple):
    real: str  # the tussenvoegsel the card means
    core: str  # the surname without it, folded
    last_name: str
    prefix: str | None


@st.composite
def cards(draw: st.DrawFn) -> Card:
    """A card's last name and prefix field as HR writes them: the tussenvoegsel before the surname, in the
    prefix field or after a comma, with initials before or after it."""
    core, letters = draw(cores), draw(initials)
    real, typed = draw(typed_tussenvoegsel())
    layouts: list[tuple[str, str | None]] = [
        (f"{typed} {core}", None),
        (core, typed),
        (f"{core}, {typed}", None),
        (f"{letters} {typed} {core}", None),
        (f"{core}, {letters} {typed}", None),
        (f"{core}, {typed}, {letters}", None),
    ]
    return Card(real, core.lower(), *draw(st.sampled_from(layouts)))


@PROPERTY
@given(variant=cards())
def test_every_typed_variant_splits_to_the_same_core_and_reads_the_real_tussenvoegsel(variant: Card) -> None:
    found_prefix, found_core = split_last_name(variant.last_name, variant.prefix)
    assert found_core == variant.core
    assert set(prefix_readings(variant.real)) <= set(prefix_readings(found_prefix))  # 'het' read as ''t'
    assert agreeing_tussenvoegsel(found_prefix, variant.real) is not None
    # The HR search, given the real tussenvoegsel, offers a spelling that the card's own text contains.
    text = f"{variant.prefix or ''} {variant.last_name}".lower()
    assert any(spelling in text for spelling in tussenvoegsel_spellings(variant.real))


@PROPERTY
@given(a=cards(), b=cards(), same_core=st.booleans())
def test_surname_agreement_is_symmetric(a: Card, b: Card, same_core: bool) -> None:
    if same_core:  # often the same surname, so that the tussenvoegsel decides
        b = b._replace(last_name=b.last_name.replace(b.core.capitalize(), a.core.capitalize()))
    forward = compare_last_name(employee(a.last_name, a.prefix), card(b.last_name, b.prefix))
    backward = compare_last_name(employee(b.last_name, b.prefix), card(a.last_name, a.prefix))
    assert forward.level is backward.level, (forward.note, backward.note)


_ORDER = {Level.DIFFERENT: 0, Level.MISSING: 0, Level.CLOSE: 1, Level.EXACT: 2}


@PROPERTY
@given(
    core=cores,
    other_core=cores,
    same_core=st.booleans(),
    nmbrs_prefix=st.sampled_from(["", *_READINGS]),
    card_real=typed_tussenvoegsel(),
    written=st.integers(min_value=0, max_value=2),
)
def test_abbreviating_a_tussenvoegsel_never_loses_agreement(
    core: str, other_core: str, same_core: bool, nmbrs_prefix: str, card_real: tuple[str, str], written: int
) -> None:
    real, typed = card_real
    card_core = core if same_core else other_core
    layouts = [
        lambda p: (f"{p} {card_core}", None),
        lambda p: (card_core, p),
        lambda p: (f"{card_core}, {p}", None),
    ]
    nmbrs = employee(core, nmbrs_prefix or None)
    spelled = compare_last_name(nmbrs, card(*layouts[written](real)))
    abbreviated = compare_last_name(nmbrs, card(*layouts[written](typed)))
    assert _ORDER[abbreviated.level] >= _ORDER[spelled.level], (spelled.note, abbreviated.note)
