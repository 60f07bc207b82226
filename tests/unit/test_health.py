"""The wedged-consumer rule behind /healthz."""

from __future__ import annotations

from worker.domain.health import wedged


def test_a_consumer_is_wedged_only_with_messages_waiting_and_no_progress_for_longer_than_the_limit() -> None:
    lag = {"reconciler": 12, "decisions": 3, "follow-ups": 0, "sync-requests": 1}
    progress = {"reconciler": 1000.0, "decisions": 1590.0, "follow-ups": 0.0}
    # decisions progressed 10 s ago; follow-ups has nothing waiting (idle for ever is fine); sync-requests never
    # progressed since the start (counted from 0).
    assert wedged(lag, progress, now=1600.0, limit_s=300) == ["reconciler", "sync-requests"]
    assert wedged(lag, progress, now=1200.0, limit_s=300) == ["sync-requests"]
    assert wedged({}, progress, now=10_000.0, limit_s=300) == []  # lag not observed (broker away): no verdict
