"""The Grafana dashboard and the alert rules ask only for metrics that exist: every metric name in their PromQL
is one the worker or the web app exports (read from the prometheus_client registries in
worker/adapters/metrics.py) or Prometheus' own `up`; every exported metric has a panel; the expressions are
valid PromQL (promtool parses them as recording rules)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.support import REPO
from worker.adapters import metrics

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

# PromQL words that look like metric names: operators, modifiers and number literals (functions are told
# apart by their parenthesis).
KEYWORDS = set("and or unless atan2 bool offset by without on ignoring group_left group_right inf nan".split())


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (possibly with Grafana variables) selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", expr)  # strings (label values)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables outside strings ($__rate_interval)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    # Not after a digit or a dot: the unit of 30m, the exponent of 1e9, the decimals of 0.95.
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.groups()
        if call is None and name.lower() not in KEYWORDS:
            names.add(name)
    return names


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
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(selector, label): the label is not a metric.
            selector = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            assert selector, variable["definition"]
            if missing := metric_names(selector.group(1)) - EXPORTED:
                unknown[f"variable {variable['name']}"] = missing
    assert not unknown, f"metrics neither the worker nor the web app exports: {unknown}"


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
    values["$instance"] = ".*"
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
