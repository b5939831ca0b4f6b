"""The web edge's own dashboard pages: the channels list, a channel's overview, and its
settings (SPEC §7). Features add the rest (``Feature.routes()``).

Every handler starts with ``require_access`` (``access``). Settings go through
``settings.apply_dashboard``; the form is validated in ``forms``, and a refused form is
shown again with what was typed and one clear message per field.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from loyaltybot import settings
from loyaltybot.db import Tx
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.settings import SETTING_KEYS, FileOwned, StoredSettings
from loyaltybot.web import forms
from loyaltybot.web.access import (
    Access,
    context,
    public_base,
    require_access,
    require_user,
    stored_settings,
)
from loyaltybot.web.auth import flash, managed_channels
from loyaltybot.web.pages import render
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import BANK, CONFIG, STATS, STORE

log = structlog.get_logger(__name__)

# ---- channels and overview ------------------------------------------------------------


async def channels(request: web.Request) -> web.StreamResponse:
    """GET /dashboard: the channels this account may manage."""
    user = await require_user(request)
    config = request.app[CONFIG].current
    bank = request.app[BANK]
    cards = []
    for channel in managed_channels(config, user.login):
        try:
            count, held = await bank.channel_counts(channel)
        except UnknownChannel:
            continue
        cards.append({"channel": channel, "viewers": count, "points": held})
    return await render(request, "channels.html", {"cards": cards, "tab": "channels"})


async def overview(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}: the channel at a glance."""
    access = await require_access(request)
    bank = request.app[BANK]
    count, held = await bank.channel_counts(access.channel)
    stored = await stored_settings(request, access.channel_id)
    top = await bank.top(access.channel, 5)
    ranked = await bank.ranked_count(access.channel)
    recent, _ = await bank.ledger_page(access.channel, limit=8)
    stats = [stat for source in request.app[STATS] for stat in await source(access.channel)]
    page_context = context(
        access,
        "overview",
        viewers=count,
        held=held,
        ranked=ranked,
        top=top,
        recent=recent,
        values=stored.values,
        stats=stats,
        public_url=public_base(request),
    )
    return await render(request, "overview.html", page_context)


# ---- settings -------------------------------------------------------------------------


def _settings_fields(stored: StoredSettings, typed: dict[str, str]) -> list[dict[str, Any]]:
    fields = []
    for key in SETTING_KEYS:
        info = forms.field_info(key)
        value = getattr(stored.values, key)
        fields.append(
            {
                "key": key,
                "info": info,
                "bool": forms.is_bool(key),
                "value": typed.get(key, forms.display_value(value)),
                "checked": (typed[key] == "true") if key in typed else bool(value),
                "file": stored.owner(key) == "file",
            }
        )
    return fields


async def settings_page(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/settings."""
    access = await require_access(request)
    stored = await stored_settings(request, access.channel_id)
    return await _render_settings(request, access, stored, {}, {})


async def _render_settings(
    request: web.Request,
    access: Access,
    stored: StoredSettings,
    typed: dict[str, str],
    errors: dict[str, str],
) -> web.Response:
    fields = _settings_fields(stored, typed)
    groups = [(g, [f for f in fields if f["info"].group == g]) for g in forms.GROUPS]
    page_context = context(
        access,
        "settings",
        groups=[(g, fs) for g, fs in groups if fs],
        errors=errors,
        file_path=str(request.app[CONFIG].current.path),
    )
    return await render(request, "settings.html", page_context, status=400 if errors else 200)


async def settings_save(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/{channel}/settings: validate everything, store what changed."""
    access = await require_access(request)
    stored = await stored_settings(request, access.channel_id)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    result = forms.parse_settings(form, stored)
    if not result.ok:
        return await _render_settings(request, access, stored, result.typed, result.errors)
    session = await get_session(request)
    if not result.changes:
        flash(session, "Nothing changed.", "info")
        raise web.HTTPSeeOther(request.path)

    def apply(tx: Tx) -> None:
        settings.apply_dashboard(tx, access.channel_id, result.changes, access.actor)

    try:
        await request.app[STORE].write(apply)
    except FileOwned as exc:
        errors = dict.fromkeys(exc.keys, "is set in config.toml; change it there")
        stored = await stored_settings(request, access.channel_id)
        return await _render_settings(request, access, stored, result.typed, errors)
    log.info(
        "settings_changed",
        channel=access.channel,
        by=access.user.login,
        keys=sorted(result.changes),
    )
    names = ", ".join(forms.field_info(k).label.lower() for k in sorted(result.changes))
    flash(session, f"Saved: {names}. New values apply from the next earning interval.")
    raise web.HTTPSeeOther(request.path)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/dashboard", channels, name="channels"),
        web.get("/dashboard/{channel}", overview),
        web.get("/dashboard/{channel}/settings", settings_page),
        web.post("/dashboard/{channel}/settings", settings_save),
    ]
