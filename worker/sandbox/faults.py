"""Fault injection: the faults POST /admin/faults set up and the rule that picks them for a call."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field

from pydantic import BaseModel


class FaultSpec(BaseModel):
    """An injected fault; fields left out do not apply."""

    model_config = {"extra": "forbid"}

    operation: str | None = None
    company_id: int | None = None
    count: int | None = None
    code: int | None = None
    http_status: int | None = None
    truncate: bool = False
    latency_ms: int = 0
    throttle_per_s: float | None = None
    retry_after_s: int | None = None


@dataclass
class Faults:
    """The injected faults, and the times of the calls in the last second (for `throttle_per_s`)."""

    active: list[FaultSpec] = field(default_factory=list)
    recent: collections.deque[float] = field(default_factory=collections.deque)

    def add(self, fault: FaultSpec) -> int:
        """Inject `fault`; returns how many are active."""
        self.active.append(fault)
        return len(self.active)

    def clear(self) -> None:
        self.active.clear()

    async def apply(self, operation: str, company_id: int | None) -> FaultSpec | None:
        """Apply latency and throttling of every matching fault; return the first one with an outcome."""
        now = time.monotonic()
        self.recent.append(now)
        while self.recent and self.recent[0] < now - 1:
            self.recent.popleft()
        delay = 0.0
        outcome = None
        for fault in list(self.active):
            if fault.operation not in (None, operation) or fault.company_id not in (None, company_id):
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.active.remove(fault)
            delay += fault.latency_ms / 1000
            if fault.throttle_per_s is not None and len(self.recent) > fault.throttle_per_s:
                delay += 0.5  # "if exceeded a delay of half a second will occur"
            if outcome is None and (fault.code is not None or fault.http_status is not None or fault.truncate):
                outcome = fault
        if delay:
            await asyncio.sleep(delay)
        return outcome
