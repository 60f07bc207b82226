"""Candidate matching for Koppelen: scores RegiCRM persons/organisations for an unlinked Nmbrs record.

A transparent, Splink-like evidence model (docs/anchors.md, "Entity resolution" and "What none of them
has" item 5): each field is compared at a level (exact / close / different / missing), each level adds
a fixed contribution from one weights table, and the score is the clamped sum. Every comparison carries a
human-readable note, so the "Koppelen" pick list can explain a candidate field by field.

Dutch comparators: tussenvoegsels (in the prefix field, inside the last name or as "Berg, van der"),
diacritics, initials, roepnamen, Dutch phone numbers and postcodes, legal forms of organisations.

Decisions (midPoint "synchronization situations"): an unlinked record auto-links only when certain
(another employment with the same BSN hash is already linked, a single KvK match, or an opt-in definite
score rule); otherwise it is "unmatched" or "disputed" and needs a human decision.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# --------------------------------------------------------------------------------------------------
# Inputs: RegiCRM as the matcher sees it
# --------------------------------------------------------------------------------------------------


class PersonCandidate(_Frozen):
    """A RegiCRM person (persoonskaart) offered as a possible match for an Nmbrs employee."""

    person_id: int
    first_name: str | None = None
    initials: str | None = None
    prefix: str | None = Field(None, description="Tussenvoegsel, e.g. 'van der'.")
    last_name: str | None = None
    birthday: date | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    postcode: str | None = None
    has_login_account: bool = Field(
        False, description="The login account hangs off this person: the right one among duplicates."
    )
    is_blue_employee: bool = Field(False, description="A manual ('blue') RegiTijd employee hangs off this person.")
    linked_nmbrs_employee_ids: tuple[int, ...] = ()
    bsn_hash: str | None = Field(None, description="Set when a linked Nmbrs employment carried one.")


class OrganisationCandidate(_Frozen):
    """A RegiCRM organisation offered as a possible match for an Nmbrs company."""

    organisation_id: int
    name: str
    kvk_number: str | None = None
    email: str | None = None
    phone: str | None = None
    postcode: str | None = None
    website: str | None = None
    linked_nmbrs_company_ids: tuple[int, ...] = ()


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


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


# The weights, in score points (the score is the sum, clamped to [0, 1]). Like Splink's match weights
# they follow how much more often a level is seen for the same human than for two different humans,
# scaled so that "full name + birthday + one contact detail" reaches 1.0:
#
# field       exact  close  different  why
# last_name   +0.30  +0.15  -0.30      the search is by name, so agreement is expected; a different last
#                                      name is strong evidence against, but not decisive (marriage names)
# first_name  +0.15  +0.08  -0.10      many share a first name; roepnaam vs official names often differ,
#                                      so disagreement weighs little
# birthday    +0.30  +0.10  -0.60      Nmbrs needs it for payroll, so it is reliable: a clear
#                                      disagreement outweighs a full name match (below min_score 0.2);
#                                      "near" (day/month swapped, one digit) is a typo, weak support
# email       +0.30   n/a   -0.05      an address belongs to one human; people have several (work,
#                                      private), so a mismatch says little
# phone       +0.20   n/a   -0.05      as e-mail, but numbers are shared within households and reused
# postcode    +0.10   n/a   -0.05      a postcode covers a street; people move
PERSON_WEIGHTS: Mapping[str, FieldWeights] = MappingProxyType(
    {
        "last_name": FieldWeights(exact=0.30, close=0.15, different=-0.30),
        "first_name": FieldWeights(exact=0.15, close=0.08, different=-0.10),
        "birthday": FieldWeights(exact=0.30, close=0.10, different=-0.60),
        "email": FieldWeights(exact=0.30, close=0.0, different=-0.05),
        "phone": FieldWeights(exact=0.20, close=0.0, different=-0.05),
        "postcode": FieldWeights(exact=0.10, close=0.0, different=-0.05),
    }
)

# Organisations: the KvK number identifies the legal entity, so an exact match alone reaches 1.0;
# two different KvK numbers are two legal entities (but a holding and its werkmaatschappij share a
# name, hence not decisive the other way).
#
# field       exact  close  different  why
# kvk_number  +1.00   n/a   -0.50      identifies the legal entity
# name        +0.40  +0.20  -0.20      after stripping legal forms (B.V., Stichting, ...)
# email       +0.20  +0.10   0.00      close = same company domain; shared mailboxes change
# phone       +0.15   n/a    0.00      switchboard numbers change
# website     +0.15   n/a    0.00      same domain
# postcode    +0.10   n/a   -0.05      offices move
ORGANISATION_WEIGHTS: Mapping[str, FieldWeights] = MappingProxyType(
    {
        "kvk_number": FieldWeights(exact=1.00, close=0.0, different=-0.50),
        "name": FieldWeights(exact=0.40, close=0.20, different=-0.20),
        "email": FieldWeights(exact=0.20, close=0.10, different=0.0),
        "phone": FieldWeights(exact=0.15, close=0.0, different=0.0),
        "website": FieldWeights(exact=0.15, close=0.0, different=0.0),
        "postcode": FieldWeights(exact=0.10, close=0.0, different=-0.05),
    }
)

# Jaro-Winkler similarity at or above which a (last) name counts as "close" (a typo or variant
# spelling: Jansen/Janssen 0.97, Jansen/Hansen 0.89).
CLOSE_NAME_SIMILARITY = 0.92

FLAG_BLUE_EMPLOYEE = "blue_employee"
FLAG_LOGIN_ACCOUNT = "has_login_account"
FLAG_LINKED_ELSEWHERE = "already_linked_to_other_employment"
FLAG_SAME_BSN_HASH = "same_bsn_hash"
FLAG_DIFFERENT_BSN_HASH = "different_bsn_hash"
FLAG_ORGANISATION_LINKED_ELSEWHERE = "already_linked_to_other_company"


class FieldComparison(_Frozen):
    """One field of one candidate: both values as shown to the user, the level and what it adds."""

    field: str
    nmbrs_value: str | None
    regi_value: str | None
    level: Level
    contribution: float
    note: str = Field(min_length=1)


class ScoredCandidate(_Frozen):
    """A RegiCRM person with its score, per-field comparisons and flags, for the Koppelen pick list."""

    person_id: int
    score: float = Field(ge=0.0, le=1.0)
    comparisons: tuple[FieldComparison, ...]
    flags: tuple[str, ...] = ()
    has_login_account: bool = False
    explanation: str = Field(min_length=1)


class ScoredOrganisation(_Frozen):
    """A RegiCRM organisation with its score, per-field comparisons and flags."""

    organisation_id: int
    score: float = Field(ge=0.0, le=1.0)
    comparisons: tuple[FieldComparison, ...]
    flags: tuple[str, ...] = ()
    explanation: str = Field(min_length=1)


class MatchPolicy(_Frozen):
    """When to link without asking, and what to show when asking."""

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


class AutoLink(_Frozen):
    """Link the Nmbrs employee to this person without asking; `reason` goes into the outcome."""

    kind: Literal["auto_link"] = "auto_link"
    person_id: int
    rule: Literal["same_bsn_hash", "definite_score"]
    reason: str = Field(min_length=1)
    candidate: ScoredCandidate | None = None


class NeedsDecision(_Frozen):
    """A human must choose (Koppelen / Aanmaken / Blokkeren / Overslaan); carries the ranked candidates."""

    kind: Literal["needs_decision"] = "needs_decision"
    situation: Situation
    candidates: tuple[ScoredCandidate, ...]
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _situation_fits_candidates(self) -> NeedsDecision:
        if (self.situation == "unmatched") != (not self.candidates):
            raise ValueError("'unmatched' carries no candidates and 'disputed' at least one")
        return self


MatchDecision = AutoLink | NeedsDecision


class OrganisationAutoLink(_Frozen):
    kind: Literal["auto_link"] = "auto_link"
    organisation_id: int
    rule: Literal["kvk_number"]
    reason: str = Field(min_length=1)
    candidate: ScoredOrganisation


class OrganisationNeedsDecision(_Frozen):
    kind: Literal["needs_decision"] = "needs_decision"
    situation: Situation
    candidates: tuple[ScoredOrganisation, ...]
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _situation_fits_candidates(self) -> OrganisationNeedsDecision:
        if (self.situation == "unmatched") != (not self.candidates):
            raise ValueError("'unmatched' carries no candidates and 'disputed' at least one")
        return self


OrganisationMatchDecision = OrganisationAutoLink | OrganisationNeedsDecision


# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------

# Letters NFKD does not decompose into a base letter plus a mark.
_UNDECOMPOSABLE = str.maketrans(
    {"ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ı": "i", "æ": "ae", "Æ": "ae",
     "œ": "oe", "Œ": "oe", "þ": "th", "Þ": "th"}
)  # fmt: skip
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
_SPACES = re.compile(r"\s+")


# Memoised (pure, immutable results): a change is scored against up to 200 candidates, and the same
# persons come back as candidates for many employees.
@functools.lru_cache(maxsize=65_536)
def fold(text: str | None) -> str:
    """Case-, diacritic- and whitespace-insensitive form: 'Çelik ' -> 'celik', 'Ĳsselmeer' -> 'ijsselmeer'."""
    if not text:
        return ""
    if text.isascii():  # most names and postcodes: no diacritics to strip, and casefold is lower
        return _SPACES.sub(" ", text.replace("`", "'").lower()).strip()
    # Apostrophes before decomposing too: NFKD turns '´' into a space and a combining accent.
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    # After stripping the marks: 'Ǣ' is Æ with a macron and spells 'ae' like Æ itself; 'ŉ' decomposes to ʼn.
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = stripped.translate(_UNDECOMPOSABLE).translate(_APOSTROPHES)
    return _SPACES.sub(" ", stripped.casefold()).strip()


# Tussenvoegsels: the words (and their common combinations) that precede a Dutch or Flemish surname
# and are sorted apart from it ("Berg, van der"). Matched word by word, so "van der", "in 't",
# "uit den", "op de" ... all follow from the single words.
TUSSENVOEGSEL_WORDS = frozenset(
    {
        "van", "de", "der", "den", "het", "'t", "'s", "t", "ter", "ten", "te", "in", "op", "uit", "aan",
        "bij", "onder", "over", "voor", "tot", "von", "vom", "zu", "zum", "zur", "la", "le", "les", "l'",
        "d'", "du", "des", "di", "da", "dal", "del", "della", "dos", "das", "do", "el", "al", "lo",
    }
)  # fmt: skip
_GLUED_PREFIX = re.compile(r"^(d'|l')(?=\w)")


def _name_tokens(text: str) -> list[str]:
    folded = fold(text).replace("van't", "van 't").replace("-", " ").replace(".", " ")
    tokens: list[str] = []
    for token in folded.split():
        glued = _GLUED_PREFIX.match(token)
        if glued:  # "d'Ancona" -> "d'" + "ancona"
            tokens.extend([glued.group(1), token[glued.end() :]])
        else:
            tokens.append(token)
    return tokens


@functools.lru_cache(maxsize=65_536)
def split_last_name(last_name: str | None, prefix: str | None = None) -> tuple[str, str]:
    """(tussenvoegsel, surname core), both folded. Accepts the prefix in its own field, inside the last
    name ('van der Berg') or after a comma ('Berg, van der'); all three give ('van der', 'berg')."""
    text = last_name or ""
    trailing: list[str] = []
    if "," in text:
        core_part, _, after = text.partition(",")
        after_tokens = _name_tokens(after)
        if after_tokens and all(t in TUSSENVOEGSEL_WORDS for t in after_tokens):
            trailing, text = after_tokens, core_part
    tokens = _name_tokens(text)
    leading: list[str] = []
    while len(tokens) > 1 and tokens[0] in TUSSENVOEGSEL_WORDS:  # keep at least one word as the core
        leading.append(tokens.pop(0))
    if not tokens and trailing:  # "van der, ..." nonsense: keep what we have as the core
        tokens, trailing = trailing, []
    given = _name_tokens(prefix or "")
    found = trailing + leading
    # The prefix field may repeat what is already in the last name ("van der" + "van der Berg") or
    # hold only its first part ("van" + "der Berg").
    if given and found and given[-len(found) :] == found:
        words = given
    elif given and found and found[: len(given)] == given:
        words = found
    else:
        words = given + found
    return " ".join(words), " ".join(tokens)


def _surname_parts(last_name: str | None, prefix: str | None) -> set[str]:
    """Cores of each part of a double surname ('Jansen-de Vries' -> {'jansen', 'vries'})."""
    parts = {split_last_name(part)[1] for part in (last_name or "").split("-") if part.strip()}
    parts.add(split_last_name(last_name, prefix)[1])
    return {p for p in parts if p}


def initials_of(first_names: str | None) -> str:
    """Initials from first names ('Jan Pieter' -> 'jp', 'Jan-Pieter' -> 'jp', 'IJsbrand' -> 'ij')."""
    letters: list[str] = []
    for token in _name_tokens(first_names or ""):
        token = token.strip("'")
        if not token:
            continue
        # The Dutch digraph IJ is one letter: IJsbrand -> IJ.
        letters.append("ij" if token.startswith("ij") and len(token) > 2 else token[0])
    return "".join(letters)


@functools.lru_cache(maxsize=65_536)
def normalise_initials(initials: str | None) -> str:
    """Letters only, folded: 'J.P.' -> 'jp', 'IJ. P.' -> 'ijp'."""
    return "".join(c for c in fold(initials) if c.isalpha())


def normalise_email(email: str | None) -> str | None:
    """Trimmed, lower-case, without 'mailto:'; None unless it looks like an address."""
    text = fold(email).removeprefix("mailto:").strip()
    return text if "@" in text and " " not in text else None


_NL_MOBILE_OR_LANDLINE_LEN = 10


def normalise_phone(phone: str | None) -> str | None:
    """Digits in Dutch national form: '+31 6 1234 5678', '0031-6-12345678', '+31 (0)6 12345678' and
    '06-12345678' all give '0612345678'. Foreign numbers keep their country code as '00..'."""
    if not phone:
        return None
    text = phone.strip().replace("(0)", "")
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        digits = "00" + digits
    if digits.startswith("0031"):
        digits = "0" + digits[4:].lstrip("0")
    elif digits.startswith("31") and len(digits) == _NL_MOBILE_OR_LANDLINE_LEN + 1:
        digits = "0" + digits[2:]  # country code without '+' or '00'
    return digits if len(digits) >= 6 else None  # shorter is not a phone number


def normalise_postcode(postcode: str | None) -> str | None:
    """'1234 ab' -> '1234AB'; other countries' postcodes are upper-cased without spaces/dashes."""
    compact = re.sub(r"[\s\-.]", "", fold(postcode)).upper()
    return compact or None


def normalise_kvk(kvk: str | None) -> str | None:
    """KvK number as 8 digits (leading zeros are often dropped by other systems)."""
    digits = re.sub(r"\D", "", kvk or "")
    if not digits:
        return None
    return digits.zfill(8) if len(digits) < 8 else digits


def normalise_website(website: str | None) -> str | None:
    """The host without scheme, 'www.' or path: 'https://www.Regi.nl/contact' -> 'regi.nl'."""
    text = fold(website)
    text = re.sub(r"^[a-z]+://", "", text).split("/")[0].split("?")[0].removeprefix("www.")
    return text or None


# Legal forms and their spellings after dots are removed ("B.V." -> "bv"); single letters in a row are
# joined first ("B. V." -> "bv"). "holding" is not stripped: a holding and its werkmaatschappij are
# different organisations.
LEGAL_FORMS = frozenset(
    {
        "bv", "nv", "vof", "cv", "stichting", "vereniging", "cooperatie", "ua", "wa", "ba", "io",
        "maatschap", "eenmanszaak", "kerkgenootschap", "owm", "bvba", "vzw", "gmbh", "ltd", "inc",
        "llc", "sa", "sarl", "ag", "kg", "plc",
    }
)  # fmt: skip


def normalise_organisation_name(name: str | None) -> str:
    """Folded name without legal forms or punctuation: 'Regi B.V.' and 'Stichting Regi' -> 'regi'."""
    text = fold(name).replace("&", " en ").replace(".", "")
    tokens = re.sub(r"[^\w\s]", " ", text).split()
    joined: list[str] = []
    in_letter_run = False
    for token in tokens:
        if len(token) == 1 and token.isalpha():
            if in_letter_run:  # "b v" (from "B. V.") -> "bv"
                joined[-1] += token
            else:
                joined.append(token)
            in_letter_run = True
        else:
            joined.append(token)
            in_letter_run = False
    kept = [t for t in joined if t not in LEGAL_FORMS]
    return " ".join(kept or joined)


# --------------------------------------------------------------------------------------------------
# Jaro-Winkler
# --------------------------------------------------------------------------------------------------


def jaro(a: str, b: str) -> float:
    """Jaro similarity in [0, 1]: matching characters within a window, penalised for transpositions."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(0, max(len(a), len(b)) // 2 - 1)
    a_matched = [False] * len(a)
    b_matched = [False] * len(b)
    matches = 0
    for i, char in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not b_matched[j] and b[j] == char:
                a_matched[i] = b_matched[j] = True
                matches += 1
                break
    if matches == 0:
        return 0.0
    a_seq = [c for c, m in zip(a, a_matched, strict=True) if m]
    b_seq = [c for c, m in zip(b, b_matched, strict=True) if m]
    transpositions = sum(x != y for x, y in zip(a_seq, b_seq, strict=True)) / 2
    return (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3


def jaro_winkler(a: str, b: str, prefix_scale: float = 0.1, boost_threshold: float = 0.7) -> float:
    """Jaro-Winkler similarity: Jaro boosted for a common prefix of up to 4 characters (Winkler 1990),
    only when the Jaro similarity is already above `boost_threshold`."""
    similarity = jaro(a, b)
    if similarity <= boost_threshold:
        return similarity
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return similarity + prefix * prefix_scale * (1 - similarity)


# --------------------------------------------------------------------------------------------------
# Field comparisons: persons
# --------------------------------------------------------------------------------------------------

# Common Dutch roepnamen (the name someone goes by) for official first names, both directions.
ROEPNAMEN: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "johannes": frozenset({"jan", "hans", "johan", "joop", "jo", "hannes"}),
        "hendrik": frozenset({"henk", "rik", "henri", "hein", "harry"}),
        "cornelis": frozenset({"kees", "cor", "cees", "niels"}),
        "wilhelmus": frozenset({"wim", "willem", "pim"}),
        "willem": frozenset({"wim", "pim"}),
        "petrus": frozenset({"piet", "peter", "pieter"}),
        "pieter": frozenset({"piet", "peter"}),
        "jacobus": frozenset({"jaap", "koos", "jaco", "co"}),
        "gerardus": frozenset({"gerard", "gert", "gerrit", "geert"}),
        "adrianus": frozenset({"arie", "adri", "ad", "adriaan"}),
        "antonius": frozenset({"toon", "ton", "anton", "teun"}),
        "theodorus": frozenset({"theo", "ruud", "dorus"}),
        "franciscus": frozenset({"frans", "frank", "cis"}),
        "josephus": frozenset({"joop", "jos", "sjef", "joost"}),
        "maria": frozenset({"mies", "mieke", "marieke", "ria", "marie"}),
        "johanna": frozenset({"anneke", "jo", "joke", "hanneke", "annie", "hanna"}),
        "catharina": frozenset({"toos", "tineke", "ina", "karin", "rina", "trijntje"}),
        "elisabeth": frozenset({"els", "lies", "betty", "elise", "liesbeth", "bep"}),
        "wilhelmina": frozenset({"mina", "willemijn", "wil", "mien", "willy"}),
        "geertruida": frozenset({"truus", "geertje", "trudy", "truida"}),
        "hendrika": frozenset({"riek", "rika", "henny", "ria"}),
        "cornelia": frozenset({"corrie", "cor", "nel", "nelleke", "cora"}),
        "petronella": frozenset({"nel", "nelly", "ellen", "pleun"}),
    }
)


def _is_roepnaam_pair(a: str, b: str) -> bool:
    return b in ROEPNAMEN.get(a, frozenset()) or a in ROEPNAMEN.get(b, frozenset())


def _is_subsequence(short: str, long: str) -> bool:
    remaining = iter(long)
    return all(char in remaining for char in short)


def _initials_compatible(a: str, b: str) -> bool:
    """'jp' and 'j' are compatible (one uses fewer names); 'p' and 'jp' too (roepnaam is a second name)."""
    return _is_subsequence(a, b) or _is_subsequence(b, a)


def _show(*parts: str | None) -> str | None:
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return text or None


def _show_all(values: Iterable[str | None]) -> str | None:
    return ", ".join(v.strip() for v in values if v and v.strip()) or None


def _comparison(
    field: str,
    weights: Mapping[str, FieldWeights],
    nmbrs_value: str | None,
    regi_value: str | None,
    level: Level,
    note: str,
) -> FieldComparison:
    return FieldComparison(
        field=field,
        nmbrs_value=nmbrs_value,
        regi_value=regi_value,
        level=level,
        contribution=weights[field].of(level),
        note=note,
    )


def _side(nmbrs_missing: bool, regi_missing: bool) -> str:
    if nmbrs_missing and regi_missing:
        return "either side"
    return "the Nmbrs side" if nmbrs_missing else "RegiCRM"


def _surname_text(prefix: str, core: str) -> str:
    return f"{prefix} {core}".strip()


def compare_last_name(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    """Surname after tussenvoegsel handling: exact, close (tussenvoegsel differs, Jaro-Winkler, one part
    of a double surname) or different."""
    shown_n = _show(employee.prefix, employee.last_name)
    shown_r = _show(candidate.prefix, candidate.last_name)

    def result(level: Level, note: str) -> FieldComparison:
        return _comparison("last_name", PERSON_WEIGHTS, shown_n, shown_r, level, note)

    n_prefix, n_core = split_last_name(employee.last_name, employee.prefix)
    r_prefix, r_core = split_last_name(candidate.last_name, candidate.prefix)
    if not n_core or not r_core:
        return result(Level.MISSING, "no last name on " + _side(not n_core, not r_core))
    n_full, r_full = _surname_text(n_prefix, n_core), _surname_text(r_prefix, r_core)
    if n_core == r_core and n_prefix == r_prefix:
        with_prefix = f" with tussenvoegsel '{n_prefix}'" if n_prefix else ""
        return result(Level.EXACT, f"surname '{n_core}'{with_prefix} agrees")
    if re.sub(r"[\s']", "", n_full) == re.sub(r"[\s']", "", r_full):
        return result(Level.EXACT, f"'{n_full}' and '{r_full}' agree once spaces are ignored")
    if n_core == r_core:
        return result(Level.CLOSE, f"surname '{n_core}' agrees, tussenvoegsel differs ('{n_prefix}' vs '{r_prefix}')")
    similarity = jaro_winkler(n_core, r_core)
    if similarity >= CLOSE_NAME_SIMILARITY:
        return result(Level.CLOSE, f"surname '{n_core}' is close to '{r_core}' (Jaro-Winkler {similarity:.2f})")
    shared = _surname_parts(employee.last_name, employee.prefix) & _surname_parts(candidate.last_name, candidate.prefix)
    if shared:
        return result(Level.CLOSE, f"one part of a double surname agrees ('{sorted(shared)[0]}')")
    return result(Level.DIFFERENT, f"surname '{n_full}' differs from '{r_full}' (Jaro-Winkler {similarity:.2f})")


def _given_names(text: str | None) -> str:
    return " ".join(_name_tokens(text or ""))


def compare_first_name(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    """First name, roepnaam (nickname) or initials: exact, close (one given name, a known roepnaam, a
    typo, or compatible initials when one side has only initials) or different."""
    n_names = [n for n in dict.fromkeys((_given_names(employee.first_name), _given_names(employee.nickname))) if n]
    r_name = _given_names(candidate.first_name)
    n_initials = [
        i
        for i in dict.fromkeys(
            (
                normalise_initials(employee.initials),
                initials_of(employee.first_name),
                initials_of(employee.nickname),
            )
        )
        if i
    ]
    r_initials = [
        i for i in dict.fromkeys((normalise_initials(candidate.initials), initials_of(candidate.first_name))) if i
    ]
    shown_n = _show(
        employee.first_name,
        f"({employee.nickname})" if employee.nickname else None,
        f"[{employee.initials}]" if employee.initials else None,
    )
    shown_r = _show(candidate.first_name, f"[{candidate.initials}]" if candidate.initials else None)

    def result(level: Level, note: str) -> FieldComparison:
        return _comparison("first_name", PERSON_WEIGHTS, shown_n, shown_r, level, note)

    if n_names and r_name:
        if r_name in n_names:
            return result(Level.EXACT, f"first name '{r_name}' agrees")
        n_tokens = {t for name in n_names for t in name.split()}
        r_tokens = set(r_name.split())
        if n_tokens & r_tokens:
            return result(Level.CLOSE, f"given name '{sorted(n_tokens & r_tokens)[0]}' appears on both sides")
        for a in n_tokens:
            for b in r_tokens:
                if _is_roepnaam_pair(a, b):
                    return result(Level.CLOSE, f"'{b}' and '{a}' are a common first name and its roepnaam")
        best = max(jaro_winkler(name, r_name) for name in n_names)
        if best >= CLOSE_NAME_SIMILARITY:
            return result(Level.CLOSE, f"first names are close (Jaro-Winkler {best:.2f})")
        return result(Level.DIFFERENT, f"first names '{' / '.join(n_names)}' and '{r_name}' differ")
    if not n_initials or not r_initials:
        side = _side(not n_initials, not r_initials)
        return result(Level.MISSING, f"no first name or initials on {side}")
    if not n_names and not r_name and n_initials[0] == r_initials[0]:
        return result(Level.EXACT, f"initials '{n_initials[0].upper()}' agree (no first names on either side)")
    for a in n_initials:
        for b in r_initials:
            if _initials_compatible(a, b):
                if a == b:
                    return result(Level.CLOSE, f"initials '{a.upper()}' agree (first names on one side only)")
                return result(Level.CLOSE, f"initials '{a.upper()}' and '{b.upper()}' are compatible")
    return result(
        Level.DIFFERENT,
        f"initials '{n_initials[0].upper()}' and '{r_initials[0].upper()}' are not compatible",
    )


# Placeholder birthdays some HR systems store when the real one is unknown; they are not evidence.
_PLACEHOLDER_YEAR_MAX = 1900


def compare_birthday(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    """Date of birth: exact, near (day and month swapped, or one digit differs) or different."""
    a, b = employee.birthday, candidate.birthday
    shown_n, shown_r = (a.isoformat() if a else None), (b.isoformat() if b else None)

    def result(level: Level, note: str) -> FieldComparison:
        return _comparison("birthday", PERSON_WEIGHTS, shown_n, shown_r, level, note)

    if a is None or b is None:
        return result(Level.MISSING, "no date of birth on " + _side(a is None, b is None))
    if a.year <= _PLACEHOLDER_YEAR_MAX or b.year <= _PLACEHOLDER_YEAR_MAX:
        return result(Level.MISSING, f"a placeholder date of birth (year {_PLACEHOLDER_YEAR_MAX} or before)")
    if a == b:
        return result(Level.EXACT, f"date of birth {a.isoformat()} agrees")
    if a.year == b.year and a.day == b.month and a.month == b.day:
        return result(Level.CLOSE, "day and month are swapped (a typo)")
    differing = sum(x != y for x, y in zip(a.strftime("%Y%m%d"), b.strftime("%Y%m%d"), strict=True))
    if differing == 1:
        return result(Level.CLOSE, "one digit differs (a typo)")
    return result(Level.DIFFERENT, f"dates of birth differ ({a.isoformat()} vs {b.isoformat()})")


def _compare_sets(
    field: str,
    label: str,
    nmbrs: Sequence[tuple[str, str | None]],
    regi: Sequence[str | None],
    normalise: Callable[[str | None], str | None],
) -> FieldComparison:
    """Any-of comparison of several values per side (work/private e-mail, several phone numbers)."""
    shown_n = _show_all(value for _, value in nmbrs)
    shown_r = _show_all(regi)
    n_values = {normalise(value): kind for kind, value in nmbrs if normalise(value)}
    r_values = {normalise(value) for value in regi} - {None}
    if not n_values or not r_values:
        side = _side(not n_values, not r_values)
        return _comparison(field, PERSON_WEIGHTS, shown_n, shown_r, Level.MISSING, f"no {label} on {side}")
    common = sorted(v for v in n_values if v in r_values and v is not None)
    if common:
        return _comparison(
            field,
            PERSON_WEIGHTS,
            shown_n,
            shown_r,
            Level.EXACT,
            f"{label} {common[0]} ({n_values[common[0]]}) agrees",
        )
    return _comparison(field, PERSON_WEIGHTS, shown_n, shown_r, Level.DIFFERENT, f"no {label} in common")


def compare_email(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    return _compare_sets(
        "email",
        "e-mail",
        (("work", employee.email_work), ("private", employee.email_private)),
        candidate.emails,
        normalise_email,
    )


def compare_phone(employee: NmbrsEmployee, candidate: PersonCandidate) -> FieldComparison:
    return _compare_sets(
        "phone",
        "phone number",
        (
            ("work", employee.phone_work),
            ("mobile", employee.phone_mobile),
            ("private", employee.phone_private),
        ),
        candidate.phones,
        normalise_phone,
    )


def _compare_postcode(weights: Mapping[str, FieldWeights], nmbrs: str | None, regi: str | None) -> FieldComparison:
    a, b = normalise_postcode(nmbrs), normalise_postcode(regi)
    if a is None or b is None:
        side = _side(a is None, b is None)
        return _comparison("postcode", weights, nmbrs, regi, Level.MISSING, f"no postcode on {side}")
    if a == b:
        return _comparison("postcode", weights, nmbrs, regi, Level.EXACT, f"postcode {a} agrees")
    return _comparison("postcode", weights, nmbrs, regi, Level.DIFFERENT, f"postcodes differ ({a} vs {b})")


_FIELD_LABELS = MappingProxyType(
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


def _total(comparisons: Sequence[FieldComparison]) -> float:
    # Rounded so that equal evidence gives equal scores whatever the order of float additions.
    return round(min(1.0, max(0.0, sum(c.contribution for c in comparisons))), 4)


def _explain(score: float, comparisons: Sequence[FieldComparison], flags: Sequence[str]) -> str:
    parts = ", ".join(
        f"{_FIELD_LABELS.get(c.field, c.field)} {c.level.value} ({c.contribution:+.2f})" for c in comparisons
    )
    flagged = f"; flags: {', '.join(flags)}" if flags else ""
    return f"score {score:.2f} from {parts}{flagged}"


def score_person(employee: NmbrsEmployee, candidate: PersonCandidate) -> ScoredCandidate:
    """Score one RegiCRM person for an Nmbrs employee, with one comparison per field in PERSON_WEIGHTS."""
    comparisons = (
        compare_last_name(employee, candidate),
        compare_first_name(employee, candidate),
        compare_birthday(employee, candidate),
        compare_email(employee, candidate),
        compare_phone(employee, candidate),
        _compare_postcode(PERSON_WEIGHTS, employee.postcode, candidate.postcode),
    )
    flags: list[str] = []
    if candidate.has_login_account:
        flags.append(FLAG_LOGIN_ACCOUNT)
    if candidate.is_blue_employee:
        flags.append(FLAG_BLUE_EMPLOYEE)
    if set(candidate.linked_nmbrs_employee_ids) - {employee.employee_id}:
        flags.append(FLAG_LINKED_ELSEWHERE)
    if employee.bsn_hash and candidate.bsn_hash:
        flags.append(FLAG_SAME_BSN_HASH if employee.bsn_hash == candidate.bsn_hash else FLAG_DIFFERENT_BSN_HASH)
    score = _total(comparisons)
    return ScoredCandidate(
        person_id=candidate.person_id,
        score=score,
        comparisons=comparisons,
        flags=tuple(flags),
        has_login_account=candidate.has_login_account,
        explanation=_explain(score, comparisons, flags),
    )


def _person_rank(scored: ScoredCandidate) -> tuple[float, bool, int]:
    # Highest score first; among equals the person with the login account (docs/domain.md: duplicates
    # exist and the right person is the one with the login account), then the lowest id (stable).
    return (-scored.score, not scored.has_login_account, scored.person_id)


def _score_all(employee: NmbrsEmployee, candidates: Iterable[PersonCandidate]) -> list[ScoredCandidate]:
    unique = {c.person_id: c for c in reversed(list(candidates))}  # a person found twice counts once
    scored = [score_person(employee, c) for c in unique.values()]
    return sorted(scored, key=_person_rank)


def rank_candidates(
    employee: NmbrsEmployee,
    candidates: Iterable[PersonCandidate],
    top_n: int = 5,
    min_score: float = 0.2,
) -> tuple[ScoredCandidate, ...]:
    """The Koppelen pick list: at most `top_n` candidates scoring at least `min_score`, best first."""
    ranked = _score_all(employee, candidates)
    return tuple(c for c in ranked if c.score >= min_score)[: max(top_n, 0)]


def decide_match(
    employee: NmbrsEmployee,
    candidates: Iterable[PersonCandidate],
    policy: MatchPolicy | None = None,
    linked_persons_for_bsn: Sequence[int] = (),
) -> MatchDecision:
    """Link automatically when certain, otherwise ask a human with the ranked candidates.

    Certain means: another Nmbrs employment of the same human (same BSN hash) is already linked, to one
    person only (`linked_persons_for_bsn`, from the store, and candidates carrying the same BSN hash and a
    link), and that person is a candidate whose birthday does not contradict the employee's; or the
    opt-in definite rule of `policy` is met.
    """
    policy = policy or MatchPolicy()
    candidate_list = list(candidates)
    ranked = _score_all(employee, candidate_list)
    by_id = {c.person_id: c for c in candidate_list}
    scored_by_id = {s.person_id: s for s in ranked}
    shown = [c for c in ranked if c.score >= policy.min_score][: policy.top_n]

    same_human = set(linked_persons_for_bsn) | {
        c.person_id
        for c in candidate_list
        if employee.bsn_hash
        and c.bsn_hash == employee.bsn_hash
        and set(c.linked_nmbrs_employee_ids) - {employee.employee_id}
    }
    if same_human:
        return _same_human_decision(employee, sorted(same_human), by_id, scored_by_id, shown, policy.min_score)

    if not shown:
        return NeedsDecision(
            situation="unmatched",
            candidates=(),
            reason=f"no RegiCRM person scores at least {policy.min_score:.2f} "
            f"({len(ranked)} candidate{'s' if len(ranked) != 1 else ''} scored)",
        )
    top = shown[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    why_not = _definite_rule_refusal(top, runner_up, shown, policy)
    if why_not is None:
        lead = (
            f"{top.score - runner_up.score:.2f} ahead of person {runner_up.person_id} ({runner_up.score:.2f})"
            if runner_up
            else "no other candidate"
        )
        return AutoLink(
            person_id=top.person_id,
            rule="definite_score",
            reason=f"definite rule: score {top.score:.2f} >= {policy.auto_link_min_score:.2f} and {lead}",
            candidate=top,
        )
    return NeedsDecision(
        situation="disputed",
        candidates=tuple(shown),
        reason=f"{len(shown)} candidate{'s' if len(shown) != 1 else ''} at or above {policy.min_score:.2f}, "
        f"best person {top.person_id} ({top.score:.2f}); {why_not}",
    )


def _same_human_decision(
    employee: NmbrsEmployee,
    person_ids: list[int],
    by_id: dict[int, PersonCandidate],
    scored_by_id: dict[int, ScoredCandidate],
    shown: list[ScoredCandidate],
    min_score: float,
) -> MatchDecision:
    """Another employment of this human (same BSN hash) is linked to `person_ids`: link to that person when
    it is one and nothing contradicts it, else ask. A BSN typed wrongly in Nmbrs, or corrected there, would
    otherwise put a stranger's employment on someone's card, the worst mistake a sync can make. The persons of
    the BSN are always among the candidates shown (the store adds them), so Koppelen to one is a command away."""

    def ask(reason: str) -> NeedsDecision:
        found = [i for i in person_ids if i in scored_by_id]
        carried = sorted({*(c.person_id for c in shown), *found}, key=lambda i: _person_rank(scored_by_id[i]))
        return NeedsDecision(
            situation="disputed" if carried else "unmatched",
            candidates=tuple(scored_by_id[i] for i in carried),
            reason=reason,
        )

    if len(person_ids) > 1:
        return ask(f"the same BSN hash is linked to several persons ({', '.join(map(str, person_ids))}): "
                   "duplicates in RegiCRM, choose one")  # fmt: skip
    (person_id,) = person_ids
    person = by_id.get(person_id)
    # Koppelen to another person or Aanmaken is refused while the BSN is linked to this one (one human, one
    # person): the way out of a wrong BSN is to correct it in Nmbrs, after which the question is asked anew.
    choices = f"Koppelen to person {person_id} if the card is right, else correct the BSN in Nmbrs"
    if person is None:
        return ask(f"same BSN hash as an employment linked to person {person_id}, whose card is gone: {choices}")
    if employee.birthday and person.birthday and employee.birthday != person.birthday:
        return ask(f"same BSN hash as an employment linked to person {person_id}, but the birthdays differ "
                   f"({employee.birthday.isoformat()} in Nmbrs, {person.birthday.isoformat()} on the card): "
                   f"{choices}")  # fmt: skip
    if scored_by_id[person_id].score < min_score:
        return ask(f"same BSN hash as an employment linked to person {person_id}, who shares no name, birthday or "
                   f"e-mail with this employee: {choices}")  # fmt: skip
    others = sorted(set(person.linked_nmbrs_employee_ids) - {employee.employee_id})
    via = f"Nmbrs employee {others[0]}" if others else "another Nmbrs employment"
    return AutoLink(
        person_id=person_id,
        rule="same_bsn_hash",
        reason=f"same BSN hash as {via}, already linked to person {person_id}",
        candidate=scored_by_id[person_id],
    )


def _definite_rule_refusal(
    top: ScoredCandidate, runner_up: ScoredCandidate | None, shown: Sequence[ScoredCandidate], policy: MatchPolicy
) -> str | None:
    """Why the definite rule does not link `top`, or None when it does.

    A score adds up evidence that relatives share (a family e-mail, phone and address; Johanna and Johannes
    are close names), so a definite link also needs the birthday and the first name to agree exactly, and
    never skips the card with the login account (the right one among duplicates) for another."""
    threshold = policy.auto_link_min_score
    if threshold is None:
        return "automatic linking on score is off"
    if top.score < threshold:
        return f"below the definite threshold {threshold:.2f}"
    levels = {c.field: c.level for c in top.comparisons}
    for field in ("birthday", "first_name"):
        if levels.get(field) is not Level.EXACT:
            return f"the {_FIELD_LABELS[field]} does not agree exactly ({levels.get(field, Level.MISSING).value})"
    if not top.has_login_account and (login := next((c for c in shown if c.has_login_account), None)):
        return f"person {login.person_id} has the login account: duplicates in RegiCRM, choose one"
    if runner_up is not None and round(top.score - runner_up.score, 4) < policy.auto_link_margin:
        return (
            f"person {runner_up.person_id} ({runner_up.score:.2f}) is within the margin {policy.auto_link_margin:.2f}"
        )
    if FLAG_DIFFERENT_BSN_HASH in top.flags:
        return "the best candidate is linked to an employment with a different BSN hash"
    if FLAG_BLUE_EMPLOYEE in top.flags and not policy.auto_link_blue_employees:
        return "the best candidate has a manual (blue) employee"
    return None


# --------------------------------------------------------------------------------------------------
# Organisations
# --------------------------------------------------------------------------------------------------

# Mail domains shared by unrelated people: the same domain says nothing about the organisation.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "hotmail.com", "hotmail.nl", "outlook.com", "outlook.nl", "live.nl", "live.com",
        "yahoo.com", "icloud.com", "ziggo.nl", "kpnmail.nl", "planet.nl", "xs4all.nl", "home.nl",
        "hetnet.nl", "upcmail.nl", "chello.nl", "casema.nl", "quicknet.nl",
    }
)  # fmt: skip


def score_organisation(
    company: NmbrsCompany, candidate: OrganisationCandidate, *, company_postcode: str | None = None
) -> ScoredOrganisation:
    """Score one RegiCRM organisation for an Nmbrs company, one comparison per ORGANISATION_WEIGHTS field.

    `company_postcode` is passed separately because NmbrsCompany carries no address (List_GetAll has none).
    """
    w = ORGANISATION_WEIGHTS

    def kvk_result(level: Level, note: str) -> FieldComparison:
        return _comparison("kvk_number", w, company.kvk_number, candidate.kvk_number, level, note)

    def name_result(level: Level, note: str) -> FieldComparison:
        return _comparison("name", w, company.name, candidate.name, level, note)

    def email_result(level: Level, note: str) -> FieldComparison:
        return _comparison("email", w, company.email, candidate.email, level, note)

    kvk_n, kvk_r = normalise_kvk(company.kvk_number), normalise_kvk(candidate.kvk_number)
    if kvk_n is None or kvk_r is None:
        kvk = kvk_result(Level.MISSING, "no KvK number on " + _side(kvk_n is None, kvk_r is None))
    elif kvk_n == kvk_r:
        kvk = kvk_result(Level.EXACT, f"KvK number {kvk_n} agrees: the same legal entity")
    else:
        kvk = kvk_result(Level.DIFFERENT, f"KvK numbers differ ({kvk_n} vs {kvk_r}): different legal entities")

    name_n, name_r = normalise_organisation_name(company.name), normalise_organisation_name(candidate.name)
    similarity = jaro_winkler(name_n, name_r)
    if not name_n or not name_r:
        name = name_result(Level.MISSING, "no name on " + _side(not name_n, not name_r))
    elif name_n == name_r:
        name = name_result(Level.EXACT, f"name '{name_n}' agrees (legal form ignored)")
    elif sorted(name_n.split()) == sorted(name_r.split()) or similarity >= CLOSE_NAME_SIMILARITY:
        name = name_result(Level.CLOSE, f"'{name_n}' and '{name_r}' are close (Jaro-Winkler {similarity:.2f})")
    else:
        name = name_result(Level.DIFFERENT, f"'{name_n}' and '{name_r}' differ (Jaro-Winkler {similarity:.2f})")

    mail_n, mail_r = normalise_email(company.email), normalise_email(candidate.email)
    domain = mail_n.rpartition("@")[2] if mail_n else None
    if mail_n is None or mail_r is None:
        email = email_result(Level.MISSING, "no e-mail on " + _side(mail_n is None, mail_r is None))
    elif mail_n == mail_r:
        email = email_result(Level.EXACT, f"e-mail {mail_n} agrees")
    elif domain == mail_r.rpartition("@")[2] and domain not in PUBLIC_MAIL_DOMAINS:
        email = email_result(Level.CLOSE, f"e-mail addresses share the company domain {domain}")
    else:
        email = email_result(Level.DIFFERENT, "e-mail addresses differ")

    phone = _compare_single(w, "phone", "phone number", company.phone, candidate.phone, normalise_phone)
    website = _compare_single(w, "website", "website", company.website, candidate.website, normalise_website)
    postcode = _compare_postcode(w, company_postcode, candidate.postcode)

    comparisons = (kvk, name, email, phone, website, postcode)
    flags = (
        (FLAG_ORGANISATION_LINKED_ELSEWHERE,) if set(candidate.linked_nmbrs_company_ids) - {company.company_id} else ()
    )
    score = _total(comparisons)
    return ScoredOrganisation(
        organisation_id=candidate.organisation_id,
        score=score,
        comparisons=comparisons,
        flags=flags,
        explanation=_explain(score, comparisons, flags),
    )


def _compare_single(
    weights: Mapping[str, FieldWeights],
    field: str,
    label: str,
    nmbrs: str | None,
    regi: str | None,
    normalise: Callable[[str | None], str | None],
) -> FieldComparison:
    a, b = normalise(nmbrs), normalise(regi)
    if a is None or b is None:
        side = _side(a is None, b is None)
        return _comparison(field, weights, nmbrs, regi, Level.MISSING, f"no {label} on {side}")
    if a == b:
        return _comparison(field, weights, nmbrs, regi, Level.EXACT, f"{label} {a} agrees")
    return _comparison(field, weights, nmbrs, regi, Level.DIFFERENT, f"{label}s differ ({a} vs {b})")


def _organisation_rank(scored: ScoredOrganisation) -> tuple[float, int]:
    return (-scored.score, scored.organisation_id)


def _score_organisations(
    company: NmbrsCompany, candidates: Iterable[OrganisationCandidate], company_postcode: str | None
) -> list[ScoredOrganisation]:
    unique = {c.organisation_id: c for c in reversed(list(candidates))}
    scored = [score_organisation(company, c, company_postcode=company_postcode) for c in unique.values()]
    return sorted(scored, key=_organisation_rank)


def rank_organisations(
    company: NmbrsCompany,
    candidates: Iterable[OrganisationCandidate],
    top_n: int = 5,
    min_score: float = 0.2,
    *,
    company_postcode: str | None = None,
) -> tuple[ScoredOrganisation, ...]:
    """The Koppelen pick list for a company: at most `top_n` organisations scoring at least `min_score`."""
    ranked = _score_organisations(company, candidates, company_postcode)
    return tuple(c for c in ranked if c.score >= min_score)[: max(top_n, 0)]


def decide_organisation_match(
    company: NmbrsCompany,
    candidates: Iterable[OrganisationCandidate],
    policy: MatchPolicy | None = None,
    *,
    company_postcode: str | None = None,
) -> OrganisationMatchDecision:
    """Auto-link when exactly one organisation has the company's KvK number; otherwise ask a human.
    Only `min_score` and `top_n` of the policy apply: organisations never auto-link on a fuzzy score."""
    policy = policy or MatchPolicy()
    ranked = _score_organisations(company, candidates, company_postcode)
    shown = [c for c in ranked if c.score >= policy.min_score][: policy.top_n]
    kvk_hits = [s for s in ranked if s.comparisons[0].level is Level.EXACT]
    if len(kvk_hits) == 1:
        hit = kvk_hits[0]
        return OrganisationAutoLink(
            organisation_id=hit.organisation_id,
            rule="kvk_number",
            reason=f"KvK number {normalise_kvk(company.kvk_number)} matches organisation "
            f"{hit.organisation_id} and no other candidate",
            candidate=hit,
        )
    if kvk_hits:
        ids = [s.organisation_id for s in kvk_hits]
        carried = sorted({*shown, *kvk_hits}, key=_organisation_rank)
        return OrganisationNeedsDecision(
            situation="disputed",
            candidates=tuple(carried),
            reason=f"KvK number {normalise_kvk(company.kvk_number)} is on several organisations "
            f"({', '.join(map(str, ids))}): duplicates in RegiCRM, choose one",
        )
    if not shown:
        return OrganisationNeedsDecision(
            situation="unmatched",
            candidates=(),
            reason=f"no RegiCRM organisation scores at least {policy.min_score:.2f} "
            f"({len(ranked)} candidate{'s' if len(ranked) != 1 else ''} scored)",
        )
    return OrganisationNeedsDecision(
        situation="disputed",
        candidates=tuple(shown),
        reason=f"{len(shown)} candidate{'s' if len(shown) != 1 else ''} at or above {policy.min_score:.2f}, "
        f"best organisation {shown[0].organisation_id} ({shown[0].score:.2f}); without a unique KvK match "
        "organisations are linked by a human",
    )
