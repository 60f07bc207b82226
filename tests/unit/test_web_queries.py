"""The web app's question filter as it reads a query string, and the stored search name it filters on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from worker.adapters.crm_search import sql_fold_literal
from worker.adapters.migrations import load_migrations
from worker.adapters.web_queries import TEXT_MAX, QuestionFilter


def test_the_stored_search_name_folds_the_record_name_as_the_regicrm_search_does() -> None:
    # pending_decisions.search_name is a generated column: the migration holds the folding written out. A change
    # of normalisation.fold() must come with a migration that writes it anew (as for crm_persons.match_name).
    latest = [m for m in load_migrations() if "search_name" in m.sql][-1]
    name = " || ' ' || ".join(
        f"coalesce(record ->> '{key}', '')" for key in ("first_name", "initials", "prefix", "last_name", "name")
    )
    assert sql_fold_literal(name) in latest.sql


def test_the_filter_takes_the_company_as_the_digits_of_a_query_string_and_a_blank_text_as_none() -> None:
    selection = QuestionFilter.model_validate({"company_id": "12", "text": "   ", "include_skipped": True})
    assert (selection.company_id, selection.text, selection.include_skipped) == (12, None, True)
    assert QuestionFilter.model_validate({"company_id": 12, "text": "  de Jong "}).text == "de Jong"
    assert QuestionFilter() == QuestionFilter(company_id=None, situation=None, text=None, entity=None)


@pytest.mark.parametrize(
    "fields",
    [
        {"company_id": True},
        {"company_id": 1.0},
        {"company_id": "1.5"},
        {"company_id": "٣"},  # a digit, but not one a query string of ours carries
        {"company_id": 0},
        {"company_id": 2**31},  # beyond the store's integer
        {"situation": "linked"},
        {"entity": "department"},
        {"include_skipped": "1"},
        {"text": "x" * (TEXT_MAX + 1)},
        {"text": "a\x00b"},
        {"bedrijf": "12"},
    ],
)
def test_the_filter_refuses_what_is_not_its_type(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        QuestionFilter.model_validate(fields)
