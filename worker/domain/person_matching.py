"""Person matching for Koppelen: link an unlinked Nmbrs employee to a RegiCRM person, or ask a human.

Decisions (midPoint "synchronization situations"): an unlinked record auto-links only when certain
(another employment with the same BSN hash is already linked, or an opt-in definite score rule);
otherwise it is "unmatched" or "disputed" and needs a human decision.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.domain.matching import FIELD_LABELS, Level, MatchPolicy, Situation
from worker.domain.nmbrs_records import NmbrsEmployee
from worker.domain.person_scoring import (
    FLAG_BLUE_EMPLOYEE,
    FLAG_DIFFERENT_BSN_HASH,
    PersonCandidate,
    ScoredCandidate,
    person_rank,
    score_candidates,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


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
    ranked = score_candidates(employee, candidate_list)
    by_id = {c.person_id: c for c in candidate_list}
    scored_by_id = {s.person_id: s for s in ranked}
    # The pick list: the one place it is cut. The full ranking stays for the runner-up and the BSN persons,
    # who count even when they score below min_score.
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
        carried = sorted({*(c.person_id for c in shown), *found}, key=lambda i: person_rank(scored_by_id[i]))
        return NeedsDecision(
            situation="disputed" if carried else "unmatched",
            candidates=tuple(scored_by_id[i] for i in carried),
            reason=reason,
        )

    if len(person_ids) > 1:
        return ask(
            f"the same BSN hash is linked to several persons ({', '.join(map(str, person_ids))}): "
            "duplicates in RegiCRM, choose one"
        )
    (person_id,) = person_ids
    person = by_id.get(person_id)
    # Koppelen to another person or Aanmaken is refused while the BSN is linked to this one (one human, one
    # person): the way out of a wrong BSN is to correct it in Nmbrs, after which the question is asked anew.
    choices = f"Koppelen to person {person_id} if the card is right, else correct the BSN in Nmbrs"
    if person is None:
        return ask(f"same BSN hash as an employment linked to person {person_id}, whose card is gone: {choices}")
    if employee.birthday and person.birthday and employee.birthday != person.birthday:
        return ask(
            f"same BSN hash as an employment linked to person {person_id}, but the birthdays differ "
            f"({employee.birthday.isoformat()} in Nmbrs, {person.birthday.isoformat()} on the card): "
            f"{choices}"
        )
    if scored_by_id[person_id].score < min_score:
        return ask(
            f"same BSN hash as an employment linked to person {person_id}, who shares no name, birthday or "
            f"e-mail with this employee: {choices}"
        )
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
            return f"the {FIELD_LABELS[field]} does not agree exactly ({levels.get(field, Level.MISSING).value})"
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
