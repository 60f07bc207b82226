"""Organisation matching for Koppelen: scores RegiCRM organisations for an Nmbrs company and decides.

Comparators: KvK numbers, names without legal forms (B.V., Stichting, ...), company mail domains, phone,
website and postcode. An organisation auto-links only on a single KvK match; otherwise a human decides.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.domain.matching import (
    FieldComparison,
    FieldWeights,
    Level,
    MatchPolicy,
    Situation,
    compare_single,
    explain_score,
    field_comparison,
    missing_side,
    total_score,
)
from worker.domain.nmbrs_records import NmbrsCompany
from worker.domain.normalisation import (
    normalise_email,
    normalise_kvk,
    normalise_organisation_name,
    normalise_phone,
    normalise_postcode,
    normalise_website,
)
from worker.domain.similarity import CLOSE_NAME_SIMILARITY, jaro_winkler


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RegiTijdCompany(_Frozen):
    """A RegiTijd company of an organisation that no Nmbrs company has (made by hand, or by `target load` for
    blue employees)."""

    company_id: int
    name: str


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
    unlinked_companies: tuple[RegiTijdCompany, ...] = Field(
        (), description="Its RegiTijd companies no Nmbrs company has: a link takes one over (company_to_adopt)."
    )


class ScoredOrganisation(_Frozen):
    """A RegiCRM organisation with its score, per-field comparisons and flags."""

    organisation_id: int
    score: float = Field(ge=0.0, le=1.0)
    comparisons: tuple[FieldComparison, ...]
    flags: tuple[str, ...] = ()
    explanation: str = Field(min_length=1)


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


FLAG_ORGANISATION_LINKED_ELSEWHERE = "already_linked_to_other_company"


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


# Mail domains shared by unrelated people: the same domain says nothing about the organisation.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "hotmail.com",
        "hotmail.nl",
        "outlook.com",
        "outlook.nl",
        "live.nl",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "ziggo.nl",
        "kpnmail.nl",
        "planet.nl",
        "xs4all.nl",
        "home.nl",
        "hetnet.nl",
        "upcmail.nl",
        "chello.nl",
        "casema.nl",
        "quicknet.nl",
    }
)


def score_organisation(
    company: NmbrsCompany, candidate: OrganisationCandidate, *, company_postcode: str | None = None
) -> ScoredOrganisation:
    """Score one RegiCRM organisation for an Nmbrs company, one comparison per ORGANISATION_WEIGHTS field.

    `company_postcode` is passed separately because NmbrsCompany carries no address (List_GetAll has none).
    """
    w = ORGANISATION_WEIGHTS

    def kvk_result(level: Level, note: str) -> FieldComparison:
        return field_comparison("kvk_number", w, company.kvk_number, candidate.kvk_number, level, note)

    def name_result(level: Level, note: str) -> FieldComparison:
        return field_comparison("name", w, company.name, candidate.name, level, note)

    def email_result(level: Level, note: str) -> FieldComparison:
        return field_comparison("email", w, company.email, candidate.email, level, note)

    kvk_n, kvk_r = normalise_kvk(company.kvk_number), normalise_kvk(candidate.kvk_number)
    if kvk_n is None or kvk_r is None:
        kvk = kvk_result(Level.MISSING, "no KvK number on " + missing_side(kvk_n is None, kvk_r is None))
    elif kvk_n == kvk_r:
        kvk = kvk_result(Level.EXACT, f"KvK number {kvk_n} agrees: the same legal entity")
    else:
        kvk = kvk_result(Level.DIFFERENT, f"KvK numbers differ ({kvk_n} vs {kvk_r}): different legal entities")

    name_n, name_r = normalise_organisation_name(company.name), normalise_organisation_name(candidate.name)
    similarity = jaro_winkler(name_n, name_r)
    if not name_n or not name_r:
        name = name_result(Level.MISSING, "no name on " + missing_side(not name_n, not name_r))
    elif name_n == name_r:
        name = name_result(Level.EXACT, f"name '{name_n}' agrees (legal form ignored)")
    elif sorted(name_n.split()) == sorted(name_r.split()) or similarity >= CLOSE_NAME_SIMILARITY:
        name = name_result(Level.CLOSE, f"'{name_n}' and '{name_r}' are close (Jaro-Winkler {similarity:.2f})")
    else:
        name = name_result(Level.DIFFERENT, f"'{name_n}' and '{name_r}' differ (Jaro-Winkler {similarity:.2f})")

    mail_n, mail_r = normalise_email(company.email), normalise_email(candidate.email)
    domain = mail_n.rpartition("@")[2] if mail_n else None
    if mail_n is None or mail_r is None:
        email = email_result(Level.MISSING, "no e-mail on " + missing_side(mail_n is None, mail_r is None))
    elif mail_n == mail_r:
        email = email_result(Level.EXACT, f"e-mail {mail_n} agrees")
    elif domain == mail_r.rpartition("@")[2] and domain not in PUBLIC_MAIL_DOMAINS:
        email = email_result(Level.CLOSE, f"e-mail addresses share the company domain {domain}")
    else:
        email = email_result(Level.DIFFERENT, "e-mail addresses differ")

    phone = compare_single(w, "phone", "phone number", company.phone, candidate.phone, normalise_phone)
    website = compare_single(w, "website", "website", company.website, candidate.website, normalise_website)
    postcode = compare_single(w, "postcode", "postcode", company_postcode, candidate.postcode, normalise_postcode)

    comparisons = (kvk, name, email, phone, website, postcode)
    flags = (
        (FLAG_ORGANISATION_LINKED_ELSEWHERE,) if set(candidate.linked_nmbrs_company_ids) - {company.company_id} else ()
    )
    score = total_score(comparisons)
    return ScoredOrganisation(
        organisation_id=candidate.organisation_id,
        score=score,
        comparisons=comparisons,
        flags=flags,
        explanation=explain_score(score, comparisons, flags),
    )


def _organisation_rank(scored: ScoredOrganisation) -> tuple[float, int]:
    return (-scored.score, scored.organisation_id)


def _score_organisations(
    company: NmbrsCompany, candidates: Iterable[OrganisationCandidate], company_postcode: str | None
) -> list[ScoredOrganisation]:
    unique = {c.organisation_id: c for c in reversed(list(candidates))}
    scored = [score_organisation(company, c, company_postcode=company_postcode) for c in unique.values()]
    return sorted(scored, key=_organisation_rank)


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
    # The pick list: the one place it is cut. KvK hits are carried even when they score below min_score.
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
