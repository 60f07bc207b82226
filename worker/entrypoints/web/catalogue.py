"""Every text the web app shows, from one catalogue file per language (catalogues/nl.json): an English
screen is a file, not a rewrite. Templates call t("key", name=...); a key missing from the file fails the
tests, not a user's page."""

from __future__ import annotations

import json
import string
from functools import cache
from pathlib import Path

CATALOGUES = Path(__file__).parent / "catalogues"


class Catalogue:
    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def __call__(self, key: str, **values: object) -> str:
        text = self.texts[key]
        return text.format(**values) if values else text

    def placeholders(self, key: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(self.texts[key]) if name}


@cache
def catalogue(language: str = "nl") -> Catalogue:
    return Catalogue(json.loads((CATALOGUES / f"{language}.json").read_text(encoding="utf-8")))
