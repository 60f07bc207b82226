"""Normalisation for matching: folded names, tussenvoegsels and initials, e-mail, phone, postcode, KvK, website.

The adapters use the same forms to search RegiCRM, so a candidate found in SQL compares the way the matcher
compares it. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Letters NFKD does not decompose into a base letter plus a mark.
_UNDECOMPOSABLE = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ı": "i",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "þ": "th",
        "Þ": "th",
    }
)
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
        "van",
        "de",
        "der",
        "den",
        "het",
        "'t",
        "'s",
        "t",
        "ter",
        "ten",
        "te",
        "in",
        "op",
        "uit",
        "aan",
        "bij",
        "onder",
        "over",
        "voor",
        "tot",
        "von",
        "vom",
        "zu",
        "zum",
        "zur",
        "la",
        "le",
        "les",
        "l'",
        "d'",
        "du",
        "des",
        "di",
        "da",
        "dal",
        "del",
        "della",
        "dos",
        "das",
        "do",
        "el",
        "al",
        "lo",
    }
)
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


def surname_parts(last_name: str | None, prefix: str | None) -> set[str]:
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


def given_names(text: str | None) -> str:
    """First names as folded words: 'Jan-Pieter' -> 'jan pieter'."""
    return " ".join(_name_tokens(text or ""))


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
        "bv",
        "nv",
        "vof",
        "cv",
        "stichting",
        "vereniging",
        "cooperatie",
        "ua",
        "wa",
        "ba",
        "io",
        "maatschap",
        "eenmanszaak",
        "kerkgenootschap",
        "owm",
        "bvba",
        "vzw",
        "gmbh",
        "ltd",
        "inc",
        "llc",
        "sa",
        "sarl",
        "ag",
        "kg",
        "plc",
    }
)


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
