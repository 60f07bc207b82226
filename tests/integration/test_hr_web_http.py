"""The HR web app's guard rails over HTTP (no browser, no worker): sign-in, throttling, CSRF, roles, the auth
proxy mode, security headers, and forms that are refused in words with nothing posted."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import ClientSession, CookieJar, web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from tests.support import Relay, database_url_for_tests
from worker.adapters.kafka import client_kwargs, ensure_topics
from worker.adapters.web_accounts import AccountStore
from worker.config import Settings
from worker.domain.web_access import Role
from worker.entrypoints.web.app import build_context, create_app

PASSWORD = "een-lang-wachtwoord"
App = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_app(integration_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[App]:
    """`await start_app(**settings)`: the web app in this process on a free port; its base URL."""
    await ensure_topics(integration_settings)
    await pool.execute("TRUNCATE web_users, web_sign_in_failures RESTART IDENTITY CASCADE")
    accounts = AccountStore(pool)
    await accounts.add_user("lex", Role.LEZER, PASSWORD)
    await accounts.add_user("hanna", Role.HR, PASSWORD)
    await accounts.add_user("bea", Role.BEHEER, None)  # proxy only
    cleanups = []

    async def start(**overrides: object) -> str:
        settings = integration_settings.model_copy(update=overrides)
        contexts = build_context(settings)
        runner = web.AppRunner(create_app(await anext(contexts)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        cleanups.append((runner, contexts))
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    yield start
    for runner, contexts in cleanups:
        await runner.cleanup()
        await contexts.aclose()


def browser() -> ClientSession:
    # unsafe: keep cookies of an IP-address host (127.0.0.1), as a browser does.
    return ClientSession(cookie_jar=CookieJar(unsafe=True))


async def sign_in(session: ClientSession, url: str, user: str, password: str = PASSWORD) -> str:
    """Sign in; the CSRF token of the page it lands on."""
    async with session.post(f"{url}/aanmelden", data={"gebruiker": user, "wachtwoord": password}) as response:
        html = await response.text()
        assert response.status == 200, html
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "signed in, but the page has no CSRF token"
    return match[1]


async def messages_on(settings: Settings, topic: str) -> int:
    """How many messages `topic` holds: its end offsets (throwaway topics start empty)."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        (meta,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in meta["partitions"]]
    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def test_nothing_is_shown_or_done_without_signing_in(start_app: App, integration_settings: Settings) -> None:
    url = await start_app()
    async with browser() as session:
        for page in ("/overzicht", "/vragen", "/vragen/employee/1", "/geblokkeerd", "/besluiten", "/zoeken?q=jan"):
            async with session.get(url + page, allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"].startswith("/aanmelden?next=")
        async with session.post(f"{url}/besluit", data={"action": "aanmaken", "nmbrs_id": "1"}) as response:
            assert response.status == 401
        async with session.get(f"{url}/live") as response:
            assert response.status == 200 and "Aanmelden" in await response.text()  # redirected to the sign-in
    assert await messages_on(integration_settings, integration_settings.topics.decisions) == 0


async def test_pages_carry_the_security_headers_and_the_session_cookie_is_httponly(start_app: App) -> None:
    url = await start_app()
    async with browser() as session:
        async with session.post(
            f"{url}/aanmelden", data={"gebruiker": "hanna", "wachtwoord": PASSWORD}, allow_redirects=False
        ) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie
        async with session.get(f"{url}/overzicht") as response:
            headers = response.headers
            html = await response.text()
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html  # nothing inline


async def test_a_sign_in_link_never_sends_someone_to_another_site(start_app: App) -> None:
    url = await start_app()
    async with browser() as session:
        for target in ("//evil.example/x", "https://evil.example/", "/vragen"):
            data = {"gebruiker": "hanna", "wachtwoord": PASSWORD, "next": target}
            async with session.post(f"{url}/aanmelden", data=data, allow_redirects=False) as response:
                assert response.headers["Location"] == ("/vragen" if target == "/vragen" else "/overzicht")


async def test_repeated_wrong_passwords_lock_the_name_even_for_the_right_one(start_app: App) -> None:
    url = await start_app()
    async with browser() as session:
        for _ in range(5):
            data = {"gebruiker": "hanna", "wachtwoord": "niet-het-wachtwoord"}
            async with session.post(f"{url}/aanmelden", data=data) as response:
                assert response.status == 401 and "klopt niet" in await response.text()
        async with session.post(f"{url}/aanmelden", data={"gebruiker": "hanna", "wachtwoord": PASSWORD}) as response:
            assert response.status == 429 and "Te vaak een verkeerd wachtwoord" in await response.text()
        # Another user from elsewhere is not locked by hanna's failures.
    async with browser() as other:
        await sign_in(other, url, "lex")


async def test_posts_without_the_csrf_token_or_beyond_the_role_are_refused_with_nothing_posted(
    start_app: App, integration_settings: Settings
) -> None:
    url = await start_app()
    async with browser() as lex, browser() as hanna:
        lex_token = await sign_in(lex, url, "lex")
        hanna_token = await sign_in(hanna, url, "hanna")
        decision = {"entity": "employee", "nmbrs_id": "1", "version": "1", "action": "aanmaken"}
        async with hanna.post(f"{url}/besluit", data=decision) as response:
            assert response.status == 403 and "Verzoek geweigerd" in await response.text()
        async with hanna.post(f"{url}/besluit", data={**decision, "csrf": lex_token}) as response:
            assert response.status == 403  # a token of another session is no token
        async with lex.post(f"{url}/besluit", data={**decision, "csrf": lex_token}) as response:
            assert response.status == 403 and "Geen toestemming" in await response.text()
        async with lex.post(f"{url}/synchroniseren", data={"csrf": lex_token}) as response:
            assert response.status == 403
        async with hanna.post(f"{url}/synchroniseren", data={"csrf": hanna_token, "vrijgeven": "1"}) as response:
            assert response.status == 403  # releasing a hold is for beheer
    topics = integration_settings.topics
    assert await messages_on(integration_settings, topics.decisions) == 0
    assert await messages_on(integration_settings, topics.sync_requests) == 0


async def test_a_bad_form_is_refused_in_words_never_a_traceback(start_app: App, integration_settings: Settings) -> None:
    url = await start_app()
    async with browser() as session:
        token = await sign_in(session, url, "hanna")
        for bad in (
            {"action": "wegdoen", "nmbrs_id": "1"},
            {"action": "koppelen", "nmbrs_id": "1"},  # koppelen without a target
            {"action": "aanmaken", "nmbrs_id": "99999999999"},
            {"action": "aanmaken", "nmbrs_id": "1", "entity": "persoon"},
        ):
            async with session.post(f"{url}/besluit", data={**bad, "csrf": token}, headers={"X-Partial": "1"}) as r:
                html = await r.text()
            assert r.status == 200 and "niet volledig of niet geldig" in html, html
            assert "Traceback" not in html and "pydantic" not in html.lower()
        async with session.get(f"{url}/vragen?bedrijf=twaalf&zoek=" + "x" * 300) as response:
            html = await response.text()
            assert response.status == 200 and 'class="error"' in html and "Traceback" not in html
    assert await messages_on(integration_settings, integration_settings.topics.decisions) == 0


async def test_behind_an_auth_proxy_only_a_trusted_address_names_the_user(start_app: App) -> None:
    trusted = await start_app(hr_web_auth="proxy", hr_web_trusted_proxies=["127.0.0.1"])
    untrusted = await start_app(hr_web_auth="proxy", hr_web_trusted_proxies=["10.0.0.0/8"])
    async with browser() as session:
        async with session.get(f"{trusted}/overzicht", headers={"X-Forwarded-User": "bea"}) as response:
            html = await response.text()
            assert response.status == 200 and "beheer" in html and "Nu synchroniseren" in html
        async with session.get(f"{trusted}/overzicht", headers={"X-Forwarded-User": "onbekend"}) as response:
            assert response.status == 403 and "Geen toegang" in await response.text()
    async with browser() as session:
        async with session.get(f"{untrusted}/overzicht", headers={"X-Forwarded-User": "bea"}) as response:
            assert response.status == 403  # anyone can set a header; only the proxy's counts


async def test_a_held_mass_change_is_a_banner_and_only_beheer_may_release_it(
    start_app: App, pool: asyncpg.Pool, integration_settings: Settings, read_topic: Callable[..., Awaitable[list]]
) -> None:
    await pool.execute("TRUNCATE poll_runs, sync_requests RESTART IDENTITY CASCADE")
    summary = {"breaker_counts": {"removed": 40, "total": 60}, "reasons": ["40 of 60 employees removed"]}
    await pool.execute(
        """INSERT INTO poll_runs (poll_id, full_sync, dry_run, started_at, finished_at, status, summary)
           VALUES (gen_random_uuid(), false, false, now() - interval '2 minutes', now() - interval '1 minute',
                   'held', $1::jsonb)""",
        json.dumps(summary),
    )
    url = await start_app(hr_web_auth="proxy", hr_web_trusted_proxies=["127.0.0.1"])
    async with browser() as session:
        async with session.get(f"{url}/overzicht", headers={"X-Forwarded-User": "hanna"}) as response:
            html = await response.text()
        assert 'data-testid="hold"' in html and "40 of 60 employees removed" in html
        assert "Vrijgeven" not in html  # hanna (hr) sees the hold but cannot release it
        async with session.get(f"{url}/overzicht", headers={"X-Forwarded-User": "bea"}) as response:
            html = await response.text()
        token = re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert token and "Vrijgeven" in html
        async with session.post(
            f"{url}/synchroniseren", data={"csrf": token[1], "vrijgeven": "1"}, headers={"X-Forwarded-User": "bea"}
        ) as response:
            assert response.status == 200
    (posted,) = await read_topic(integration_settings.topics.sync_requests, 1)
    assert posted["release_hold"] is True and posted["requested_by"] == "bea" and posted["key"] == "sync"


async def test_passwords_and_session_tokens_never_reach_the_log(
    start_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    url = await start_app()
    caplog.set_level(logging.DEBUG)
    async with browser() as session:
        async with session.post(f"{url}/aanmelden", data={"gebruiker": "hanna", "wachtwoord": "geheim-fout-123"}):
            pass
        await sign_in(session, url, "hanna")
        token = next(c.value for c in session.cookie_jar if c.key == "nmbrs_sync_session")
    logged = caplog.text
    assert "hanna" in logged  # the log does say who signed in (or failed to)
    assert "geheim-fout-123" not in logged and PASSWORD not in logged and token not in logged


async def test_while_the_database_is_away_pages_say_so_in_words_and_work_again_after(
    start_app: App, relay: Relay
) -> None:
    parts = urlsplit(database_url_for_tests())
    through_relay = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{relay.port}"))
    url = await start_app(
        database_url=SecretStr(through_relay), hr_web_auth="proxy", hr_web_trusted_proxies=["127.0.0.1"]
    )
    proxy = {"X-Forwarded-User": "bea"}
    async with browser() as session:
        async with session.get(f"{url}/overzicht", headers=proxy) as response:
            assert response.status == 200
        async with session.get(f"{url}/readyz") as response:
            assert response.status == 200 and (await response.json())["ready"] is True
        await relay.cut()
        for page in ("/overzicht", "/vragen", "/besluiten"):
            async with session.get(url + page, headers=proxy) as response:
                html = await response.text()
            assert response.status == 503 and "even niet bereikbaar" in html, html
            assert "Traceback" not in html
        # The probes tell an orchestrator the same: not ready (take it out of the Service), but alive (no restart).
        async with session.get(f"{url}/readyz") as response:
            assert response.status == 503 and (await response.json())["problems"]
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200
        await relay.start()
        async with session.get(f"{url}/vragen", headers=proxy) as response:
            assert response.status == 200  # the pool connects anew: no restart needed
        async with session.get(f"{url}/readyz") as response:
            assert response.status == 200


async def test_requests_are_counted_by_route_pattern_on_an_open_metrics_page(start_app: App) -> None:
    url = await start_app()

    async def counted() -> dict[str, float]:
        async with ClientSession() as anonymous, anonymous.get(f"{url}/metrics") as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
        assert "nmbrs_sync_poll" not in text  # the worker's metrics are the worker's to export
        return {
            name: float(value)
            for name, _, value in (line.rpartition(" ") for line in text.splitlines())
            if name.startswith("nmbrs_sync_web_requests_total{")
        }

    before = await counted()
    async with browser() as session:
        await sign_in(session, url, "hanna")
        for nmbrs_id in (1, 2, 3):
            async with session.get(f"{url}/vragen/employee/{nmbrs_id}") as response:
                assert response.status in (200, 404)
    after = await counted()
    question = {k: v - before.get(k, 0) for k, v in after.items() if 'route="/vragen/{entity}/{nmbrs_id}"' in k}
    assert sum(question.values()) == 3, after  # one series for the route, not one per record
    assert all('method="GET"' in k for k in question)
    signed_in = 'nmbrs_sync_web_requests_total{method="POST",route="/aanmelden",status="303"}'  # to the overview
    assert after[signed_in] - before.get(signed_in, 0) == 1
