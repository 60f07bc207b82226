"""The HR web app as HR staff use it: a real headless Chromium (Debian's, driven by Playwright) on the real
stack (the Nmbrs sandbox, a worker process, Kafka, PostgreSQL). Screenshots of the main pages go to
.stack/screenshots/ (a current set is kept in docs/screenshots/)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.support import DEMO_DATA, DEMO_TARGET, REPO, TARGET_TABLES, Sandbox
from worker.adapters.command_requests import CommandRequests
from worker.adapters.poll_store import sync_settled
from worker.adapters.target_store_load import load_target_state
from worker.adapters.web_accounts import AccountStore
from worker.config import Settings
from worker.domain.events import SyncRequested
from worker.domain.target_state import parse_target_file
from worker.domain.web_access import Role
from worker.entrypoints.web.app import build_context, create_app
from worker.sandbox.dataset import load_dataset
from worker.sandbox.generate import is_valid_bsn

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # ./dev test installs Debian's package
# Headless in a closed network: no sandbox (root in CI), and none of Chromium's own calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = REPO / ".stack" / "screenshots"
USERS = {"hanna": Role.HR, "henk": Role.HR, "bea": Role.BEHEER, "lex": Role.LEZER}
TIMEOUT_MS = 20_000


def password(user: str) -> str:
    return f"wachtwoord-van-{user}"


@dataclass
class Web:
    url: str
    pool: asyncpg.Pool
    settings: Settings
    browser: Browser

    async def signed_in(self, user: str) -> tuple[BrowserContext, Page]:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 900}, locale="nl-NL")
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.goto(f"{self.url}/overzicht")
        await page.fill("input[name=gebruiker]", user)
        await page.fill("input[name=wachtwoord]", password(user))
        await page.click("button[type=submit]")
        await expect(page.locator(".who .user")).to_have_text(user)
        return context, page

    async def value(self, sql: str, *args: object) -> object:
        return await self.pool.fetchval(sql, *args)


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


async def settled(pool: asyncpg.Pool, timeout_s: float = 90) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            async with pool.acquire() as connection:
                if await sync_settled(connection):
                    return
            await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def web_stack(
    start_worker: Callable[..., Awaitable[None]],
    settings: Settings,
    sandbox: Sandbox,
    pool: asyncpg.Pool,
    **worker_env: str,
) -> AsyncIterator[Web]:
    """The demo's target state and users, a real worker polling the sandbox (with `worker_env` besides), settled,
    and the web app in front of a headless Chromium."""
    await pool.execute(
        f"TRUNCATE {TARGET_TABLES}, decisions, nmbrs_snapshots, poll_runs, sync_requests, web_users, "
        "web_sign_in_failures, notices, notice_digests RESTART IDENTITY CASCADE"
    )
    async with pool.acquire() as connection:
        await load_target_state(connection, parse_target_file(DEMO_TARGET.read_text(), DEMO_TARGET.name))
    accounts = AccountStore(pool)
    for user, role in USERS.items():
        await accounts.add_user(user, role, password(user), display_name=None)
    await start_worker(
        settings,
        NMBRS_BASE_URL=f"{sandbox.base_url}/soap/v3/",
        AUTO_LINK_MIN_SCORE="0.95",
        POLL_INTERVAL_S="3600",
        **worker_env,
    )
    await settled(pool)
    contexts = build_context(settings)
    ctx = await anext(contexts)
    runner = web.AppRunner(create_app(ctx))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Web(f"http://127.0.0.1:{port}", pool, settings, browser)
        finally:
            await browser.close()
            await runner.cleanup()
            await contexts.aclose()


@pytest.fixture
async def hr_web(
    start_worker: Callable[..., Awaitable[None]],
    integration_settings: Settings,
    sandbox: Sandbox,
    pool: asyncpg.Pool,
) -> AsyncIterator[Web]:
    async with web_stack(start_worker, integration_settings, sandbox, pool) as stack:
        yield stack


async def open_question(page: Page, name: str) -> None:
    await page.locator("a[data-pane]", has_text=name).first.click()
    await expect(page.locator('[data-testid="question"] h2')).to_have_text(name)


async def employee_of(web_: Web, first_name: str, last_name: str) -> int:
    nmbrs_id = await web_.value(
        "SELECT nmbrs_id FROM pending_decisions WHERE record ->> 'first_name' = $1 AND record ->> 'last_name' = $2",
        first_name,
        last_name,
    )
    assert isinstance(nmbrs_id, int), f"no open question for {first_name} {last_name}"
    return nmbrs_id


async def test_hr_staff_answer_the_questions_in_the_browser(hr_web: Web) -> None:
    web_ = hr_web
    # A wrong password is refused; then hanna signs in and lands on the overview, red steps first.
    context = await web_.browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{web_.url}/vragen")
    await shot(page, "01-aanmelden")
    await page.fill("input[name=gebruiker]", "hanna")
    await page.fill("input[name=wachtwoord]", "fout-wachtwoord-123")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_contain_text("klopt niet")
    await page.fill("input[name=wachtwoord]", password("hanna"))
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{web_.url}/vragen")  # back where the sign-in interrupted
    await page.goto(f"{web_.url}/overzicht")
    first_step = page.locator('[data-testid="steps"] tbody tr').first
    await expect(first_step).to_have_class("red")
    await expect(first_step).to_contain_text("Medewerkers")
    await shot(page, "02-overzicht")

    # The questions, red first, then by waiting time; Anna de Jong has two look-alike cards.
    await page.goto(f"{web_.url}/vragen")
    open_questions = await web_.value("SELECT count(*) FROM pending_decisions WHERE NOT skipped")
    await expect(page.locator('[data-testid="total"]')).to_have_text(f"({open_questions})")
    await open_question(page, "Anna de Jong")
    candidates = page.locator('[data-testid="compare"] thead th.candidate')
    await expect(candidates).to_have_count(2)
    await expect(page.locator('[data-testid="compare"] thead')).to_contain_text("inlogaccount")
    await shot(page, "03-vraag")

    # Koppelen through the search, to the card with the login account; the leave is shown afterwards.
    anna = await employee_of(web_, "Anna", "Jong")
    await page.fill("input[data-search]", "de jong")
    hit = page.locator('[data-testid="search-hits"] li', has_text="inlogaccount").first
    await hit.locator("button[value=koppelen]").click()
    result = page.locator('[data-testid="result"]')
    await expect(result).to_contain_text("is gekoppeld aan")
    await expect(page.locator('[data-testid="leave"]')).to_contain_text("Saldo verlof")
    await shot(page, "04-gekoppeld-met-verlof")
    person = await web_.value("SELECT crm_id FROM sync_links WHERE entity = 'employee' AND nmbrs_id = $1", anna)
    with_account = await web_.value("SELECT person_id FROM crm_accounts WHERE person_id = $1", person)
    assert person is not None and with_account == person
    assert await web_.value("SELECT decided_by FROM decisions WHERE nmbrs_id = $1", anna) == "hanna"

    # Aanmaken for someone RegiCRM does not know.
    await page.goto(f"{web_.url}/vragen?situatie=unmatched")
    maarten = await employee_of(web_, "Maarten", "Müller")
    await open_question(page, "Maarten Müller")
    await page.click('[data-testid="question"] button[value=aanmaken]')
    await expect(result).to_contain_text("is aangemaakt in RegiCRM en RegiTijd")
    assert await web_.value("SELECT count(*) FROM sync_links WHERE entity = 'employee' AND nmbrs_id = $1", maarten)
    # From the result straight on to completing the data ("gegevens aanvullen") on the employee page.
    maarten_rt = await web_.value("SELECT employee_id FROM rt_employees WHERE nmbrs_employee_id = $1", maarten)
    await expect(page.locator('[data-testid="to-employee"]')).to_have_attribute("href", f"/medewerkers/{maarten_rt}")

    # Blokkeren, then Ontblokkeren on the Geblokkeerd page: the question is asked again.
    bram = await employee_of(web_, "Bram", "Öztürk")
    await open_question(page, "Bram Öztürk")
    await page.click('[data-testid="question"] button[value=blokkeren]')
    await expect(result).to_contain_text("is geblokkeerd")
    await page.goto(f"{web_.url}/geblokkeerd")
    row = page.locator('[data-testid="blocked"] tbody tr', has_text="Bram Öztürk")
    await row.locator("button[value=ontblokkeren]").click()
    await expect(page.locator('[data-testid="result"]')).to_contain_text("is ontblokkeerd")
    assert not await web_.value("SELECT count(*) FROM sync_blocks WHERE entity = 'employee' AND nmbrs_id = $1", bram)
    assert await web_.value("SELECT count(*) FROM pending_decisions WHERE nmbrs_id = $1", bram) == 1

    # Ongedaan maken of the Aanmaken, on the Besluiten page.
    await page.goto(f"{web_.url}/besluiten")
    await shot(page, "05-besluiten")
    # A decision's record leads to the employee page of the RegiTijd employee it made or linked.
    await page.locator('[data-testid="decisions"] tbody tr', has_text="Anna de Jong").first.locator("a").click()
    await expect(page.locator('[data-testid="employee-name"]')).to_contain_text("Jong")
    await page.goto(f"{web_.url}/besluiten")
    row = page.locator('[data-testid="decisions"] tbody tr', has_text="Maarten Müller").first
    await row.locator("button[value=ongedaan_maken]").click()
    await expect(page.locator('[data-testid="result"]')).to_contain_text("ongedaan gemaakt")
    assert await web_.value(
        "SELECT undone_by IS NOT NULL FROM decisions WHERE nmbrs_id = $1 AND action = 'aanmaken'", maarten
    )
    await context.close()


async def test_bulk_live_updates_and_two_people_on_one_question(hr_web: Web, sandbox: Sandbox) -> None:
    web_ = hr_web
    bea_context, bea = await web_.signed_in("bea")

    # Bulk within one company: preview names exactly the records, confirming answers those.
    company = await web_.value(
        "SELECT company_id FROM pending_decisions WHERE situation = 'unmatched' GROUP BY company_id "
        "ORDER BY count(*) DESC LIMIT 1"
    )
    await bea.goto(f"{web_.url}/vragen?bedrijf={company}&situatie=unmatched")
    expected = await web_.value(
        "SELECT count(*) FROM pending_decisions WHERE company_id = $1 AND situation = 'unmatched' AND NOT skipped",
        company,
    )
    await bea.select_option('[data-testid="bulk-form"] select[name=action]', "overslaan")
    await bea.click('[data-testid="bulk-form"] button[type=submit]')
    preview = bea.locator('[data-testid="bulk-preview"]')
    assert isinstance(expected, int)
    await expect(preview.locator("ul").first.locator("li")).to_have_count(expected)
    await shot(bea, "06-bulk-voorbeeld")
    assert await web_.value("SELECT count(*) FROM pending_decisions WHERE skipped") == 0  # a preview changes nothing
    await preview.locator("button[type=submit]").click()
    await expect(bea.locator("#bulk-result [data-testid=result]")).to_contain_text(
        f"Overslaan uitgevoerd voor {expected} vragen"
    )
    assert await web_.value("SELECT count(*) FROM pending_decisions WHERE skipped AND company_id = $1", company) == (
        expected
    )

    # Ticked rows of another company: a preview of exactly those, then each answered at the version ticked.
    other = await web_.value(
        "SELECT company_id FROM pending_decisions WHERE NOT skipped AND company_id <> $1 GROUP BY company_id "
        "ORDER BY count(*) DESC LIMIT 1",
        company,
    )
    await bea.goto(f"{web_.url}/vragen?bedrijf={other}")
    boxes = bea.locator('[data-testid="questions"] input[name=kies]')
    chosen = [await boxes.nth(i).get_attribute("value") for i in (0, 1)]
    for i in (0, 1):
        await boxes.nth(i).check()
    await bea.select_option('[data-testid="ticked-form"] select[name=action]', "blokkeren")
    await bea.click('[data-testid="ticked-form"] button[type=submit]')
    ticked = bea.locator('[data-testid="ticked-preview"]')
    await expect(ticked.locator("li")).to_have_count(2)
    await ticked.locator("button[type=submit]").click()
    await expect(bea.locator("#bulk-result [data-testid=result]")).to_contain_text(
        "Blokkeren uitgevoerd voor 2 van de 2 vragen"
    )
    ids = [int(str(value).split("@")[0].split(":")[1]) for value in chosen]
    assert await web_.value("SELECT count(*) FROM sync_blocks WHERE nmbrs_id = ANY($1::int[])", ids) == 2

    # Live: henk's list shows a question that arrives while he looks at it, without a reload.
    henk_context, henk = await web_.signed_in("henk")
    await henk.goto(f"{web_.url}/vragen")
    await expect(henk.locator("body")).to_have_attribute("data-live-state", "open")  # listening before the hire
    bsn = next(f"{n:09d}" for n in range(123456782, 123999999) if is_valid_bsn(f"{n:09d}"))
    first_company = load_dataset(DEMO_DATA).companies[0].id
    hire = {"company_id": first_company, "first_name": "Wendelien", "prefix": None, "last_name": "Zwart"}
    await sandbox.admin("POST", "employees", {**hire, "start": "2026-10-01", "hours_per_week": 32, "bsn": bsn})
    async with CommandRequests(web_.settings) as requests:
        await requests.post(SyncRequested(event_id=uuid.uuid4(), requested_by="test", requested_at=datetime.now(UTC)))
    await expect(henk.locator('[data-testid="questions"]')).to_contain_text("Wendelien Zwart")
    await expect(henk.locator("#live-notice")).to_contain_text("nieuwe vraag")
    await shot(henk, "07-live-nieuwe-vraag")

    # Two people on one question: the second gets who answered it, and nothing happens twice.
    hanna_context, hanna = await web_.signed_in("hanna")
    both = await web_.value(
        "SELECT concat_ws(' ', record ->> 'first_name', record ->> 'prefix', record ->> 'last_name') "
        "FROM pending_decisions WHERE entity = 'employee' AND situation = 'disputed' AND NOT skipped "
        # Aanmaken is refused for a human already linked through another employment; which of two such
        # records the poll linked first depends on the order companies arrive in.
        "AND NOT EXISTS (SELECT 1 FROM sync_links s WHERE s.bsn_hash = record ->> 'bsn_hash') "
        "ORDER BY nmbrs_id LIMIT 1"
    )
    assert isinstance(both, str)
    for page in (hanna, henk):
        await page.goto(f"{web_.url}/vragen")
        await open_question(page, both)
    await hanna.click('[data-testid="question"] button[value=aanmaken]')
    await expect(hanna.locator('[data-testid="result"]')).to_contain_text("is aangemaakt")
    await henk.locator('[data-testid="compare"] tfoot button[value=koppelen]').first.click()
    await expect(henk.locator('[data-testid="result"]')).to_contain_text("Al beantwoord door hanna")
    await shot(henk, "08-al-beantwoord")
    daan = await web_.value(
        "SELECT nmbrs_id FROM decisions WHERE decided_by = 'hanna' AND action = 'aanmaken' AND result = 'applied'"
    )
    assert await web_.value("SELECT count(*) FROM decisions WHERE nmbrs_id = $1 AND result = 'applied'", daan) == 1

    # A lezer reads but cannot decide: no buttons, and a post made anyway is refused with nothing posted.
    lex_context, lex = await web_.signed_in("lex")
    await lex.goto(f"{web_.url}/vragen")
    await lex.locator("a[data-pane]").first.click()
    await expect(lex.locator('[data-testid="question"]')).to_contain_text("beantwoorden vraagt de rol HR")
    await expect(lex.locator('[data-testid="question"] button')).to_have_count(0)
    csrf = await lex.locator('meta[name="csrf-token"]').get_attribute("content")
    decisions_before = await web_.value("SELECT count(*) FROM decisions")
    nmbrs_id = await web_.value("SELECT min(nmbrs_id) FROM pending_decisions WHERE NOT skipped")
    refused = await lex.request.post(
        f"{web_.url}/besluit",
        form={"csrf": csrf or "", "entity": "employee", "nmbrs_id": str(nmbrs_id), "action": "aanmaken"},
    )
    assert refused.status == 403 and "Geen toestemming" in await refused.text()
    # Without the CSRF token even hanna's post is refused.
    forged = await hanna.request.post(
        f"{web_.url}/besluit", form={"entity": "employee", "nmbrs_id": str(nmbrs_id), "action": "aanmaken"}
    )
    assert forged.status == 403 and "Verzoek geweigerd" in await forged.text()
    await asyncio.sleep(1)  # had anything been posted, the worker would have stored it by now
    assert await web_.value("SELECT count(*) FROM decisions") == decisions_before
    for context in (bea_context, henk_context, hanna_context, lex_context):
        await context.close()
