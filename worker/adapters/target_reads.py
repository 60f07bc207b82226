"""Reads of the target store: the sync state of Nmbrs records (RecordState), as both consumers judge them."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json

from worker.adapters.database import Connection
from worker.adapters.target_sql import PERIOD_FIELDS, PRIMARY_SQL, iso
from worker.domain.changes import LinkedEntity
from worker.domain.ownership import PERSON_FIELDS, REFERENCE_LABELS
from worker.domain.reconcile import LinkedRecord, RecordState, StoredRecord

# A linked record's RegiTijd/RegiCRM side: its Nmbrs-owned fields as they are, as the sync last wrote them, the
# snapshot version it wrote, whether the RegiTijd record is active, and the names of its references by field.
LocalSide = tuple[dict[str, Any], dict[str, Any] | None, int | None, bool, dict[str, str]]

# The latest Nmbrs data of a record and its version (see StoredRecord): a decision is carried out with it.
_STORED_SQL = """(SELECT coalesce(q.record, snap.record, blk.record) AS record,
                         coalesce(q.version, snap.version) AS version
                  FROM (SELECT) AS one
                  LEFT JOIN pending_decisions q ON q.entity = $1 AND q.nmbrs_id = {id}
                  LEFT JOIN nmbrs_snapshots snap ON snap.key = $1 || ':' || {id} AND NOT snap.deleted
                  LEFT JOIN sync_blocks blk ON blk.entity = $1 AND blk.nmbrs_id = {id})"""


class RecordStates:
    """Loads record states on one connection, inside the caller's transaction."""

    def __init__(self, connection: Connection, period_edits_read: dict[int, int]) -> None:
        """`period_edits_read`: filled with each RegiTijd employee's count of local period edits when its state
        was read (see migration 0008), for the writes that follow."""
        self.db = connection
        self._period_edits_read = period_edits_read

    async def peek_bsn_hash(self, entity: LinkedEntity, nmbrs_id: int) -> str | None:
        """The BSN hash of the employee's stored data (StoredRecord), read without a lock."""
        if entity != "employee":
            return None
        found: str | None = await self.db.fetchval(
            f"SELECT stored.record ->> 'bsn_hash' FROM {_STORED_SQL.format(id='$2')} AS stored", entity, nmbrs_id
        )
        return found or None

    async def record_states(
        self, entity: LinkedEntity, records: dict[int, str | None], *, stored: bool = False
    ) -> dict[int, RecordState]:
        """The sync state of many records (Nmbrs id -> BSN hash, used for employees only) in two round
        trips: the time of a change goes almost all into round trips. `stored`: with their stored data."""
        ids = list(records)
        rows = await self.db.fetch(
            f"""SELECT r.nmbrs_id, l.crm_id, l.regitijd_id,
                       EXISTS (SELECT 1 FROM sync_blocks b WHERE b.entity = $1 AND b.nmbrs_id = r.nmbrs_id) AS blocked,
                       (SELECT p.version FROM pending_decisions p WHERE p.entity = $1 AND p.nmbrs_id = r.nmbrs_id)
                           AS pending,
                       l.bsn_hash AS link_bsn_hash,
                       -- Every person the human's other employments point at (more than one: duplicates).
                       ARRAY(SELECT DISTINCT s.crm_id FROM sync_links s
                             WHERE r.bsn_hash IS NOT NULL AND s.entity = 'employee' AND s.bsn_hash = r.bsn_hash
                               AND s.nmbrs_id <> r.nmbrs_id ORDER BY s.crm_id) AS same_human
                       {", stored.record AS stored_record, stored.version AS stored_version" if stored else ""}
                FROM unnest($2::int[], $3::text[]) AS r(nmbrs_id, bsn_hash)
                LEFT JOIN sync_links l ON l.entity = $1 AND l.nmbrs_id = r.nmbrs_id
                {f"CROSS JOIN LATERAL {_STORED_SQL.format(id='r.nmbrs_id')} AS stored" if stored else ""}""",
            entity,
            ids,
            [records[i] if entity == "employee" else None for i in ids],
        )
        linked = [(row["crm_id"], row["regitijd_id"]) for row in rows if row["crm_id"] is not None]
        local = await self._local_values(entity, linked) if linked else {}
        states = {}
        for row in rows:
            link, version = None, None
            if row["crm_id"] is not None:
                values, synced, version, active, names = local[(row["crm_id"], row["regitijd_id"])]
                link = LinkedRecord(
                    crm_id=row["crm_id"],
                    regitijd_id=row["regitijd_id"],
                    local=values,
                    synced=synced,
                    bsn_hash=row["link_bsn_hash"],
                    active=active,
                    local_names=names,
                )
            found = stored and row["stored_record"] is not None
            states[row["nmbrs_id"]] = RecordState(
                link=link,
                blocked=row["blocked"],
                pending_version=row["pending"],
                applied_version=version,
                linked_persons_for_bsn=tuple(row["same_human"]),
                stored=StoredRecord(data=json.loads(row["stored_record"]), version=row["stored_version"])
                if found
                else None,
            )
        return states

    async def _local_values(
        self, entity: LinkedEntity, linked: list[tuple[int, int | None]]
    ) -> dict[tuple[int, int | None], LocalSide]:
        """(crm_id, regitijd_id) -> the Nmbrs-owned fields as they are locally, as the sync last wrote them, the
        snapshot version it wrote, whether the RegiTijd record is active (a record not created yet counts as
        active: its first write creates it so) and the names of its department, function and CAO."""
        crm_ids, regitijd_ids = [c for c, _ in linked], [r for _, r in linked]
        if entity == "company":
            rows = await self.db.fetch(
                """SELECT k.crm_id, k.regitijd_id, o.name, o.kvk_number, o.email, o.phone, o.website, c.nmbrs_synced,
                          c.nmbrs_version, coalesce(c.active, true) AS active
                   FROM unnest($1::int[], $2::int[]) AS k(crm_id, regitijd_id)
                   JOIN crm_organisations o ON o.organisation_id = k.crm_id
                   LEFT JOIN rt_companies c ON c.company_id = k.regitijd_id""",
                crm_ids,
                regitijd_ids,
            )
            found: dict[tuple[int, int | None], LocalSide] = {
                pair: ({}, None, None, True, {})
                for pair in linked  # the organisation is gone: nothing local
            }
            for row in rows:
                values = dict(row)
                key = (values.pop("crm_id"), values.pop("regitijd_id"))
                synced, version, active = (values.pop(name) for name in ("nmbrs_synced", "nmbrs_version", "active"))
                found[key] = (values, from_json(synced) if synced else None, version, active, {})
            return found
        rows = await self.db.fetch(
            f"""SELECT k.crm_id, k.regitijd_id, {", ".join(f"p.{f}" for f in PERSON_FIELDS)}, e.employee_id, e.number,
                       e.company_id, c.nmbrs_company_id, e.function_id, e.department_id, e.labour_agreement_id,
                       e.employment_start, e.employment_end, e.nmbrs_synced, e.nmbrs_version, r.period_edits,
                       r.periods_read, coalesce(e.active, true) AS active, fn.description AS function_name,
                       dep.description AS department_name, cao.description AS labour_agreement_name,
                       {PRIMARY_SQL.format(me="e.employee_id")} AS primary,
                       -- The period lists only where they may differ from what the sync wrote (migration 0008).
                       CASE WHEN r.periods_read THEN (
                           SELECT json_agg(json_build_object('employment_id', employment_id, 'start', start_date,
                               'end', end_date) ORDER BY start_date, employment_id)
                           FROM rt_employment_periods WHERE employee_id = e.employee_id) END AS employments,
                       CASE WHEN r.periods_read THEN (
                           SELECT json_agg(json_build_object('contract_id', contract_id, 'start', start_date,
                               'end', end_date, 'hours_per_week', hours_per_week::text) ORDER BY start_date,
                               contract_id)
                           FROM rt_contract_periods WHERE employee_id = e.employee_id) END AS contracts,
                       CASE WHEN r.periods_read THEN (
                           SELECT json_agg(json_build_object('start', start_date, 'hours_per_week',
                               hours_per_week::text, 'parttime_percentage', parttime_percentage::text)
                               ORDER BY start_date)
                           FROM rt_schedule_periods WHERE employee_id = e.employee_id) END AS schedules
                FROM unnest($1::int[], $2::int[]) AS k(crm_id, regitijd_id)
                JOIN crm_persons p ON p.person_id = k.crm_id
                LEFT JOIN rt_employees e ON e.employee_id = k.regitijd_id
                LEFT JOIN rt_companies c ON c.company_id = e.company_id
                LEFT JOIN rt_functions fn ON fn.nmbrs_id = e.function_id
                LEFT JOIN rt_departments dep ON dep.nmbrs_id = e.department_id
                LEFT JOIN rt_labour_agreements cao ON cao.nmbrs_id = e.labour_agreement_id
                LEFT JOIN rt_period_edits pe ON pe.employee_id = e.employee_id
                CROSS JOIN LATERAL (SELECT coalesce(pe.edits, 0) AS period_edits,
                                           coalesce(pe.edits, 0) <> e.period_edits_seen OR e.nmbrs_synced IS NULL
                                               AS periods_read) AS r""",
            crm_ids,
            regitijd_ids,
        )
        gone: LocalSide = ({f: None for f in PERSON_FIELDS}, None, None, True, {})  # the person is gone: nothing local
        found = {pair: gone for pair in linked}
        found.update(
            {
                (row["crm_id"], row["regitijd_id"]): (
                    *_employee_local_values(dict(row)),
                    row["nmbrs_version"],
                    row["active"],
                    {
                        field: row[f"{field.removesuffix('_id')}_name"]
                        for field in REFERENCE_LABELS
                        if row[f"{field.removesuffix('_id')}_name"] is not None
                    },
                )
                for row in rows
            }
        )
        self._period_edits_read.update(
            (row["employee_id"], row["period_edits"]) for row in rows if row["employee_id"] is not None
        )
        return found


def _employee_local_values(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    local: dict[str, Any] = {f: record.get(f) for f in PERSON_FIELDS}
    local["birthday"] = iso(local["birthday"])
    if record["regitijd_id"] is None or record.get("employee_id") is None:
        return local, None
    synced = from_json(record["nmbrs_synced"]) if record["nmbrs_synced"] else None
    if synced and not record["primary"]:
        # Another employment of this human owns the person card: its values are not a local edit.
        local.update({f: synced.get(f) for f in PERSON_FIELDS})
    local.update(
        number=record["number"],
        # No RegiTijd company yet (its Nmbrs company is not linked): nothing local to differ from.
        nmbrs_company_id=record["nmbrs_company_id"]
        if record["company_id"] is not None
        else (synced or {}).get("nmbrs_company_id"),
        function_id=record["function_id"],
        department_id=record["department_id"],
        labour_agreement_id=record["labour_agreement_id"],
        employment_start=iso(record["employment_start"]),
        employment_end=iso(record["employment_end"]),
    )
    for name in PERIOD_FIELDS:
        # Lists not read have no local edits since the sync wrote them (migration 0008): they are the synced ones.
        local[name] = from_json(record[name] or "[]") if record["periods_read"] else (synced or {}).get(name, [])
    return local, synced
