"""Search RegiCRM persons and organisations as HR types a name: accents, tussenvoegsels, dates, phones, KvK (asyncpg).

Read-only, for Koppelen in any frontend.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import asyncpg
from pydantic import Field, computed_field

from worker.adapters.hr_queries import FrozenView, person_name
from worker.domain.normalisation import (
    fold,
    is_tussenvoegsel_token,
    name_words,
    normalise_kvk,
    tussenvoegsel_spellings,
)
from worker.domain.person_scoring import FLAG_BLUE_EMPLOYEE, FLAG_LOGIN_ACCOUNT

# Accent- and case-free comparison in SQL that agrees with normalisation.fold() for Latin letters: translate()
# for the letters fold() maps to one letter, replace() for the ligatures it spells out (æ -> ae), after NFC
# (a name stored with combining marks folds like the precomposed one). Generated from fold() itself, so the
# two cannot drift apart; crm_persons.match_name (migration 0013) holds the same expression, and a test says so.
# So does crm_persons.folded_full_name (migration 0018), the person's name parts the search looks in.
FOLDED_FULL_NAME = " || ' ' || ".join(f"coalesce({f}, '')" for f in ("first_name", "initials", "prefix", "last_name"))
_LATIN = [
    c
    for block in (range(0xC0, 0x250), range(0x1E00, 0x1F00))  # Latin-1 Supplement to Extended-B; Vietnamese
    for c in map(chr, block)
    if c.isalpha()
]
_ONE_LETTER = [(c, fold(c)) for c in _LATIN if len(fold(c)) == 1 and fold(c) != c]
_FOLD_FROM = "".join(c for c, _ in _ONE_LETTER) + "’‘`´ʼ"
_FOLD_TO = "".join(f for _, f in _ONE_LETTER) + "'''''"
_LIGATURES = [(c, fold(c)) for c in _LATIN if len(fold(c)) > 1]  # æ -> ae, ŀ -> l·, ŉ -> 'n
# Characters ignored when comparing names written together ('vanderberg', "d'Ancona", 'Jansen-de Vries').
JOINERS = " -'."


def _sql_fold(expression: str, fold_from: str = "$1", fold_to: str = "$2") -> str:
    """SQL folding `expression`; by default $1 and $2 must be bound to _FOLD_FROM and _FOLD_TO."""
    folded = f"translate(normalize({expression}, NFC), {fold_from}, {fold_to})"
    for ligature, spelled in _LIGATURES:
        folded = f"replace({folded}, '{ligature}', '{spelled.replace(chr(39), chr(39) * 2)}')"
    return f"lower({folded})"


def sql_fold_literal(expression: str) -> str:
    """_sql_fold with the translation written out: for a generated column, which cannot take parameters."""
    return _sql_fold(expression, "'" + _FOLD_FROM.replace("'", "''") + "'", "'" + _FOLD_TO.replace("'", "''") + "'")


_DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y")
_PHONE_LIKE = re.compile(r"[\d\s()+\-]+")
# Dutch numbers are 10 digits with the leading 0; the last 9 are the same whatever the country-code form.
_PHONE_TAIL = 9


def _as_date(text: str) -> date | None:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


class PersonHit(FrozenView):
    """A RegiCRM person found by the search, with what tells duplicates apart."""

    person_id: int
    name: str
    birthday: date | None = None
    email_work: str | None = None
    email_private: str | None = None
    organisation_id: int | None = None
    organisation_name: str | None = None
    username: str | None = None
    has_login_account: bool = Field(description="The right card among duplicates is the one with the account.")
    is_blue_employee: bool = Field(description="A manual ('blue') RegiTijd employee hangs off this person.")
    linked_nmbrs_employee_ids: tuple[int, ...] = Field(description="Nmbrs employees already linked to it.")
    regitijd_employee_ids: tuple[int, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def flags(self) -> tuple[str, ...]:
        """The same flag names the candidates of an open question carry."""
        marks = ((FLAG_LOGIN_ACCOUNT, self.has_login_account), (FLAG_BLUE_EMPLOYEE, self.is_blue_employee))
        return tuple(flag for flag, present in marks if present)


class OrganisationHit(FrozenView):
    """A RegiCRM organisation found by the search."""

    organisation_id: int
    name: str
    kvk_number: str | None = None
    email: str | None = None
    linked_nmbrs_company_ids: tuple[int, ...] = ()
    regitijd_company_ids: tuple[int, ...] = ()


class SearchResult(FrozenView):
    text: str
    persons: tuple[PersonHit, ...]
    organisations: tuple[OrganisationHit, ...]
    more_persons: bool = Field(False, description="More persons match than shown: refine the search.")
    more_organisations: bool = Field(False, description="More organisations match than shown.")


class SearchCriteria:
    """What a search text can mean: name parts, a name written together, an e-mail, a date, a phone, a KvK."""

    def __init__(self, text: str) -> None:
        folded = fold(text)
        self.tokens = [t for t in re.split(r"[\s,]+", folded.replace(".", " ")) if t]
        compact = folded
        for joiner in JOINERS:
            compact = compact.replace(joiner, "")
        # Two letters written together match far too much; a real 'vanderberg' is longer.
        self.compact = compact if len(compact) >= 3 else ""
        self.email = folded.replace(" ", "") if "@" in folded else None
        self.birthday = _as_date(text.strip())
        digits = re.sub(r"\D", "", text)
        phone_like = self.birthday is None and _PHONE_LIKE.fullmatch(text.strip()) is not None
        self.phone_tail = digits[-_PHONE_TAIL:] if phone_like and len(digits) >= _PHONE_TAIL else None
        self.kvk = normalise_kvk(digits) if text.strip().isdigit() and len(digits) <= 8 else None
        self.core_words, self.prefix_spellings = _tussenvoegsel_alternatives(text)


def _tussenvoegsel_alternatives(text: str) -> tuple[list[str], list[tuple[str, ...]]]:
    """The words of `text` outside its tussenvoegsels, and per tussenvoegsel (a run of its words) the spellings
    of which a card must hold one: 'van der meer' -> (['meer'], [('van der', 'v.d.', 'v/d', 'vd', ...)]), so
    that it finds 'J. v.d. Meer', and 'v.d. meer' finds 'Jan van der Meer'. Both empty when no tussenvoegsel
    of the text has another spelling (the tokens as typed say all) or when the text is nothing but one."""
    core: list[str] = []
    groups: list[list[str]] = []
    after_prefix_word = False
    for word in name_words(text):
        if is_tussenvoegsel_token(word):
            if not after_prefix_word:
                groups.append([])
            groups[-1].append(word)
        else:
            core.append(word)
        after_prefix_word = is_tussenvoegsel_token(word)
    spellings = [tussenvoegsel_spellings(" ".join(group)) for group in groups]
    if not core or all(len(options) == 1 for options in spellings):
        return [], []
    return core, spellings


async def search(connection: asyncpg.Connection, text: str, limit: int = 20) -> SearchResult:
    """RegiCRM persons and organisations for Koppelen: persons by every name part (first name, initials,
    tussenvoegsel, last name; accent- and case-free, also written together), e-mail, birthday (when the
    text is a date) or phone; organisations by name, e-mail or KvK number. Duplicates sort together, the
    card with the login account first."""
    criteria = SearchCriteria(text)
    if not (criteria.tokens or criteria.email or criteria.birthday or criteria.phone_tail or criteria.kvk):
        return SearchResult(text=text, persons=(), organisations=())
    # Every name part as typed, in any order ('Jong, de', 'v.d. meer' even finds 'van der Meer' letter by letter).
    as_typed = (
        "cardinality($3::text[]) > 0 AND NOT EXISTS (SELECT 1 FROM unnest($3::text[]) t WHERE strpos(p.folded, t) = 0)"
    )
    spellings = [spelling for options in criteria.prefix_spellings for spelling in options]
    groups = [i for i, options in enumerate(criteria.prefix_spellings) for _ in options]
    person_rows = await connection.fetch(
        # The folded name is stored (FOLDED_FULL_NAME): folded here it cost some 30 us a person, per use.
        f"""WITH p AS (SELECT p.*, p.folded_full_name AS folded FROM crm_persons p)
            SELECT p.person_id, p.first_name, p.prefix, p.last_name, p.birthday, p.email_work, p.email_private,
                   p.organisation_id, o.name AS organisation_name, a.username,
                   EXISTS (SELECT 1 FROM rt_employees b WHERE b.person_id = p.person_id AND b.source = 'manual')
                       AS is_blue,
                   ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id
                         ORDER BY l.nmbrs_id) AS linked_ids,
                   ARRAY(SELECT e.employee_id FROM rt_employees e WHERE e.person_id = p.person_id
                         ORDER BY e.employee_id) AS employee_ids
            FROM p
            LEFT JOIN crm_accounts a ON a.person_id = p.person_id
            LEFT JOIN crm_organisations o ON o.organisation_id = p.organisation_id
            WHERE ({as_typed})
               -- A tussenvoegsel as the card may write it ('van der' as 'v.d.', 'v/d', 'vd' and back), the rest
               -- of the name as typed: one spelling of each tussenvoegsel of the text must appear.
               OR (cardinality($10::text[]) > 0
                   AND NOT EXISTS (SELECT 1 FROM unnest($10::text[]) t WHERE strpos(p.folded, t) = 0)
                   AND NOT EXISTS (SELECT 1 FROM unnest($11::text[], $12::int[]) s (spelling, grp)
                                   GROUP BY s.grp HAVING NOT bool_or(strpos(p.folded, s.spelling) > 0)))
               OR ($4 <> '' AND strpos(translate(p.folded, $5, ''), $4) > 0)
               OR strpos(lower(p.email_work), $6) > 0 OR strpos(lower(p.email_private), $6) > 0
               OR p.birthday = $7
               OR $8 IN (right(regexp_replace(p.phone_work, '\\D', '', 'g'), {_PHONE_TAIL}),
                         right(regexp_replace(p.phone_mobile, '\\D', '', 'g'), {_PHONE_TAIL}),
                         right(regexp_replace(p.phone_private, '\\D', '', 'g'), {_PHONE_TAIL}))
            -- The name as typed before a tussenvoegsel only read from another spelling ('v.d.' for 'van der'); a
            -- last name typed in full first: 'Jansen' is not lost among the Janssens behind the limit (match_name is
            -- the stored folded last name).
            ORDER BY ({as_typed}) DESC, p.match_name = ANY($3::text[]) DESC, p.match_name,
                     {_sql_fold("coalesce(p.first_name, '')")}, a.account_id IS NULL, p.person_id
            LIMIT $9 + 1""",
        _FOLD_FROM,
        _FOLD_TO,
        criteria.tokens,
        criteria.compact,
        JOINERS,
        criteria.email,
        criteria.birthday,
        criteria.phone_tail,
        limit,
        criteria.core_words,
        spellings,
        groups,
    )
    name = _sql_fold("o.name")
    organisation_rows = await connection.fetch(
        f"""SELECT o.organisation_id, o.name, o.kvk_number, o.email,
                   ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'company'
                         AND l.crm_id = o.organisation_id ORDER BY l.nmbrs_id) AS linked_ids,
                   ARRAY(SELECT c.company_id FROM rt_companies c WHERE c.organisation_id = o.organisation_id
                         ORDER BY c.company_id) AS company_ids
            FROM crm_organisations o
            WHERE (cardinality($3::text[]) > 0
                   AND NOT EXISTS (SELECT 1 FROM unnest($3::text[]) t WHERE strpos({name}, t) = 0))
               OR ($4 <> '' AND strpos(translate({name}, $5, ''), $4) > 0)
               OR strpos(lower(o.email), $6) > 0
               OR lpad(regexp_replace(o.kvk_number, '\\D', '', 'g'), 8, '0') = $7
            ORDER BY {name}, o.organisation_id
            LIMIT $8 + 1""",
        _FOLD_FROM,
        _FOLD_TO,
        criteria.tokens,
        criteria.compact,
        JOINERS,
        criteria.email,
        criteria.kvk,
        limit,
    )
    persons = tuple(
        PersonHit(
            person_id=r["person_id"],
            name=person_name(r["first_name"], r["prefix"], r["last_name"]),
            birthday=r["birthday"],
            email_work=r["email_work"],
            email_private=r["email_private"],
            organisation_id=r["organisation_id"],
            organisation_name=r["organisation_name"],
            username=r["username"],
            has_login_account=r["username"] is not None,
            is_blue_employee=r["is_blue"],
            linked_nmbrs_employee_ids=tuple(r["linked_ids"]),
            regitijd_employee_ids=tuple(r["employee_ids"]),
        )
        for r in person_rows[:limit]
    )
    organisations = tuple(
        OrganisationHit(
            organisation_id=r["organisation_id"],
            name=r["name"],
            kvk_number=r["kvk_number"],
            email=r["email"],
            linked_nmbrs_company_ids=tuple(r["linked_ids"]),
            regitijd_company_ids=tuple(r["company_ids"]),
        )
        for r in organisation_rows[:limit]
    )
    return SearchResult(
        text=text,
        persons=persons,
        organisations=organisations,
        more_persons=len(person_rows) > limit,
        more_organisations=len(organisation_rows) > limit,
    )
