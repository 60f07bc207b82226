"""Candidates for an unlinked Nmbrs record: the RegiCRM persons and organisations worth scoring (the matcher
decides among them)."""

from __future__ import annotations

from collections.abc import Sequence

from worker.adapters.database import Connection
from worker.domain.nmbrs_records import NmbrsCompany, NmbrsEmployee
from worker.domain.normalisation import fold, normalise_kvk, normalise_organisation_name, split_last_name
from worker.domain.organisation_matching import OrganisationCandidate, RegiTijdCompany
from worker.domain.person_scoring import PersonCandidate


async def person_candidates(db: Connection, employee: NmbrsEmployee, also: Sequence[int] = ()) -> list[PersonCandidate]:
    """Persons worth scoring: similar last name, same birthday or same e-mail (the matcher decides), and the
    persons `also` (those the employee's BSN is linked to, shown even when nothing else agrees)."""
    _, core = split_last_name(employee.last_name, employee.prefix)
    stem = fold(core)[:4]
    emails = [e.lower() for e in (employee.email_work, employee.email_private) if e]
    rows = await db.fetch(
        """SELECT p.*, a.person_id IS NOT NULL AS has_account,
                  EXISTS (SELECT 1 FROM rt_employees b WHERE b.person_id = p.person_id AND b.source = 'manual')
                      AS is_blue,
                  ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id)
                      AS linked_ids,
                  -- The employee's own hash when one of the person's links has it.
                  (SELECT l.bsn_hash FROM sync_links l WHERE l.entity = 'employee' AND l.crm_id = p.person_id
                      AND l.bsn_hash IS NOT NULL ORDER BY l.bsn_hash IS NOT DISTINCT FROM $5 DESC LIMIT 1)
                      AS bsn_hash
           FROM crm_persons p LEFT JOIN crm_accounts a USING (person_id)
           WHERE ($1 <> '' AND p.match_name LIKE '%' || $1 || '%')
              OR p.birthday = $2
              OR lower(p.email_work) = ANY($3::text[]) OR lower(p.email_private) = ANY($3::text[])
              OR p.person_id = ANY($4::int[])
           -- Strongest evidence first, so the limit never cuts the right person (or the login card).
           ORDER BY p.person_id = ANY($4::int[]) DESC,
                    (lower(p.email_work) = ANY($3::text[]) OR lower(p.email_private) = ANY($3::text[])) DESC,
                    (p.birthday = $2 AND $1 <> '' AND p.match_name LIKE '%' || $1 || '%') DESC,
                    (p.birthday = $2) DESC, (a.person_id IS NOT NULL) DESC, p.person_id
           LIMIT 200""",
        stem,
        employee.birthday,
        emails,
        list(also),
        employee.bsn_hash,
    )
    return [
        PersonCandidate(
            person_id=r["person_id"],
            first_name=r["first_name"],
            initials=r["initials"],
            prefix=r["prefix"],
            last_name=r["last_name"],
            birthday=r["birthday"],
            emails=tuple(e for e in (r["email_work"], r["email_private"]) if e),
            phones=tuple(p for p in (r["phone_work"], r["phone_mobile"], r["phone_private"]) if p),
            postcode=r["postcode"],
            has_login_account=r["has_account"],
            is_blue_employee=r["is_blue"],
            linked_nmbrs_employee_ids=tuple(r["linked_ids"]),
            bsn_hash=r["bsn_hash"],
        )
        for r in rows
    ]


async def organisation_candidates(db: Connection, company: NmbrsCompany) -> list[OrganisationCandidate]:
    rows = await db.fetch(
        r"""SELECT o.*, ARRAY(SELECT l.nmbrs_id FROM sync_links l WHERE l.entity = 'company'
                             AND l.crm_id = o.organisation_id) AS linked_ids
           FROM crm_organisations o
           WHERE lpad(regexp_replace(coalesce(o.kvk_number, ''), '\D', '', 'g'), 8, '0') = $1
              OR ($2 <> '' AND lower(o.name) LIKE '%' || $2 || '%')
           ORDER BY (lpad(regexp_replace(coalesce(o.kvk_number, ''), '\D', '', 'g'), 8, '0') = $1) DESC,
                    o.organisation_id
           LIMIT 200""",
        normalise_kvk(company.kvk_number) or "-",
        _longest_word(normalise_organisation_name(company.name)),
    )
    unlinked = await unlinked_companies(db, [r["organisation_id"] for r in rows])
    return [
        OrganisationCandidate(
            organisation_id=r["organisation_id"],
            name=r["name"],
            kvk_number=r["kvk_number"],
            email=r["email"],
            phone=r["phone"],
            postcode=r["postcode"],
            website=r["website"],
            linked_nmbrs_company_ids=tuple(r["linked_ids"]),
            unlinked_companies=unlinked.get(r["organisation_id"], ()),
        )
        for r in rows
    ]


async def unlinked_companies(db: Connection, organisation_ids: Sequence[int]) -> dict[int, tuple[RegiTijdCompany, ...]]:
    """The active RegiTijd companies of these organisations that no Nmbrs company has, by organisation. Locked
    until the transaction ends: two Nmbrs companies linked at the same time must not take over the same one."""
    found: dict[int, tuple[RegiTijdCompany, ...]] = {}
    for r in await db.fetch(
        """SELECT organisation_id, company_id, name FROM rt_companies
           WHERE organisation_id = ANY($1::int[]) AND nmbrs_company_id IS NULL AND active
           ORDER BY company_id FOR UPDATE""",
        list(organisation_ids),
    ):
        found[r["organisation_id"]] = (*found.get(r["organisation_id"], ()), RegiTijdCompany(**r))
    return found


def _longest_word(name: str) -> str:
    """The most telling word of a folded organisation name, for a broad SQL prefilter (the matcher scores)."""
    return max(name.split(), key=len, default="")
