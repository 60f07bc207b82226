"""Naamstelling: which surname a Dutch employee goes by (Nmbrs' PersonalInfo `Naamstelling`, the BRP's
'aanduiding naamgebruik'). Own name, the partner's, or both joined by a hyphen in either order, each part with
its own tussenvoegsel: Anna Visser married to Bram de Groot is 'Visser', 'de Groot', 'de Groot-Visser' or
'Visser-de Groot'. Nmbrs prints the name this way and many RegiCRM cards carry one of these forms."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NameUsage(StrEnum):
    OWN = "own"  # E: eigen geslachtsnaam
    PARTNER = "partner"  # P: geslachtsnaam partner
    PARTNER_THEN_OWN = "partner_then_own"  # V: partner, gevolgd door eigen
    OWN_THEN_PARTNER = "own_then_partner"  # N: eigen, gevolgd door partner


# Nmbrs sends the code as text; its exact spelling is not documented publicly, so the BRP letters, the digits
# 0-3 in the same order and the Dutch words are all read. Anything else is the own name (the default).
_CODES = {
    "e": NameUsage.OWN,
    "0": NameUsage.OWN,
    "eigen": NameUsage.OWN,
    "p": NameUsage.PARTNER,
    "1": NameUsage.PARTNER,
    "partner": NameUsage.PARTNER,
    "v": NameUsage.PARTNER_THEN_OWN,
    "2": NameUsage.PARTNER_THEN_OWN,
    "partner eigen": NameUsage.PARTNER_THEN_OWN,
    "n": NameUsage.OWN_THEN_PARTNER,
    "3": NameUsage.OWN_THEN_PARTNER,
    "eigen partner": NameUsage.OWN_THEN_PARTNER,
}


def parse_name_usage(code: str | None) -> NameUsage:
    words = " ".join((code or "").lower().replace("-", " ").replace("naam", " ").replace("gevolgd door", " ").split())
    return _CODES.get(words, NameUsage.OWN)


@dataclass(frozen=True)
class Surname:
    """A surname as cards carry it: tussenvoegsel apart, the rest (possibly double, hyphenated) as last name."""

    prefix: str
    last_name: str
    form: str  # which form it is, for explanations: "own", "partner", "partner-own", "own-partner"

    @property
    def written(self) -> str:
        return f"{self.prefix} {self.last_name}".strip()


def _joined(prefix: str | None, last_name: str | None) -> str:
    return " ".join(part.strip() for part in (prefix, last_name) if part and part.strip())


def display_surname(
    usage: NameUsage,
    prefix: str | None,
    last_name: str,
    partner_prefix: str | None,
    partner_last_name: str | None,
) -> Surname:
    """The surname the employee goes by; without a partner's name only the own one can be used."""
    own = Surname((prefix or "").strip(), last_name.strip(), "own")
    if not (partner_last_name or "").strip() or usage is NameUsage.OWN:
        return own
    partner = Surname((partner_prefix or "").strip(), (partner_last_name or "").strip(), "partner")
    if usage is NameUsage.PARTNER:
        return partner
    if usage is NameUsage.PARTNER_THEN_OWN:
        return Surname(partner.prefix, f"{partner.last_name}-{_joined(prefix, last_name)}", "partner-own")
    return Surname(own.prefix, f"{own.last_name}-{_joined(partner_prefix, partner_last_name)}", "own-partner")


def surname_forms(
    prefix: str | None, last_name: str, partner_prefix: str | None, partner_last_name: str | None
) -> list[Surname]:
    """Every surname a card may carry for this person, whatever the naamstelling says today (a card typed
    before a marriage or a divorce keeps the old form): own, partner's, and both joined either way."""
    return [
        display_surname(usage, prefix, last_name, partner_prefix, partner_last_name)
        for usage in NameUsage
        if usage is NameUsage.OWN or (partner_last_name or "").strip()
    ]
