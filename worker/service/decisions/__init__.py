"""The decision consumer: applies human decisions and follow-up commands, or rejects them with a reason.

Each decision runs in one transaction with its inbox claim (the same decision id twice has one effect)
and under the same per-record lock as the reconciler (a decision and a change never interleave). As the
reconciler does, it locks and loads the record's state, plans with the pure rules of worker/domain/decisions.py
and carries the plan out through the stores. Everything a decision did is recorded in `decisions.effect`, so
ongedaan_maken can reverse it.
"""

from worker.service.decisions.dispatch import DECISIONS, decision_published, handle_decision
from worker.service.decisions.follow_up import FOLLOW_UPS, handle_follow_up
from worker.service.decisions.malformed import rejection_for_malformed

__all__ = [
    "DECISIONS",
    "FOLLOW_UPS",
    "decision_published",
    "handle_decision",
    "handle_follow_up",
    "rejection_for_malformed",
]
