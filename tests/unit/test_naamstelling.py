"""Naamstelling: the surname an employee goes by, and every form a card may carry."""

from __future__ import annotations

import pytest

from worker.domain.naamstelling import NameUsage, display_surname, parse_name_usage, surname_forms


@pytest.mark.parametrize(
    ("code", "usage"),
    [
        ("E", NameUsage.OWN),
        ("p", NameUsage.PARTNER),
        ("V", NameUsage.PARTNER_THEN_OWN),
        ("N", NameUsage.OWN_THEN_PARTNER),
        ("2", NameUsage.PARTNER_THEN_OWN),
        ("Naam partner gevolgd door eigen naam", NameUsage.PARTNER_THEN_OWN),
        ("Eigen naam - naam partner", NameUsage.OWN_THEN_PARTNER),
        (None, NameUsage.OWN),
        ("?", NameUsage.OWN),
    ],
)
def test_the_code_is_read_in_every_spelling_and_anything_else_is_the_own_name(
    code: str | None, usage: NameUsage
) -> None:
    assert parse_name_usage(code) is usage


def test_the_displayed_surname_follows_the_naamstelling_with_each_parts_tussenvoegsel() -> None:
    def shown(usage: NameUsage) -> str:
        return display_surname(usage, None, "Visser", "de", "Groot").written

    assert shown(NameUsage.OWN) == "Visser"
    assert shown(NameUsage.PARTNER) == "de Groot"
    assert shown(NameUsage.PARTNER_THEN_OWN) == "de Groot-Visser"
    assert shown(NameUsage.OWN_THEN_PARTNER) == "Visser-de Groot"
    own_prefix = display_surname(NameUsage.PARTNER_THEN_OWN, "van", "Dijk", None, "Smit")
    assert (own_prefix.prefix, own_prefix.last_name) == ("", "Smit-van Dijk")
    # Without a partner's name the partner's forms cannot be used: the own name it is.
    assert display_surname(NameUsage.PARTNER, "van", "Dijk", None, None).written == "van Dijk"


def test_a_card_may_carry_any_form_whatever_the_naamstelling_says_today() -> None:
    forms = {form.form: form.written for form in surname_forms("van", "Dijk", "de", "Groot")}
    assert forms == {
        "own": "van Dijk",
        "partner": "de Groot",
        "partner-own": "de Groot-van Dijk",
        "own-partner": "van Dijk-de Groot",
    }
    assert [form.written for form in surname_forms(None, "Visser", None, "")] == ["Visser"]
