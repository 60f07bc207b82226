"""Composition root of the worker: builds the faust app, its agents and their dependencies by hand."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import faust

from worker.adapters import metrics
from worker.adapters.database import Pool, create_pool, transaction, unreachable
from worker.adapters.kafka import GroupLag, KafkaPublisher, ssl_context
from worker.adapters.nmbrs.client import NmbrsClient
from worker.adapters.notice_senders import SmtpSender, WebhookSender
from worker.adapters.poll_store import PollStore
from worker.adapters.step_status_store import (
    oldest_open_question_age_s,
    poll_outcome,
    step_statuses,
    store_step_statuses,
)
from worker.config import Settings
from worker.domain.changes import parse_change_event
from worker.domain.decisions import Decision
from worker.domain.events import OutcomeKind, SyncRequested
from worker.domain.follow_ups import FollowUpCommand
from worker.domain.health import wedged
from worker.domain.inbound import MAX_CHANGE_EVENT_BYTES
from worker.domain.matching import MatchPolicy
from worker.domain.nmbrs_records import nmbrs_today
from worker.entrypoints.consuming import (
    ConsumerContext,
    RawMessage,
    consume_batch,
    consume_one,
    with_retries,
)
from worker.entrypoints.logs import logging_config
from worker.service import decisions, notices, reconciler, sync_requests
from worker.service.poller import Poller, run_poll_loop

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 2.0
# How often the readiness and lag gauges are refreshed: an outage shows in a metric within seconds.
HEALTH_INTERVAL_S = 2.0
# A readiness probe must answer well within the prober's own timeout (Kubernetes: 1 s by default, often 3-5).
READY_TIMEOUT_S = 2.0
OPEN_BACKOFF_CAP_S = 10.0


def keeps_running(what: str) -> Callable[[Callable[[], Awaitable[None]]], Callable[[], Awaitable[None]]]:
    """For a timer body: an error is logged and the next tick tries again. Faust crashes the whole worker when a
    timer raises, and a database restart would then stop every agent for good."""

    def wrap(body: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        @functools.wraps(body)
        async def run() -> None:
            try:
                await body()
            except Exception as error:  # CancelledError (a shutdown) is no Exception and passes
                log.warning("%s failed (%s: %s); trying again at the next tick", what, type(error).__name__, error)

        return run

    return wrap


def utc_now() -> datetime:
    return datetime.now(UTC)


class Resources:
    """Connections opened in the worker's own event loop on first use and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: Pool | None = None
        self._health_pool: Pool | None = None
        self._publisher: KafkaPublisher | None = None
        self._nmbrs: NmbrsClient | None = None
        self.group_lag = GroupLag(settings)
        self.handled = 0
        # Per consumer: time.monotonic() of its last progress (a message handled, or found caught up), and the lag
        # last observed (empty while it cannot be): together they tell a wedged consumer from an idle one.
        self.progress_at: dict[str, float] = {}
        self.lag: dict[str, int] = {}
        self.shutting_down = False
        self._opening = asyncio.Lock()
        # Set when a sync request was recorded, so the poll loop starts at once instead of at its next tick.
        self.poll_wanted = asyncio.Event()

    def nmbrs(self) -> NmbrsClient:
        if self._nmbrs is None:
            self._nmbrs = NmbrsClient.from_settings(self.settings)
        return self._nmbrs

    async def pool(self) -> Pool:
        async with self._opening:  # the agents start together: one pool for all of them
            if self._pool is None:
                # A worker started while the database is away waits for it instead of crashing its agents.
                self._pool = await with_retries(
                    lambda: create_pool(self.settings), "database connection", OPEN_BACKOFF_CAP_S
                )
                # The readiness check's own connection: a pool busy with a long poll and the agents would
                # make a waiting check look like a database that does not answer.
                self._health_pool = await with_retries(
                    lambda: create_pool(self.settings, max_size=1), "database connection", OPEN_BACKOFF_CAP_S
                )
        return self._pool

    async def publisher(self) -> KafkaPublisher:
        async with self._opening:
            if self._publisher is None:
                self._publisher = await with_retries(self._start_publisher, "Kafka producer start", OPEN_BACKOFF_CAP_S)
        return self._publisher

    async def _start_publisher(self) -> KafkaPublisher:
        publisher = KafkaPublisher(self.settings)
        try:
            await publisher.start()
        except BaseException:
            await publisher.stop()
            raise
        return publisher

    def handled_by(self, consumer: str, count: int = 1) -> None:
        self.handled += count
        self.progress_at[consumer] = time.monotonic()

    async def dependency_problems(self) -> dict[str, str | None]:
        """Per dependency (database, broker) why it does not answer now, or None when it does; checked together."""
        database, broker = await asyncio.gather(self._database_problem(), self._broker_problem())
        return {"database": database, "broker": broker}

    async def _database_problem(self) -> str | None:
        if self._health_pool is None:
            return "not connected to the database yet"
        return await unreachable(self._health_pool, READY_TIMEOUT_S)

    async def _broker_problem(self) -> str | None:
        if self._publisher is None:
            return "the Kafka producer has not started yet"
        return await self._publisher.unreachable(READY_TIMEOUT_S)

    async def not_ready(self) -> list[str]:
        """Why the worker cannot do its work now: shutting down, or the database or broker not answering."""
        if self.shutting_down:
            return ["shutting down"]
        return [problem for problem in (await self.dependency_problems()).values() if problem]

    async def close(self) -> None:
        await self.group_lag.close()
        if self._nmbrs is not None:
            await self._nmbrs.close()
        if self._publisher is not None:
            await self._publisher.stop()
        for pool in (self._pool, self._health_pool):
            if pool is not None:
                await pool.close()


def broker_credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "SSL":
        return ssl_context(settings)
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
        )
    return None


def raw_message(event: faust.EventT[bytes]) -> RawMessage:
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value)


def _faust_data_dir(settings: Settings) -> Path:
    """Tables live in memory, so faust's data directory holds only empty scaffolding: keep it out of the
    working directory (faust's default, '<app id>-data' there, litters the checkout). Faust creates the
    directory itself, but not its parents."""
    parent = Path(tempfile.gettempdir()) / "nmbrs-sync-faust"
    parent.mkdir(parents=True, exist_ok=True)
    return parent / settings.kafka_app_id


def build_app(settings: Settings) -> tuple[faust.App, Resources]:
    """The faust app with every agent at concurrency 1 (faust issue #606: >1 can commit past a message)."""
    app = faust.App(
        settings.kafka_app_id,
        broker="kafka://" + settings.kafka_bootstrap_servers.replace(",", ";"),
        broker_credentials=broker_credentials(settings),
        store="memory://",
        datadir=_faust_data_dir(settings),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.kafka_topic_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        # Our topics are created by `nmbrs-sync topics ensure` with explicit partition counts.
        topic_allow_declare=False,
        # No faust leader topic: the one-poll-at-a-time guarantee comes from a PostgreSQL advisory lock.
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        web_enabled=settings.status_port != 0,
        web_port=settings.status_port or 6066,
        web_bind=settings.status_bind,
    )
    resources = Resources(settings)

    async def context(name: str) -> ConsumerContext:
        return ConsumerContext(
            name=name,
            sink=await resources.publisher(),
            outcomes_topic=settings.topics.outcomes,
            dead_letter_topic=settings.topics.dead_letter,
            copies={OutcomeKind.NEEDS_DECISION: settings.topics.decisions_needed},
        )

    sync_topic = app.topic(settings.topics.sync_requests, partitions=settings.kafka_topic_partitions)

    @app.agent(sync_topic, name=sync_requests.CONSUMER, concurrency=1)
    async def sync_request_agent(stream: faust.StreamT[bytes]) -> None:
        ctx = await context(sync_requests.CONSUMER)
        pool = await resources.pool()
        handle = partial(sync_requests.handle_sync_requested, pool=pool, now=utc_now)
        async for event in stream.events():
            await consume_one(raw_message(event), ctx, SyncRequested.model_validate_json, handle)
            resources.handled_by(sync_requests.CONSUMER)
            resources.poll_wanted.set()

    change_topics = app.topic(
        settings.topics.employee_changes,
        settings.topics.company_changes,
        settings.topics.reference_changes,
        partitions=settings.kafka_topic_partitions,
    )
    policy = MatchPolicy(auto_link_min_score=settings.auto_link_min_score)

    @app.agent(change_topics, name=reconciler.CONSUMER, concurrency=1)
    async def reconciler_agent(stream: faust.StreamT[bytes]) -> None:
        ctx = replace(await context(reconciler.CONSUMER), max_value_bytes=MAX_CHANGE_EVENT_BYTES)
        handle = partial(reconciler.handle_changes, pool=await resources.pool(), policy=policy, now=utc_now)
        # take_events acknowledges a batch when the body is done with it, also when the body raises, so
        # consume_batch lets nothing escape for a bad message. A crash redelivers the whole batch; if its
        # transaction had committed, the inbox turns it into a re-publish of the stored outcomes.
        # take_events is a method of faust's Stream that its StreamT protocol does not declare.
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.reconcile_batch_max, within=settings.reconcile_batch_wait_s
        )
        async for events in batches:
            await consume_batch([raw_message(event) for event in events], ctx, parse_change_event, handle)
            resources.handled_by(reconciler.CONSUMER, len(events))

    published_status: dict[str, dict[str, Any]] = {}

    @app.timer(interval=STATUS_INTERVAL_S)
    @keeps_running("status publish")
    async def publish_status() -> None:
        # Publish a step only when it changed: the status topic is compacted, the latest per key counts.
        at = utc_now()
        async with transaction(await resources.pool()) as connection:
            statuses = await step_statuses(connection, nmbrs_today(at), at)
            await store_step_statuses(connection, statuses)
            metrics.OLDEST_QUESTION_AGE.set(await oldest_open_question_age_s(connection, at))
            last_published, held = await poll_outcome(connection)
        # Gauges of the whole installation, the same on every replica: the one that polled may be another.
        if last_published is not None:
            metrics.POLL_LAST_SUCCESS.set(last_published.timestamp())
        metrics.HOLD_ACTIVE.set(1 if held else 0)
        for status in statuses:
            if status.step in ("employees", "companies"):
                metrics.OPEN_QUESTIONS.labels(status.step).set(status.counts.get("pending", 0))
        changed = [s for s in statuses if published_status.get(s.step) != s.model_dump(exclude={"updated_at"})]
        if changed:
            await (await resources.publisher()).publish_many(
                [(settings.topics.status, f"step:{s.step}", s) for s in changed]
            )
            published_status.update({s.step: s.model_dump(exclude={"updated_at"}) for s in changed})

    notice_policy = notices.notice_policy(settings)
    email = SmtpSender(settings) if settings.email_enabled else None
    webhook = WebhookSender(settings) if settings.webhook_enabled else None

    @app.timer(interval=settings.notice_interval_s)
    @keeps_running("notices")
    async def send_notices() -> None:
        # Every replica ticks; the run lock lets one of them work, the others find it held and wait for the next.
        await notices.run_notices(
            await resources.pool(), notice_policy, utc_now, email, webhook, app_url=settings.notice_app_url
        )

    @app.agent(
        app.topic(settings.topics.decisions, partitions=settings.kafka_topic_partitions),
        name=decisions.DECISIONS,
        concurrency=1,
    )
    async def decision_agent(stream: faust.StreamT[bytes]) -> None:
        ctx = replace(
            await context(decisions.DECISIONS),
            rejection_for_malformed=decisions.rejection_for_malformed("decision_id", utc_now),
        )
        pool = await resources.pool()
        handle = partial(decisions.handle_decision, pool=pool, policy=policy, now=utc_now)
        published = partial(decisions.decision_published, pool=pool)
        async for event in stream.events():
            await consume_one(raw_message(event), ctx, Decision.model_validate_json, handle, published)
            resources.handled_by(decisions.DECISIONS)

    @app.agent(
        app.topic(settings.topics.followup_commands, partitions=settings.kafka_topic_partitions),
        name=decisions.FOLLOW_UPS,
        concurrency=1,
    )
    async def follow_up_agent(stream: faust.StreamT[bytes]) -> None:
        ctx = replace(
            await context(decisions.FOLLOW_UPS),
            rejection_for_malformed=decisions.rejection_for_malformed("command_id", utc_now),
        )
        handle = partial(decisions.handle_follow_up, pool=await resources.pool(), now=utc_now)
        async for event in stream.events():
            await consume_one(raw_message(event), ctx, FollowUpCommand.model_validate_json, handle)
            resources.handled_by(decisions.FOLLOW_UPS)

    consumer_of_topic = {
        settings.topics.sync_requests: sync_requests.CONSUMER,
        settings.topics.employee_changes: reconciler.CONSUMER,
        settings.topics.company_changes: reconciler.CONSUMER,
        settings.topics.reference_changes: reconciler.CONSUMER,
        settings.topics.decisions: decisions.DECISIONS,
        settings.topics.followup_commands: decisions.FOLLOW_UPS,
    }
    metrics.start_series(consumer_of_topic)

    @app.timer(interval=HEALTH_INTERVAL_S)
    @keeps_running("health metrics")
    async def observe_health() -> None:
        problems = await resources.dependency_problems()
        for dependency, problem in problems.items():
            metrics.DEPENDENCY_UP.labels(dependency).set(0 if problem else 1)
        metrics.READY.set(0 if resources.shutting_down or any(problems.values()) else 1)
        if problems["broker"] is not None:
            forget_lag()
            return
        try:
            await observe_lag()
        except BaseException:
            forget_lag()
            raise

    def forget_lag() -> None:
        # No lag shown rather than a frozen one, and no wedged verdict on numbers that are not there.
        metrics.CONSUMER_LAG.clear()
        resources.lag = {}

    async def observe_lag() -> None:
        # Only the partitions this worker consumes: with several replicas each reports its own share.
        assigned = sorted((tp.topic, tp.partition) for tp in app.consumer.assignment())
        async with asyncio.timeout(READY_TIMEOUT_S):
            behind = await resources.group_lag.behind(assigned) if assigned else {}
        metrics.CONSUMER_LAG.clear()  # a partition handed to another replica is no longer ours to report
        lag: dict[str, int] = dict.fromkeys(consumer_of_topic.values(), 0)
        for (topic, partition), waiting in behind.items():
            consumer = consumer_of_topic.get(topic, "other")
            metrics.CONSUMER_LAG.labels(consumer, topic, str(partition)).set(waiting)
            lag[consumer] = lag.get(consumer, 0) + waiting
        now = time.monotonic()
        for consumer, waiting in lag.items():
            if waiting == 0 or consumer not in resources.progress_at:  # caught up, or first seen: counting starts
                resources.progress_at[consumer] = now
        resources.lag = lag

    if settings.poll_enabled:

        @app.task
        async def polling() -> None:
            store = PollStore(await resources.pool())
            poller = Poller(resources.nmbrs(), store, await resources.publisher(), settings, utc_now)
            await run_poll_loop(poller, store, settings, resources.poll_wanted)

    @app.page("/healthz")
    async def healthz(view: faust.web.View, _request: faust.web.Request) -> faust.web.Response:
        # Alive: the event loop answers and every agent still has a running actor (ours never let an error
        # end them, so a finished actor is a crashed one). Dependencies are /readyz's business: restarting
        # a worker because its database is away would not bring the database back.
        dead = [
            str(name)
            for name, agent in app.agents.items()
            if not any(actor.actor_task is not None and not actor.actor_task.done() for actor in agent._actors)
        ]
        # A running actor stuck on an await is no better: messages wait and none was handled for too long.
        stuck = wedged(resources.lag, resources.progress_at, time.monotonic(), settings.wedged_after_s)
        body = {"ok": not (dead or stuck), "dead_agents": dead, "wedged_agents": stuck, "handled": resources.handled}
        return view.json(body, status=503 if dead or stuck else 200)

    @app.page("/metrics")
    async def prometheus(view: faust.web.View, _request: faust.web.Request) -> faust.web.Response:
        body, content_type = metrics.exposition()
        # As a header: aiohttp refuses a content_type argument that names the charset, as Prometheus' does.
        return view.bytes(body, headers={"Content-Type": content_type})

    @app.page("/readyz")
    async def readyz(view: faust.web.View, _request: faust.web.Request) -> faust.web.Response:
        problems = await resources.not_ready()
        return view.json({"ready": not problems, "problems": problems}, status=503 if problems else 200)

    # mode's signal handler type cannot be met by a coroutine function, though mode awaits what it returns.
    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_resources(_app: faust.App, **_kwargs: Any) -> None:
        resources.shutting_down = True
        metrics.READY.set(0)
        await resources.close()

    return app, resources


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; faust drains the agents and commits offsets on the way out."""
    app, _resources = build_app(settings)
    # Everything imported and built so far lives as long as the process: keep it out of the cyclic
    # collector's generations, so full collections stay short (fewer latency spikes).
    gc.collect()
    gc.freeze()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True, logging_config=logging_config(settings))
    worker.execute_from_commandline()
