"""`nmbrs-sync web`: the HR web app in a process of its own, on HR_WEB_BIND:HR_WEB_PORT."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from worker.adapters.command_requests import BrokerUnavailable
from worker.adapters.database import CONNECT_ERRORS
from worker.adapters.live_feed import FeedUnavailable
from worker.config import Settings
from worker.entrypoints.web.app import build_context, create_app

log = logging.getLogger(__name__)
# The database or the broker not there at start: said in one line, not a traceback.
START_ERRORS: tuple[type[BaseException], ...] = (*CONNECT_ERRORS, FeedUnavailable, BrokerUnavailable)


def serve(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; 3 when the database or the broker cannot be reached at start."""

    try:
        web.run_app(
            _app(settings),
            host=settings.hr_web_bind,
            port=settings.hr_web_port,
            print=lambda _: print(f"HR web app on http://{settings.hr_web_bind}:{settings.hr_web_port}/", flush=True),
            access_log=None,
            shutdown_timeout=5,
        )
    except START_ERRORS as error:
        print(f"nmbrs-sync web: cannot start: {error}", file=sys.stderr)
        return 3
    return 0


async def _app(settings: Settings) -> web.Application:
    """The app with its resources opened before the first request and closed after the last."""
    contexts = build_context(settings)
    ctx = await anext(contexts)
    app = create_app(ctx)

    async def close(_app: web.Application) -> None:
        await contexts.aclose()

    app.on_cleanup.append(close)
    return app
