"""How every nmbrs-sync process logs: LOG_FORMAT=text for people, json for a log pipeline (one object a line
with time, level, logger, message and the ids a record carries: poll, company, employee, event, decision).

Third-party chatter stays below INFO: aiokafka narrates every (re)subscription and httpx every call."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from worker.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Ids a log call may pass as `extra=` and a JSON line carries as fields of their own.
ID_FIELDS = (
    "poll_id",
    "company_id",
    "employee_id",
    "event_id",
    "decision_id",
    "command_id",
    "request_id",
    "user",
    "consumer",
    "topic",
    "partition",
    "offset",
)
QUIET_LOGGERS = ("aiokafka", "httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: str(value) for name in ID_FIELDS if (value := getattr(record, name, None)) is not None})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def logging_config(settings: Settings) -> dict[str, Any]:
    """A logging.config.dictConfig for the settings; the worker hands the same one to faust (mode)."""
    quiet = "DEBUG" if settings.log_level == "DEBUG" else "WARNING"
    formatter = {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"nmbrs_sync": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "nmbrs_sync", "stream": "ext://sys.stderr"}
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {name: {"level": quiet} for name in QUIET_LOGGERS},
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
