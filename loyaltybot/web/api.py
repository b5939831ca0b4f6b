"""Public routes of the web edge: the landing page, health and metrics (features add their
public pages, such as leaderboards). None of them needs a login. ``ApiError`` and
``query_limit`` are what every JSON route shares.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from loyaltybot.metrics import CONTENT_TYPE
from loyaltybot.web.auth import current_user
from loyaltybot.web.pages import render
from loyaltybot.web.state import CONFIG, HEALTH, METRICS, STORE

API_MAX_LIMIT = 100
PAGE_MAX_LIMIT = 100
HEALTH_TIMEOUT = 2.0  # seconds the database gets to answer /healthz


class ApiError(Exception):
    """A JSON error answer: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def query_limit(raw: str | None, default: int, maximum: int) -> int | None:
    """The ``limit`` query parameter, or None when it is not a whole number in range."""
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4:
        return None
    value = int(raw)
    return value if 1 <= value <= maximum else None


async def index(request: web.Request) -> web.StreamResponse:
    """GET /: logged in -> the dashboard; otherwise 'Log in with Twitch'."""
    if await current_user(request) is not None:
        raise web.HTTPFound("/dashboard")
    channels = sorted(request.app[CONFIG].current.channels)
    return await render(request, "index.html", {"public_channels": channels})


async def healthz(request: web.Request) -> web.StreamResponse:
    """GET /healthz: 200 when the database answers and chat is connected, else 503."""
    database = "ok"
    try:
        await asyncio.wait_for(
            request.app[STORE].ping(), HEALTH_TIMEOUT
        )
    except TimeoutError:
        database = "timeout"
    except Exception:  # a closed or broken store: unhealthy, not a 500
        database = "error"
    try:
        chat = "connected" if request.app[HEALTH]() else "disconnected"
    except Exception:
        chat = "unknown"
    healthy = database == "ok" and chat == "connected"
    body = {"status": "ok" if healthy else "unavailable", "database": database, "chat": chat}
    return web.json_response(
        body, status=200 if healthy else 503, headers={"Cache-Control": "no-store"}
    )


async def metrics(request: web.Request) -> web.StreamResponse:
    """GET /metrics: Prometheus text format."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index, name="index")
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
