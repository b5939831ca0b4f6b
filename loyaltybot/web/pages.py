"""Rendering pages: the shared template context, the Jinja filters, and the one error
type handlers raise to show a visitor a clean message.

Templates are autoescaped (aiohttp-jinja2's default, set explicitly in ``app``); nothing
here marks text as safe.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from loyaltybot.points.amounts import format_points
from loyaltybot.web.auth import csrf_token, current_user, managed_channels, take_flashes
from loyaltybot.web.forms import display_value
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import CLOCK, CONFIG


class PageError(Exception):
    """Stop and show the visitor ``message`` with HTTP ``status`` (no traceback, no data)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """A dashboard page: the logged-in user, their channels, flashes and the CSRF token
    are there for the layout."""
    session = await get_session(request)
    user = await current_user(request)
    config = request.app[CONFIG].current
    base: dict[str, Any] = {
        "user": user,
        "my_channels": managed_channels(config, user.login) if user else [],
        "csrf_token": csrf_token(session) if user else "",
        "flashes": take_flashes(session),
        "now_ms": now_ms(request),
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def render_public(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """A public page: touches no session, so it sets no cookie and caches cleanly."""
    base: dict[str, Any] = {
        "user": None,
        "my_channels": [],
        "csrf_token": "",
        "flashes": [],
        "now_ms": now_ms(request),
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def now_ms(request: web.Request) -> int:
    return round(request.app[CLOCK].now() * 1000)


# ---- filters --------------------------------------------------------------------------


def points(value: int) -> str:
    return format_points(int(value))


def signed_points(value: int) -> str:
    return f"+{value:,}" if value > 0 else f"−{-value:,}" if value < 0 else "0"


def duration(seconds: int | float) -> str:
    """Watch time the way people say it: 3h 20m, 45m, 2d 4h."""
    minutes = int(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


def timestamp(ms: int) -> str:
    """An absolute UTC time for tables and CSV (the browser shows local time on hover)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def ago(ms: int, now: int | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', '12 days ago'."""
    now = round(time.time() * 1000) if now is None else now
    seconds = max(0, (now - ms) // 1000)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86_400
    return f"{days} day{'s' if days != 1 else ''} ago"


FILTERS = {
    "points": points,
    "signed_points": signed_points,
    "duration": duration,
    "timestamp": timestamp,
    "iso": iso,
    "ago": ago,
    "plain": display_value,
}
