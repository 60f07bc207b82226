"""The history of one RegiTijd employee: every change the store recorded, in time order with its cause (pure).

Sources (read by worker/adapters/employee_history.py): the audit log, the outcomes kept per handled event, the
decisions, the Nmbrs link and the stored leave balance. Several of them describe one change; `build_history`
keeps the richer description once (the rules are at each place that drops one). The export is CSV or JSON, and
`parse_history_csv` / `parse_history_json` give back equal entries (what Entra's provisioning log offers per user).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from itertools import chain
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, TypeAdapter

from worker.domain.events import Outcome, OutcomeKind


class HistoryKind(StrEnum):
    CREATED = "created"  # a record made: the RegiTijd employee from Nmbrs, a card or account loaded
    LINK = "link"  # the Nmbrs record linked to a RegiCRM person (Koppelen, or automatically)
    NMBRS_CHANGE = "nmbrs_change"  # an Nmbrs-owned field written by the sync, old -> new
    DRIFT = "drift"  # a local edit of an Nmbrs-owned field overwritten with the Nmbrs value
    LOCAL_CHANGE = "local_change"  # RegiCRM/RegiTijd data changed by the target load
    DECISION = "decision"  # a human choice: Koppelen, Aanmaken, Blokkeren, Overslaan, Ontblokkeren
    UNDO = "undo"  # ongedaan maken, and what it put back
    FOLLOW_UP = "follow_up"  # a follow-up command on locally owned data (manager, leave, kenmerken, ...)
    TASKS = "tasks"  # what is still to be completed ("gegevens aanvullen")
    LEAVE = "leave"  # the leave recalculated, the balance before and after
    QUESTION = "question"  # a question asked (or withdrawn) about the Nmbrs record
    IGNORED = "ignored"  # an Nmbrs change not applied: the record is blocked, or the change is stale


# An empty text means none: the CSV has one empty cell for both, so the model never holds "".
OptionalText = Annotated[str | None, BeforeValidator(lambda value: value or None)]


class HistoryEntry(BaseModel):
    """One change of the employee, with what caused it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry_id: str = Field(min_length=1, description="Stable: the source row it comes from, e.g. 'audit:12:last_name'.")
    at: AwareDatetime = Field(description="When the store recorded it (the database's clock, for every source).")
    kind: HistoryKind
    subject: str = Field(
        description="The record it is about: 'employee:<nmbrs_id>', 'rt-employee:<id>', 'person:<id>'."
    )
    field: OptionalText = Field(None, description="The field, for a per-field change.")
    before: JsonValue = Field(None, description="The value before, as JSON (None: empty or not recorded).")
    after: JsonValue = Field(None, description="The value after, as JSON.")
    actor: OptionalText = Field(None, description="'sync', 'target load' or a user name; None: not recorded.")
    cause: uuid.UUID | None = Field(None, description="The change event, decision or command it came from.")
    summary: str = Field(description="What happened, in Dutch, for the person reading the history.")
    reason: OptionalText = Field(None, description="The reason the worker recorded with it (English).")


# --- the sources, as the adapter reads them ---------------------------------------------------------------


class _Source(BaseModel):
    model_config = ConfigDict(frozen=True)


class AuditRecord(_Source):
    """An audit_log row."""

    audit_id: int
    at: AwareDatetime
    causation_id: uuid.UUID | None
    subject: str
    action: str
    before: JsonValue
    after: JsonValue
    actor: str


class StoredOutcome(_Source):
    """An outcome kept in processed_events, with the consumer that handled its event and when (the database's
    clock, as the audit rows of the same transaction: the outcome's own occurred_at is the handler's clock)."""

    consumer: str
    processed_at: AwareDatetime
    outcome: Outcome


class DecisionRecord(_Source):
    """A decisions row (its effect holds Nmbrs data, BSN hash included: only an undo's `undid` is read from it)."""

    decision_id: uuid.UUID
    nmbrs_id: int | None = Field(description="None: a bulk decision.")
    action: str
    decided_by: str
    received_at: AwareDatetime = Field(description="When the worker applied it (decided_at is the frontend's clock).")
    result: str
    reason: str | None = None
    undid: uuid.UUID | None = Field(None, description="ongedaan_maken: the decision it reversed.")
    undone_by: uuid.UUID | None = None


class LinkRecord(_Source):
    """The sync_links row of the employee's Nmbrs record."""

    crm_id: int
    linked_at: AwareDatetime
    linked_by: str
    reason: str


class LeaveBalanceRecord(_Source):
    """The stored leave balance (rt_leave_balances keeps only the latest), summarised as outcomes summarise it."""

    computed_at: AwareDatetime
    causation_id: uuid.UUID | None
    summary: dict[str, JsonValue]


class HistorySources(_Source):
    """Everything the store holds about one employee's changes."""

    employee_id: int
    nmbrs_id: int | None = Field(description="None: a blue (manual) employee.")
    audit: tuple[AuditRecord, ...] = ()
    outcomes: tuple[StoredOutcome, ...] = ()
    decisions: tuple[DecisionRecord, ...] = Field(
        (), description="The record's decisions, and every decision that caused one of the other rows."
    )
    link: LinkRecord | None = None
    leave_balance: LeaveBalanceRecord | None = None
    actors: dict[uuid.UUID, str] = Field(
        default_factory=dict, description="Who sent a command, where the store knows it (a task marked done)."
    )
    reference_names: dict[str, dict[int, str]] = Field(
        default_factory=dict, description="Names of reference ids by field (function_id -> 5 -> 'Bakker')."
    )


def history_subjects(employee_id: int, nmbrs_id: int | None, person_id: int, account_id: int | None) -> list[str]:
    """The subjects the audit log and the outcomes use for the employee, its Nmbrs record, its person card (the
    undo's card restore names the table) and its login account."""
    subjects = [f"rt-employee:{employee_id}", f"person:{person_id}", f"crm_persons:{person_id}"]
    if nmbrs_id is not None:
        subjects.append(f"employee:{nmbrs_id}")
    if account_id is not None:
        subjects.append(f"account:{account_id}")
    return subjects


# Fields holding the id of a named record: the summary shows the name.
REFERENCE_FIELDS = ("function_id", "department_id", "labour_agreement_id", "nmbrs_company_id")


def referenced_ids(audit: Iterable[AuditRecord]) -> dict[str, set[int]]:
    """The reference ids the audit log's writes name, by field: the names the summaries need."""
    found: dict[str, set[int]] = {field: set() for field in REFERENCE_FIELDS}
    for row in audit:
        if row.action == "apply" and isinstance(row.after, dict):
            for field in REFERENCE_FIELDS:
                if isinstance(value := row.after.get(field), int):
                    found[field].add(value)
    return found


# --- Dutch texts (as the web app's catalogue words them) ------------------------------------------------

FIELD_LABELS = {
    "first_name": "Voornaam",
    "initials": "Voorletters",
    "prefix": "Tussenvoegsel",
    "last_name": "Achternaam",
    "birthday": "Geboortedatum",
    "gender": "Geslacht",
    "email_work": "E-mail werk",
    "email_private": "E-mail privé",
    "phone_work": "Telefoon werk",
    "phone_mobile": "Mobiel",
    "phone_private": "Telefoon privé",
    "postcode": "Postcode",
    "number": "Personeelsnummer",
    "nmbrs_company_id": "Werkmaatschappij",
    "company_id": "Werkmaatschappij",
    "organisation_id": "Organisatie",
    "function_id": "Functie",
    "department_id": "Afdeling",
    "labour_agreement_id": "CAO",
    "employment_start": "In dienst",
    "employment_end": "Uit dienst",
    "employments": "Dienstverbanden",
    "contracts": "Contracten",
    "schedules": "Roosters",
    "schedule": "Rooster",
    "active": "Actief",
    "characteristics": "Kenmerken",
    "username": "Gebruikersnaam",
    "roles": "Rollen",
}
ACTION_LABELS = {
    "koppelen": "Koppelen",
    "aanmaken": "Aanmaken",
    "blokkeren": "Blokkeren",
    "overslaan": "Overslaan",
    "ontblokkeren": "Ontblokkeren",
    "ongedaan_maken": "Ongedaan maken",
}
FOLLOW_UP_LABELS = {
    "set_manager": "Leidinggevende ingesteld",
    "set_is_manager": "Opgeslagen of de medewerker zelf leidinggevende is",
    "leave_adjustment": "Verlofcorrectie geboekt",
    "overtime_payout": "Uitbetaling overuren geboekt",
    "set_characteristic": "Kenmerk toegekend",
    "remove_characteristic": "Kenmerk ingetrokken",
    "link_time_category": "Tijdschrijfrubriek gekoppeld",
    "unlink_time_category": "Tijdschrijfrubriek ontkoppeld",
    "mark_task_done": "Taak gemarkeerd als gedaan",
}
TASK_LABELS = {
    "manager": "nog geen manager (die keurt de uren goed)",
    "account": "nog geen inlogaccount",
    "roles": "het account heeft nog geen rollen",
    "time_category": "nog geen tijdschrijfrubriek (kan geen uren schrijven)",
    "personeelslid": "kenmerk RegiPersoneel: Personeelslid ontbreekt",
    "characteristics": "nog geen kenmerken voor de andere Regi-applicaties",
}
SITUATION_LABELS = {"unmatched": "niemand in RegiCRM gevonden", "disputed": "twijfel tussen kandidaten"}
RECORD_LABELS = {"rt-employee": "Medewerker", "person": "Persoonskaart", "account": "Inlogaccount"}
TARGET_LOAD = "target load"  # the audit actor of `nmbrs-sync target load`
# The inbox consumer names (worker/service): the reconciler acts as the sync; the others carry a person's choice.
RECONCILER, FOLLOW_UPS = "reconciler", "follow-ups"
UNDO_ACTION = "ongedaan_maken"


def _label(field: str) -> str:
    return FIELD_LABELS.get(field, field)


def _shown(field: str, value: JsonValue, names: Mapping[str, Mapping[int, str]]) -> str:
    if value is None or value == "":
        return "(leeg)"
    if isinstance(value, bool):
        return "ja" if value else "nee"
    if isinstance(value, int) and field in names:
        return names[field].get(value, str(value))
    return str(value)


def _change_text(field: str, before: JsonValue, after: JsonValue, names: Mapping[str, Mapping[int, str]]) -> str:
    """'Achternaam: Berg → Bergh'; lists (periods) are too long for a sentence and stay in before/after."""
    if isinstance(before, list | dict) or isinstance(after, list | dict):
        return _label(field)
    return f"{_label(field)}: {_shown(field, before, names)} → {_shown(field, after, names)}"


def _by_load(actor: str) -> str:
    return " bij het inladen van de beginstand" if actor == TARGET_LOAD else ""


def _hours(summary: JsonValue) -> str | None:
    """A leave total as a Dutch reader writes it (decimal comma); the values themselves stay as stored."""
    if not isinstance(summary, dict) or "leave_total" not in summary:
        return None
    return str(summary["leave_total"]).replace(".", ",")


# --- building the history --------------------------------------------------------------------------------


class _Builder:
    """Turns the sources into entries, remembering which outcomes a richer entry already tells."""

    def __init__(self, sources: HistorySources) -> None:
        self.sources = sources
        self.names = sources.reference_names
        self.record = f"employee:{sources.nmbrs_id}" if sources.nmbrs_id is not None else None
        # Outcomes about another employee (a same-human link's leave and tasks share the decision) are not ours.
        self.outcomes = [s for s in sources.outcomes if _about(s.outcome, sources.employee_id)]
        self.decided_by = {d.decision_id: d.decided_by for d in sources.decisions}
        # A follow-up's sender, named in its applied/rejected outcome, is also who caused its recalculation.
        self.issued_by = {
            s.outcome.causation_id: sender
            for s in self.outcomes
            if isinstance(sender := s.outcome.details.get("issued_by"), str)
        }
        self.told: set[uuid.UUID] = set()  # ids of outcomes another entry describes

    def _find(self, cause: uuid.UUID | None, subject: str, *kinds: OutcomeKind) -> Iterator[StoredOutcome]:
        return (
            s
            for s in self.outcomes
            if s.outcome.causation_id == cause and s.outcome.subject == subject and s.outcome.kind in kinds
        )

    def _tell(self, stored: Iterable[StoredOutcome]) -> None:
        self.told.update(s.outcome.outcome_id for s in stored)

    # decisions ----------------------------------------------------------------------------------------

    def decisions(self) -> list[HistoryEntry]:
        if self.record is None:
            return []
        labels = {d.decision_id: ACTION_LABELS.get(d.action, d.action) for d in self.sources.decisions}
        entries = []
        for d in self.sources.decisions:
            # A decision about another record (the other employment it linked along) only names who decided.
            if d.nmbrs_id not in (self.sources.nmbrs_id, None):
                continue
            # Rule A: the decision row and the outcome that settled it tell one change; the row is richer (who,
            # result), the outcome adds what it did (its reason and details), so they become one entry.
            settling = next(
                (
                    s
                    for s in self._find(d.decision_id, self.record, OutcomeKind.APPLIED, OutcomeKind.REJECTED)
                    if s.outcome.kind is OutcomeKind.REJECTED or s.outcome.details.get("action") == d.action
                ),
                None,
            )
            details: dict[str, JsonValue] = {"action": d.action, "result": d.result}
            if settling is not None:
                self._tell([settling])
                details |= {k: v for k, v in settling.outcome.details.items() if k != "action"}
            details |= {"bulk": True} if d.nmbrs_id is None else {}
            details |= {"undid": str(d.undid)} if d.undid else {}
            details |= {"undone_by": str(d.undone_by)} if d.undone_by else {}
            undo = d.action == UNDO_ACTION
            label = ACTION_LABELS.get(d.action, d.action) + (" (bulk)" if d.nmbrs_id is None else "")
            if undo:
                undone = labels.get(d.undid) if d.undid else None
                summary = f"Besluit {undone + ' ' if undone else ''}ongedaan gemaakt door {d.decided_by}"
            else:
                summary = f"Besluit {label} door {d.decided_by}"
            if d.result == "rejected":
                summary += " niet uitgevoerd"
            entries.append(
                HistoryEntry(
                    entry_id=f"decision:{d.decision_id}",
                    at=d.received_at,
                    kind=HistoryKind.UNDO if undo else HistoryKind.DECISION,
                    subject=self.record,
                    after=details,
                    actor=d.decided_by,
                    cause=d.decision_id,
                    summary=summary,
                    reason=d.reason or (settling.outcome.reason if settling else None),
                )
            )
        return entries

    # the audit log ------------------------------------------------------------------------------------

    def audit(self) -> list[HistoryEntry]:
        drifted: set[tuple[uuid.UUID | None, str, Any]] = {
            (s.outcome.causation_id, s.outcome.subject, s.outcome.details.get("field"))
            for s in self.outcomes
            if s.outcome.kind is OutcomeKind.DRIFT
        }
        known: dict[str, dict[str, JsonValue]] = {}  # per subject: each field's value as last written
        cards: dict[uuid.UUID | None, dict[str, JsonValue]] = {}  # per cause: the card a link wrote over
        entries: list[HistoryEntry] = []
        for row in sorted(self.sources.audit, key=lambda r: (r.at, r.audit_id)):
            base = {"at": row.at, "subject": row.subject, "actor": row.actor, "cause": row.causation_id}
            after = row.after if isinstance(row.after, dict) else {}
            before = row.before if isinstance(row.before, dict) else {}
            if row.action == "link":
                # Rule D: the link's audit row keeps the card it wrote over and the person; the auto_linked
                # outcome of the same cause only says so in words.
                self._tell(self._find(row.causation_id, row.subject, OutcomeKind.AUTO_LINKED))
                card = before.get("card")
                if isinstance(card, dict):
                    cards[row.causation_id] = card
                how = "Automatisch gekoppeld" if row.actor == "sync" else f"Gekoppeld door {row.actor}"
                entries.append(
                    HistoryEntry(
                        entry_id=f"audit:{row.audit_id}",
                        kind=HistoryKind.LINK,
                        before=card,
                        after=after,
                        summary=f"{how} aan RegiCRM-persoon {after.get('crm_id')}",
                        reason=_text(after.get("reason")),
                        **base,
                    )
                )
            elif row.action == "apply":
                self._tell_applied(row)
                entries += self._applied(row, after, known.setdefault(row.subject, {}), cards, drifted)
            elif row.action in ("deactivate", "reactivate", "bsn_changed"):
                self._tell_applied(row)
                entries.append(self._status(row, after, base))
            elif row.action == "restore":
                entries += self._restored(row, before, after)
            else:
                entries += self._loaded(row, before, after, base)
        return entries

    def _tell_applied(self, row: AuditRecord) -> None:
        # Rule B: the audit row has the values written; the reconciler's applied outcome of the same cause only
        # names the fields.
        self._tell(
            s for s in self._find(row.causation_id, row.subject, OutcomeKind.APPLIED) if s.consumer == RECONCILER
        )

    def _applied(
        self,
        row: AuditRecord,
        after: dict[str, JsonValue],
        known: dict[str, JsonValue],
        cards: Mapping[uuid.UUID | None, Mapping[str, JsonValue]],
        drifted: set[tuple[uuid.UUID | None, str, Any]],
    ) -> list[HistoryEntry]:
        """An apply row names the new values only; the value before is the one the link found on the card, else
        the one the sync wrote last. The first write creates the RegiTijd employee: what had no value before."""
        first = not known
        card = cards.get(row.causation_id, {})
        created: dict[str, JsonValue] = {}
        changes = []
        for field, value in after.items():
            # Rule C: a drift outcome of the same cause tells this field's change with the local value it
            # overwrote (the apply row has only the new one): it stands for it.
            if (row.causation_id, row.subject, field) in drifted:
                continue
            if field in card or field in known:
                was = card[field] if field in card else known[field]
                if was == value:
                    continue  # written again, not changed (a link writes every field)
            elif first:
                created[field] = value
                continue
            else:
                was = None
            changes.append(
                HistoryEntry(
                    entry_id=f"audit:{row.audit_id}:{field}",
                    at=row.at,
                    kind=HistoryKind.NMBRS_CHANGE,
                    subject=row.subject,
                    field=field,
                    before=was,
                    after=value,
                    actor=row.actor,
                    cause=row.causation_id,
                    summary=f"Bijgewerkt uit Nmbrs: {_change_text(field, was, value, self.names)}",
                )
            )
        known.update(after)
        if created:
            changes.insert(
                0,
                HistoryEntry(
                    entry_id=f"audit:{row.audit_id}",
                    at=row.at,
                    kind=HistoryKind.CREATED,
                    subject=row.subject,
                    after=created,
                    actor=row.actor,
                    cause=row.causation_id,
                    summary="Aangemaakt in RegiTijd met de gegevens uit Nmbrs",
                ),
            )
        return changes

    def _status(self, row: AuditRecord, after: Mapping[str, JsonValue], base: dict[str, Any]) -> HistoryEntry:
        if row.action == "bsn_changed":  # the hashes stay out of the audit log, so out of the history too
            field, was, now, summary = "bsn", None, None, "BSN gewijzigd in Nmbrs (het logboek bewaart geen BSN)"
        elif row.action == "deactivate":
            field, was, now, summary = "active", True, False, "Uit Nmbrs verwijderd: niet meer actief in RegiTijd"
        else:
            field, was, now, summary = "active", False, True, "Terug in Nmbrs: weer actief in RegiTijd"
        return HistoryEntry(
            entry_id=f"audit:{row.audit_id}",
            kind=HistoryKind.NMBRS_CHANGE,
            field=field,
            before=was,
            after=now,
            summary=summary,
            reason=_text(after.get("reason")),
            **base,
        )

    def _restored(
        self, row: AuditRecord, written: Mapping[str, JsonValue], restored: Mapping[str, JsonValue]
    ) -> list[HistoryEntry]:
        """The undo's card restore: written the link's values (before), restored the card's earlier ones."""
        subject = "person:" + row.subject.partition(":")[2]  # the row names the table, the outcomes the card
        # Rule E: the restore's audit row has every field's two values; the undo outcome about the card says it
        # in words (its details repeat the restored values only).
        self._tell(
            s for s in self._find(row.causation_id, subject, OutcomeKind.APPLIED) if "restored" in s.outcome.details
        )
        return [
            HistoryEntry(
                entry_id=f"audit:{row.audit_id}:{field}",
                at=row.at,
                kind=HistoryKind.UNDO,
                subject=subject,
                field=field,
                before=written.get(field),
                after=value,
                actor=row.actor,
                cause=row.causation_id,
                summary=f"Teruggezet door ongedaan maken: {_change_text(field, written.get(field), value, self.names)}",
            )
            for field, value in restored.items()
            if written.get(field) != value
        ]

    def _loaded(
        self, row: AuditRecord, before: Mapping[str, JsonValue], after: Mapping[str, JsonValue], base: dict[str, Any]
    ) -> list[HistoryEntry]:
        """What the target load writes: records inserted and updated, kenmerken, an account removed."""
        what = RECORD_LABELS.get(row.subject.partition(":")[0], row.subject)
        by = _by_load(row.actor)
        entry_id = f"audit:{row.audit_id}"
        if row.action == "insert":
            blue = " (handmatig, blauw)" if after.get("source") == "manual" else ""
            return [
                HistoryEntry(
                    entry_id=entry_id,
                    kind=HistoryKind.CREATED,
                    after=row.after,
                    summary=f"{what}{blue} aangemaakt{by}",
                    **base,
                )
            ]
        if row.action == "update":
            return [
                HistoryEntry(
                    entry_id=f"{entry_id}:{field}",
                    kind=HistoryKind.LOCAL_CHANGE,
                    field=field,
                    before=before.get(field),
                    after=value,
                    summary=f"Gewijzigd{by}: {_change_text(field, before.get(field), value, self.names)}",
                    **base,
                )
                for field, value in after.items()
            ]
        if row.action in ("add characteristic", "remove characteristic"):
            added = row.action.startswith("add")
            value = (after if added else before).get("characteristic")
            return [
                HistoryEntry(
                    entry_id=entry_id,
                    kind=HistoryKind.LOCAL_CHANGE,
                    field="characteristics",
                    before=None if added else value,
                    after=value if added else None,
                    summary=f"Kenmerk {value} {'toegekend' if added else 'ingetrokken'}{by}",
                    **base,
                )
            ]
        deleted = row.action == "delete"
        return [
            HistoryEntry(
                entry_id=entry_id,
                kind=HistoryKind.LOCAL_CHANGE,
                before=row.before,
                after=row.after,
                summary=f"{what} verwijderd{by}" if deleted else f"Vastgelegd: {row.action}{by}",
                **base,
            )
        ]

    # the outcomes no richer entry tells ---------------------------------------------------------------

    def outcomes_left(self) -> list[HistoryEntry]:
        return [entry for s in self.outcomes if s.outcome.outcome_id not in self.told if (entry := self._outcome(s))]

    def _outcome(self, stored: StoredOutcome) -> HistoryEntry | None:
        o = stored.outcome
        details = o.details
        kind: HistoryKind
        field: str | None = None
        before: JsonValue = None
        after: JsonValue = details
        if o.kind is OutcomeKind.DRIFT:
            field = str(details.get("field"))
            before, after = details.get("local_value"), details.get("nmbrs_value")
            local = details.get("local_name", _shown(field, before, self.names))
            nmbrs = details.get("nmbrs_name", _shown(field, after, self.names))
            kind = HistoryKind.DRIFT
            summary = f"{_label(field)} was lokaal gewijzigd ({local}); overschreven met de waarde uit Nmbrs ({nmbrs})"
        elif o.kind is OutcomeKind.LEAVE_RECALCULATED:
            kind, before, after = HistoryKind.LEAVE, details.get("before"), details.get("after")
            was, now = _hours(before), _hours(after)
            summary = f"Verlof herberekend: saldo {f'{was} → ' if was else ''}{now} uur"
        elif o.kind is OutcomeKind.FOLLOW_UP:
            tasks = details.get("tasks") or []
            kind, after = HistoryKind.TASKS, tasks
            summary = "Nog aan te vullen: " + "; ".join(TASK_LABELS.get(str(t), str(t)) for t in tasks)
        elif o.kind is OutcomeKind.NEEDS_DECISION:
            situation = SITUATION_LABELS.get(str(details.get("situation")))
            asked = f"Vraag gesteld ({situation})" if situation else "Vraag gesteld"
            kind, summary = HistoryKind.QUESTION, f"{asked}: Koppelen, Aanmaken, Blokkeren of Overslaan"
        elif o.kind in (OutcomeKind.BLOCKED, OutcomeKind.STALE):
            kind = HistoryKind.IGNORED
            summary = (
                "Wijziging uit Nmbrs genegeerd: het record is geblokkeerd"
                if o.kind is OutcomeKind.BLOCKED
                else "Verouderde wijziging uit Nmbrs genegeerd: een nieuwere is al verwerkt"
            )
        elif o.kind is OutcomeKind.AUTO_LINKED:  # one without its audit row
            kind = HistoryKind.LINK
            summary = f"Automatisch gekoppeld aan RegiCRM-persoon {details.get('person_id')}"
        elif o.kind in (OutcomeKind.APPLIED, OutcomeKind.REJECTED):
            told = self._applied_outcome(stored)
            if told is None:
                return None
            kind, summary = told
        else:  # previews and accepted sync requests are about a bulk or the poll, never about one employee
            return None
        return HistoryEntry(
            entry_id=f"outcome:{o.outcome_id}",
            at=stored.processed_at,
            kind=kind,
            subject=o.subject,
            field=field,
            before=before,
            after=after,
            actor=self._actor(stored),
            cause=o.causation_id,
            summary=summary,
            reason=o.reason,
        )

    def _applied_outcome(self, stored: StoredOutcome) -> tuple[HistoryKind, str] | None:
        o = stored.outcome
        rejected = o.kind is OutcomeKind.REJECTED
        if stored.consumer == FOLLOW_UPS:
            label = FOLLOW_UP_LABELS.get(str(o.details.get("command")), "Aanvulling")
            return HistoryKind.FOLLOW_UP, label + (" geweigerd" if rejected else "")
        if stored.consumer == RECONCILER:
            # Every write has its audit row (rule B); what is left wrote nothing ("already up to date") but a
            # removal of a record that was only asked about.
            if o.details.get("op") == "d":
                return HistoryKind.QUESTION, "Uit Nmbrs verwijderd: de open vraag is ingetrokken"
            return None
        if o.details.get("action") != UNDO_ACTION:
            return HistoryKind.DECISION, "Besluit niet uitgevoerd" if rejected else "Besluit uitgevoerd"
        if o.subject.startswith("person:"):
            return HistoryKind.UNDO, (
                "Persoonskaart teruggezet door ongedaan maken"
                if "restored" in o.details
                else "Persoonskaart niet teruggezet: sinds het besluit gewijzigd; controleer naam en contactgegevens"
            )
        if "regitijd_id" in o.details:
            return HistoryKind.UNDO, "Koppeling ongedaan gemaakt: de medewerker is niet meer actief in RegiTijd"
        return HistoryKind.UNDO, "Ongedaan gemaakt"

    def _actor(self, stored: StoredOutcome) -> str | None:
        if stored.consumer == RECONCILER:
            return "sync"
        cause = stored.outcome.causation_id
        return self.decided_by.get(cause) or self.issued_by.get(cause) or self.sources.actors.get(cause)

    # the current rows, where no change recorded them ------------------------------------------------------

    def current(self, audit: list[HistoryEntry], outcomes: list[HistoryEntry]) -> list[HistoryEntry]:
        entries = []
        link = self.sources.link
        # Rule G: the link's audit row (same transaction, so the same time) has the card and the cause; the
        # sync_links row is shown only for a link made without one.
        if (
            link is not None
            and self.record is not None
            and not any(e.kind is HistoryKind.LINK and e.at == link.linked_at for e in audit)
        ):
            actor = "sync" if link.linked_by == "auto" else link.linked_by
            entries.append(
                HistoryEntry(
                    entry_id=f"link:{self.record}:{link.linked_at.isoformat()}",
                    at=link.linked_at,
                    kind=HistoryKind.LINK,
                    subject=self.record,
                    after={"crm_id": link.crm_id},
                    actor=actor,
                    summary=f"Gekoppeld aan RegiCRM-persoon {link.crm_id}",
                    reason=link.reason,
                )
            )
        balance = self.sources.leave_balance
        # Rule F: a leave outcome of the same cause has the balance before and after; the stored balance (the
        # latest only) is shown for a recalculation without one (the target load recalculates after a CAO's
        # leave settings changed, and publishes no outcome).
        if balance is not None and not any(
            e.kind is HistoryKind.LEAVE and e.cause == balance.causation_id for e in outcomes
        ):
            entries.append(
                HistoryEntry(
                    entry_id=f"leave:{self.sources.employee_id}:{balance.computed_at.isoformat()}",
                    at=balance.computed_at,
                    kind=HistoryKind.LEAVE,
                    subject=f"rt-employee:{self.sources.employee_id}",
                    after=balance.summary,
                    cause=balance.causation_id,
                    summary=f"Verlof berekend: saldo {_hours(balance.summary)} uur",
                )
            )
        return entries


def _about(outcome: Outcome, employee_id: int) -> bool:
    named = outcome.details.get("employee_id")
    return named is None or named == employee_id


def _text(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None


def build_history(sources: HistorySources) -> list[HistoryEntry]:
    """Every change of the employee, once, in time order (see merge_history for ties)."""
    builder = _Builder(sources)
    decisions = builder.decisions()
    audit = builder.audit()
    outcomes = builder.outcomes_left()
    return merge_history(decisions, audit, outcomes, builder.current(audit, outcomes))


def merge_history(*groups: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    """The entries of all groups in time order, each entry id once (the first kept). Ties keep the order given:
    one transaction records everything at the same time, and the groups come as a person reads them (the
    decision, then what it wrote, then what followed: drift, leave, tasks)."""
    seen: set[str] = set()
    merged = []
    for entry in chain(*groups):
        if entry.entry_id not in seen:
            seen.add(entry.entry_id)
            merged.append(entry)
    return sorted(merged, key=lambda entry: entry.at)


def filter_history(entries: Iterable[HistoryEntry], kinds: Iterable[HistoryKind | str]) -> list[HistoryEntry]:
    """The entries of the given kinds; no kinds keeps them all. An unknown kind is a ValueError."""
    wanted = {HistoryKind(kind) for kind in kinds}
    return [entry for entry in entries if not wanted or entry.kind in wanted]


# --- export and import ------------------------------------------------------------------------------------

CSV_COLUMNS = ("at", "kind", "summary", "field", "before", "after", "actor", "cause", "subject", "reason", "entry_id")
_JSON_COLUMNS = frozenset({"before", "after"})
_ENTRIES = TypeAdapter(list[HistoryEntry])
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection, OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ... but a plain negative number is no formula: it stays a number for the spreadsheet.
_PLAIN_NUMBER = re.compile(r"-\d+(\.\d+)?")


def _strict_json(text: str) -> Any:
    """json.loads without Python's NaN and Infinity, which are no JSON (and no jsonb) value."""

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    return json.loads(text, parse_constant=refuse)


def _reads_as_json(text: str) -> bool:
    try:
        _strict_json(text)
    except ValueError:
        return False
    return True


def _value_cell(value: JsonValue) -> str:
    """A text as it is, so that people read it; anything else, and a text that would read as another value
    ('17', 'null', '' or '"x"'), as JSON. None is the empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value and not _reads_as_json(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _cell_value(cell: str) -> JsonValue:
    if cell == "":
        return None
    try:
        parsed: JsonValue = _strict_json(cell)
    except ValueError:
        return cell
    return parsed


def _guard(cell: str) -> str:
    """Prefix a formula-like cell with an apostrophe; a cell starting with an apostrophe gets one more, so that
    reading removes exactly one from every cell that starts with it and the round trip is exact."""
    if cell.startswith("'") or (cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell)):
        return "'" + cell
    return cell


def _unguard(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def history_csv(entries: Iterable[HistoryEntry]) -> str:
    """A header row and one row per entry; before/after as in _value_cell. Encode as UTF-8 (with a BOM for Excel)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        data = entry.model_dump(mode="json")
        writer.writerow(
            _guard(_value_cell(data[c]) if c in _JSON_COLUMNS else "" if data[c] is None else str(data[c]))
            for c in CSV_COLUMNS
        )
    return out.getvalue()


def parse_history_csv(text: str) -> list[HistoryEntry]:
    """The entries of a history_csv export (a leading BOM is allowed). ValueError when it is not one."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(rows, None)
    if header is None or tuple(header) != CSV_COLUMNS:
        raise ValueError(f"not a history export: the header should be {','.join(CSV_COLUMNS)}")
    entries = []
    for row in rows:
        if len(row) != len(CSV_COLUMNS):
            raise ValueError(f"a history row has {len(CSV_COLUMNS)} cells, not {len(row)}")
        cells = dict(zip(CSV_COLUMNS, (_unguard(cell) for cell in row), strict=True))
        data: dict[str, Any] = {c: _cell_value(v) if c in _JSON_COLUMNS else v for c, v in cells.items()}
        data["cause"] = data["cause"] or None
        entries.append(HistoryEntry.model_validate(data))
    return entries


def history_json(entries: Iterable[HistoryEntry]) -> str:
    """A JSON array of the entries, one object each with the fields of HistoryEntry."""
    return _ENTRIES.dump_json(list(entries), indent=2).decode()


def parse_history_json(text: str) -> list[HistoryEntry]:
    return _ENTRIES.validate_json(text)
