"""LOG_FORMAT=json lines: one object each, with the ids a call passes, errors included, names as written."""

from __future__ import annotations

import json
import logging
import sys

from worker.config import Settings
from worker.entrypoints.logs import JsonFormatter, logging_config


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("worker.service.poller").makeRecord(
        "worker.service.poller", logging.WARNING, __file__, 1, message, ("Ölçer",), None, extra=extra
    )
    return made


def test_a_json_line_carries_level_logger_message_and_the_ids_given() -> None:
    line = json.loads(JsonFormatter().format(record("company %s failed", poll_id="p-1", company_id=3)))
    assert line["level"] == "WARNING" and line["logger"] == "worker.service.poller"
    assert line["message"] == "company Ölçer failed"
    assert (line["poll_id"], line["company_id"]) == ("p-1", "3") and "decision_id" not in line


def test_an_exception_goes_into_the_line_not_onto_lines_of_its_own() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failing = record("handler failed for %s")
        failing.exc_info = sys.exc_info()
    text = JsonFormatter().format(failing)
    assert "\n" not in text and "RuntimeError: boom" in json.loads(text)["error"]


def test_third_party_chatter_stays_below_info_unless_debugging() -> None:
    assert logging_config(Settings(log_level="INFO"))["loggers"]["httpx"]["level"] == "WARNING"
    assert logging_config(Settings(log_level="DEBUG"))["loggers"]["aiokafka"]["level"] == "DEBUG"
    assert logging_config(Settings(log_format="text"))["formatters"]["nmbrs_sync"] == {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"
    }
