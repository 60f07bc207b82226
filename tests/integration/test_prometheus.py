"""A real Prometheus (Debian's, started here on deploy/prometheus/prometheus.yml with the shipped alert rules,
scraping and evaluating every second) watches a real worker: after the first sync its nmbrs_sync_* series are
there with sensible values and the labels the static checks of tests/deploy expect, every rule evaluates (with
no namespace label, as on a plain VM) and none is active; a worker killed with SIGKILL in the middle of a poll
is `up == 0` within seconds and NmbrsSyncWorkerDown goes pending, and a worker started again is up, ready and
finishes the poll."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
import yaml
from aiohttp import ClientSession

from tests.deploy.test_dashboard import SERIES_LABELS
from tests.support import REPO, Sandbox, first_poll_ahead, free_port, start_worker_process, stop_process, worker_env
from worker.config import Settings

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
WORKER_JOB = "nmbrs-sync-worker"
ALERTS = [
    rule["alert"]
    for group in yaml.safe_load((PROMETHEUS_DIR / "alerts.yaml").read_text())["groups"]
    for rule in group["rules"]
]
T = TypeVar("T")


class Prometheus:
    """A running Prometheus and the parts of its HTTP API the tests read."""

    def __init__(self, base_url: str, session: ClientSession, log: Path) -> None:
        self.base_url = base_url
        self.session = session
        self.log = log

    async def api(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.base_url}/api/v1/{path}", params=params) as response:
            body = await response.json()
            assert body["status"] == "success", body
            return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    async def value(self, expr: str) -> float | None:
        """The value of an expression that selects at most one series (None: no series)."""
        result = await self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    async def active_alerts(self) -> list[dict[str, Any]]:
        return list((await self.api("alerts"))["alerts"])

    async def until(self, what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float) -> T:
        """`check()`'s first answer that is not None (or False); fails after `timeout_s`."""
        last: T | None = None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    last = await check()
                    if last:
                        return last
                    await asyncio.sleep(0.25)
        except TimeoutError:
            print(self.log.read_text()[-3000:])
            pytest.fail(f"{what}: not within {timeout_s} s (last: {last!r})")


@pytest.fixture
async def start_prometheus(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[Prometheus]]]:
    """`await start_prometheus("127.0.0.1:PORT")`: Prometheus on a free port scraping that worker."""
    binary = shutil.which("prometheus")
    if binary is None:
        # A failure, not a skip: CI must never pass without this test having run.
        pytest.fail("prometheus is missing: ./dev test installs Debian's prometheus package (ensure_prometheus)")
    processes: list[asyncio.subprocess.Process] = []

    async with ClientSession() as session:

        async def start(worker_target: str) -> Prometheus:
            config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
            config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
            config["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yaml")]
            (worker_job,) = [job for job in config["scrape_configs"] if job["job_name"] == WORKER_JOB]
            worker_job["static_configs"] = [{"targets": [worker_target]}]
            config["scrape_configs"] = [worker_job]  # no web app runs here
            config_file = tmp_path / "prometheus.yml"
            config_file.write_text(yaml.safe_dump(config))
            port = free_port()
            log = tmp_path / "prometheus.log"
            with log.open("w") as out:
                process = await asyncio.create_subprocess_exec(
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            prometheus = Prometheus(f"http://127.0.0.1:{port}", session, log)

            async def ready() -> bool:
                if process.returncode is not None:  # e.g. a rule file it refuses
                    print(log.read_text()[-3000:])
                    pytest.fail(f"Prometheus exited with {process.returncode}")
                with contextlib.suppress(OSError):
                    async with session.get(f"{prometheus.base_url}/-/ready") as response:
                        return response.status == 200
                return False

            await prometheus.until("Prometheus ready", ready, 30)
            return prometheus

        yield start
    for process in processes:
        await stop_process(process, 10)


async def test_prometheus_sees_a_worker_after_its_first_sync_and_no_alert_is_active(
    start_worker: Callable[..., Awaitable[None]],
    start_prometheus: Callable[[str], Awaitable[Prometheus]],
    integration_settings: Settings,
    sandbox: Sandbox,
    pool: asyncpg.Pool,
) -> None:
    await first_poll_ahead(pool)
    port = free_port()
    await start_worker(
        integration_settings,
        NMBRS_BASE_URL=f"{sandbox.base_url}/soap/v3/",
        STATUS_PORT=str(port),
        STATUS_BIND="127.0.0.1",
        POLL_INTERVAL_S="3600",
    )
    prometheus = await start_prometheus(f"127.0.0.1:{port}")
    job = f'job="{WORKER_JOB}"'

    async def questions_scraped() -> float | None:
        return await prometheus.value(f'nmbrs_sync_open_questions{{{job}, step="employees"}} > 0')

    questions = await prometheus.until("open questions after the first sync", questions_scraped, 90)
    employees = await pool.fetchval("SELECT count(*) FROM pending_decisions WHERE entity = 'employee'")
    assert 0 < questions <= employees

    (target,) = [t for t in (await prometheus.api("targets"))["activeTargets"] if t["labels"]["job"] == WORKER_JOB]
    assert target["health"] == "up" and target["lastError"] == ""
    assert target["scrapeUrl"] == f"http://127.0.0.1:{port}/metrics"
    assert await prometheus.value(f"up{{{job}}}") == 1
    assert await prometheus.value(f'nmbrs_sync_polls_total{{{job}, result="published"}}') == 1
    assert (
        await prometheus.value(f'nmbrs_sync_polls_total{{{job}, result="failed"}}') == 0
    )  # started at 0 (metrics.start_series), never increased
    since_success = await prometheus.value(f"time() - nmbrs_sync_poll_last_success_timestamp_seconds{{{job}}}")
    assert since_success is not None and 0 <= since_success < 120
    assert await prometheus.value(f"nmbrs_sync_poll_duration_seconds_count{{{job}}}") == 1
    assert await prometheus.value(f"nmbrs_sync_mass_change_hold_active{{{job}}}") == 0
    soap_ok = await prometheus.value(f'sum(nmbrs_sync_soap_calls_total{{{job}, result="ok"}})')
    assert soap_ok is not None and soap_ok >= 1
    outcomes = await prometheus.value(f'sum(nmbrs_sync_outcomes_total{{{job}, consumer="reconciler"}})')
    assert outcomes is not None and outcomes > 0
    assert await prometheus.value(f"nmbrs_sync_oldest_open_question_age_seconds{{{job}}} >= 0") is not None

    async def ready() -> bool:
        broker_and_database = await prometheus.value(f"sum(nmbrs_sync_dependency_up{{{job}}})")
        return await prometheus.value(f"nmbrs_sync_ready{{{job}}}") == 1 and broker_and_database == 2

    await prometheus.until("the worker ready, its dependencies up", ready, 30)

    # tests/deploy checks the labels of the rules and the dashboard against these: the real series carry no
    # other (here, from a static scrape configuration, job and instance besides the metric's own).
    series = await prometheus.query(f'{{__name__=~"nmbrs_sync_.*|up", {job}}}')
    unknown = {
        (labels["__name__"], label)
        for labels in (found["metric"] for found in series)
        for label in labels
        if label not in {"__name__", "job", "instance"} and label not in SERIES_LABELS.get(labels["__name__"], ())
    }
    assert series and unknown == set()

    # NmbrsSyncConsumerStuck joins lag and events by topic: every topic with lag has an events series (at 0
    # until a message is handled), or any lag at all there would page.
    async def lag_topics_seen() -> set[str]:
        lag = await prometheus.query(f"count by (topic) (nmbrs_sync_consumer_lag{{{job}}})")
        return {found["metric"]["topic"] for found in lag}

    lag_topics = await prometheus.until("lag observed", lag_topics_seen, 30)
    event_topics = {
        found["metric"]["topic"]
        for found in await prometheus.query(f"count by (topic) (nmbrs_sync_events_total{{{job}}})")
    }
    assert lag_topics and lag_topics == event_topics

    async def rules_evaluated() -> list[dict[str, Any]] | None:
        rules = [rule for group in (await prometheus.api("rules"))["groups"] for rule in group["rules"]]
        return rules if not any(rule["lastEvaluation"].startswith("0001") for rule in rules) else None

    rules = await prometheus.until("every rule evaluated", rules_evaluated, 10)
    assert sorted(rule["name"] for rule in rules) == sorted(ALERTS)
    assert [(rule["name"], rule["lastError"]) for rule in rules if rule["health"] != "ok"] == []

    # A healthy worker after its first sync: nothing pending or firing (not even the start-up's not-ready).
    async def no_alerts() -> bool:
        return not await prometheus.active_alerts()

    await prometheus.until("no active alert", no_alerts, 10)


async def test_a_worker_killed_mid_poll_is_down_within_seconds_and_up_again_after_a_restart(
    start_prometheus: Callable[[str], Awaitable[Prometheus]],
    integration_settings: Settings,
    sandbox: Sandbox,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    await first_poll_ahead(pool)
    port = free_port()
    env = worker_env(
        integration_settings,
        NMBRS_BASE_URL=f"{sandbox.base_url}/soap/v3/",
        STATUS_PORT=str(port),
        STATUS_BIND="127.0.0.1",
        POLL_INTERVAL_S="3600",
    )
    log = tmp_path / "workers.log"

    async def start_worker() -> asyncio.subprocess.Process:
        return await start_worker_process(env, log)

    # Every SOAP call takes 2 s: the first poll lasts long enough to be killed in the middle.
    await sandbox.admin("POST", "faults", {"latency_ms": 2000})
    prometheus = await start_prometheus(f"127.0.0.1:{port}")
    job = f'job="{WORKER_JOB}"'
    worker = await start_worker()
    restarted: asyncio.subprocess.Process | None = None
    try:

        async def polling() -> bool:
            scraped = await prometheus.value(f"up{{{job}}}") == 1
            return scraped and (await sandbox.admin("GET", "calls"))["total"] >= 2

        await prometheus.until("the worker scraped and polling", polling, 90)
        worker.kill()
        await worker.wait()

        async def down() -> bool:
            return await prometheus.value(f"up{{{job}}}") == 0

        await prometheus.until("up == 0 after the kill", down, 10)  # scraped every second

        async def worker_down_alert() -> dict[str, Any] | None:
            for alert in await prometheus.active_alerts():
                labels = alert["labels"]
                if labels["alertname"] == "NmbrsSyncWorkerDown" and labels.get("instance") == f"127.0.0.1:{port}":
                    return dict(alert)
            return None

        alert = await prometheus.until("NmbrsSyncWorkerDown pending", worker_down_alert, 10)
        assert alert["state"] in ("pending", "firing") and alert["labels"]["severity"] == "page"
        # Killed in the middle: no poll of that worker finished.
        assert await prometheus.query(f"max_over_time(nmbrs_sync_polls_total{{{job}}}[5m]) > 0") == []

        await sandbox.admin("DELETE", "faults")
        restarted = await start_worker()

        async def published() -> float | None:
            return await prometheus.value(f'nmbrs_sync_polls_total{{{job}, result="published"}} >= 1')

        await prometheus.until("the restarted worker's poll published", published, 90)
        assert await prometheus.value(f"up{{{job}}}") == 1
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/readyz") as response:
            assert response.status == 200

        async def alert_resolved() -> bool:
            return await worker_down_alert() is None

        await prometheus.until("NmbrsSyncWorkerDown resolved", alert_resolved, 10)
    except BaseException:
        print(log.read_text()[-5000:])
        raise
    finally:
        for process in (worker, restarted):
            if process is not None:
                await stop_process(process, 30)
