"""Green/red per step, as the old sync screen showed it: red when a human must act, with the counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import AwareDatetime, Field

from worker.domain.events import Message


class StepStatus(Message):
    """The status of one step, on the compacted status topic under key 'step:<step>' (latest wins)."""

    event_type: Literal["step_status"] = "step_status"
    step: str
    status: Literal["green", "red"]
    counts: dict[str, int] = Field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    updated_at: AwareDatetime


def judge(
    step: str,
    counts: dict[str, int],
    at: AwareDatetime,
    poll_reasons: tuple[str, ...] = (),
    hold_counts: Mapping[str, int] | None = None,
) -> StepStatus:
    """Red means "a human must act": open questions, employees who cannot write time, missing leave.
    `hold_counts`: the breaker's counts of a held last poll."""
    reasons: list[str] = []
    if step in ("companies", "employees") and counts.get("pending", 0):
        reasons.append(f"{counts['pending']} waiting for a decision (Koppelen, Aanmaken, Blokkeren of Overslaan)")
    if step == "contracts" and counts.get("without_contract", 0):
        reasons.append(f"{counts['without_contract']} active employees have no current contract (cannot write time)")
    if step == "leave" and counts.get("not_calculated", 0):
        reasons.append(f"{counts['not_calculated']} employees have no leave calculation yet")
    if step == "poll":
        reasons.extend(poll_reasons)
        # The hold's numbers in the counts too, not only in its reason, as every other step shows its own.
        counts = {**counts, **{name: count for name, count in (hold_counts or {}).items() if count}}
    return StepStatus(
        step=step, status="red" if reasons else "green", counts=counts, reasons=tuple(reasons), updated_at=at
    )
