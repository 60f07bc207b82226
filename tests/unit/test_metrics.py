"""Metric labels that must stay few and meaningful (a label per record would flood Prometheus)."""

from __future__ import annotations

from worker.adapters import metrics
from worker.adapters.nmbrs.errors import NmbrsNotFoundError, NmbrsThrottledError, NmbrsTimeoutError, NmbrsUnknownFault


def test_a_soap_result_names_the_nmbrs_fault_code_or_else_the_error_class() -> None:
    assert metrics.soap_result(None) == "ok"
    assert metrics.soap_result(NmbrsUnknownFault("no such company", code=1003)) == "fault_1003"
    assert metrics.soap_result(NmbrsUnknownFault("no code given")) == "NmbrsUnknownFault"
    assert metrics.soap_result(NmbrsNotFoundError("x", code=2001)) == "fault_2001"
    assert metrics.soap_result(NmbrsThrottledError(None)) == "NmbrsThrottledError"
    assert metrics.soap_result(NmbrsTimeoutError("slow")) == "NmbrsTimeoutError"


def test_the_web_app_exports_only_its_own_metrics_and_the_worker_none_of_the_web_apps() -> None:
    web, _ = metrics.exposition(metrics.WEB_REGISTRY)
    worker, _ = metrics.exposition()
    assert b"nmbrs_sync_web_requests_total" in web and b"nmbrs_sync_poll" not in web
    assert b"nmbrs_sync_poll_last_success_timestamp_seconds" in worker and b"nmbrs_sync_web_" not in worker
