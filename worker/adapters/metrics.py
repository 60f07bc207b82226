"""The Prometheus metrics (prometheus-client), named by Prometheus conventions: nmbrs_sync_*, counters
ending in _total, times in seconds. The worker's and the web app's are kept in two registries: each process
exports only its own (a web app showing the worker's gauges at zero would look like a stalled poller)."""

from __future__ import annotations

from typing import get_args

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from worker.domain.events import PollReport

REGISTRY = CollectorRegistry()
# Label values written in more than one place: one spelling, so a series is never split in two.
MALFORMED, HANDLER_ERROR = "malformed", "handler_error"  # reason_class of a dead letter
HANDLED, DEAD_LETTERED = "handled", "dead_lettered"  # result of a consumed message

OUTCOMES = Counter(
    "nmbrs_sync_outcomes_total",
    "Outcomes published, by the consumer that handled the event or command and the outcome's kind.",
    ["consumer", "kind"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "nmbrs_sync_dead_letters_total",
    "Messages put on the dead-letter topic, by consumer and reason class (malformed or handler_error).",
    ["consumer", "reason_class"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "nmbrs_sync_events_total",
    "Messages consumed, by consumer, topic and result (handled, or dead_lettered).",
    ["consumer", "topic", "result"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "nmbrs_sync_consumer_lag",
    "Messages on a partition this worker consumes that its group has not committed yet (end offset minus"
    " committed offset), by agent, topic and partition.",
    ["agent", "topic", "partition"],
    registry=REGISTRY,
)
POLLS = Counter("nmbrs_sync_polls_total", "Polls of Nmbrs finished, by result.", ["result"], registry=REGISTRY)
POLL_DURATION = Histogram(
    "nmbrs_sync_poll_duration_seconds",
    "Wall time of a poll of Nmbrs, from start to report.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800),
    registry=REGISTRY,
)
POLL_LAST_SUCCESS = Gauge(
    "nmbrs_sync_poll_last_success_timestamp_seconds",
    "Unix time at which the last poll that published (or found nothing to publish) finished, by any replica"
    " (read from the database every 2 s; 0 until a first poll ever published).",
    registry=REGISTRY,
)
HOLD_ACTIVE = Gauge(
    "nmbrs_sync_mass_change_hold_active",
    "1 while the mass-change breaker holds a poll (the latest poll that published or was held was held), else 0.",
    registry=REGISTRY,
)
SOAP_CALLS = Counter(
    "nmbrs_sync_soap_calls_total",
    "SOAP calls sent to Nmbrs, by operation and result (ok, or the error's class).",
    ["operation", "result"],
    registry=REGISTRY,
)
SOAP_THROTTLED = Counter(
    "nmbrs_sync_soap_throttled_total",
    "Times Nmbrs answered a SOAP call with 429 Too Many Requests (the call is retried after a backoff).",
    ["operation"],
    registry=REGISTRY,
)
OPEN_QUESTIONS = Gauge(
    "nmbrs_sync_open_questions",
    "Questions waiting for a decision, by step (employees, companies).",
    ["step"],
    registry=REGISTRY,
)

OLDEST_QUESTION_AGE = Gauge(
    "nmbrs_sync_oldest_open_question_age_seconds",
    "How long the oldest question not skipped has been waiting for a decision (0 when none waits).",
    registry=REGISTRY,
)
DECISION_LATENCY = Histogram(
    "nmbrs_sync_decision_latency_seconds",
    "From a decision's decided_at (the frontend's clock) to its outcomes acknowledged by the broker.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
READY = Gauge(
    "nmbrs_sync_ready", "1 while the worker is ready (what /readyz answers 200 for), else 0.", registry=REGISTRY
)
DEPENDENCY_UP = Gauge(
    "nmbrs_sync_dependency_up",
    "1 while a dependency (database, broker) answers the worker's check within 2 s, else 0; checked every 2 s.",
    ["dependency"],
    registry=REGISTRY,
)

WEB_REGISTRY = CollectorRegistry()
WEB_REQUESTS = Counter(
    "nmbrs_sync_web_requests_total",
    "Requests the HR web app answered, by route (the pattern, not the path), method and status code.",
    ["route", "method", "status"],
    registry=WEB_REGISTRY,
)
WEB_REQUEST_DURATION = Histogram(
    "nmbrs_sync_web_request_duration_seconds",
    "Time the HR web app took to answer a request, by route (event streams are left out: they stay open).",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=WEB_REGISTRY,
)


def start_series(consumer_of_topic: dict[str, str]) -> None:
    """Counters alerts watch exist at 0 from the start: a first failure then is an increase from 0, which
    increase() sees, instead of a series appearing at 1, which it does not; and "nothing handled" is a 0."""
    for topic, consumer in consumer_of_topic.items():
        for reason in (MALFORMED, HANDLER_ERROR):
            DEAD_LETTERS.labels(consumer, reason)
        for result in (HANDLED, DEAD_LETTERED):
            EVENTS.labels(consumer, topic, result)
    for result in get_args(PollReport.model_fields["result"].annotation):
        if result != "skipped":  # not counted: a skipped poll (another replica polls) says nothing of this one
            POLLS.labels(result)


def soap_result(error: BaseException | None) -> str:
    """The result label of a SOAP call: ok, fault_<Nmbrs code> for a business fault, else the error's class."""
    if error is None:
        return "ok"
    code = getattr(error, "code", None)
    return f"fault_{code}" if isinstance(code, int) else type(error).__name__


def reason_class(reason: str) -> str:
    return HANDLER_ERROR if reason.startswith("handler failed") else MALFORMED


def exposition(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The metrics in the Prometheus text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
