"""Migration files: named and numbered without gaps."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.adapters.migrations import MigrationError, load_migrations, migrate, require_supported_server


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1)) and versions


def test_a_gap_in_the_numbering_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0003_third.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="0002"):
        load_migrations(tmp_path)


def test_a_badly_named_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "1_First.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_case_name"):
        load_migrations(tmp_path)


def test_the_candidate_search_column_folds_names_as_the_hr_search_does() -> None:
    # crm_persons.match_name is a generated column: it cannot call Python, so the migration holds the folding
    # expression written out. A change of normalisation.fold() must come with a migration that writes it anew.
    from worker.adapters.crm_search import sql_fold_literal

    latest = [m for m in load_migrations() if "match_name" in m.sql][-1]  # the newest that defines the column
    assert sql_fold_literal("last_name") in latest.sql


def test_the_sql_folding_folds_every_latin_letter_as_normalisation_fold_does() -> None:
    import unicodedata

    from worker.adapters.crm_search import _FOLD_FROM, _FOLD_TO, _LATIN, _LIGATURES
    from worker.domain.normalisation import fold

    def as_sql_folds(text: str) -> str:  # translate(normalize(text, NFC), from, to), the replace()s, lower()
        folded = unicodedata.normalize("NFC", text).translate(str.maketrans(_FOLD_FROM, _FOLD_TO))
        for ligature, spelled in _LIGATURES:
            folded = folded.replace(ligature, spelled)
        return folded.lower()

    apostrophes = [c for c in _FOLD_FROM if not c.isalpha()]
    names = ["d´Ancona", "’t Hart", "Ǽsa Þórsdóttir", "Çelik-de Vries", "Nguyễn", "Mu\u0308ller"]
    differing = {c: (as_sql_folds(c), fold(c)) for c in [*_LATIN, *apostrophes, *names] if as_sql_folds(c) != fold(c)}
    assert not differing
    assert fold("d´Ancona") == "d'ancona"


class _Server:
    """Answers only what the version check asks; a DDL statement reaching it would be an error."""

    def __init__(self, number: str, shown: str) -> None:
        self.answers = {"SHOW server_version_num": number, "SHOW server_version": shown}
        self.executed: list[str] = []

    async def fetchval(self, sql: str) -> str:
        return self.answers[sql]

    async def execute(self, sql: str) -> None:
        self.executed.append(sql)


async def test_an_old_postgresql_is_refused_by_name_before_any_ddl() -> None:
    old = _Server("130011", "13.11 (Debian 13.11-1)")
    with pytest.raises(MigrationError, match=r"PostgreSQL 13.11 \(Debian 13.11-1\) is too old: .* needs PostgreSQL 14"):
        await migrate(old)  # type: ignore[arg-type]
    assert old.executed == []
    await require_supported_server(_Server("140000", "14.0"))  # type: ignore[arg-type]
