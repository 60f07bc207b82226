"""When a consumer counts as wedged: messages wait for it and it has handled none for too long. A consumer with
nothing waiting is idle, not wedged, however long ago its last message was."""

from __future__ import annotations

from collections.abc import Mapping


def wedged(lag: Mapping[str, int], progress_at: Mapping[str, float], now: float, limit_s: float) -> list[str]:
    """The consumers with lag whose last progress (a message handled, or being caught up) is older than
    `limit_s`; `progress_at` and `now` on one monotonic clock. A consumer never seen progressing counts from 0."""
    return sorted(name for name, waiting in lag.items() if waiting > 0 and now - progress_at.get(name, 0.0) > limit_s)
