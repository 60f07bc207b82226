"""Notices on the real stack: a worker process polls the sandbox, its notice timer records a notice per new
question and posts each once to a local webhook; in a real headless Chromium a `lezer` sees the open count on
the menu and the list of notices, each leading to its question."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from playwright.async_api import expect

from tests.integration.test_hr_web import Web, shot, web_stack
from tests.integration.test_notices import Receiver, receiver  # noqa: F401 (receiver is a fixture)
from tests.support import Sandbox
from worker.adapters.hr_queries import record_name
from worker.config import Settings


@pytest.fixture
async def notices_web(
    start_worker: Callable[..., Awaitable[None]],
    integration_settings: Settings,
    sandbox: Sandbox,
    pool: asyncpg.Pool,
    receiver: Receiver,  # noqa: F811
) -> AsyncIterator[Web]:
    env = {"NOTICE_INTERVAL_S": "1", "NOTICE_WEBHOOK_URL": receiver.url}
    async with web_stack(start_worker, integration_settings, sandbox, pool, **env) as stack:
        yield stack


async def _all_questions_noticed_and_posted(pool: asyncpg.Pool, timeout_s: float = 60) -> set[str]:
    """Wait for the worker's timer: a posted notice for every open question; their keys."""
    async with asyncio.timeout(timeout_s):
        while True:
            questions = {
                f"new_question:{r['entity']}:{r['nmbrs_id']}"
                for r in await pool.fetch("SELECT entity, nmbrs_id FROM pending_decisions")
            }
            posted = {
                r["key"]
                for r in await pool.fetch(
                    "SELECT key FROM notices WHERE kind = 'new_question' AND resolved_at IS NULL"
                    " AND webhook_at IS NOT NULL"
                )
            }
            if questions and questions == posted:
                return questions
            await asyncio.sleep(0.5)


async def test_the_worker_posts_each_new_question_once_and_a_lezer_sees_the_count_and_the_list(
    notices_web: Web,
    receiver: Receiver,  # noqa: F811
) -> None:
    web_ = notices_web
    keys = await _all_questions_noticed_and_posted(web_.pool)
    await asyncio.sleep(3)  # three more ticks of the timer: nothing is posted twice
    posted = [notice["key"] for post in receiver.posts for notice in post["notices"]]
    assert sorted(posted) == sorted(keys)
    assert all(post["text"].startswith("Nmbrs Sync: ") for post in receiver.posts)

    _context, page = await web_.signed_in("lex")
    open_count = await web_.value("SELECT count(*) FROM notices WHERE resolved_at IS NULL")
    assert isinstance(open_count, int) and open_count >= len(keys)
    count = page.locator('header.top nav [data-testid="notice-count"]')
    await expect(count).to_have_text(str(open_count))

    await page.click("header.top nav a[href='/meldingen']")
    rows = page.locator('[data-testid="open-notices"] tbody tr[data-key^="new_question:"]')
    await expect(rows).to_have_count(len(keys))
    await expect(page.locator('[data-testid="open-notices"]')).to_contain_text("webhook")
    await shot(page, "20-meldingen")
    first = rows.first
    key = await first.get_attribute("data-key")
    assert key is not None
    _kind, entity, nmbrs_id = key.split(":")
    record = await web_.value(
        "SELECT record FROM pending_decisions WHERE entity = $1 AND nmbrs_id = $2", entity, int(nmbrs_id)
    )
    assert isinstance(record, str)
    name = record_name(entity, int(nmbrs_id), json.loads(record))
    await expect(first.locator("a")).to_contain_text(name)
    await first.locator("a").click()
    await expect(page).to_have_url(f"{web_.url}/vragen/{entity}/{nmbrs_id}")
    await expect(page.locator('[data-testid="question"] h2')).to_have_text(name)
