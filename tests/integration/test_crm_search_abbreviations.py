"""The HR search over RegiCRM persons against the real PostgreSQL: a tussenvoegsel typed in full finds the cards
that abbreviate it ('J. v.d. Meer', 'J. vd Meer') and an abbreviation finds the cards that spell it out (issue 18)."""

from __future__ import annotations

import asyncpg
import pytest

from worker.adapters import crm_search

# (reference, first name, initials, prefix, last name): the Meers as HR typed them, and look-alikes that are not.
CARDS = [
    ("spelled", "Jan", None, "van der", "Meer"),
    ("dotted", None, "J.", None, "v.d. Meer"),
    ("after", None, None, None, "Meer, J. van der"),
    ("bare", None, "J.", None, "vd Meer"),
    ("slashed", "Jan", None, "v/d", "Meer"),
    ("spaced", "Jan", None, None, "v. d. Meer"),
    ("den", "Jan", None, "van den", "Meer"),
    ("ter", "Jan", None, "ter", "Meer"),
    ("none", "Jan", None, None, "Meer"),
    ("longer", "Jan", None, "van", "Meerten"),
]
VAN_DER = {"spelled", "dotted", "after", "bare", "slashed", "spaced"}


@pytest.fixture
async def meers(db: asyncpg.Pool) -> dict[int, str]:
    """person_id -> reference of the cards above, beside the starting state's."""
    found: dict[int, str] = {}
    for ref, first, initials, prefix, last in CARDS:
        person_id = await db.fetchval(
            "INSERT INTO crm_persons (first_name, initials, prefix, last_name) VALUES ($1, $2, $3, $4)"
            " RETURNING person_id",
            first,
            initials,
            prefix,
            last,
        )
        found[person_id] = ref
    return found


async def found(db: asyncpg.Pool, meers: dict[int, str], text: str) -> list[str]:
    async with db.acquire() as connection:
        result = await crm_search.search(connection, text)
    return [meers.get(p.person_id, f"other:{p.person_id}") for p in result.persons]


@pytest.mark.parametrize("text", ["van der meer", "Meer, van der", "meer van der", "VAN DER MEER"])
async def test_a_tussenvoegsel_typed_in_full_finds_the_cards_that_abbreviate_it(
    text: str, db: asyncpg.Pool, meers: dict[int, str]
) -> None:
    hits = await found(db, meers, text)
    assert set(hits) == VAN_DER
    # The cards with the tussenvoegsel as typed come first, the spelled-out card with the last name alone first.
    assert hits[:2] == ["spelled", "after"]


@pytest.mark.parametrize("text", ["v.d. meer", "vd meer", "v/d meer", "Meer, v.d.", "V.d. Meer"])
async def test_an_abbreviation_finds_every_tussenvoegsel_it_may_stand_for(
    text: str, db: asyncpg.Pool, meers: dict[int, str]
) -> None:
    hits = await found(db, meers, text)
    assert set(hits) == VAN_DER | {"den"}
    assert "ter" not in hits and "none" not in hits and "longer" not in hits


async def test_another_tussenvoegsel_still_narrows_the_search(db: asyncpg.Pool, meers: dict[int, str]) -> None:
    assert set(await found(db, meers, "van den meer")) == {"den", "dotted", "bare", "slashed", "spaced"}
    assert await found(db, meers, "ter meer") == ["ter"]
    assert set(await found(db, meers, "meer")) == {ref for ref, *_ in CARDS}


async def test_first_names_and_initials_still_count(db: asyncpg.Pool, meers: dict[int, str]) -> None:
    assert set(await found(db, meers, "j. van der meer")) == VAN_DER
    assert set(await found(db, meers, "jan v.d. meer")) == {"spelled", "slashed", "spaced", "den"}


async def test_the_starting_states_van_der_berg_cards_are_found_by_an_abbreviation(
    db: asyncpg.Pool, meers: dict[int, str]
) -> None:
    hits = await found(db, meers, "anna v.d. berg")
    assert len(hits) == 2 and all(hit.startswith("other:") for hit in hits)
