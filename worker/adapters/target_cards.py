"""The RegiCRM cards the sync writes on: a person (employee) or an organisation (company), read, created, restored."""

from __future__ import annotations

import uuid
from typing import Any

from worker.adapters.database import Connection
from worker.adapters.target_sql import PERSON_TYPES, PRIMARY_SQL, db_value, iso, write_audit
from worker.domain.changes import LinkedEntity
from worker.domain.ownership import NMBRS_OWNED_COMPANY_FIELDS, PERSON_FIELDS
from worker.domain.target_state import PERSONEELSLID

# The card of an entity: its table, id column and the fields the sync writes on it.
_CARDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "employee": ("crm_persons", "person_id", PERSON_FIELDS),
    "company": ("crm_organisations", "organisation_id", NMBRS_OWNED_COMPANY_FIELDS),
}


class Cards:
    """The cards on one connection, inside the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self.db = connection

    async def card(self, entity: LinkedEntity, crm_id: int) -> dict[str, Any] | None:
        """The Nmbrs-owned fields of the person (employee) or organisation (company) `crm_id`, JSON-shaped."""
        table, id_column, fields = _CARDS[entity]
        row = await self.db.fetchrow(f"SELECT {', '.join(fields)} FROM {table} WHERE {id_column} = $1", crm_id)
        return None if row is None else {f: iso(row[f]) if f == "birthday" else row[f] for f in fields}

    async def create(self, entity: LinkedEntity, record: dict[str, Any], actor: str) -> int:
        """A new person (with RegiPersoneel: Personeelslid) or organisation from Nmbrs data; returns its id."""
        if entity == "company":
            organisation_id: int = await self.db.fetchval(
                "INSERT INTO crm_organisations (name, created_by) VALUES ($1, $2) RETURNING organisation_id",
                record["name"],
                actor,
            )
            return organisation_id
        person_id: int = await self.db.fetchval(
            "INSERT INTO crm_persons (last_name, created_by) VALUES ($1, $2) RETURNING person_id",
            record["last_name"],
            actor,
        )
        # No account, roles or time-writing categories: those stay follow-up tasks (domain rule 5).
        await self.db.execute("INSERT INTO crm_characteristics VALUES ($1, $2)", person_id, PERSONEELSLID)
        return person_id

    async def restore(
        self,
        entity: LinkedEntity,
        crm_id: int,
        before: dict[str, Any],
        written: dict[str, Any],
        causation_id: uuid.UUID,
        actor: str,
    ) -> bool:
        """Put back the card's values from `before`, only while it still holds what a link `written`: a later
        edit (by hand or by the sync) is newer than the values the undo would bring back. True if restored."""
        table, id_column, fields = _CARDS[entity]
        restored = await self.db.fetchval(
            f"""UPDATE {table} SET {", ".join(f"{f} = ${i + 2}" for i, f in enumerate(fields))}
                WHERE {id_column} = $1 AND ({", ".join(fields)}) IS NOT DISTINCT FROM
                      ({", ".join(f"${i + 2 + len(fields)}" for i in range(len(fields)))})
                RETURNING true""",
            crm_id,
            *(db_value(f, before.get(f)) for f in fields),
            *(db_value(f, written.get(f)) for f in fields),
        )
        if restored:
            await write_audit(self.db, [(causation_id, f"{table}:{crm_id}", "restore", written, before)], actor)
        return bool(restored)

    async def hand_over(self, removed_employee_id: int) -> None:
        """The person card of a human whose employment was removed follows the employment that is primary now
        (see PRIMARY_SQL), with the values the sync last wrote to it: nothing else would rewrite the card until
        that employment changes."""
        fields = ", ".join(f"{f} = (o.nmbrs_synced->>'{f}')::{PERSON_TYPES.get(f, 'text')}" for f in PERSON_FIELDS)
        await self.db.execute(
            f"""UPDATE crm_persons p SET {fields}
                FROM rt_employees gone JOIN rt_employees o
                  ON o.person_id = gone.person_id AND o.employee_id <> gone.employee_id
                WHERE gone.employee_id = $1 AND p.person_id = gone.person_id AND o.source = 'nmbrs' AND o.active
                  AND o.nmbrs_synced IS NOT NULL AND {PRIMARY_SQL.format(me="o.employee_id")}""",
            removed_employee_id,
        )
