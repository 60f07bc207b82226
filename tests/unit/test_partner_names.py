"""A card carries the surname the employee goes by: own, the partner's, or both joined (the naamstelling)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from tests.builders import nmbrs_employee
from worker.domain.matching import Level
from worker.domain.naamstelling import NameUsage, surname_forms
from worker.domain.person_scoring import PersonCandidate, compare_last_name, score_candidates

# Anna Visser, married to Bram de Groot.
ANNA = nmbrs_employee(
    first_name="Anna",
    prefix=None,
    last_name="Visser",
    partner_prefix="de",
    partner_last_name="Groot",
    name_usage=NameUsage.PARTNER_THEN_OWN,
    birthday=date(1984, 5, 6),
)


def card(prefix: str | None, last_name: str) -> PersonCandidate:
    return PersonCandidate(
        person_id=1, first_name="Anna", prefix=prefix, last_name=last_name, birthday=date(1984, 5, 6)
    )


def test_every_form_the_naamstelling_allows_agrees_and_the_note_names_it() -> None:
    for prefix, last_name, named in [
        (None, "Visser", None),
        ("de", "Groot", "the partner's name"),
        ("de", "Groot-Visser", "the partner's name then the own"),
        ("de", "Groot Visser", "the partner's name then the own"),  # without the hyphen
        (None, "Visser-de Groot", "the own name then the partner's"),
        (None, "Groot-Visser, de", "the partner's name then the own"),  # the tussenvoegsel after a comma
    ]:
        comparison = compare_last_name(ANNA, card(prefix, last_name))
        assert comparison.level is Level.EXACT, (prefix, last_name, comparison.note)
        if named:
            assert f"({named}, as the naamstelling allows)" in comparison.note
        else:
            assert "naamstelling" not in comparison.note


def test_a_partner_name_agrees_whatever_the_naamstelling_says_today_but_not_someone_elses() -> None:
    # Divorced since (own name again), the old card with the partner's name still agrees.
    divorced = ANNA.model_copy(update={"name_usage": NameUsage.OWN})
    assert compare_last_name(divorced, card("de", "Groot-Visser")).level is Level.EXACT
    # Without a partner's name in Nmbrs, "de Groot" is someone else's surname.
    single = ANNA.model_copy(update={"partner_prefix": None, "partner_last_name": None})
    assert compare_last_name(single, card("de", "Groot")).level is Level.DIFFERENT


def test_the_married_card_wins_over_a_look_alike_with_only_the_own_surname_close() -> None:
    married, other = card("de", "Groot-Visser"), card(None, "Visscher").model_copy(update={"person_id": 2})
    ranked = score_candidates(ANNA, [other, married])
    assert ranked[0].person_id == 1


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10).map(str.capitalize)
prefixes = st.sampled_from([None, "de", "van", "van der", "ter"])


@given(own=names, own_prefix=prefixes, partner=names, partner_prefix=prefixes, usage=st.sampled_from(list(NameUsage)))
def test_whatever_the_names_each_form_of_them_on_a_card_agrees_exactly(
    own: str, own_prefix: str | None, partner: str, partner_prefix: str | None, usage: NameUsage
) -> None:
    employee = nmbrs_employee(
        prefix=own_prefix, last_name=own, partner_prefix=partner_prefix, partner_last_name=partner, name_usage=usage
    )
    for form in surname_forms(own_prefix, own, partner_prefix, partner):
        assert compare_last_name(employee, card(form.prefix or None, form.last_name)).level is Level.EXACT, form
