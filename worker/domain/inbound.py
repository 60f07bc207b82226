"""Limits on what the worker accepts from outside, and how a refusal is worded (no I/O)."""

from __future__ import annotations

from pydantic import ValidationError

# Message size limits, checked before a value is parsed: parsing megabytes costs time and memory for nothing.
# A command (decision, follow-up, sync request) is a few hundred bytes, its texts are bounded far below this.
MAX_COMMAND_BYTES = 256 * 1024
# Change events come from our own poller and carry a whole record with its history: the largest one the
# sandbox datasets produce (an update with before and after) is about 3 KB. This is the Kafka producer's
# default max_request_size, so any event the poller could publish passes.
MAX_CHANGE_EVENT_BYTES = 1024 * 1024
MALFORMED_REASON_MAX = 2_000  # characters of the reason kept: the errors of a huge value can be huge too
MALFORMED_PROBLEMS_MAX = 20  # validation errors listed, the rest counted


def describe_validation_error(error: ValidationError) -> str:
    errors = error.errors(include_url=False, include_context=False, include_input=False)
    problems = [
        f"{'.'.join(str(p) for p in problem['loc']) or 'value'}: {problem['msg']}"
        for problem in errors[:MALFORMED_PROBLEMS_MAX]
    ]
    more = f"; and {len(errors) - MALFORMED_PROBLEMS_MAX} more" if len(errors) > MALFORMED_PROBLEMS_MAX else ""
    return cut_reason("malformed message: " + "; ".join(problems) + more)


def cut_reason(reason: str) -> str:
    """A reason kept to MALFORMED_REASON_MAX characters (the errors of a huge value can be huge too)."""
    return reason if len(reason) <= MALFORMED_REASON_MAX else reason[:MALFORMED_REASON_MAX] + " [cut]"
