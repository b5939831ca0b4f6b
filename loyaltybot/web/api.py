"""Public routes: the landing page, leaderboards (JSON and HTML/OBS overlay), health and
metrics. None of them needs a login; none shows more than a leaderboard shows.

The leaderboard comes from the bank's in-memory standings (O(log n) per page), so the
JSON API answers without touching SQLite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from aiohttp import web

from loyaltybot import settings
from loyaltybot.metrics import CONTENT_TYPE
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.web.auth import current_user
from loyaltybot.web.pages import PageError, render, render_public
from loyaltybot.web.state import BANK, CONFIG, HEALTH, METRICS, STORE

API_MAX_LIMIT = 100
PAGE_MAX_LIMIT = 100
HEALTH_TIMEOUT = 2.0  # seconds the database gets to answer /healthz


class ApiError(Exception):
    """A JSON error answer: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _limit(raw: str | None, default: int, maximum: int) -> int | None:
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


async def leaderboard_json(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/channels/{channel}/leaderboard?limit=N (1..100, default 10)."""
    channel = request.match_info["channel"]
    if channel not in request.app[CONFIG].current.channels:
        raise ApiError(404, f"no channel named {channel[:25]!r} here")
    limit = _limit(request.query.get("limit"), 10, API_MAX_LIMIT)
    if limit is None:
        raise ApiError(400, f"limit must be a whole number from 1 to {API_MAX_LIMIT}")
    try:
        top = await request.app[BANK].top(channel, limit)
    except UnknownChannel:
        raise ApiError(404, f"no channel named {channel!r} here") from None
    body = [
        {"rank": s.rank, "user_id": s.user_id, "username": s.login, "points": s.points} for s in top
    ]
    return web.json_response(
        body,
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"},
    )


async def leaderboard_page(request: web.Request) -> web.StreamResponse:
    """GET /c/{channel}/leaderboard: public; ``?overlay=1`` is the OBS browser source
    (transparent, no chrome), refreshed every ``refresh`` seconds (default 15)."""
    channel = request.match_info["channel"]
    if channel not in request.app[CONFIG].current.channels:
        raise PageError(404, "There is no leaderboard for that channel here.")
    limit = _limit(request.query.get("limit"), 10, PAGE_MAX_LIMIT)
    if limit is None:
        raise PageError(400, f"limit must be a whole number from 1 to {PAGE_MAX_LIMIT}.")
    refresh = _limit(request.query.get("refresh"), 15, 3600)
    if refresh is None or refresh < 2:
        raise PageError(400, "refresh must be a whole number of seconds from 2 to 3600.")
    overlay = request.query.get("overlay", "") in ("1", "true", "yes")
    bank = request.app[BANK]
    try:
        top = await bank.top(channel, limit)
        channel_id = bank.channel_id(channel)
    except UnknownChannel:
        raise PageError(404, "There is no leaderboard for that channel here.") from None

    def read(conn: sqlite3.Connection) -> settings.ChannelSettings:
        return settings.load(conn, channel_id).values

    values = await request.app[STORE].read(read)
    context: dict[str, Any] = {
        "channel": channel,
        "rows": top,
        "limit": limit,
        "overlay": overlay,
        "refresh": refresh,
        "currency": values.currency_name_plural,
        "api_url": f"/api/v1/channels/{channel}/leaderboard?limit={limit}",
    }
    response = render_public(request, "public_leaderboard.html", context)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def healthz(request: web.Request) -> web.StreamResponse:
    """GET /healthz: 200 when the database answers and chat is connected, else 503."""
    database = "ok"
    try:
        await asyncio.wait_for(
            request.app[STORE].read(lambda c: c.execute("SELECT 1").fetchone()), HEALTH_TIMEOUT
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
    app.router.add_get("/api/v1/channels/{channel}/leaderboard", leaderboard_json)
    app.router.add_get("/c/{channel}/leaderboard", leaderboard_page, name="public_leaderboard")
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
