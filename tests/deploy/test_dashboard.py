"""The Grafana dashboard and the alert rules ask only for metrics and labels that exist: every metric name in
their PromQL is one the worker or the web app exports (read from the prometheus_client registries in
worker/adapters/metrics.py) or Prometheus' own `up`; every label they match on or group by is one of that
metric's (or one Prometheus gives every target), and a label value matched where the values are known is one
of them; every exported metric has a panel; every panel query selects the dashboard's namespace; the
expressions are valid PromQL (promtool parses them as recording rules)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from tests.support import REPO
from worker.adapters import metrics
from worker.domain.events import OutcomeKind, PollReport

DASHBOARD = REPO / "deploy" / "grafana" / "nmbrs-sync.json"
RULES = REPO / "deploy" / "prometheus" / "alerts.yaml"
# What Prometheus adds to every scrape; the rules and the dashboard use `up` only.
PROMETHEUS_OWN = {"up"}
# The series names a metric family shows in the text format, by its type (prometheus_client's names).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
# The metrics issue #17 asks the dashboard to show.
ISSUE_METRICS = (
    "nmbrs_sync_outcomes_total",
    "nmbrs_sync_dead_letters_total",
    "nmbrs_sync_polls_total",
    "nmbrs_sync_poll_duration_seconds",
    "nmbrs_sync_poll_last_success_timestamp_seconds",
    "nmbrs_sync_mass_change_hold_active",
    "nmbrs_sync_soap_calls_total",
    "nmbrs_sync_soap_throttled_total",
    "nmbrs_sync_open_questions",
    "nmbrs_sync_oldest_open_question_age_seconds",
    "nmbrs_sync_decision_latency_seconds",
    "nmbrs_sync_consumer_lag",
    # Leave recalculations are outcomes_total{kind="leave_recalculated"}: one outcome per employee recalculated.
    "nmbrs_sync_ready",
    "nmbrs_sync_dependency_up",
    "nmbrs_sync_web_requests_total",
    "nmbrs_sync_web_request_duration_seconds",
)


def exported_families() -> dict[str, set[str]]:
    """Each exported metric (as written in the code: counters with _total) -> the series names it shows."""
    families: dict[str, set[str]] = {}
    registries = [value for value in vars(metrics).values() if isinstance(value, CollectorRegistry)]
    for registry in registries:
        for family in registry.collect():
            names = {family.name + suffix for suffix in SUFFIXES[family.type]}
            families[family.name + ("_total" if family.type == "counter" else "")] = names
    return families


EXPORTED = set().union(*exported_families().values()) | PROMETHEUS_OWN

# The labels Prometheus gives every series of a target: job and instance always; the Prometheus Operator's
# ServiceMonitor (the Helm chart's) adds namespace, service, pod, container and endpoint. The chart's
# relabelling only sets job, and it copies no pod or service labels (no podTargetLabels or targetLabels).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "service", "pod", "container", "endpoint"})
# Label values that are known: an equality matcher with another value never matches anything.
KNOWN_VALUES = {
    ("nmbrs_sync_outcomes_total", "kind"): {kind.value for kind in OutcomeKind},
    # A skipped poll (another replica polls) is never counted.
    ("nmbrs_sync_polls_total", "result"): set(get_args(PollReport.model_fields["result"].annotation)) - {"skipped"},
    ("nmbrs_sync_dead_letters_total", "reason_class"): {"malformed", "handler_error"},  # metrics.reason_class
    ("nmbrs_sync_events_total", "result"): {"handled", "dead_lettered"},  # entrypoints/consuming.py
}


def series_labels() -> dict[str, frozenset[str]]:
    """Each series name -> the labels its series carry: the metric's own label names (its prometheus_client
    object's), le on a histogram's buckets, quantile on a summary's quantiles, and the target's labels."""
    objects = {
        value._name + ("_total" if value._type == "counter" else ""): value
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase)
    }
    families = exported_families()
    assert objects.keys() == families.keys(), "a metric in a registry that is no module attribute, or vice versa"
    labels = dict.fromkeys(PROMETHEUS_OWN, TARGET_LABELS)
    for name, series in families.items():
        metric = objects[name]
        for series_name in series:
            extra = set()
            if metric._type == "histogram" and series_name.endswith("_bucket"):
                extra = {"le"}
            elif metric._type == "summary" and series_name == metric._name:
                extra = {"quantile"}
            labels[series_name] = frozenset({*metric._labelnames, *extra}) | TARGET_LABELS
    return labels


SERIES_LABELS = series_labels()

# PromQL words that look like metric names: operators, modifiers and number literals (functions are told
# apart by their parenthesis).
KEYWORDS = set("and or unless atan2 bool offset inf nan".split())
AGGREGATIONS = set("sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk".split())
GROUPING_CLAUSES = ("by", "without", "on", "ignoring", "group_left", "group_right")
TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<range>\[[^\]]*\])
    |(?P<variable>\$\{[^}]*\}|\$\w+)
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*)
    |(?P<name>[A-Za-z_:][\w:]*)
    |(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>,(){}@])""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Selector:
    metric: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


@dataclass(frozen=True)
class Grouping:
    clause: str  # by, without, on, ignoring, group_left, group_right
    labels: tuple[str, ...]
    metrics: frozenset[str]  # what it groups: an aggregation's argument; a binary operation's whole expression


def tokens(expr: str) -> list[tuple[str, str]]:
    """(kind, text) of each token; strings, ranges and subqueries ([...]) and Grafana variables are one each."""
    found, position = [], 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        assert match, f"cannot read PromQL at {expr[position:]!r}"
        if match.lastgroup != "space":
            found.append((str(match.lastgroup), match.group()))
        position = match.end()
    return found


def parse(expr: str) -> tuple[list[Selector], list[Grouping]]:
    """The selectors of a PromQL expression (possibly with Grafana variables), and its label lists with the
    metrics each applies to. Enough PromQL for these rules and queries; what it does not know fails."""
    found = tokens(expr)
    texts = [text for _, text in found]
    partner: dict[int, int] = {}
    stack = []
    for index, text in enumerate(texts):
        if text == "(":
            stack.append(index)
        elif text == ")":
            partner[index] = stack.pop()
            partner[partner[index]] = index

    def matchers(index: int) -> tuple[tuple[tuple[str, str, str], ...], int]:
        """The matchers from the token after a {, and the index after its }."""
        read = []
        while texts[index] != "}":
            (label_kind, label), (_, operator), (value_kind, value) = found[index : index + 3]
            assert label_kind == "name" and operator in ("=", "!=", "=~", "!~") and value_kind == "string", expr
            read.append((label, operator, value[1:-1] if value[0] == "`" else str(ast.literal_eval(value))))
            index += 3
            if texts[index] == ",":
                index += 1
        return tuple(read), index + 1

    selectors: list[tuple[int, Selector]] = []
    groupings: list[tuple[str, tuple[str, ...], int, int]] = []  # clause, labels, scope (token indexes)
    index = 0
    while index < len(found):
        kind, text = found[index]
        following = texts[index + 1] if index + 1 < len(found) else None
        if kind == "name" and text in GROUPING_CLAUSES:
            labels: tuple[str, ...] = ()
            after = index + 1
            if following == "(":  # group_left may have no list
                labels = tuple(t for t in texts[index + 2 : partner[index + 1]] if t != ",")
                after = partner[index + 1] + 1
            if text in ("by", "without"):
                if texts[index - 1] == ")":  # sum (argument) by (labels)
                    first, last = partner[index - 1], index - 1
                    aggregation = texts[first - 1]
                else:  # sum by (labels) (argument)
                    first, last = after, partner[after]
                    aggregation = texts[index - 1]
                assert aggregation in AGGREGATIONS, f"{text} after {aggregation!r}: {expr}"
            else:
                first, last = 0, len(found)
            groupings.append((text, labels, first, last))
            index = after
        elif (
            kind == "name" and following != "(" and text.lower() not in KEYWORDS and following not in ("by", "without")
        ):
            read: tuple[tuple[str, str, str], ...] = ()
            after = index + 1
            if following == "{":
                read, after = matchers(index + 2)
            selectors.append((index, Selector(text, read)))
            index = after
        elif text == "{":  # a selector without a metric name
            read, after = matchers(index + 1)
            selectors.append((index, Selector(None, read)))
            index = after
        else:
            index += 1
    return [selector for _, selector in selectors], [
        Grouping(clause, labels, frozenset(s.metric for i, s in selectors if first <= i <= last and s.metric))
        for clause, labels, first, last in groupings
    ]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (possibly with Grafana variables) selects."""
    return {selector.metric for selector in parse(expr)[0] if selector.metric}


def label_problems(expr: str) -> list[str]:
    """Labels the expression matches or groups by that its metrics do not have, and known labels' values
    that its matchers cannot match. Metrics that are not exported are another test's business."""
    selectors, groupings = parse(expr)
    problems = []
    for selector in selectors:
        known = SERIES_LABELS.get(selector.metric or "")
        if known is None:
            continue
        for label, operator, value in selector.matchers:
            if label not in known:
                problems.append(f"{selector.metric} has no label {label!r}")
            values = KNOWN_VALUES.get((str(selector.metric), label))
            if values is None or "$" in value:  # a Grafana variable: its values are the dashboard's
                continue
            if operator in ("=", "!="):
                matched = value in values
            else:
                matched = any(re.fullmatch(value, known_value) for known_value in values)
            if not matched:
                problems.append(f"{selector.metric}{{{label}{operator}{value!r}}}: {label} is one of {sorted(values)}")
    for grouping in groupings:
        known = frozenset().union(*(SERIES_LABELS.get(metric, frozenset()) for metric in grouping.metrics))
        for label in grouping.labels:
            if label not in known:
                problems.append(f"{grouping.clause} ({label}): none of {sorted(grouping.metrics)} has it")
    return problems


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])  # a collapsed row holds its panels
    return found


def dashboard_exprs() -> dict[str, list[str]]:
    """Panel title -> the PromQL of its queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in panels(dashboard) if p["type"] != "row"}


def rule_exprs() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule.get("alert") or rule["record"]: rule["expr"] for group in groups for rule in group["rules"]}


def annotation_queries() -> dict[str, list[str]]:
    """Alert -> the PromQL its annotations query (printf of a backquoted query, piped to query), %s filled in."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        rule["alert"]: [
            query.replace("%s", "x")
            for text in rule.get("annotations", {}).values()
            for query in re.findall(r"printf\s+`([^`]*)`", text)
        ]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


def variable_queries(dashboard: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Query variable -> the selector and the label of its label_values(selector, label)."""
    found = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
            assert match, variable["definition"]
            assert variable["query"]["query"] == variable["definition"], variable["name"]
            found[variable["name"]] = (match.group(1), match.group(2))
    return found


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (job) (rate(a_total{job="x", route=~"/a/{id}"}[5m])) > 0', {"a_total"}),
        ('histogram_quantile(0.95, sum by (le) (rate(b_bucket{x=~"$instance"}[$__rate_interval])))', {"b_bucket"}),
        ("time() - max(c > 0) unless on (job) d offset 30m and bool e", {"c", "d", "e"}),
        ("deriv((sum without (partition) (f))[10m:1m]) >= 0 or absent(up{job='w'}) * 1e9", {"f", "up"}),
        ('a * on (job) group_left (team) b or label_replace(c, "x", "$1", "y", "(.*)") > Inf', {"a", "b", "c"}),
        ("sum(g) by (step) / ignoring (step) count(h:recorded)", {"g", "h:recorded"}),
    ],
)
def test_metric_names_are_read_from_promql_without_functions_labels_or_keywords(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('sum by (namespace, result) (increase(nmbrs_sync_polls_total{job="$worker_job"}[1h]))', None),
        ('sum by (job, kind) (increase(nmbrs_sync_polls_total{job="nmbrs-sync-worker"}[1h]))', "by (kind)"),
        ('nmbrs_sync_polls_total{job="nmbrs-sync-worker", kind="applied"}', "no label 'kind'"),
        ("sum by (job, consumer, reason_clas) (increase(nmbrs_sync_dead_letters_total[15m])) > 0", "reason_clas"),
        ("sum(nmbrs_sync_dead_letters_total) by (reason_clas)", "reason_clas"),
        ('nmbrs_sync_dead_letters_total{reason_class="handler_error"}', None),
        ('nmbrs_sync_dead_letters_total{reason_class!="handlererror"}', "reason_class is one of"),
        ('nmbrs_sync_outcomes_total{kind="leave_recalculated"}', None),
        ('nmbrs_sync_outcomes_total{kind="leave_recalculatd"}', "kind is one of"),
        ('nmbrs_sync_outcomes_total{kind=~"applied|auto_.*"}', None),
        ('nmbrs_sync_outcomes_total{kind=~"aplied"}', "kind is one of"),
        ('nmbrs_sync_outcomes_total{kind=~"$kind"}', None),
        ('nmbrs_sync_polls_total{result="failed"} + nmbrs_sync_polls_total{result="fail"}', "result is one of"),
        ('increase(nmbrs_sync_events_total{result="dead_lettered"}[15m])', None),
        ('increase(nmbrs_sync_events_total{result="dead_letter"}[15m])', "result is one of"),
        ("histogram_quantile(0.5, sum by (le) (rate(nmbrs_sync_poll_duration_seconds_bucket[5m])))", None),
        ("sum by (le) (rate(nmbrs_sync_poll_duration_seconds_count[5m]))", "by (le)"),
        ('max by (namespace, pod) (nmbrs_sync_ready{container="worker"})', None),  # a ServiceMonitor's
        ("sum by (topic) (nmbrs_sync_consumer_lag) unless on (topic) sum by (topic) (nmbrs_sync_events_total)", None),
        ("sum by (topic) (nmbrs_sync_consumer_lag) unless on (topik) nmbrs_sync_events_total", "on (topik)"),
        ("nmbrs_sync_ready * on (instance) group_left (step) nmbrs_sync_open_questions", None),
        ("sum by (step) (nmbrs_sync_ready) * on (instance) group_left (step) nmbrs_sync_open_questions", "by (step)"),
        ('absent(up{job="nmbrs-sync-worker", namespace="prod"})', None),
        ('up{job="nmbrs-sync-worker", agent="decisions"}', "no label 'agent'"),
    ],
)
def test_labels_and_their_values_are_checked_against_the_metrics_they_apply_to(expr: str, problem: str | None) -> None:
    problems = label_problems(expr)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_the_dashboard_reads_its_datasource_from_a_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    queried = [p for p in panels(dashboard) if p["type"] != "row"]
    sources = [p["datasource"] for p in queried] + [t["datasource"] for p in queried for t in p["targets"]]
    assert sources and all(s == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for s in sources)
    assert len({p["id"] for p in panels(dashboard)}) == len(panels(dashboard))


def test_every_panel_queries_only_metrics_that_are_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    unknown: dict[str, set[str]] = {}
    for title, exprs in dashboard_exprs().items():
        assert exprs, f"panel {title!r} has no query"
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"panel {title!r}: no metric in {expr!r}"
            if names - EXPORTED:
                unknown.setdefault(title, set()).update(names - EXPORTED)
    for name, (selector, _label) in variable_queries(dashboard).items():
        if missing := metric_names(selector) - EXPORTED:
            unknown[f"variable {name}"] = missing
    assert not unknown, f"metrics neither the worker nor the web app exports: {unknown}"


def test_every_label_a_panel_or_variable_uses_is_one_its_metrics_have() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    problems = {title: label_problems(expr) for title, exprs in dashboard_exprs().items() for expr in exprs}
    for name, (selector, label) in variable_queries(dashboard).items():
        problems[f"variable {name}"] = label_problems(f"group by ({label}) ({selector})")
    assert {title: found for title, found in problems.items() if found} == {}


def test_every_label_an_alert_rule_uses_is_one_its_metrics_have() -> None:
    queries = annotation_queries()
    assert any(queries.values()), "no annotation query found: does the pattern still read them?"
    problems = {name: label_problems(expr) for name, expr in rule_exprs().items()}
    problems |= {
        f"{name} (annotation)": [p for q in found for p in label_problems(q)] for name, found in queries.items()
    }
    assert {name: found for name, found in problems.items() if found} == {}


def test_every_panel_query_selects_the_chosen_namespaces_and_keeps_them_apart() -> None:
    # One Prometheus may scrape several releases (staging and production): the variable chooses, and an
    # aggregation over more than one keeps each apart. On a plain VM there is no namespace label: "All" is
    # .*, which matches the empty value.
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    namespace = variables["namespace"]
    assert namespace["type"] == "query" and namespace["multi"] and namespace["includeAll"]
    assert namespace["allValue"] == ".*"
    assert variable_queries(dashboard)["namespace"] == ('up{job="$worker_job"}', "namespace")
    names = list(variables)
    assert names.index("namespace") < names.index("instance"), "the workers offered depend on the namespace"
    wrong = {}
    for title, exprs in dashboard_exprs().items():
        for expr in exprs:
            selectors, groupings = parse(expr)
            for selector in selectors:
                matchers = {(label, operator): value for label, operator, value in selector.matchers}
                if matchers.get(("namespace", "=~")) != "$namespace" or matchers.get(("job", "=")) not in (
                    "$worker_job",
                    "$web_job",
                ):
                    wrong.setdefault(title, []).append(f"{selector.metric}: {selector.matchers}")
            wrong.setdefault(title, []).extend(
                f"{g.clause} {g.labels}" for g in groupings if g.clause == "by" and "namespace" not in g.labels
            )
    (instance,) = parse(variable_queries(dashboard)["instance"][0])[0]
    assert ("namespace", "=~", "$namespace") in instance.matchers
    assert {title: found for title, found in wrong.items() if found} == {}


def test_every_alert_rule_queries_only_metrics_that_are_exported() -> None:
    unknown = {name: metric_names(expr) - EXPORTED for name, expr in rule_exprs().items()}
    assert all(metric_names(expr) for expr in rule_exprs().values())
    assert not {name: missing for name, missing in unknown.items() if missing}


def test_every_metric_the_issue_lists_is_exported_and_has_a_panel() -> None:
    families = exported_families()
    shown = set().union(*(metric_names(expr) for exprs in dashboard_exprs().values() for expr in exprs))
    assert [m for m in ISSUE_METRICS if m not in families] == [], "listed in issue #17 but not exported"
    assert [m for m in ISSUE_METRICS if not families[m] & shown] == [], "exported but on no panel"


def test_every_exported_metric_has_a_panel() -> None:
    shown = set().union(*(metric_names(expr) for exprs in dashboard_exprs().values() for expr in exprs))
    assert [name for name, series in exported_families().items() if not series & shown] == []


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses rule expressions offline: each query becomes a recording rule, Grafana's variables
    # replaced by values of the right kind.
    values = {"$__rate_interval": "1m", "$worker_job": "nmbrs-sync-worker", "$web_job": "nmbrs-sync-web"}
    values |= {"$namespace": ".*", "$instance": ".*"}
    rules = []
    for index, expr in enumerate(expr for exprs in dashboard_exprs().values() for expr in exprs):
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"a Grafana variable this test does not know: {expr}"
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: ./dev test installs Debian's prometheus package (ensure_prometheus)")
    result = subprocess.run([binary, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
