"""Candidate matching for Koppelen (person_scoring, person_matching, organisation_matching): comparators, decisions."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from worker.domain.matching import Level, MatchPolicy
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee
from worker.domain.normalisation import (
    fold,
    initials_of,
    normalise_email,
    normalise_kvk,
    normalise_organisation_name,
    normalise_phone,
    normalise_postcode,
    normalise_website,
    split_last_name,
)
from worker.domain.organisation_matching import (
    ORGANISATION_WEIGHTS,
    OrganisationAutoLink,
    OrganisationCandidate,
    OrganisationNeedsDecision,
    ScoredOrganisation,
    decide_organisation_match,
    score_organisation,
)
from worker.domain.person_matching import AutoLink, NeedsDecision, decide_match
from worker.domain.person_scoring import PERSON_WEIGHTS, PersonCandidate, ScoredCandidate, score_person
from worker.domain.similarity import jaro_winkler

BIRTHDAY = date(1984, 3, 17)


def employee(**overrides: Any) -> NmbrsEmployee:
    fields: dict[str, Any] = {
        "employee_id": 101,
        "company_id": 1,
        "first_name": "Jan Pieter",
        "initials": "J.P.",
        "prefix": "van der",
        "last_name": "Berg",
        "birthday": BIRTHDAY,
    }
    fields.update(overrides)
    return NmbrsEmployee(**fields)


def person(person_id: int = 1, **overrides: Any) -> PersonCandidate:
    fields: dict[str, Any] = {
        "person_id": person_id,
        "first_name": "Jan Pieter",
        "prefix": "van der",
        "last_name": "Berg",
        "birthday": BIRTHDAY,
    }
    fields.update(overrides)
    return PersonCandidate(**fields)


def level(scored: ScoredCandidate | ScoredOrganisation, field: str) -> Level:
    return next(c.level for c in scored.comparisons if c.field == field)


def pick_list(nmbrs: NmbrsEmployee, candidates: list[PersonCandidate], **policy: Any) -> tuple[ScoredCandidate, ...]:
    """The Koppelen pick list: the candidates decide_match carries when a human decides."""
    decision = decide_match(nmbrs, candidates, MatchPolicy(**policy))
    assert isinstance(decision, NeedsDecision)
    return decision.candidates


def organisation_pick_list(
    nmbrs: NmbrsCompany, candidates: list[OrganisationCandidate], **policy: Any
) -> tuple[ScoredOrganisation, ...]:
    decision = decide_organisation_match(nmbrs, candidates, MatchPolicy(**policy))
    assert isinstance(decision, OrganisationNeedsDecision)
    return decision.candidates


# --- Jaro-Winkler ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("MARTHA", "MARHTA", 0.961),
        ("DWAYNE", "DUANE", 0.840),
        ("DIXON", "DICKSONX", 0.813),
        ("JELLYFISH", "SMELLYFISH", 0.896),
    ],
)
def test_jaro_winkler_matches_published_values(a: str, b: str, expected: float) -> None:
    assert jaro_winkler(a, b) == pytest.approx(expected, abs=0.0005)
    assert jaro_winkler(b, a) == pytest.approx(expected, abs=0.0005)


def test_jaro_winkler_of_identical_empty_and_disjoint_strings() -> None:
    assert jaro_winkler("berg", "berg") == 1.0
    assert jaro_winkler("", "") == 1.0
    assert jaro_winkler("berg", "") == 0.0
    assert jaro_winkler("abc", "xyz") == 0.0


# --- Dutch normalisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_name", "prefix"),
    [
        ("Berg", "van der"),
        ("van der Berg", None),
        ("Berg, van der", None),
        ("der Berg", "van"),
        ("van der Berg", "van der"),
        ("der Berg", "van der"),
        ("  Van  Der   BERG ", None),
    ],
)
def test_tussenvoegsel_is_found_in_prefix_field_last_name_or_after_a_comma(last_name: str, prefix: str | None) -> None:
    assert split_last_name(last_name, prefix) == ("van der", "berg")


@pytest.mark.parametrize(
    ("last_name", "expected"),
    [
        ("in 't Veld", ("in 't", "veld")),
        ("Van't Hoff", ("van 't", "hoff")),
        ("uit den Bogaard", ("uit den", "bogaard")),
        ("op de Beek", ("op de", "beek")),
        ("d'Ancona", ("d'", "ancona")),
        ("ter Horst", ("ter", "horst")),
        ("De", ("", "de")),  # a surname that is only a tussenvoegsel word keeps it as the surname
    ],
)
def test_common_dutch_tussenvoegsels_are_split_off(last_name: str, expected: tuple[str, str]) -> None:
    assert split_last_name(last_name) == expected


@pytest.mark.parametrize(
    ("regi_last_name", "regi_prefix"),
    [("Berg", "van der"), ("van der Berg", None), ("Berg, van der", None), ("Vanderberg", None)],
)
def test_surname_with_tussenvoegsel_anywhere_matches_exactly(regi_last_name: str, regi_prefix: str | None) -> None:
    scored = score_person(employee(), person(last_name=regi_last_name, prefix=regi_prefix))
    assert level(scored, "last_name") is Level.EXACT


@pytest.mark.parametrize(
    ("nmbrs", "regi"), [("Çelik", "Celik"), ("Ëlla", "ella"), ("Müller", "Muller"), ("Øster", "Oster")]
)
def test_diacritics_and_case_do_not_matter(nmbrs: str, regi: str) -> None:
    scored = score_person(employee(last_name=nmbrs, prefix=None), person(last_name=regi, prefix=None))
    assert level(scored, "last_name") is Level.EXACT
    assert fold(nmbrs) == fold(regi)


@pytest.mark.parametrize(
    ("plain", "accented"),
    [("  Jan   van`t HOF ", "Jan van’t Hôf"), ("1234 ab", "1234 ab"), ("IJsselmeer", "Ĳsselmeer")],
)
def test_ascii_text_folds_like_accented_text(plain: str, accented: str) -> None:
    # ASCII text takes a shortcut past the Unicode decomposition: the result must be the same.
    assert fold(plain) == fold(accented)
    assert fold(plain) == " ".join(plain.replace("`", "'").lower().split())


def test_missing_tussenvoegsel_on_one_side_is_close_not_exact() -> None:
    scored = score_person(employee(), person(prefix=None, last_name="Berg"))
    assert level(scored, "last_name") is Level.CLOSE


def test_one_part_of_a_double_surname_is_close() -> None:
    scored = score_person(employee(prefix=None, last_name="Jansen-de Vries"), person(prefix="de", last_name="Vries"))
    assert level(scored, "last_name") is Level.CLOSE


def test_initials_come_from_first_names_or_the_initials_field() -> None:
    assert initials_of("Jan Pieter") == "jp"
    assert initials_of("Jan-Pieter") == "jp"
    assert initials_of("IJsbrand") == "ij"


def test_initials_match_first_names() -> None:
    scored = score_person(employee(first_name="Jan Pieter", initials=None), person(first_name=None, initials="J.P."))
    comparison = next(c for c in scored.comparisons if c.field == "first_name")
    assert comparison.level is Level.CLOSE
    assert comparison.contribution > 0


def test_incompatible_initials_are_different() -> None:
    scored = score_person(employee(first_name=None, initials="K."), person(first_name=None, initials="J.P."))
    assert level(scored, "first_name") is Level.DIFFERENT


def test_roepnaam_in_nickname_matches_exactly_and_known_roepnaam_is_close() -> None:
    official = employee(first_name="Hendrik", nickname="Henk")
    assert level(score_person(official, person(first_name="Henk")), "first_name") is Level.EXACT
    no_nickname = employee(first_name="Hendrik", nickname=None)
    assert level(score_person(no_nickname, person(first_name="Henk")), "first_name") is Level.CLOSE
    assert level(score_person(no_nickname, person(first_name="Sophie")), "first_name") is Level.DIFFERENT


@pytest.mark.parametrize(
    "raw", ["+31 6 1234 5678", "06-12345678", "0031 6 12345678", "+31 (0)6 12345678", "31612345678"]
)
def test_dutch_phone_numbers_normalise_to_national_digits(raw: str) -> None:
    assert normalise_phone(raw) == "0612345678"


def test_foreign_and_garbage_phone_numbers() -> None:
    assert normalise_phone("+32 2 123 45 67") == "003221234567"
    assert normalise_phone(" - ") is None
    assert normalise_phone(None) is None


def test_phone_in_another_format_matches_exactly() -> None:
    scored = score_person(employee(phone_mobile="+31 6 1234 5678"), person(phones=("020-1234567", "06 12 34 56 78")))
    assert level(scored, "phone") is Level.EXACT


@pytest.mark.parametrize("raw", ["1234 ab", "1234AB", " 1234-ab ", "1234ab"])
def test_postcode_normalises_to_digits_and_capitals(raw: str) -> None:
    assert normalise_postcode(raw) == "1234AB"


def test_postcode_comparison_uses_normalised_form() -> None:
    assert level(score_person(employee(postcode="1234 ab"), person(postcode="1234AB")), "postcode") is Level.EXACT
    assert level(score_person(employee(), person(postcode="1234AB")), "postcode") is Level.MISSING
    assert level(score_person(employee(postcode="1234AB"), person()), "postcode") is Level.MISSING
    different = score_person(employee(postcode="1234 ab"), person(postcode="9999ZZ"))
    assert level(different, "postcode") is Level.DIFFERENT


def test_a_postcode_match_adds_its_weight_and_is_explained_as_exact() -> None:
    without = score_person(employee(), person(postcode="1234 AB", birthday=None))
    matched = score_person(employee(postcode="1234AB"), person(postcode="1234 AB", birthday=None))
    assert matched.score == pytest.approx(without.score + PERSON_WEIGHTS["postcode"].exact, abs=1e-4)
    assert "postcode exact (+0.10)" in matched.explanation
    assert "postcode missing (+0.00)" in without.explanation
    comparison = next(c for c in matched.comparisons if c.field == "postcode")
    assert comparison.note == "postcode 1234AB agrees"


def test_email_is_trimmed_and_lower_cased_and_any_address_may_agree() -> None:
    assert normalise_email("  J.Berg@Example.NL ") == "j.berg@example.nl"
    assert normalise_email("not an address") is None
    scored = score_person(employee(email_work="jp@werk.nl", email_private="JP@Home.nl"), person(emails=("jp@home.nl",)))
    assert level(scored, "email") is Level.EXACT
    assert "private" in next(c.note for c in scored.comparisons if c.field == "email")


# --- birthday -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regi_birthday", "expected"),
    [
        (date(1984, 3, 17), Level.EXACT),
        (date(1984, 3, 18), Level.CLOSE),  # one digit
        (date(1985, 3, 17), Level.CLOSE),  # one digit in the year
        (date(1991, 7, 2), Level.DIFFERENT),
        (None, Level.MISSING),
        (date(1900, 1, 1), Level.MISSING),  # placeholder
    ],
)
def test_birthday_levels(regi_birthday: date | None, expected: Level) -> None:
    assert level(score_person(employee(), person(birthday=regi_birthday)), "birthday") is expected


def test_birthday_with_day_and_month_swapped_is_close() -> None:
    scored = score_person(employee(birthday=date(1984, 3, 7)), person(birthday=date(1984, 7, 3)))
    assert level(scored, "birthday") is Level.CLOSE


def test_birthday_disagreement_pushes_a_full_name_match_below_min_score() -> None:
    agreeing = score_person(employee(), person())
    disagreeing = score_person(employee(), person(birthday=date(1991, 7, 2)))
    assert agreeing.score >= 0.2
    assert disagreeing.score < 0.2
    assert pick_list(employee(), [person(birthday=date(1991, 7, 2))]) == ()


def test_missing_data_neither_adds_nor_subtracts() -> None:
    bare = score_person(employee(), person(birthday=None))
    assert bare.score == pytest.approx(PERSON_WEIGHTS["last_name"].exact + PERSON_WEIGHTS["first_name"].exact)
    assert all(c.contribution == 0 for c in bare.comparisons if c.level is Level.MISSING)


# --- ranking --------------------------------------------------------------------------------------


def test_similar_name_with_agreeing_birthday_ranks_above_exact_name_with_other_birthday() -> None:
    nmbrs = employee(prefix=None, last_name="Jansen", first_name="Piet")
    right = person(1, prefix=None, last_name="Janssen", first_name="Piet")
    wrong = person(2, prefix=None, last_name="Jansen", first_name="Piet", birthday=date(1960, 11, 30))
    ranked = pick_list(nmbrs, [wrong, right], min_score=0.0)
    assert [c.person_id for c in ranked] == [1, 2]
    assert level(ranked[0], "last_name") is Level.CLOSE


def test_exact_name_ranks_above_similar_name_when_both_birthdays_agree() -> None:
    nmbrs = employee(prefix=None, last_name="Jansen", first_name="Piet")
    ranked = pick_list(
        nmbrs,
        [
            person(1, prefix=None, last_name="Janssen", first_name="Piet"),
            person(2, prefix=None, last_name="Jansen", first_name="Piet"),
        ],
    )
    assert [c.person_id for c in ranked] == [2, 1]
    assert ranked[0].score > ranked[1].score


def test_duplicates_with_equal_evidence_rank_the_person_with_the_login_account_first() -> None:
    ranked = pick_list(employee(), [person(3), person(7, has_login_account=True), person(5)])
    assert [c.person_id for c in ranked] == [7, 3, 5]
    assert len({c.score for c in ranked}) == 1
    assert "has_login_account" in ranked[0].flags


def test_rank_keeps_top_n_and_counts_a_person_found_twice_once() -> None:
    ranked = pick_list(employee(), [person(i) for i in range(10)] + [person(0)], top_n=3)
    assert [c.person_id for c in ranked] == [0, 1, 2]


def test_blue_employee_is_offered_and_flagged() -> None:
    ranked = pick_list(employee(), [person(4, is_blue_employee=True)])
    assert [c.person_id for c in ranked] == [4]
    assert "blue_employee" in ranked[0].flags
    assert "blue_employee" in ranked[0].explanation


def test_person_linked_to_another_employment_is_flagged() -> None:
    scored = score_person(employee(), person(linked_nmbrs_employee_ids=(55,)))
    assert "already_linked_to_other_employment" in scored.flags
    own = score_person(employee(), person(linked_nmbrs_employee_ids=(101,)))
    assert "already_linked_to_other_employment" not in own.flags


def test_every_scored_candidate_explains_every_field() -> None:
    candidates = [
        person(1),
        person(2, first_name=None, initials="K", last_name="Pietersen", prefix=None, birthday=None),
        person(3, emails=("a@b.nl",), phones=("0612345678",), postcode="1234AB"),
        PersonCandidate(person_id=4),
    ]
    for candidate in candidates:
        scored = score_person(employee(email_work="x@y.nl", postcode="1234AB"), candidate)
        assert [c.field for c in scored.comparisons] == list(PERSON_WEIGHTS)
        assert all(c.note.strip() for c in scored.comparisons)
        assert scored.explanation.startswith(f"score {scored.score:.2f}")
        assert scored.score == pytest.approx(
            max(0.0, min(1.0, sum(c.contribution for c in scored.comparisons))), abs=1e-4
        )


# --- decisions ------------------------------------------------------------------------------------


def full_match(person_id: int = 1, **overrides: Any) -> PersonCandidate:
    fields: dict[str, Any] = {"emails": ("jp@example.nl",), "phones": ("0612345678",)}
    fields.update(overrides)
    return person(person_id, **fields)


FULL_EMPLOYEE = employee(email_work="jp@example.nl", phone_mobile="06-12345678")


def test_same_bsn_hash_already_linked_auto_links_with_reason() -> None:
    nmbrs = employee(bsn_hash="h1")
    decision = decide_match(nmbrs, [person(9, linked_nmbrs_employee_ids=(55,), bsn_hash="h1"), person(2)])
    assert isinstance(decision, AutoLink)
    assert decision.person_id == 9
    assert decision.rule == "same_bsn_hash"
    assert decision.reason == "same BSN hash as Nmbrs employee 55, already linked to person 9"


def test_the_person_the_store_links_to_the_bsn_auto_links_when_a_candidate() -> None:
    decision = decide_match(employee(bsn_hash="h1"), [person(12), person(2)], linked_persons_for_bsn=(12,))
    assert isinstance(decision, AutoLink)
    assert decision.person_id == 12
    assert "already linked to person 12" in decision.reason
    assert "BSN hash" in decision.reason


def test_a_bsn_match_with_nothing_else_in_common_asks_a_human_and_offers_that_person() -> None:
    # A BSN typed wrongly (or corrected) in Nmbrs: the person it points at shares no name, birthday or e-mail.
    stranger = person(12, first_name="Fatima", prefix=None, last_name="el Amrani", birthday=None)
    decision = decide_match(employee(bsn_hash="h1"), [person(2), stranger], linked_persons_for_bsn=(12,))
    assert isinstance(decision, NeedsDecision) and decision.situation == "disputed"
    assert "person 12, who shares no name" in decision.reason and "correct the BSN in Nmbrs" in decision.reason
    assert [c.person_id for c in decision.candidates] == [2, 12]  # Koppelen to 12 stays one command away
    gone = decide_match(employee(bsn_hash="h1"), [], linked_persons_for_bsn=(12,))
    assert isinstance(gone, NeedsDecision) and gone.situation == "unmatched" and "card is gone" in gone.reason


def test_a_bsn_match_whose_birthday_differs_asks_a_human() -> None:
    stranger = person(
        3,
        first_name="Fatima",
        prefix=None,
        last_name="el Amrani",
        birthday=date(1990, 1, 1),
        linked_nmbrs_employee_ids=(10,),
        bsn_hash="h1",
    )
    decision = decide_match(employee(bsn_hash="h1"), [stranger])
    assert isinstance(decision, NeedsDecision) and decision.situation == "disputed"
    assert "birthdays differ" in decision.reason and "1990-01-01 on the card" in decision.reason
    assert [c.person_id for c in decision.candidates] == [3]
    # A card without a birthday contradicts nothing, but a stranger's name alone does not agree either.
    undated = person(3, birthday=None, linked_nmbrs_employee_ids=(10,), bsn_hash="h1")
    assert isinstance(decide_match(employee(bsn_hash="h1"), [undated]), AutoLink)
    nameless = decide_match(employee(bsn_hash="h1"), [stranger.model_copy(update={"birthday": None})])
    assert isinstance(nameless, NeedsDecision) and "shares no name" in nameless.reason


def test_a_bsn_the_store_finds_on_two_persons_is_disputed_even_when_one_is_a_candidate() -> None:
    # The second person was not among the candidates (another name, no shared birthday or e-mail).
    candidate = person(9, linked_nmbrs_employee_ids=(55,), bsn_hash="h1")
    decision = decide_match(employee(bsn_hash="h1"), [candidate], linked_persons_for_bsn=(9, 14))
    assert isinstance(decision, NeedsDecision) and decision.situation == "disputed"
    assert "several persons (9, 14)" in decision.reason


def test_same_bsn_hash_on_two_persons_is_disputed() -> None:
    nmbrs = employee(bsn_hash="h1")
    decision = decide_match(
        nmbrs,
        [
            person(9, linked_nmbrs_employee_ids=(55,), bsn_hash="h1"),
            person(10, linked_nmbrs_employee_ids=(56,), bsn_hash="h1"),
        ],
    )
    assert isinstance(decision, NeedsDecision)
    assert decision.situation == "disputed"
    assert {c.person_id for c in decision.candidates} == {9, 10}


def test_fuzzy_auto_link_is_off_by_default_even_at_score_one() -> None:
    decision = decide_match(FULL_EMPLOYEE, [full_match()])
    assert isinstance(decision, NeedsDecision)
    assert decision.situation == "disputed"
    assert decision.candidates[0].score == 1.0
    assert "off" in decision.reason


def test_definite_rule_links_when_on_and_the_margin_is_met() -> None:
    policy = MatchPolicy(auto_link_min_score=0.9)
    decision = decide_match(FULL_EMPLOYEE, [full_match(1), person(2, prefix=None, last_name="Bergman")], policy)
    assert isinstance(decision, AutoLink)
    assert decision.person_id == 1
    assert decision.rule == "definite_score"
    assert "definite rule" in decision.reason
    assert decision.candidate is not None and decision.candidate.score == 1.0


def test_definite_rule_does_not_link_when_the_runner_up_is_within_the_margin() -> None:
    policy = MatchPolicy(auto_link_min_score=0.9, auto_link_margin=0.15)
    runner_up = full_match(2, emails=())  # 0.95: within 0.15 of 1.0
    decision = decide_match(FULL_EMPLOYEE, [full_match(1), runner_up], policy)
    assert score_person(FULL_EMPLOYEE, runner_up).score == pytest.approx(0.95)
    assert isinstance(decision, NeedsDecision)
    assert decision.situation == "disputed"
    assert "within the margin" in decision.reason


def test_definite_rule_does_not_link_below_its_threshold_or_to_a_blue_employee() -> None:
    policy = MatchPolicy(auto_link_min_score=0.9)
    assert isinstance(decide_match(employee(), [person()], policy), NeedsDecision)  # 0.75
    blue = decide_match(FULL_EMPLOYEE, [full_match(is_blue_employee=True)], policy)
    assert isinstance(blue, NeedsDecision)
    assert "blue" in blue.reason
    allowed = MatchPolicy(auto_link_min_score=0.9, auto_link_blue_employees=True)
    assert isinstance(decide_match(FULL_EMPLOYEE, [full_match(is_blue_employee=True)], allowed), AutoLink)


def test_definite_rule_needs_the_birthday_and_first_name_exact_and_the_login_card() -> None:
    policy = MatchPolicy(auto_link_min_score=0.9)
    # A father's card without a birthday, with the family e-mail and phone, for his son.
    father = decide_match(FULL_EMPLOYEE, [full_match(birthday=None)], policy)
    assert isinstance(father, NeedsDecision) and "date of birth does not agree exactly (missing)" in father.reason
    # Twins: Johanna is hired, only Johannes has a card.
    johanna = FULL_EMPLOYEE.model_copy(update={"first_name": "Johanna", "initials": "J."})
    twin = decide_match(johanna, [full_match(first_name="Johannes", initials="J.")], policy)
    assert isinstance(twin, NeedsDecision) and "first name does not agree exactly" in twin.reason
    # Duplicates: the card with the login account is the right one, even when another scores higher.
    login = person(4, has_login_account=True)
    duplicates = decide_match(
        FULL_EMPLOYEE, [full_match(3), login], MatchPolicy(auto_link_min_score=0.9, auto_link_margin=0.1)
    )
    assert isinstance(duplicates, NeedsDecision) and "person 4 has the login account" in duplicates.reason


def test_no_candidate_above_min_score_is_unmatched() -> None:
    decision = decide_match(
        employee(), [person(1, prefix=None, last_name="Pietersen", first_name="Klaas", birthday=None)]
    )
    assert isinstance(decision, NeedsDecision)
    assert decision.situation == "unmatched"
    assert decision.candidates == ()
    assert "0.20" in decision.reason
    assert decide_match(employee(), []).situation == "unmatched"  # type: ignore[union-attr]


def test_needs_decision_situation_must_fit_its_candidates() -> None:
    with pytest.raises(ValueError, match="unmatched"):
        NeedsDecision(situation="disputed", candidates=(), reason="x")


# --- organisations --------------------------------------------------------------------------------


def company(**overrides: Any) -> NmbrsCompany:
    fields: dict[str, Any] = {"company_id": 11, "name": "Bakkerij De Vries B.V.", "kvk_number": "01234567"}
    fields.update(overrides)
    return NmbrsCompany(**fields)


@pytest.mark.parametrize(
    "name",
    [
        "Bakkerij De Vries B.V.",
        "Bakkerij de Vries BV",
        "bakkerij de vries b. v.",
        "Bakkerij De Vries N.V.",
        "Stichting Bakkerij De Vries",
        "Bakkerij de Vries V.O.F.",
    ],
)
def test_legal_forms_are_stripped_from_organisation_names(name: str) -> None:
    assert normalise_organisation_name(name) == "bakkerij de vries"


def test_holding_is_not_a_legal_form() -> None:
    assert normalise_organisation_name("De Vries Holding B.V.") == "de vries holding"


def test_kvk_and_website_normalisation() -> None:
    assert normalise_kvk("1234567") == "01234567"
    assert normalise_kvk("KvK 0123 4567") == "01234567"
    assert normalise_website("https://www.Bakkerij.nl/contact") == "bakkerij.nl"


def test_single_kvk_match_auto_links_with_reason() -> None:
    decision = decide_organisation_match(
        company(),
        [
            OrganisationCandidate(organisation_id=5, name="Other", kvk_number="1234567"),
            OrganisationCandidate(organisation_id=6, name="Bakkerij De Vries"),
        ],
    )
    assert isinstance(decision, OrganisationAutoLink)
    assert decision.organisation_id == 5
    assert decision.reason == "KvK number 01234567 matches organisation 5 and no other candidate"


def test_kvk_on_two_organisations_is_disputed() -> None:
    decision = decide_organisation_match(
        company(),
        [
            OrganisationCandidate(organisation_id=5, name="A", kvk_number="01234567"),
            OrganisationCandidate(organisation_id=6, name="B", kvk_number="01234567"),
        ],
    )
    assert isinstance(decision, OrganisationNeedsDecision)
    assert decision.situation == "disputed"
    assert [c.organisation_id for c in decision.candidates] == [5, 6]


def test_name_match_without_kvk_needs_a_decision() -> None:
    decision = decide_organisation_match(
        company(kvk_number=None), [OrganisationCandidate(organisation_id=5, name="Bakkerij de Vries BV")]
    )
    assert isinstance(decision, OrganisationNeedsDecision)
    assert decision.situation == "disputed"
    assert level(decision.candidates[0], "name") is Level.EXACT
    unmatched = decide_organisation_match(
        company(kvk_number=None), [OrganisationCandidate(organisation_id=5, name="Garage Pietersen")]
    )
    assert isinstance(unmatched, OrganisationNeedsDecision)
    assert unmatched.situation == "unmatched"


def test_organisation_comparisons_explain_every_field() -> None:
    candidate = OrganisationCandidate(
        organisation_id=5,
        name="Bakkerij de Vries",
        kvk_number="99999999",
        email="info@bakkerij.nl",
        website="www.bakkerij.nl",
        phone="+31 20 1234567",
    )
    scored = score_organisation(
        company(email="HR@Bakkerij.nl", website="https://bakkerij.nl", phone="020-1234567"),
        candidate,
        company_postcode="1234ab",
    )
    assert [c.field for c in scored.comparisons] == list(ORGANISATION_WEIGHTS)
    assert all(c.note.strip() for c in scored.comparisons)
    levels = {c.field: c.level for c in scored.comparisons}
    assert levels == {
        "kvk_number": Level.DIFFERENT,
        "name": Level.EXACT,
        "email": Level.CLOSE,
        "phone": Level.EXACT,
        "website": Level.EXACT,
        "postcode": Level.MISSING,
    }
    assert scored.score == pytest.approx(-0.5 + 0.4 + 0.1 + 0.15 + 0.15)
    assert organisation_pick_list(company(), [candidate]) == ()  # a different KvK number outweighs the name


def test_shared_public_mail_domain_is_not_evidence() -> None:
    scored = score_organisation(
        company(email="bakker@gmail.com"),
        OrganisationCandidate(organisation_id=5, name="X", email="other@gmail.com"),
    )
    assert level(scored, "email") is Level.DIFFERENT
