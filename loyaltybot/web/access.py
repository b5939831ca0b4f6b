"""Who may see a dashboard page, and what every page of a channel starts from.

Every dashboard handler (the web edge's and the features') starts with ``require_access``: who is
logged in and whether they may manage the channel in the URL. Nobody else gets anything
of a channel but a 403/404 page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog
from aiohttp import web

from loyaltybot import settings
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.settings import StoredSettings
from loyaltybot.web.auth import User, current_user, may_manage
from loyaltybot.web.pages import PageError
from loyaltybot.web.state import BANK, CONFIG, STORE

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Access:
    """A logged-in user who may manage this channel."""

    user: User
    channel: str
    channel_id: int

    @property
    def actor(self) -> str:
        """Who the ledger names for what they do here."""
        return f"dashboard:{self.user.login}"


async def require_user(request: web.Request) -> User:
    """The logged-in user; a GET without one goes to the login page and comes back."""
    user = await current_user(request)
    if user is None:
        if request.method == "GET":
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
        raise PageError(403, "Your session has ended. Log in again.")
    return user


async def require_access(request: web.Request) -> Access:
    """Raises PageError 403/404 unless the user may manage the channel in the URL."""
    user = await require_user(request)
    channel = request.match_info["channel"]
    config = request.app[CONFIG].current
    if channel not in config.channels:
        raise PageError(404, "There is no such channel here.")
    if not may_manage(config, user.login, channel):
        log.warning("dashboard_access_denied", login=user.login, channel=channel)
        raise PageError(
            403,
            f"Only #{channel}'s broadcaster and the admins in config.toml can manage it."
            f" You are logged in as {user.login}.",
        )
    try:
        channel_id = request.app[BANK].channel_id(channel)
    except UnknownChannel:
        raise PageError(404, "There is no such channel here.") from None
    return Access(user, channel, channel_id)


async def stored_settings(request: web.Request, channel_id: int) -> StoredSettings:
    """The channel's settings and who owns each (the file or the dashboard)."""
    return await request.app[STORE].read(lambda conn: settings.load(conn, channel_id))


def context(access: Access, tab: str, **extra: Any) -> dict[str, Any]:
    """What every channel page's template gets: the channel and the tab it is on."""
    return {"channel": access.channel, "tab": tab, **extra}


def public_base(request: web.Request) -> str:
    """Where viewers reach this server (the public URL, else the request's origin)."""
    config = request.app[CONFIG].current
    return (config.web.public_url or str(request.url.origin())).rstrip("/")


def int_param(raw: str | None) -> int | None:
    """A query parameter that must be a whole number (a page, an id), else None."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)
