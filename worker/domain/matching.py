"""Matching for Koppelen: the evidence model and the policy shared by person and organisation matching.

A transparent, Splink-like evidence model (docs/anchors.md, "Entity resolution" and "What none of them
has" item 5): each field is compared at a level (exact / close / different / missing), each level adds
a fixed contribution from one weights table, and the score is the clamped sum. Every comparison carries a
human-readable note, so the "Koppelen" pick list can explain a candidate field by field.

The comparators live beside it: person_scoring.py and person_matching.py for employees, organisation_matching.py
for companies, normalisation.py and similarity.py for the Dutch forms and string similarity they rest on.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Level(StrEnum):
    EXACT = "exact"
    CLOSE = "close"
    DIFFERENT = "different"
    MISSING = "missing"


class FieldWeights(_Frozen):
    """Contribution of each comparison level of one field to the score. Missing is always 0."""

    exact: float
    close: float
    different: float

    def of(self, level: Level) -> float:
        if level is Level.EXACT:
            return self.exact
        if level is Level.CLOSE:
            return self.close
        if level is Level.DIFFERENT:
            return self.different
        return 0.0


class FieldComparison(_Frozen):
    """One field of one candidate: both values as shown to the user, the level and what it adds."""

    field: str
    nmbrs_value: str | None
    regi_value: str | None
    level: Level
    contribution: float
    note: str = Field(min_length=1)


class MatchPolicy(_Frozen):
    """When to link without asking, and what to show when asking (organisations use only the last two)."""

    auto_link_min_score: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Definite rule: auto-link the top candidate at or above this score. None = off "
        "(the default: fuzzy name matches are never linked without a human).",
    )
    auto_link_margin: float = Field(
        0.15, ge=0.0, le=1.0, description="The top candidate must lead the runner-up by at least this."
    )
    auto_link_blue_employees: bool = Field(
        False,
        description="Whether the definite rule may link to a person with a manual ('blue') employee; "
        "off because blue employees are never changed by the sync without a human.",
    )
    min_score: float = Field(0.2, ge=0.0, le=1.0, description="Candidates below this are not shown.")
    top_n: int = Field(5, ge=1, description="How many candidates a decision carries.")


Situation = Literal["unmatched", "disputed"]


# How a field is named in explanations and reasons.
FIELD_LABELS = MappingProxyType(
    {
        "last_name": "last name",
        "first_name": "first name",
        "birthday": "date of birth",
        "email": "e-mail",
        "phone": "phone",
        "postcode": "postcode",
        "kvk_number": "KvK number",
        "name": "name",
        "website": "website",
    }
)


def field_comparison(
    field: str,
    weights: Mapping[str, FieldWeights],
    nmbrs_value: str | None,
    regi_value: str | None,
    level: Level,
    note: str,
) -> FieldComparison:
    """The comparison of one field at `level`, contributing that level's weight."""
    return FieldComparison(
        field=field,
        nmbrs_value=nmbrs_value,
        regi_value=regi_value,
        level=level,
        contribution=weights[field].of(level),
        note=note,
    )


def missing_side(nmbrs_missing: bool, regi_missing: bool) -> str:
    """Which side lacks a value, for the note: 'either side', 'the Nmbrs side' or 'RegiCRM'."""
    if nmbrs_missing and regi_missing:
        return "either side"
    return "the Nmbrs side" if nmbrs_missing else "RegiCRM"


def total_score(comparisons: Sequence[FieldComparison]) -> float:
    """The sum of the contributions, clamped to [0, 1]."""
    # Rounded so that equal evidence gives equal scores whatever the order of float additions.
    return round(min(1.0, max(0.0, sum(c.contribution for c in comparisons))), 4)


def explain_score(score: float, comparisons: Sequence[FieldComparison], flags: Sequence[str]) -> str:
    """One line for the pick list: the score, each field's level and contribution, and the flags."""
    parts = ", ".join(
        f"{FIELD_LABELS.get(c.field, c.field)} {c.level.value} ({c.contribution:+.2f})" for c in comparisons
    )
    flagged = f"; flags: {', '.join(flags)}" if flags else ""
    return f"score {score:.2f} from {parts}{flagged}"


def compare_single(
    weights: Mapping[str, FieldWeights],
    field: str,
    label: str,
    nmbrs: str | None,
    regi: str | None,
    normalise: Callable[[str | None], str | None],
) -> FieldComparison:
    """One value per side, equal or not once normalised (a phone number, a website, a postcode)."""
    a, b = normalise(nmbrs), normalise(regi)
    if a is None or b is None:
        side = missing_side(a is None, b is None)
        return field_comparison(field, weights, nmbrs, regi, Level.MISSING, f"no {label} on {side}")
    if a == b:
        return field_comparison(field, weights, nmbrs, regi, Level.EXACT, f"{label} {a} agrees")
    return field_comparison(field, weights, nmbrs, regi, Level.DIFFERENT, f"{label}s differ ({a} vs {b})")
