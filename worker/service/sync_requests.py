"""Handler for SyncRequested commands: record the request once and acknowledge it with an outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from worker.adapters.database import Connection, Pool
from worker.adapters.inbox import Inbox, run_once
from worker.adapters.poll_store import insert_sync_request
from worker.domain.events import Outcome, OutcomeKind, SyncRequested, outcome_for

CONSUMER = "sync-requests"
SUBJECT = "sync-request"


async def handle_sync_requested(request: SyncRequested, pool: Pool, now: Callable[[], datetime]) -> list[Outcome]:
    async def record(connection: Connection) -> list[Outcome]:
        await insert_sync_request(connection, request)
        mode = "full reconciliation" if request.full else "change poll"
        if request.employee_id is not None:
            mode = f"re-read of employee {request.employee_id}"
        return [
            outcome_for(
                request.event_id,
                OutcomeKind.ACCEPTED,
                SUBJECT,
                now(),
                reason=f"{mode}{' (dry run)' if request.dry_run else ''} requested by {request.requested_by}",
                details={"full": request.full, "dry_run": request.dry_run, "employee_id": request.employee_id},
            )
        ]

    return await run_once(pool, Inbox(CONSUMER), request.event_id, record)
