"""The web app's operational endpoints, open without signing in (they show no personal data): /healthz (the
process answers), /readyz (its database answers within 2 s) and /metrics (its own request metrics)."""

from __future__ import annotations

from aiohttp import web

from worker.adapters import metrics
from worker.adapters.database import unreachable
from worker.entrypoints.web.app import CONTEXT

ROUTES = web.RouteTableDef()
READY_TIMEOUT_S = 2.0


@ROUTES.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@ROUTES.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    problem = await unreachable(request.app[CONTEXT].pool, READY_TIMEOUT_S)
    problems = [problem] if problem else []
    return web.json_response({"ready": not problems, "problems": problems}, status=503 if problems else 200)


@ROUTES.get("/metrics")
async def prometheus(_request: web.Request) -> web.Response:
    body, content_type = metrics.exposition(metrics.WEB_REGISTRY)
    # As a header: aiohttp refuses a content_type argument that names the charset, as Prometheus' does.
    return web.Response(body=body, headers={"Content-Type": content_type})
