"""The scenarios: each disturbs a Stage (harness.py), waits for the store to converge by itself and reports.

Every report has scenario, cycles, changes, lost, doubled, converge_s, restarts_by_hand and crashes, plus figures
of its own; a scenario fails when any of FAILURE_FIGURES is non-zero.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import ClientSession, ClientTimeout
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.chaos.fuzz import FuzzMaker
from tests.chaos.harness import Changes, Comparison, Harness, Stage, TopicWatch, say
from tests.support import free_port
from worker.adapters.kafka import client_kwargs
from worker.config import Settings
from worker.domain.decisions import Decision, DecisionAction, DecisionFilter
from worker.domain.follow_ups import FollowUpCommand
from worker.sandbox.dataset import Dataset, Employee, load_dataset, save_dataset

Scenario = Callable[[Stage], Awaitable[dict[str, Any]]]
FAILURE_FIGURES = (
    "lost",
    "doubled",
    "restarts_by_hand",
    "crashes",
    "errors",
    "stuck_requests",
    "wait_idle_hung",
    "unhandled",
    "accepted_malformed",
    "valid_not_applied",
    "republished_bulk",
    "new_outcomes",
    "not_held",
    "removal_lost",
    "outage_unseen",
)
START_S = 120.0  # a worker's start (migrations, topics, first poll) on a busy machine
OUTAGE_S = 3.0
# An outage must show on /readyz and in nmbrs_sync_dependency_up within this (the worker checks every 2 s, each
# check waiting 2 s at most); an outage lasts until both showed it, or this long.
SEEN_WITHIN_S = 10.0

# --- kill-cycles ------------------------------------------------------------------------------------------------

# Where the worker is, by what it leaves in the store; a kill lands there (plus up to JITTER seconds).
PHASES = {
    "fetch": "SELECT 1 FROM poll_runs WHERE started_at >= $1 AND status = 'running' AND publishing_at IS NULL",
    "publish": "SELECT 1 FROM poll_runs WHERE started_at >= $1 AND status = 'running' AND publishing_at IS NOT NULL",
    "reconcile": """SELECT 1 FROM poll_runs r WHERE r.started_at >= $1 AND r.status = 'published' AND EXISTS (
                        SELECT 1 FROM processed_events e WHERE e.consumer = 'reconciler'
                        AND e.processed_at >= r.finished_at)""",
}
JITTER = {"fetch": 0.5, "publish": 0.0, "reconcile": 0.3}


async def kill_cycles(stage: Stage) -> dict[str, Any]:
    """Each cycle: a round of changes, a poll (on schedule or asked with sync-now), and kill -9 of the worker while
    it fetches, publishes or reconciles; it is started again at once."""
    sizes = stage.harness.sizes
    worker = await started_worker(stage)
    changes = Changes(stage, sorted(await stage.harness.nmbrs_now()))
    kills: Counter[str] = Counter()
    for cycle in range(sizes.cycles):
        await changes.round(sizes.changes // sizes.cycles)
        since = await stage.value("SELECT now()")
        if stage.rng.random() < 0.5:
            await stage.cli("sync-now", "--requested-by", "chaos")
        phase = stage.rng.choice(sorted(PHASES))
        hit = await wait_phase(stage, phase, since)
        await asyncio.sleep(stage.rng.uniform(0, JITTER[phase]))
        worker.kill()
        worker.start()
        kills[phase if hit else "phase_missed"] += 1
        say(f"kill-cycles: cycle {cycle + 1}: killed while {phase if hit else 'waiting for ' + phase}")
    await changes.finish_flips()
    converge_s, comparison = await stage.converge()
    stuck = await stuck_requests(stage)
    code, _ = await stage.cli("wait-idle", "--timeout", "30", check=False)
    return stage.report(
        converge_s,
        comparison,
        cycles=sizes.cycles,
        kills=dict(kills),
        stuck_requests=stuck,
        wait_idle_hung=int(code != 0),
    )


async def wait_phase(stage: Stage, phase: str, since: datetime, timeout_s: float = 60.0) -> bool:
    """Whether the worker reached `phase` (of a poll started after `since`) within the timeout."""
    connection = await asyncpg.connect(stage.settings.database_url.get_secret_value())
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if await connection.fetchval(PHASES[phase], since):
                return True
            await asyncio.sleep(0.01)
        return False
    finally:
        await connection.close()


async def stuck_requests(stage: Stage, grace_s: float = 30.0) -> int:
    """Sync requests still open `grace_s` after convergence (a worker polls every 2 s: none should be)."""

    async def open_requests() -> int:
        return int(await stage.value("SELECT count(*) FROM sync_requests WHERE status IN ('pending', 'running')"))

    async def none_open() -> bool:
        return await open_requests() == 0

    try:
        await stage.until(none_open, grace_s, "sync requests stayed open")
    except TimeoutError:
        count = await open_requests()
        stage.note(f"{count} sync requests still pending/running {grace_s:.0f} s after convergence")
        return count
    return 0


# --- PostgreSQL and the broker killed --------------------------------------------------------------------------


async def postgres_restart(stage: Stage) -> dict[str, Any]:
    return await service_restart(stage, "postgres")


async def broker_restart(stage: Stage) -> dict[str, Any]:
    return await service_restart(stage, "kafka")


async def service_restart(stage: Stage, service: str) -> dict[str, Any]:
    """Changes stream in; after the third round the service is killed with -9 and started again on the same port
    and data a few seconds later. The worker must ride it out (an exit is a restart by hand), and say so while it
    lasts: /readyz red and nmbrs_sync_dependency_up 0 within seconds, both green again once it is back."""
    probes = Probes(free_port())
    await started_worker(stage, STATUS_PORT=str(probes.port), STATUS_BIND="127.0.0.1")
    outage: asyncio.Task[dict[str, Any]] | None = None

    async def before_round(number: int) -> None:
        nonlocal outage
        if number == 3:
            outage = asyncio.create_task(take_down(stage, service, probes))

    changes = await stream(stage, rounds=8, before_round=before_round)
    assert outage is not None
    seen = await outage
    await changes.finish_flips()
    converge_s, comparison = await stage.converge()
    unseen = [
        what for what in ("readyz_red_s", "metric_red_s", "readyz_green_s", "metric_green_s") if seen[what] is None
    ]
    for what in unseen:
        stage.note(f"the outage of {service}: {what.removesuffix('_s').replace('_', ' ')} not seen in time")
    return stage.report(converge_s, comparison, **seen, outage_unseen=len(unseen))


class Probes:
    """The worker's /readyz and its dependency_up gauge, as an orchestrator and Prometheus see them."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def ready(self) -> bool | None:
        """Whether /readyz answers 200 (True) or 503 (False); None when it does not answer at all."""
        try:
            async with ClientSession(timeout=ClientTimeout(total=3)) as session:
                async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                    return response.status == 200
        except (OSError, TimeoutError):
            return None

    async def dependency_up(self, dependency: str) -> float | None:
        try:
            async with ClientSession(timeout=ClientTimeout(total=3)) as session:
                async with session.get(f"http://127.0.0.1:{self.port}/metrics") as response:
                    text = await response.text()
        except (OSError, TimeoutError):
            return None
        wanted = f'nmbrs_sync_dependency_up{{dependency="{dependency}"}} '
        return next((float(line.removeprefix(wanted)) for line in text.splitlines() if line.startswith(wanted)), None)

    async def until(self, check: Callable[[], Awaitable[bool]], since: float) -> float | None:
        """Seconds from `since` until `check` holds, polled every 0.2 s; None when not within SEEN_WITHIN_S."""
        while time.monotonic() - since < SEEN_WITHIN_S:
            if await check():
                return round(time.monotonic() - since, 1)
            await asyncio.sleep(0.2)
        return None


async def take_down(stage: Stage, service: str, probes: Probes) -> dict[str, Any]:
    harness = stage.harness
    target = harness.postgres if service == "postgres" else harness.kafka
    dependency = "database" if service == "postgres" else "broker"
    stage.services_up.clear()
    started = time.monotonic()
    say(f"{stage.name}: kill -9 of {service}")
    target.kill()

    async def readyz_red() -> bool:
        return await probes.ready() is False

    async def metric_red() -> bool:
        return await probes.dependency_up(dependency) == 0

    readyz_red_s, metric_red_s = await asyncio.gather(
        probes.until(readyz_red, started), probes.until(metric_red, started)
    )
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - started)))
    await target.start()
    back = time.monotonic()
    stage.services_up.set()
    say(f"{stage.name}: {service} back after {back - started:.1f} s")

    async def readyz_green() -> bool:
        return await probes.ready() is True

    async def metric_green() -> bool:
        return await probes.dependency_up(dependency) == 1

    readyz_green_s, metric_green_s = await asyncio.gather(
        probes.until(readyz_green, back), probes.until(metric_green, back)
    )
    return {
        "outage_s": round(back - started, 1),
        "readyz_red_s": readyz_red_s,
        "metric_red_s": metric_red_s,
        "readyz_green_s": readyz_green_s,
        "metric_green_s": metric_green_s,
    }


async def stream(stage: Stage, rounds: int, before_round: Callable[[int], Awaitable[None]]) -> Changes:
    """`rounds` rounds of changes, a fifth of the kill-cycles' total in all."""
    changes = Changes(stage, sorted(await stage.harness.nmbrs_now()))
    for number in range(rounds):
        await before_round(number)
        await changes.round(max(1, stage.harness.sizes.changes // 5 // rounds))
    return changes


async def started_worker(stage: Stage, **env: str) -> Any:
    worker = stage.start_worker(**env)
    await stage.until(stage.polled, START_S, "the worker did not poll")
    return worker


# --- two workers ------------------------------------------------------------------------------------------------


async def two_workers(stage: Stage) -> dict[str, Any]:
    """Two workers in one consumer group (one polls at a time: the advisory lock); one is killed -9 mid-stream and
    stays dead, the other takes over its partitions and polls."""
    workers = [stage.start_worker(), stage.start_worker()]
    await stage.until(stage.polled, START_S, "the workers did not poll")

    async def before_round(number: int) -> None:
        if number == 2:
            victim = stage.rng.choice(workers)
            say(f"two-workers: kill -9 of {victim.name}")
            victim.kill()

    changes = await stream(stage, rounds=6, before_round=before_round)
    await changes.finish_flips()
    converge_s, comparison = await stage.converge()
    return stage.report(converge_s, comparison)


# --- redelivery -----------------------------------------------------------------------------------------------

CONSUMED = (
    "sync_requests",
    "employee_changes",
    "company_changes",
    "reference_changes",
    "decisions",
    "followup_commands",
)


async def redelivery(stage: Stage) -> dict[str, Any]:
    """A bulk aanmaken, rounds of changes and a full reconciliation; then the worker is stopped, its consumer group
    set back to the start of every topic it reads, and started again: everything is delivered a second time and
    must have no second effect. Outcomes published again (same ids) are counted; those of the bulk decision fail
    the scenario (acknowledged the first time, they are three a record for nothing)."""
    settings = stage.settings
    async with TopicWatch(settings) as watch:
        worker = await started_worker(stage)
        hires = await stage.hire(stage.harness.sizes.hires)
        await stage.until(lambda: all_pending(stage, hires), START_S, "the hires were not asked about")
        bulk = Decision(
            decision_id=uuid.uuid4(),
            filter=DecisionFilter(company_id=1, situation="unmatched"),
            action=DecisionAction.AANMAKEN,
            decided_by="chaos",
            decided_at=datetime.now(UTC),
        )
        await stage.post([(settings.topics.decisions, bulk.key, bulk)])
        await stage.until(lambda: all_linked(stage, hires), START_S, "the bulk aanmaken did not link")
        changes = await stream(stage, rounds=4, before_round=_nothing)
        await changes.finish_flips()
        await stage.cli("sync-now", "--full", "--requested-by", "chaos")
        await stuck_requests(stage, START_S)
        partitions = [TopicPartition(getattr(settings.topics, t), p) for t in CONSUMED for p in range(4)]
        ends = await end_offsets(settings, partitions)
        await wait_consumed(settings, ends, START_S)
        before = Counter(watch.outcome_ids)
        causes_before = set(watch.outcomes)
        await worker.stop()
        await reset_group(settings, partitions)
        started = time.monotonic()
        worker.start()
        await wait_consumed(settings, ends, START_S * 2)
        redelivery_s = round(time.monotonic() - started, 1)
        await asyncio.sleep(5)  # outcomes published again would arrive in this time
        # An outcome of an event handled before that was not there before is a second effect. Events new since
        # the restart (a stop that cut a poll makes the next one a repair that reads every record) are not.
        new_outcomes = sum(1 for cause in causes_before for o in watch.outcomes[cause] if o["outcome_id"] not in before)
        again = [
            o
            for found in watch.outcomes.values()
            for o in found
            if o["arrived"] >= started and o["outcome_id"] in before
        ]
        of_bulk = sum(o["causation_id"] == str(bulk.decision_id) for o in again)
        if again:
            stage.note(
                f"{len(again)} outcomes published again after the redelivery, {of_bulk} of them for the bulk"
                f" decision; by kind: {dict(Counter(o['kind'] for o in again))}"
            )
    converge_s, comparison = await stage.converge()
    return stage.report(
        converge_s,
        comparison,
        redelivered=sum(ends.values()),
        redelivery_s=redelivery_s,
        bulk_records=len(hires),
        republished=len(again),
        republished_bulk=of_bulk,
        new_outcomes=new_outcomes,
    )


async def _nothing(_number: int) -> None:
    return None


async def all_pending(stage: Stage, nmbrs_ids: list[int]) -> bool:
    return len(await stage.pending_versions(nmbrs_ids)) == len(nmbrs_ids)


async def all_linked(stage: Stage, nmbrs_ids: list[int]) -> bool:
    count = await stage.value(
        "SELECT count(*) FROM sync_links WHERE entity = 'employee' AND regitijd_id IS NOT NULL"
        " AND nmbrs_id = ANY($1::int[])",
        nmbrs_ids,
    )
    return bool(count == len(nmbrs_ids))


async def end_offsets(settings: Settings, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: offset for tp, offset in (await consumer.end_offsets(partitions)).items() if offset}
    finally:
        await consumer.stop()


async def wait_consumed(settings: Settings, ends: dict[TopicPartition, int], timeout_s: float) -> None:
    """Until the worker's consumer group committed every offset in `ends`."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            committed = await admin.list_consumer_group_offsets(settings.kafka_app_id)
            behind = {tp: end for tp, end in ends.items() if tp not in committed or committed[tp].offset < end}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not consume {sorted(map(str, behind))} within {timeout_s:.0f} s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def reset_group(settings: Settings, partitions: list[TopicPartition]) -> None:
    """Commit offset 0 for the (stopped) worker's group on every partition: its next start reads it all again."""
    deadline = time.monotonic() + 60
    while True:
        consumer = AIOKafkaConsumer(**client_kwargs(settings), group_id=settings.kafka_app_id, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.commit(dict.fromkeys(partitions, 0))
            return
        except Exception:  # the group still has the stopped member for a moment
            if time.monotonic() > deadline:
                raise
        finally:
            await consumer.stop()
        await asyncio.sleep(1.0)


# --- fuzz -------------------------------------------------------------------------------------------------------


async def fuzz(stage: Stage) -> dict[str, Any]:
    """Thousands of malformed and unanswerable decisions and follow-ups; each must end up dead-lettered or rejected,
    no agent may crash, and a valid follow-up and decision posted right after must be applied."""
    settings, sizes = stage.settings, stage.harness.sizes
    async with TopicWatch(settings) as watch:
        await started_worker(stage)
        hire = (await stage.hire(1, company_id=2))[0]
        await stage.until(lambda: all_pending(stage, [hire]), START_S, "the hire was not asked about")
        employee_id = int(await stage.value("SELECT min(employee_id) FROM rt_employees WHERE source = 'nmbrs'"))
        messages = FuzzMaker(stage.rng, employee_id, datetime.now(UTC).isoformat()).messages(sizes.fuzz)
        producer = AIOKafkaProducer(**client_kwargs(settings), acks="all")
        await producer.start()
        try:
            started = time.monotonic()
            sent = [await producer.send(getattr(settings.topics, m.topic), m.value, key=m.key) for m in messages]
            where = [(r.topic, r.partition, r.offset) for r in await asyncio.gather(*sent)]
        finally:
            await producer.stop()

        def unhandled() -> list[int]:
            return [
                i
                for i, m in enumerate(messages)
                if where[i] not in watch.dead_letters and not watch.outcomes.get(m.ident or "")
            ]

        try:
            await stage.until(lambda: not unhandled(), sizes.converge_limit_s * 2, "fuzz not all handled")
            handled_s: float | None = round(time.monotonic() - started, 1)
        except TimeoutError:
            handled_s = None
        left = unhandled()
        for i in left[:3]:
            stage.note(f"fuzz message not handled: {messages[i].label} at {where[i]}")
        accepted = [
            m
            for m in messages
            for o in watch.outcomes.get(m.ident or "", ())
            if o["kind"] != "rejected" or (m.malformed and o["subject"] != "malformed")
        ]
        for m in accepted[:4]:
            stage.note(f"accepted: {m.topic} {m.label}: {watch.outcomes[m.ident or ''][0]['kind']}")
        latency = await valid_after_fuzz(stage, watch, employee_id, hire)
    converge_s, comparison = await stage.converge()
    return stage.report(
        converge_s,
        comparison,
        cycles=0,
        fuzz_messages=len(messages),
        dead_letters=sum(w in watch.dead_letters for w in where),
        rejected=sum(bool(watch.outcome(m.ident, "rejected")) for m in messages if m.ident),
        unhandled=len(left),
        handled_s=handled_s,
        accepted_malformed=len(accepted),
        valid_latency_ms=latency,
        valid_not_applied=sum(v is None for v in latency.values()),
    )


async def valid_after_fuzz(stage: Stage, watch: TopicWatch, employee_id: int, hire: int) -> dict[str, float | None]:
    """Post a valid follow-up and a valid decision; milliseconds until each was applied (None: not in a minute)."""
    now, topics = datetime.now(UTC), stage.settings.topics
    version = (await stage.pending_versions([hire]))[hire]
    follow_up = FollowUpCommand(
        command_id=uuid.uuid4(),
        employee_id=employee_id,
        command="set_is_manager",
        is_manager=True,
        issued_by="chaos",
        issued_at=now,
    )
    decision = Decision(
        decision_id=uuid.uuid4(),
        nmbrs_id=hire,
        action=DecisionAction.AANMAKEN,
        version=version,
        decided_by="chaos",
        decided_at=now,
    )
    latency: dict[str, float | None] = {}
    for name, topic, message, ident in (
        ("follow_up", topics.followup_commands, follow_up, follow_up.command_id),
        ("decision", topics.decisions, decision, decision.decision_id),
    ):
        posted = time.monotonic()
        await stage.post([(topic, message.key, message)])
        try:
            await stage.until(lambda i=ident: watch.outcome(i, "applied"), 60, f"{name} applied")
            latency[name] = round(((watch.outcome(ident, "applied") or {})["arrived"] - posted) * 1000, 1)
        except TimeoutError:
            latency[name] = None
            stage.note(f"valid {name} not applied: {[o['kind'] for o in watch.outcomes.get(str(ident), [])]}")
    return latency


# --- mass-return ------------------------------------------------------------------------------------------------


async def mass_return(stage: Stage) -> dict[str, Any]:
    """One company's employees all removed in Nmbrs at once (the breaker holds the poll until sync-now
    --release-hold), deactivated in RegiTijd; then the same employees back in Nmbrs: all active again. The company
    is one where a human with two employments has the one that started last, so the removal also hands that
    human's person card over to the employment that stays."""
    harness = stage.harness
    dataset = load_dataset(harness.dataset_path)
    company = card_holder_company(dataset)
    leaving = [e for e in dataset.employees if e.company_id == company]
    without = harness.home / f"without-company-{company}.json"
    save_dataset(
        dataset.model_copy(update={"employees": [e for e in dataset.employees if e.company_id != company]}), without
    )
    await started_worker(stage)
    since = await stage.value("SELECT now()")
    # Reloading another file removes them in one step: a poll never sees half of the removal.
    await harness.sandbox_admin("POST", "reload", {"path": str(without)})
    stage.figures["changes"] += len(leaving)
    held = "SELECT count(*) FROM poll_runs WHERE status = 'held' AND started_at >= $1"
    try:
        held_s: float | None = round(await stage.until(lambda: stage.value(held, since), 60, "the hold"), 1)
    except TimeoutError:
        held_s = None
        stage.note("the removal of a whole company was not held by the breaker")
    await stage.cli("sync-now", "--release-hold", "--requested-by", "chaos")
    removal_s, removal = await stage.converge()
    for line in removal.lost[:2]:
        stage.note(f"after the removal: {line}")
    await harness.sandbox_admin("POST", "reload", {"path": str(harness.dataset_path)})
    stage.figures["changes"] += len(leaving)
    converge_s, comparison = await stage.converge()
    return stage.report(
        converge_s,
        comparison,
        removed=len(leaving),
        held_s=held_s,
        not_held=int(held_s is None),
        removal_converge_s=removal_s,
        removal_lost=len(removal.lost),
    )


def card_holder_company(dataset: Dataset) -> int:
    """The company of the latest-starting employment of a human employed twice (else the last company)."""
    by_bsn: dict[str, list[Employee]] = {}
    for employee in dataset.employees:
        by_bsn.setdefault(employee.bsn, []).append(employee)
    holders = [
        max(employments, key=lambda e: (max(p.start for p in e.employments), e.id)).company_id
        for employments in by_bsn.values()
        if len({e.company_id for e in employments}) > 1
    ]
    return max(holders, default=dataset.companies[-1].id)


SCENARIOS: dict[str, Scenario] = {
    "kill-cycles": kill_cycles,
    "postgres-restart": postgres_restart,
    "broker-restart": broker_restart,
    "two-workers": two_workers,
    "redelivery": redelivery,
    "fuzz": fuzz,
    "mass-return": mass_return,
}


async def run_scenario(harness: Harness, name: str) -> dict[str, Any]:
    """One scenario on a stage of its own; a scenario that broke off is reported with errors=1."""
    stage = Stage(harness, name)
    started = time.monotonic()
    say(f"{name}: start")
    try:
        await stage.open()
        result = await SCENARIOS[name](stage)
    except Exception as error:
        stage.note(f"scenario broke off: {type(error).__name__}: {error}")
        result = {**stage.report(None, Comparison()), "lost": None, "doubled": None, "errors": 1}
    finally:
        await stage.close()
    result.update(crashes=stage.figures["crashes"], duration_s=round(time.monotonic() - started, 1))
    result["failures"] = [name for name in FAILURE_FIGURES if result.get(name)]
    say(f"{name}: done in {result['duration_s']:.0f} s, failures: {result['failures'] or 'none'}")
    return result
