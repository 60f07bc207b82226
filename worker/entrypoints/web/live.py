"""Live page updates as server-sent events, fed from the outcomes and status topics through the process's one
LiveFeed: a new question, an outcome, a step turning red or a finished poll reach every open page without a
reload. Server-sent events rather than polling: one idle connection per tab instead of a query per tab every
few seconds, and an update arrives when it happens; the browser's EventSource reconnects by itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from aiohttp import web

from worker.adapters.live_feed import FeedItem
from worker.domain.events import OutcomeKind
from worker.entrypoints.web.app import CONTEXT, session_of

ROUTES = web.RouteTableDef()
HEARTBEAT_S = 15.0
# Outcomes a page shows as they happen; the rest (drift, leave, ...) only matter to who caused them.
SHOWN = frozenset({OutcomeKind.NEEDS_DECISION, OutcomeKind.APPLIED, OutcomeKind.AUTO_LINKED, OutcomeKind.REJECTED})


def event_of(item: FeedItem) -> tuple[str, dict[str, object]] | None:
    """The (event name, data) a page receives for a feed item, or None for what pages do not show."""
    if item.outcome is not None and item.outcome.kind in SHOWN:
        outcome = item.outcome
        name = "vraag" if outcome.kind is OutcomeKind.NEEDS_DECISION else "uitkomst"
        return name, {"subject": outcome.subject, "kind": outcome.kind.value, "reason": outcome.reason}
    if item.status is not None:
        return "stap", {"step": item.status.step, "status": item.status.status}
    if item.poll is not None:
        return "poll", {"result": item.poll.result, "status": item.poll.status}
    return None


async def _with_heartbeats(items: AsyncIterator[FeedItem]) -> AsyncIterator[FeedItem | None]:
    """The feed's items, and None whenever nothing came for HEARTBEAT_S (proxies close silent streams)."""
    iterator = aiter(items)
    pending: asyncio.Task[FeedItem] | None = None
    try:
        while True:
            pending = pending or asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_S)
            if done:
                yield pending.result()
                pending = None
            else:
                yield None
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending


@ROUTES.get("/live")
async def live(request: web.Request) -> web.StreamResponse:
    session_of(request)  # signed in (the middleware saw to it)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b"retry: 3000\n\n")
    with contextlib.suppress(ConnectionResetError):
        async for item in _with_heartbeats(request.app[CONTEXT].feed.subscribe()):
            if item is None:
                await response.write(b": still here\n\n")
            elif (event := event_of(item)) is not None:
                name, data = event
                await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
    return response
