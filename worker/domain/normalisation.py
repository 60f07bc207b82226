"""Normalisation for matching: folded names, tussenvoegsels and initials, e-mail, phone, postcode, KvK, website.

The adapters use the same forms to search RegiCRM, so a candidate found in SQL compares the way the matcher
compares it. Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from types import MappingProxyType

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

# Tussenvoegsels as people abbreviate them on RegiCRM cards, by their letters: 'v.d.', 'v.d', 'v/d' and 'vd' are
# all 'vd'. Each stands for the spelled-out forms listed; one that may stand for several ('v.d.') agrees with each
# of them. Kept to the abbreviations Dutch HR actually types; 'het' and ''t' are one word (see _SAME_WORD), so
# 'v.h.' and 'v.t.' both agree with "van 't" and 'van het'.
TUSSENVOEGSEL_ABBREVIATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "v": ("van",),  # 'v. Dijk'
        "vd": ("van der", "van den", "van de"),  # 'v.d. Berg', 'v/d Berg', 'vd Berg'
        "vh": ("van het",),  # 'v.h. Hof'
        "vt": ("van 't",),  # 'v.t. Hof': the t of 't (van ter/ten are rare and written out)
        "id": ("in de", "in den", "in der"),  # 'i.d. Betouw'
        "od": ("op de", "op den", "op der"),  # 'o.d. Weegh'
        "ad": ("aan de", "aan den", "aan der"),  # 'a.d. Stegge'
    }
)
# Written without dots or slash only 'vd' is unmistakable: 'ad', 'id' and 'od' are words or names ('Ad').
_BARE_ABBREVIATIONS = frozenset({"vd"})
# Spellings of one tussenvoegsel word: 'het' and 't (and 't typed without its apostrophe) are the same word.
_SAME_WORD: Mapping[str, str] = MappingProxyType({"het": "'t", "t": "'t"})
_ABBREVIATED = re.compile(r"(?P<a>[a-z])(?:\.(?P<b>[a-z])?\.?|/(?P<c>[a-z])|(?P<d>[a-z])\.?)")
# The canonical token of an abbreviation ('v.d.'), as split_last_name returns it in the tussenvoegsel.
_ABBREVIATION_TOKENS: Mapping[str, str] = MappingProxyType(
    {key: "".join(f"{letter}." for letter in key) for key in TUSSENVOEGSEL_ABBREVIATIONS}
)
_ABBREVIATION_KEYS: Mapping[str, str] = MappingProxyType({v: k for k, v in _ABBREVIATION_TOKENS.items()})
# Initials typed into the last name ('Berg, A. van den', 'J.P. de Vries'): capitals, each with a dot.
_INITIALS = re.compile(r"(?:(?:IJ|[^\W\d_])\.)+")
_CHUNKS = re.compile(r"[\s,\-]+")


def _abbreviation(chunk: str, *, in_prefix_field: bool) -> str | None:
    """The canonical token ('v.d.') of an abbreviated tussenvoegsel as typed ('v.d.', 'V.d', 'v/d', 'VD'), else None.

    In the last name, dotted capitals ('A.D.', 'V.') are initials, not 'aan de' or 'van'; the prefix field holds
    nothing but tussenvoegsels, so there they are read whatever the case."""
    folded = fold(chunk)
    match = _ABBREVIATED.fullmatch(folded)
    if match is None:
        return None
    second = match["b"] or match["c"] or match["d"] or ""
    key = match["a"] + second
    if key not in TUSSENVOEGSEL_ABBREVIATIONS:
        return None
    if match["d"] and key not in _BARE_ABBREVIATIONS:
        return None
    if "." in folded and not in_prefix_field and chunk.replace(".", "").isupper():
        return None
    return _ABBREVIATION_TOKENS[key]


def _surname_tokens(text: str, *, in_prefix_field: bool = False, keep_initials: bool = False) -> list[str]:
    """Folded words of a surname or tussenvoegsel, abbreviations as their canonical token ('v/d' -> 'v.d.') and,
    in the last name, initials left out (they are not part of the surname) unless `keep_initials`."""
    tokens: list[str] = []
    chunks = [chunk for chunk in _CHUNKS.split(text.strip()) if chunk]
    i = 0
    while i < len(chunks):
        chunk = chunks[i]
        # 'v. d. Berg': two spaced letters with dots make one abbreviation; in 'Berg, v. D.' the D. is an initial.
        after = chunks[i + 1] if i + 1 < len(chunks) else ""
        spaced = f"{chunk}{after}" if len(chunk) == len(after) == 2 and (in_prefix_field or after.islower()) else ""
        if spaced and (joined := _abbreviation(spaced, in_prefix_field=in_prefix_field)) and len(joined) == 4:
            tokens.append(joined)
            i += 2
            continue
        i += 1
        abbreviation = _abbreviation(chunk, in_prefix_field=in_prefix_field)
        if abbreviation is not None:
            tokens.append(abbreviation)
        elif not (in_prefix_field or keep_initials) and _INITIALS.fullmatch(chunk) and chunk.replace(".", "").isupper():
            continue
        else:
            tokens.extend(_name_tokens(chunk))
    return tokens


def name_words(text: str) -> list[str]:
    """Folded words of a name as HR types it in a search, abbreviated tussenvoegsels as their canonical token:
    'J. v/d Meer' -> ['j', 'v.d.', 'meer'] (prefix_readings and tussenvoegsel_spellings take it from there)."""
    return _surname_tokens(text, keep_initials=True)


def is_tussenvoegsel_token(token: str) -> bool:
    """A folded word of a tussenvoegsel ('van', "'t") or an abbreviation's canonical token ('v.d.')."""
    return token in TUSSENVOEGSEL_WORDS or token in _ABBREVIATION_KEYS


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
    name ('van der Berg') or after a comma ('Berg, van der'); all three give ('van der', 'berg').

    Abbreviations keep their canonical token ('v/d Berg' -> ('v.d.', 'berg'); prefix_readings says what they
    stand for), and initials typed into the last name are left out ('Berg, A. van den', 'A. van den Berg')."""
    text = last_name or ""
    trailing: list[str] = []
    if "," in text:
        core_part, _, after = text.partition(",")
        after_tokens = _surname_tokens(after)
        if after_tokens and all(is_tussenvoegsel_token(t) for t in after_tokens):
            trailing, text = after_tokens, core_part
    tokens = _surname_tokens(text)
    if not tokens or tokens[-1] in _ABBREVIATION_KEYS:  # only initials, or a surname such as 'Vd': as typed
        tokens = _name_tokens(text)
    leading: list[str] = []
    while len(tokens) > 1 and is_tussenvoegsel_token(tokens[0]):  # keep at least one word as the core
        leading.append(tokens.pop(0))
    if not tokens and trailing:  # "van der, ..." nonsense: keep what we have as the core
        tokens, trailing = trailing, []
    given = _surname_tokens(prefix or "", in_prefix_field=True)
    found = trailing + leading
    # The prefix field may repeat what is already in the last name ("van der" + "van der Berg"), abbreviated or
    # not ("v.d." + "van der Berg"), or hold only its first part ("van" + "der Berg").
    if given and found and given[-len(found) :] == found:
        words = given
    elif given and found and found[: len(given)] == given:
        words = found
    elif given and found and agreeing_tussenvoegsel(" ".join(found), " ".join(given)) is not None:
        # The same tussenvoegsel, abbreviated on one side: keep the more telling form ('van der' over 'v.d.').
        words = min((found, given), key=lambda w: len(prefix_readings(" ".join(w))))
    else:
        words = given + found
    return " ".join(words), " ".join(tokens)


def _spelled(words: str) -> str:
    return " ".join(_SAME_WORD.get(word, word) for word in words.split())


@functools.lru_cache(maxsize=4_096)
def prefix_readings(prefix: str) -> tuple[str, ...]:
    """Every tussenvoegsel a folded one (from split_last_name) may stand for, spelled out: 'v.d.' ->
    ('van der', 'van den', 'van de'), 'v. der' -> ('van der',), 'in het' -> ("in 't",), 'van der' -> itself."""
    options = [
        _readings_of(key) if (key := _ABBREVIATION_KEYS.get(token)) else (_spelled(token),) for token in prefix.split()
    ]
    return tuple(dict.fromkeys(_product(options)))


def agreeing_tussenvoegsel(a: str, b: str) -> str | None:
    """The tussenvoegsel on which two folded ones agree: either one when they are the same, else the spelled-out
    reading they share ('v.d.' and 'van den' -> 'van den'); None when no reading of one is a reading of the
    other. Symmetric in whether they agree."""
    if a == b:
        return a
    common = [reading for reading in prefix_readings(a) if reading in prefix_readings(b)]
    if not common:
        return None
    # Show what one side wrote in full, the first side (the Nmbrs record) preferred.
    for typed in (a, b):
        if _spelled(typed) in common:
            return typed
    return common[0]


def tussenvoegsel_spellings(prefix: str) -> tuple[str, ...]:
    """Every folded way a card may write a tussenvoegsel that agrees with `prefix` (in any typed form): for
    'van der' or 'v.d.' that is 'van der', 'v. der', 'v.d.', 'v.d', 'v/d', 'vd' and the other readings of 'v.d.'.
    For the HR search, which finds a card by any of them."""
    spellings: dict[str, None] = {}
    for reading in prefix_readings(prefix):
        spellings.update(dict.fromkeys(_product([_word_spellings(word) for word in reading.split()])))
        for key in TUSSENVOEGSEL_ABBREVIATIONS:
            if reading in _readings_of(key):
                spellings.update(dict.fromkeys(_typed_forms(key)))
    return tuple(spellings)


def _word_spellings(word: str) -> list[str]:
    """One spelled-out word as a card may write it: 'van' -> ['van', 'v.'], "'t" -> ["'t", 'het', 't']."""
    same = [spelling for spelling, canonical in _SAME_WORD.items() if canonical == word]
    abbreviated = [_ABBREVIATION_TOKENS[key] for key in TUSSENVOEGSEL_ABBREVIATIONS if _readings_of(key) == (word,)]
    return [word, *same, *abbreviated]


def _readings_of(key: str) -> tuple[str, ...]:
    return tuple(_spelled(option) for option in TUSSENVOEGSEL_ABBREVIATIONS[key])


def _typed_forms(key: str) -> tuple[str, ...]:
    """How people type an abbreviation: 'v.d.', 'v.d', 'v. d.', 'v/d' and, where unmistakable, 'vd'."""
    if len(key) == 1:
        return (f"{key}.",)
    a, b = key[0], key[1]
    return (f"{a}.{b}.", f"{a}.{b}", f"{a}. {b}.", f"{a}/{b}", *((key,) if key in _BARE_ABBREVIATIONS else ()))


def _product(options: Sequence[Sequence[str]]) -> list[str]:
    """Every choice of one option per word, joined: [['van'], ['der', 'den']] -> ['van der', 'van den']."""
    combinations = [""]
    for choices in options:
        combinations = [f"{done} {choice}".strip() for done in combinations for choice in dict.fromkeys(choices)]
    return combinations


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
