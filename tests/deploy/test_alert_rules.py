"""The alerting rules in deploy/prometheus: promtool accepts them and the example scrape configuration, their
unit tests (alerts.test.yaml) pass, every alert has a case that fires and one that stays quiet, and a rule that
can no longer fire makes those tests fail; every aggregation and match keeps namespace and job apart, and every
selector names its job by the literal the Helm chart replaces. promtool comes with Debian's prometheus package
(./dev test)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_dashboard import parse
from tests.support import REPO

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yaml"
RULE_TESTS = PROMETHEUS_DIR / "alerts.test.yaml"


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


ALERTS = [rule["alert"] for rule in alert_rules()]
# The job matchers as written: the chart's templates/prometheusrule.yaml replaces these literal strings with
# the jobs its ServiceMonitors set.
JOB_MATCHERS = ('job="nmbrs-sync-worker"', 'job="nmbrs-sync-web"')


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        # A failure, not a skip: CI must never pass without having checked the rules.
        pytest.fail("promtool is missing: ./dev test installs Debian's prometheus package (ensure_prometheus)")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules_and_the_example_scrape_configuration() -> None:
    rules = promtool("check", "rules", RULES.name)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"{len(ALERTS)} rules found" in rules.stdout
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    # A case for an alert that does not exist passes as "quiet" whatever the rules say.
    assert {case["alertname"] for case in cases} <= set(ALERTS)
    for alert in ALERTS:
        own = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in own), f"{alert}: no case where it fires"
        assert any(not case["exp_alerts"] for case in own), f"{alert}: no case where it stays quiet"


def test_the_unit_tests_fail_for_each_alert_that_can_no_longer_fire(tmp_path: Path) -> None:
    # promtool checks each case against its own alertname only, so one run with every rule disabled shows
    # whether each alert's firing cases would catch that alert alone being broken.
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule["expr"] = "vector(0) > 1"  # valid, and never true
    (tmp_path / RULES.name).write_text(yaml.safe_dump(groups, sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path)
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+), time:", result.stdout + result.stderr))
    assert failed == set(ALERTS)


def test_every_aggregation_and_match_keeps_namespace_and_job() -> None:
    # One Prometheus may watch several releases: an aggregation by job alone lets one namespace's healthy
    # series hide another's trouble (a max of both last successes, one's hold silencing the other's stale poll).
    wrong = {}
    for rule in alert_rules():
        for grouping in parse(rule["expr"])[1]:
            if grouping.clause in ("by", "on"):
                kept = {"namespace", "job"} <= set(grouping.labels)
            else:  # without, ignoring, group_left, group_right
                kept = not {"namespace", "job"} & set(grouping.labels)
            if not kept:
                wrong.setdefault(rule["alert"], []).append(f"{grouping.clause} ({', '.join(grouping.labels)})")
    assert wrong == {}


def test_every_selector_matches_its_job_by_the_literal_the_chart_replaces() -> None:
    for rule in alert_rules():
        selectors = parse(rule["expr"])[0]
        for selector in selectors:
            jobs = [(operator, value) for label, operator, value in selector.matchers if label == "job"]
            assert jobs in ([("=", "nmbrs-sync-worker")], [("=", "nmbrs-sync-web")]), (rule["alert"], selector)
        # As many literal matchers as selectors: none spelled otherwise (job = "...", job=~"...").
        assert sum(rule["expr"].count(literal) for literal in JOB_MATCHERS) == len(selectors), rule["alert"]
