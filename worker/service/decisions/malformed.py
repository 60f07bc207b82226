"""A 'rejected' outcome for a malformed decision or command, so that its sender hears why."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime

from worker.domain.events import Outcome, OutcomeKind, outcome_for
from worker.domain.inbound import MAX_COMMAND_BYTES, cut_reason


def rejection_for_malformed(id_field: str, now: Callable[[], datetime]) -> Callable[[bytes, str], Outcome | None]:
    """A 'rejected' outcome for a malformed command whose id can still be read, so its sender hears why.

    Never raises, whatever the value: the consumer shell calls it for a message it could not parse, and an
    error escaping here (a value nested 100,000 deep makes json.loads raise RecursionError) would crash the
    agent on that message again and again."""

    def reject(value: bytes, reason: str) -> Outcome | None:
        if len(value) > MAX_COMMAND_BYTES:
            return None
        try:
            raw_id = json.loads(value)[id_field]
            if not isinstance(raw_id, str):  # str() of a 32-digit number would read as a UUID's hex digits
                return None
            command_id = uuid.UUID(raw_id)
        except Exception:  # RecursionError, ValueError, TypeError, KeyError, ...: no id to answer to
            return None
        return outcome_for(command_id, OutcomeKind.REJECTED, "malformed", now(), cut_reason(reason))

    return reject
