"""What the HR CLI prints: pure functions from query results and outcomes to fixed-width text, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from worker.domain.decisions import Decision, DecisionAction
from worker.domain.events import Outcome, OutcomeKind
from worker.domain.follow_ups import TASKS
from worker.domain.status import StepStatus

if TYPE_CHECKING:
    # Types only: importing the query layer would load asyncpg for every command.
    from worker.adapters.crm_search import SearchResult
    from worker.adapters.hr_queries import BlockView, DecisionView, EmployeeTasks, PendingQuestionView

# The words HR knows from the old sync screen.
DUTCH_NAMES = {
    DecisionAction.KOPPELEN: "Koppelen",
    DecisionAction.AANMAKEN: "Aanmaken",
    DecisionAction.BLOKKEREN: "Blokkeren",
    DecisionAction.OVERSLAAN: "Overslaan",
    DecisionAction.ONTBLOKKEREN: "Ontblokkeren",
    DecisionAction.ONGEDAAN_MAKEN: "Ongedaan maken",
}


# --- plain fixed-width tables -----------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a dashed rule under the header; no dependency needed."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def age(seconds: float) -> str:
    """'42m', '5h' (up to two days), else '3d'."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"


# --- status -----------------------------------------------------------------------------------------------


def render_status(steps: Sequence[StepStatus], employees_with_tasks: int) -> str:
    """The steps in the order given, then what is red and how many employees have open follow-up tasks."""
    rows = [(s.step, s.status, " ".join(f"{k}={v}" for k, v in s.counts.items()), "; ".join(s.reasons)) for s in steps]
    red = [s.step for s in steps if s.status == "red"]
    lines = [
        table(("step", "status", "counts", "reasons"), rows),
        "",
        f"red: {', '.join(red)} (see 'nmbrs-sync pending')" if red else "all steps green",
    ]
    if employees_with_tasks:
        lines.append(f"{employees_with_tasks} employee(s) with open follow-up tasks (see 'nmbrs-sync tasks')")
    return "\n".join(lines)


# --- pending ----------------------------------------------------------------------------------------------


def render_pending(questions: Sequence[PendingQuestionView]) -> str:
    """Each question as a row (red, or skipped), its candidates indented under it, and the decide hint."""
    if not questions:
        return "no open questions: employees and companies are green"
    waiting = sum(not q.skipped for q in questions)
    lines = [f"{waiting} open question(s), all red: choose Koppelen, Aanmaken, Blokkeren or Overslaan", ""]
    head = table(
        ("", "record", "name", "details", "company", "situation", "version", "waiting"),
        [
            (
                "skipped" if q.skipped else "red",
                q.key,
                q.name,
                _details(q),
                # A company's own question is grouped under itself: no need to repeat its name.
                f"{q.company_name or '?'} ({q.company_id})"
                if q.company_id is not None and q.entity == "employee"
                else "-",
                q.situation,
                str(q.version),
                age(q.age_s),
            )
            for q in questions
        ],
    ).splitlines()
    lines += head[:2]
    for question, row in zip(questions, head[2:], strict=True):
        lines.append(row)
        lines += _candidate_lines(question)
        lines.append("      -> " + decide_hint(question))
        lines.append("")
    return "\n".join(lines).rstrip()


def _details(question: PendingQuestionView) -> str:
    shown = [
        f"nr {question.number}" if question.number else None,
        f"born {question.birthday}" if question.birthday else None,
        question.email,
    ]
    return ", ".join(item for item in shown if item) or "-"


def _candidate_lines(question: PendingQuestionView) -> list[str]:
    why = [f"      why: {question.reason}"] if question.reason else []
    if not question.candidates:
        return [*why, "      no candidates scored high enough: search with 'nmbrs-sync search NAME'"]
    kind = "person" if question.entity == "employee" else "organisation"
    candidates = table(
        (kind, "name", "score", "flags", "fields"),
        [
            (
                str(c.crm_id),
                c.name or "(deleted)",
                f"{c.score:.2f}",
                ", ".join(c.flags) or "-",
                # Missing fields say nothing either way: leave them out to keep the line short.
                " ".join(f"{field}={level}" for field, level in c.levels.items() if level != "missing"),
            )
            for c in question.candidates
        ],
    )
    return [*why, *("      " + line for line in candidates.splitlines())]


def decide_hint(question: PendingQuestionView) -> str:
    """The command that answers the question, with the version shown (so a newer change makes it stale)."""
    version = f"--version {question.version}"
    flag = "--person" if question.entity == "employee" else "--organisation"
    if question.candidates:
        best = question.candidates[0].crm_id
        return (
            f"nmbrs-sync decide koppelen {question.key} {flag} {best} {version}   (or aanmaken | blokkeren | overslaan)"
        )
    return (
        f"nmbrs-sync decide aanmaken {question.key} {version}"
        f"   (or koppelen {flag} ID after 'nmbrs-sync search' | blokkeren | overslaan)"
    )


# --- search -----------------------------------------------------------------------------------------------


def render_search(result: SearchResult) -> str:
    if not result.persons and not result.organisations:
        return f"nothing found for {result.text!r}"
    parts: list[str] = []
    if result.persons:
        more = ", more match: add a first name, birthday or e-mail" if result.more_persons else ""
        parts.append(f"persons ({len(result.persons)}{more})")
        parts.append(
            table(
                ("person", "name", "born", "e-mail", "organisation", "account", "flags", "linked to"),
                [
                    (
                        str(p.person_id),
                        p.name,
                        str(p.birthday or "-"),
                        p.email_work or p.email_private or "-",
                        p.organisation_name or "-",
                        p.username or "-",
                        ", ".join(p.flags) or "-",
                        ", ".join(f"employee:{n}" for n in p.linked_nmbrs_employee_ids) or "-",
                    )
                    for p in result.persons
                ],
            )
        )
        parts.append(
            "koppelen: nmbrs-sync decide koppelen employee:NMBRS_ID --person PERSON (duplicates: take the "
            "card with the login account)"
        )
    if result.organisations:
        if parts:
            parts.append("")
        more = ", more match: refine the search" if result.more_organisations else ""
        parts.append(f"organisations ({len(result.organisations)}{more})")
        parts.append(
            table(
                ("organisation", "name", "kvk", "e-mail", "linked to"),
                [
                    (
                        str(o.organisation_id),
                        o.name,
                        o.kvk_number or "-",
                        o.email or "-",
                        ", ".join(f"company:{n}" for n in o.linked_nmbrs_company_ids) or "-",
                    )
                    for o in result.organisations
                ],
            )
        )
        parts.append("koppelen: nmbrs-sync decide koppelen company:NMBRS_ID --organisation ORGANISATION")
    return "\n".join(parts)


# --- tasks, decisions, blocked -----------------------------------------------------------------------------


def render_tasks(open_tasks: Sequence[EmployeeTasks], employee: tuple[str, int] | None) -> str:
    """The open tasks per employee; `employee` is the --employee asked for (see parse_employee_ref)."""
    if not open_tasks:
        if employee is None:
            return "no open follow-up tasks for any active Nmbrs employee"
        which = f"Nmbrs employee {employee[1]}" if employee[0] == "nmbrs" else f"RegiTijd employee {employee[1]}"
        # Also said when the id is unknown or not linked: the list cannot tell 'nothing open' from 'nobody'.
        return f"no open follow-up tasks for {which} (or it is not an active, linked Nmbrs employee)"
    listing = table(
        ("employee", "nmbrs", "name", "company", "open tasks"),
        [
            (str(t.employee_id), str(t.nmbrs_employee_id or "-"), t.name, t.company_name or "-", ", ".join(t.tasks))
            for t in open_tasks
        ],
    )
    used = {task for t in open_tasks for task in t.tasks}
    return listing + "\n\n" + "\n".join(f"{task}: {text}" for task, text in TASKS.items() if task in used)


def render_decisions(decisions: Sequence[DecisionView]) -> str:
    if not decisions:
        return "no decisions yet"
    return table(
        ("decision", "when", "by", "action", "record", "result", "undone", "reason"),
        [
            (
                d.decision_id,
                f"{d.decided_at:%Y-%m-%d %H:%M}",
                d.decided_by,
                d.action,
                d.record,
                d.result,
                "yes" if d.undone_by else "-",
                d.reason or "-",
            )
            for d in decisions
        ],
    )


def render_blocked(blocks: Sequence[BlockView]) -> str:
    if not blocks:
        return "no blocked records"
    listing = table(
        ("record", "name", "since", "by", "reason"),
        [(b.record, b.name or "-", f"{b.blocked_at:%Y-%m-%d}", b.blocked_by, b.reason or "-") for b in blocks],
    )
    return listing + "\n\nunblock: nmbrs-sync decide ontblokkeren RECORD (the question is asked again)"


# --- decide, followup: what was posted and what it caused ----------------------------------------------------


def describe(decision: Decision) -> str:
    """One line saying what was posted, with the Dutch action name HR knows."""
    what = DUTCH_NAMES[decision.action]
    if decision.filter is not None:
        f = decision.filter
        criteria = [f"company {f.company_id}"]
        criteria += [f"situation {f.situation}"] if f.situation else []
        criteria += [f"best score <= {f.max_best_score}"] if f.max_best_score is not None else []
        scope = f"every open employee question of {', '.join(criteria)}" + (" (preview)" if decision.preview else "")
    else:
        scope = decision.key
    if decision.target_id is not None:
        scope += f" -> {'person' if decision.entity == 'employee' else 'organisation'} {decision.target_id}"
    if decision.version is not None:
        scope += f" (version {decision.version})"
    if decision.undo_decision_id is not None:
        scope += f" (undo {decision.undo_decision_id}{', every record' if decision.undo_all_records else ''})"
    return f"{what}: {scope}"


def render_outcomes(outcomes: Sequence[Outcome]) -> str:
    """One line per outcome; under a preview, the records a real run would answer, to check before running it."""
    lines: list[str] = []
    for outcome in outcomes:
        lines.append(f"{outcome.kind.value}: {outcome.reason or outcome.subject}")
        if outcome.kind is OutcomeKind.PREVIEW:
            lines.append("\n".join(f"  {record}" for record in outcome.details.get("records", [])))
    return "\n".join(lines)


def confirm_hint(preview: Decision) -> str:
    """The command that answers exactly what a bulk preview listed."""
    f = preview.filter
    assert f is not None, "only a bulk decision is previewed"
    narrowing = (f" --situation {f.situation}" if f.situation else "") + (
        f" --max-best-score {f.max_best_score}" if f.max_best_score is not None else ""
    )
    return (
        f"to answer exactly these: nmbrs-sync decide {preview.action.value} --company-filter {f.company_id}"
        f"{narrowing} --confirm {preview.decision_id}"
    )
