"""The employee page in a real headless Chromium on the real stack: HR finds an employee by name and completes
the follow-up tasks in place, without knowing an id; the next sync leaves all of it untouched; a `lezer` sees
but cannot change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from playwright.async_api import Page, expect

from tests.integration.test_hr_web import Web, hr_web, settled, shot  # noqa: F401 (hr_web is a fixture)
from tests.support import Sandbox, TopicReader
from worker.adapters.command_requests import CommandRequests
from worker.adapters.employee_history import employee_history
from worker.domain.employee_history import filter_history, parse_history_csv, parse_history_json
from worker.domain.events import SyncRequested
from worker.domain.normalisation import fold

PERSONEELSLID = "RegiPersoneel: Personeelslid"
OTHER_CHARACTERISTIC = "RegiLoket: Aanvrager"


async def _employee(web_: Web, with_contract: bool, other_than: tuple[int, ...] = ()) -> tuple[int, str, str]:
    """An active Nmbrs employee (its id, full name and last name), with or without a contract today."""
    row = await web_.pool.fetchrow(
        """SELECT e.employee_id, concat_ws(' ', p.first_name, p.prefix, p.last_name) AS name, p.last_name
           FROM rt_employees e JOIN crm_persons p USING (person_id)
           WHERE e.source = 'nmbrs' AND e.active AND e.manager_employee_id IS NULL
             AND EXISTS (SELECT 1 FROM rt_contract_periods k WHERE k.employee_id = e.employee_id
                         AND k.start_date <= current_date AND (k.end_date IS NULL OR k.end_date >= current_date)) = $1
             AND NOT (e.employee_id = ANY($2::int[]))
           ORDER BY e.employee_id LIMIT 1""",
        with_contract,
        list(other_than),
    )
    assert row is not None, f"the demo has no active Nmbrs employee {'with' if with_contract else 'without'} a contract"
    return row["employee_id"], row["name"], row["last_name"]


async def _open_by_search(page: Page, web_: Web, typed: str, name: str) -> None:
    await page.goto(f"{web_.url}/medewerkers")
    await page.fill('[data-testid="employee-search"]', typed)
    await page.locator('[data-testid="employee-hits"] a', has_text=name).first.click()
    await expect(page.locator('[data-testid="employee-name"]')).to_have_text(name)


async def _local_data(web_: Web, employee_id: int) -> tuple[object, ...]:
    """What HR completed for one employee: manager, is-manager, characteristics, categories, bookings, tasks."""
    row = await web_.pool.fetchrow(
        """SELECT e.manager_employee_id, e.is_manager,
                  (SELECT array_agg(characteristic ORDER BY characteristic) FROM crm_characteristics k
                   WHERE k.person_id = e.person_id) AS characteristics,
                  (SELECT array_agg(c.code ORDER BY c.code) FROM rt_employee_time_categories l
                   JOIN rt_time_categories c USING (category_id) WHERE l.employee_id = e.employee_id) AS categories,
                  (SELECT array_agg(hours::text ORDER BY adjustment_id) FROM rt_leave_adjustments a
                   WHERE a.employee_id = e.employee_id) AS adjustments,
                  (SELECT array_agg(hours::text ORDER BY payout_id) FROM rt_overtime_payouts o
                   WHERE o.employee_id = e.employee_id) AS payouts,
                  (SELECT array_agg(task || ':' || done_by ORDER BY task) FROM rt_tasks_done d
                   WHERE d.employee_id = e.employee_id) AS done
           FROM rt_employees e WHERE e.employee_id = $1""",
        employee_id,
    )
    assert row is not None
    return tuple(row.values())


async def test_hr_completes_an_employee_by_name_and_the_next_sync_keeps_it(hr_web: Web) -> None:  # noqa: F811
    web_ = hr_web
    employee_id, name, last_name = await _employee(web_, with_contract=True)
    manager_id, manager_name, manager_last = await _employee(web_, with_contract=True, other_than=(employee_id,))
    _context, page = await web_.signed_in("hanna")

    # Found by name from the menu, typed without accents or capitals.
    await page.click("header.top nav a[href='/medewerkers']")
    # Listed among those whose data is still to be completed, a link to its page; or found by name.
    listed = page.locator('[data-testid="open-task-list"] tr', has_text=name)
    await expect(listed).to_contain_text("nog geen manager")
    await expect(listed.locator("a")).to_have_attribute("href", f"/medewerkers/{employee_id}")
    await shot(page, "09-medewerkers-aan-te-vullen")
    await _open_by_search(page, web_, fold(last_name), name)
    await expect(page.locator('[data-testid="nmbrs-data"]')).to_contain_text("volgende synchronisatie overschreven")
    await expect(page.locator('[data-testid="open-tasks"]')).to_contain_text("nog geen manager")
    await shot(page, "10-medewerker")

    # The manager by name.
    await page.fill('[data-testid="manager-search"]', manager_last)
    await page.locator('[data-testid="manager-hits"] li', has_text=manager_name).first.locator("button").click()
    result = page.locator('[data-testid="result"]')
    await expect(result).to_contain_text(f"{manager_name} is nu de leidinggevende van {name}")
    await expect(page.locator('[data-testid="manager-name"]')).to_have_text(manager_name)
    assert await web_.value("SELECT manager_employee_id FROM rt_employees WHERE employee_id = $1", employee_id) == (
        manager_id
    )

    # Is-manager and two characteristics ticked.
    await page.check('[data-testid="is-manager"]')
    await page.locator('[data-testid="manager"] button', has_text="Opslaan").click()
    await expect(result).to_contain_text("leidinggevende is")
    characteristics = page.locator('[data-testid="characteristics"]')
    await characteristics.get_by_label(PERSONEELSLID).check()
    await characteristics.get_by_label(OTHER_CHARACTERISTIC).check()
    await characteristics.locator("button").click()
    await expect(result).to_contain_text(f"Kenmerk {OTHER_CHARACTERISTIC} toegekend")
    stored = await web_.pool.fetch(
        """SELECT characteristic FROM crm_characteristics
           WHERE person_id = (SELECT person_id FROM rt_employees WHERE employee_id = $1)""",
        employee_id,
    )
    assert {PERSONEELSLID, OTHER_CHARACTERISTIC} <= {r["characteristic"] for r in stored}

    # A time-writing category from the pick list.
    await page.select_option('[data-testid="time-category-pick"]', "ALG")
    await page.locator('[data-testid="time-categories"] button', has_text="Koppelen").click()
    await expect(result).to_contain_text(f"Tijdschrijfrubriek ALG gekoppeld aan {name}")
    await expect(page.locator('[data-testid="time-categories"] ul')).to_contain_text("Algemene uren")

    # A leave adjustment: the balance before and after.
    await page.fill('[data-testid="booking-hours"]', "8,5")
    await page.locator('[data-testid="leave-booking"] button', has_text="Boeken").click()
    await expect(result).to_contain_text("Verlofcorrectie van 8,50 uur")
    await expect(page.locator('[data-testid="leave"]')).to_contain_text("was ")
    await page.select_option('[data-testid="booking-kind"]', "overtime_payout")
    await page.fill('[data-testid="booking-hours"]', "2")
    await page.locator('[data-testid="leave-booking"] button', has_text="Boeken").click()
    await expect(result).to_contain_text("Uitbetaling van 2,00 overuren")

    # The account is made in RegiCRM: marked done, with who and when, it leaves the list.
    account_form = page.locator('[data-testid="account"] form')
    if await account_form.count():
        await account_form.first.locator("button").click()
        await expect(page.locator('[data-testid="task-done"]').first).to_contain_text("hanna")
        await expect(page.locator('[data-testid="open-tasks"], [data-testid="no-open-tasks"]')).not_to_contain_text(
            "nog geen inlogaccount"
        )
    await shot(page, "11-medewerker-aangevuld")
    completed = await _local_data(web_, employee_id)

    # The next sync, a full one, leaves all of it as it is.
    async with CommandRequests(web_.settings) as requests:
        await requests.post(
            SyncRequested(event_id=uuid.uuid4(), full=True, requested_by="test", requested_at=datetime.now(UTC))
        )
    async with asyncio.timeout(90):  # the worker takes the request, then polls: settled only after that
        while True:
            if not await web_.value("SELECT count(*) FROM sync_requests WHERE status IN ('pending', 'running')"):
                break
            await asyncio.sleep(0.3)
    await settled(web_.pool)
    assert await web_.value("SELECT count(*) FROM sync_requests WHERE status = 'failed'") == 0
    assert await _local_data(web_, employee_id) == completed


async def test_without_a_contract_the_category_is_refused_in_words(hr_web: Web) -> None:  # noqa: F811
    web_ = hr_web
    employee_id, name, last_name = await _employee(web_, with_contract=True)
    # The contract ends yesterday, as Nmbrs would write it: no contract today.
    await web_.pool.execute(
        "UPDATE rt_contract_periods SET end_date = current_date - 1 WHERE employee_id = $1", employee_id
    )
    _context, page = await web_.signed_in("henk")
    await _open_by_search(page, web_, last_name, name)
    await expect(page.locator('[data-testid="no-contract"]')).to_be_visible()
    await page.select_option('[data-testid="time-category-pick"]', "OVERLEG")
    await page.locator('[data-testid="time-categories"] button', has_text="Koppelen").click()
    result = page.locator('[data-testid="result"]')
    await expect(result).to_have_class("result rejected")
    await expect(result).to_contain_text("geen actief contract")
    await shot(page, "12-medewerker-geen-contract")
    assert await web_.value("SELECT count(*) FROM rt_employee_time_categories WHERE employee_id = $1", employee_id) == 0


async def test_a_reader_sees_the_employee_but_cannot_change_it(hr_web: Web) -> None:  # noqa: F811
    web_ = hr_web
    employee_id, name, last_name = await _employee(web_, with_contract=True)
    _context, page = await web_.signed_in("lex")
    await _open_by_search(page, web_, last_name, name)
    await expect(page.locator('[data-testid="local-data"]')).to_contain_text("uw rol staat wijzigen niet toe")
    await expect(page.locator('[data-testid="manager-search"]')).to_have_count(0)
    await expect(page.locator('[data-testid="local-data"] button')).to_have_count(0)
    await expect(page.locator('[data-testid="is-manager"]')).to_be_disabled()
    # A post made by hand is refused, and nothing changes.
    csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    answer = await page.request.post(
        f"{web_.url}/medewerkers/{employee_id}/aanvullen",
        form={"csrf": csrf or "", "command": "set_is_manager", "is_manager": "1"},
    )
    assert answer.status == 403
    assert await web_.value("SELECT is_manager FROM rt_employees WHERE employee_id = $1", employee_id) is False
    # A sync of this employee posted by hand is refused too.
    answer = await page.request.post(f"{web_.url}/medewerkers/{employee_id}/synchroniseren", form={"csrf": csrf or ""})
    assert answer.status == 403

    # The links a question's candidate, a decision and a task list use lead to the RegiTijd employee's page.
    person_id = await web_.value("SELECT person_id FROM rt_employees WHERE employee_id = $1", employee_id)
    nmbrs_id = await web_.value("SELECT nmbrs_employee_id FROM rt_employees WHERE employee_id = $1", employee_id)
    for link in (f"persoon/{person_id}", f"nmbrs/{nmbrs_id}"):
        await page.goto(f"{web_.url}/medewerkers/{link}")
        await expect(page.locator('[data-testid="employee-name"]')).to_have_text(name)
    missing = await page.request.get(f"{web_.url}/medewerkers/persoon/2147483000")
    assert missing.status == 404 and "traceback" not in (await missing.text()).lower()


async def test_leave_and_history_of_an_employee_with_an_export_that_reads_back(hr_web: Web) -> None:  # noqa: F811
    web_ = hr_web
    employee_id, name, last_name = await _employee(web_, with_contract=True)
    _context, page = await web_.signed_in("hanna")
    await _open_by_search(page, web_, last_name, name)
    await page.click('[data-testid="tab-leave"]')
    total = page.locator('[data-testid="leave-total"]')
    before = await total.inner_text()

    # A leave adjustment booked on the page: the leave tab shows the new balance and the recalculation.
    await page.click('[data-testid="tab-data"]')
    await page.fill('[data-testid="booking-hours"]', "-4")
    await page.locator('[data-testid="leave-booking"] input[name="reason"]').fill("correctie test")
    await page.locator('[data-testid="leave-booking"] button', has_text="Boeken").click()
    await expect(page.locator('[data-testid="result"]')).to_contain_text("Verlofcorrectie")
    await page.click('[data-testid="tab-leave"]')
    after = Decimal(before.replace(",", ".")) - 4
    await expect(total).to_have_text(f"{after:.2f}".replace(".", ","))
    await expect(page.locator('[data-testid="last-recalculation"]')).to_contain_text(f"saldo {before} →")
    await expect(page.locator('[data-testid="leave-chart"] rect.taken')).not_to_have_count(0)
    year = datetime.now(UTC).year
    await expect(page.locator(f'[data-testid="leave-year-{year}"] [data-testid="adjustments"]')).to_contain_text(
        "correctie test"
    )
    await expect(
        page.locator(f'[data-testid="leave-year-{year}"] [data-testid="segments"] tbody tr')
    ).not_to_have_count(0)
    await shot(page, "13-medewerker-verlof")

    # The history: newest first, the booking with who did it, and the leave it recalculated.
    await page.click('[data-testid="tab-history"]')
    rows = page.locator('[data-testid="history"] tbody tr')
    await expect(rows.filter(has_text=f"Verlof herberekend: saldo {before} →").first).to_be_visible()
    booked = rows.filter(has_text="Verlofcorrectie geboekt")
    await expect(booked).to_have_count(1)
    await expect(booked).to_contain_text("hanna")
    await shot(page, "14-medewerker-geschiedenis")
    await page.locator('[data-testid="history-filter"]').get_by_label("Verlof").check()
    await page.locator('[data-testid="history-filter"] button').click()
    kinds = await page.locator('[data-testid="history"] tbody tr').evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds and set(kinds) == {"leave"}

    # The exports (of the filter, and of everything) read back into the entries the store gives.
    async with web_.pool.acquire() as connection:
        stored = await employee_history(connection, employee_id)
    assert stored is not None
    csv_answer = await page.request.get(f"{web_.url}/medewerkers/{employee_id}/geschiedenis.csv")
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_answer.headers["content-disposition"]
    csv_text = (await csv_answer.body()).decode("utf-8")
    assert parse_history_csv(csv_text) == stored
    json_answer = await page.request.get(f"{web_.url}/medewerkers/{employee_id}/geschiedenis.json?soort=leave")
    assert parse_history_json(await json_answer.text()) == filter_history(stored, ["leave"])
    assert "bsn" not in csv_text.lower()  # the history never carries the BSN (nor its hash)


async def test_sync_one_employee_now_shows_its_steps_and_goes_through_the_normal_events(
    hr_web: Web,  # noqa: F811
    sandbox: Sandbox,
    read_topic: TopicReader,
) -> None:
    web_ = hr_web
    employee_id, _name, _last = await _employee(web_, with_contract=True)
    nmbrs_id = await web_.value("SELECT nmbrs_employee_id FROM rt_employees WHERE employee_id = $1", employee_id)
    assert isinstance(nmbrs_id, int)
    seen = {e["event_id"] for e in await read_topic(web_.settings.topics.employee_changes, None)}
    await sandbox.admin(
        "PATCH", f"employees/{nmbrs_id}", {"department": {"id": 98, "code": 98, "description": "Onderhoud"}}
    )
    _context, page = await web_.signed_in("hanna")
    await page.goto(f"{web_.url}/medewerkers/{employee_id}")
    await page.locator('[data-testid="sync-employee"] button').click()

    # Each step in words, the page following the run until the reconciler applied the change.
    steps = page.locator('[data-testid="sync-steps"]')
    await expect(steps).not_to_have_attribute("data-refresh", "", timeout=60_000)
    for step in ("requested", "fetched", "compared", "processed"):
        await expect(page.locator(f'[data-testid="step-{step}"]')).to_have_attribute("data-state", "done")
    await expect(page.locator('[data-testid="step-compared"]')).to_contain_text("Gewijzigd in Nmbrs")
    await expect(page.locator('[data-testid="step-processed"]')).to_contain_text("Bijgewerkt: Afdeling")
    await shot(page, "15-medewerker-synchroniseren")
    await page.click('[data-testid="back-to-employee"]')
    await expect(page.locator('[data-testid="nmbrs-data"]')).to_contain_text("Onderhoud")

    # The normal event path: one update of this employee on the employee topic, and nobody else's.
    new = [e for e in await read_topic(web_.settings.topics.employee_changes, None) if e["event_id"] not in seen]
    assert [(e["key"], e["op"], e["changed_fields"]) for e in new] == [(f"employee:{nmbrs_id}", "u", ["department"])]

    # Unchanged a second time: read again (so local drift is corrected), and nothing to change.
    await page.goto(f"{web_.url}/medewerkers/{employee_id}")
    await page.locator('[data-testid="sync-employee"] button').click()
    await expect(steps).not_to_have_attribute("data-refresh", "", timeout=60_000)
    await expect(page.locator('[data-testid="step-compared"]')).to_contain_text("Ongewijzigd in Nmbrs")
    await expect(page.locator('[data-testid="step-processed"]')).to_contain_text("Niets gewijzigd")

    # A lezer sees no button and may not post.
    _reader, reader_page = await web_.signed_in("lex")
    await reader_page.goto(f"{web_.url}/medewerkers/{employee_id}")
    await expect(reader_page.locator('[data-testid="sync-employee"]')).to_have_count(0)
