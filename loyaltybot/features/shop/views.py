"""The shop's pages: the dashboard's (items, stock, purchases; add, edit and remove the
dashboard's own items), the public page ``/c/{channel}/shop`` (also an OBS browser source,
refreshed every 2 s from ``/api/v1/channels/{channel}/shop``).

The item form validates with ``config.ShopItemConfig``, the model config.toml's items
pass, so the file and the form accept the same items; amounts follow SPEC §5 as in chat.
An item written in config.toml is shown read-only, as settings are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from loyaltybot.config import ShopItemConfig, validation_problems
from loyaltybot.features.shop.rules import NoSuchItem
from loyaltybot.features.shop.service import FileOwned, Item, NameTaken, Shop
from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.errors import InvalidAmount, UnknownChannel
from loyaltybot.web.access import Access, context, public_base, require_access, stored_settings
from loyaltybot.web.api import ApiError, query_limit
from loyaltybot.web.auth import flash
from loyaltybot.web.forms import display_value
from loyaltybot.web.pages import PageError, render, render_public
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import BANK, CONFIG

log = structlog.get_logger(__name__)

SCRIPT = Path(__file__).parent / "static" / "shop.js"
ACTIONS = ("chat", "title", "queue", "forward", "discord")
FIELDS = (
    "name",
    "cost",
    "description",
    "action",
    "message",
    "unlocks",
    "url",
    "webhook_url",
    "stock",
    "per_viewer",
    "cooldown_seconds",
    "global_cooldown_seconds",
)
_AMOUNTS = ("cost", "stock", "per_viewer")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
PUBLIC_RECENT = 5


# ---- the item form (pure) ---------------------------------------------------------------


@dataclass
class ItemForm:
    typed: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    item: ShopItemConfig | None = None


def parse_item(form: Mapping[str, str]) -> ItemForm:
    """A submitted item: amounts as chat reads them, everything else as config.toml does.

    Empty optional fields are left out. A Discord webhook must be given as ``env:NAME`` or
    ``file:/path``, so that the database and this page never hold the URL itself.
    """
    typed = {key: form.get(key, "").strip() for key in FIELDS}
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key, raw in typed.items():
        if not raw:
            continue
        if key in _AMOUNTS:
            try:
                values[key] = parse_amount(raw)
            except InvalidAmount as exc:
                errors[key] = f"{exc.reason}"
            continue
        values[key] = raw
    if "cost" not in values and "cost" not in errors:
        errors["cost"] = "is required"
    webhook = typed["webhook_url"]
    if webhook and not webhook.startswith(("env:", "file:")):
        errors["webhook_url"] = (
            "write env:NAME or file:/path (the URL itself is a secret and is never stored)"
        )
        values.pop("webhook_url", None)
    try:
        item = ShopItemConfig.model_validate(values, strict=False)
    except ValidationError as exc:
        for problem in validation_problems(exc):
            key = re.split(r"[.\[]", problem.key, maxsplit=1)[0] or "name"
            errors.setdefault(key, problem.message)
        return ItemForm(typed, errors)
    if errors:
        return ItemForm(typed, errors)
    return ItemForm(typed, {}, item)


def typed_of(item: Item) -> dict[str, str]:
    """An item's keys as the form shows them."""
    spec = dict(item.spec)
    if "webhook_source" in spec:
        spec["webhook_url"] = spec.pop("webhook_source")
    return {key: display_value(spec[key]) if key in spec else "" for key in FIELDS}


# ---- dashboard --------------------------------------------------------------------------


async def shop_page(request: web.Request, shop: Shop) -> web.StreamResponse:
    """GET /dashboard/{channel}/shop: items, stock, purchases, and the add form."""
    access = await require_access(request)
    return await _render_shop(request, shop, access, {"action": "chat"}, {})


async def _render_shop(
    request: web.Request,
    shop: Shop,
    access: Access,
    typed: dict[str, str],
    errors: dict[str, str],
) -> web.Response:
    stored = await stored_settings(request, access.channel_id)
    page_context = context(
        access,
        "shop",
        items=await shop.items(access.channel),
        purchases=await shop.recent(access.channel),
        currency=stored.values.currency_name_plural,
        typed=typed,
        errors=errors,
        actions=ACTIONS,
        public_url=public_base(request),
        file_path=str(request.app[CONFIG].current.path),
    )
    return await render(request, "shop/shop.html", page_context, status=400 if errors else 200)


async def add_item(request: web.Request, shop: Shop) -> web.StreamResponse:
    """POST /dashboard/{channel}/shop/items: a new dashboard item."""
    access = await require_access(request)
    parsed = parse_item(await _form(request))
    if parsed.item is None:
        return await _render_shop(request, shop, access, parsed.typed, parsed.errors)
    try:
        await shop.save(access.channel, parsed.item, access.actor)
    except FileOwned:
        errors = {"name": "config.toml has an item of this name; change it there"}
        return await _render_shop(request, shop, access, parsed.typed, errors)
    except NameTaken:
        errors = {"name": "another item has this name"}
        return await _render_shop(request, shop, access, parsed.typed, errors)
    log.info("shop_item_added", channel=access.channel, by=access.user.login, item=parsed.item.name)
    flash(await get_session(request), f"Added {parsed.item.name} to the shop.")
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/shop")


async def item_page(request: web.Request, shop: Shop) -> web.StreamResponse:
    """GET /dashboard/{channel}/shop/items/{name}: the edit form (read-only for the file's)."""
    access = await require_access(request)
    item = await _item(request, shop, access)
    return await _render_item(request, access, item, typed_of(item), {})


async def _render_item(
    request: web.Request,
    access: Access,
    item: Item,
    typed: dict[str, str],
    errors: dict[str, str],
) -> web.Response:
    page_context = context(
        access,
        "shop",
        item=item,
        typed=typed,
        errors=errors,
        actions=ACTIONS,
        file_path=str(request.app[CONFIG].current.path),
    )
    return await render(request, "shop/item.html", page_context, status=400 if errors else 200)


async def save_item(request: web.Request, shop: Shop) -> web.StreamResponse:
    """POST /dashboard/{channel}/shop/items/{name}: save an edited dashboard item."""
    access = await require_access(request)
    item = await _item(request, shop, access)
    parsed = parse_item(await _form(request))
    if item.owner == "file":
        parsed.errors = {"name": "this item is set in config.toml; change it there"}
    if parsed.item is None or parsed.errors:
        return await _render_item(request, access, item, parsed.typed, parsed.errors)
    try:
        await shop.save(access.channel, parsed.item, access.actor, replacing=item.name)
    except FileOwned:
        errors = {"name": "config.toml has an item of this name; change it there"}
        return await _render_item(request, access, item, parsed.typed, errors)
    except NameTaken:
        return await _render_item(
            request, access, item, parsed.typed, {"name": "another item has this name"}
        )
    except NoSuchItem:
        raise PageError(404, "That item is not in the shop any more.") from None
    log.info("shop_item_saved", channel=access.channel, by=access.user.login, item=parsed.item.name)
    flash(await get_session(request), f"Saved {parsed.item.name}.")
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/shop")


async def delete_item(request: web.Request, shop: Shop) -> web.StreamResponse:
    """POST /dashboard/{channel}/shop/items/{name}/delete: take a dashboard item off sale."""
    access = await require_access(request)
    item = await _item(request, shop, access)
    session = await get_session(request)
    try:
        await shop.delete(access.channel, item.name, access.actor)
    except FileOwned:
        flash(session, f"{item.name} is set in config.toml: remove it there.", "error")
    except NoSuchItem:
        flash(session, "That item was not in the shop any more.", "info")
    else:
        log.info("shop_item_removed", channel=access.channel, by=access.user.login, item=item.name)
        flash(session, f"Removed {item.name} from the shop; its purchases stay listed.")
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/shop")


async def _item(request: web.Request, shop: Shop, access: Access) -> Item:
    name = request.match_info["name"]
    item = await shop.item(access.channel, name) if _NAME.fullmatch(name) else None
    if item is None:
        raise PageError(404, "There is no such item in this shop.")
    return item


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


# ---- public: the page (an OBS browser source) and its JSON ------------------------------


def _public_items(items: list[Item]) -> list[dict[str, Any]]:
    return [
        {
            "name": item.name,
            "cost": item.cost,
            "description": item.description,
            "stock_left": item.stock_left,
        }
        for item in items
    ]


NO_SHOP = "There is no shop for that channel here."


def _channel(request: web.Request) -> str | None:
    channel = request.match_info["channel"]
    return channel if channel in request.app[CONFIG].current.channels else None


async def shop_json(request: web.Request, shop: Shop) -> web.StreamResponse:
    """GET /api/v1/channels/{channel}/shop: the items and the latest purchases."""
    channel = _channel(request)
    if channel is None:
        raise ApiError(404, NO_SHOP)
    try:
        items = await shop.items(channel)
        recent = await shop.recent(channel, PUBLIC_RECENT)
    except UnknownChannel:
        raise ApiError(404, NO_SHOP) from None
    body = {
        "items": _public_items(items),
        "recent": [
            {"item": p.item_name, "user_name": p.user_name, "at": p.created_at}
            for p in recent
            if p.status != "canceled"
        ],
    }
    return web.json_response(
        body, headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}
    )


async def shop_public(request: web.Request, shop: Shop) -> web.StreamResponse:
    """GET /c/{channel}/shop: public; ``?overlay=1`` is the OBS browser source
    (transparent, no chrome); it refreshes every ``refresh`` seconds (default 2)."""
    channel = _channel(request)
    if channel is None:
        raise PageError(404, NO_SHOP)
    refresh = query_limit(request.query.get("refresh"), 2, 3600)
    if refresh is None:
        raise PageError(400, "refresh must be a whole number of seconds from 1 to 3600.")
    try:
        items = await shop.items(channel)
        recent = [p for p in await shop.recent(channel, PUBLIC_RECENT) if p.status != "canceled"]
        channel_id = request.app[BANK].channel_id(channel)
    except UnknownChannel:
        raise PageError(404, NO_SHOP) from None
    values = (await stored_settings(request, channel_id)).values
    page_context: dict[str, Any] = {
        "channel": channel,
        "items": items,
        "recent": recent,
        "overlay": request.query.get("overlay", "") in ("1", "true", "yes"),
        "refresh": refresh,
        "currency": values.currency_name_plural,
        "api_url": f"/api/v1/channels/{channel}/shop",
    }
    response = render_public(request, "shop/public_shop.html", page_context)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def script(request: web.Request) -> web.StreamResponse:
    """GET /assets/shop.js: the public page's refresh (scripts come only from this site)."""
    return web.FileResponse(SCRIPT, headers={"Cache-Control": "public, max-age=300"})


def routes(shop: Shop) -> list[web.RouteDef]:
    return [
        web.get("/dashboard/{channel}/shop", partial(shop_page, shop=shop)),
        web.post("/dashboard/{channel}/shop/items", partial(add_item, shop=shop)),
        web.get("/dashboard/{channel}/shop/items/{name}", partial(item_page, shop=shop)),
        web.post("/dashboard/{channel}/shop/items/{name}", partial(save_item, shop=shop)),
        web.post("/dashboard/{channel}/shop/items/{name}/delete", partial(delete_item, shop=shop)),
        web.get("/api/v1/channels/{channel}/shop", partial(shop_json, shop=shop)),
        web.get("/c/{channel}/shop", partial(shop_public, shop=shop)),
        web.get("/assets/shop.js", script),
    ]
