"""LOG_FORMAT=json: a worker's whole first sync logs one JSON object a line, nothing at ERROR, and never a
secret or a BSN."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from tests.support import DEMO_DATA, Sandbox
from worker.adapters.poll_store import sync_settled
from worker.config import Settings
from worker.sandbox.dataset import load_dataset

BSN_KEY = "bsn-hash-key-that-must-never-be-logged"


async def test_a_first_sync_logs_json_lines_without_errors_secrets_or_bsns(
    start_worker: Callable[..., Awaitable[None]],
    integration_settings: Settings,
    sandbox: Sandbox,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    await pool.execute("TRUNCATE nmbrs_snapshots, poll_runs, sync_requests RESTART IDENTITY CASCADE")
    await start_worker(
        integration_settings,
        NMBRS_BASE_URL=f"{sandbox.base_url}/soap/v3/",
        NMBRS_BSN_HASH_KEY=BSN_KEY,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        POLL_INTERVAL_S="3600",
    )
    for _ in range(300):
        async with pool.acquire() as connection:
            if await sync_settled(connection):
                break
        await asyncio.sleep(0.3)
    else:
        pytest.fail("the first sync did not settle")
    lines = [line for line in (tmp_path / "worker-0.log").read_text().splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    assert [r for r in records if r["level"] in ("ERROR", "CRITICAL")] == []
    assert not [r for r in records if r["logger"].startswith("httpx") and r["level"] == "INFO"]
    text = "\n".join(lines)
    assert BSN_KEY not in text and integration_settings.nmbrs_token.get_secret_value() not in text
    bsns = {employee.bsn for employee in load_dataset(DEMO_DATA).employees if employee.bsn}
    assert bsns and not [bsn for bsn in bsns if bsn in text]
