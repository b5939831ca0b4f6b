"""Giveaway pages: the dashboard's (open with per-giveaway ticket cost, limit and subscriber
luck; close, draw, cancel; entries, winners, verification; past giveaways), the public
page that doubles as an OBS overlay (updated every second from the JSON API), and the
JSON (SPEC §10.7): ``/api/v1/channels/C/giveaway`` (the latest giveaway) and
``/api/v1/channels/C/giveaways/ID`` (one giveaway with its entries, to check a draw).

Every action is announced in chat with the same words as the chat commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from loyaltybot.features.giveaways import announce, rules
from loyaltybot.features.giveaways.announce import Say, TicketSummary
from loyaltybot.features.giveaways.commands import Present
from loyaltybot.features.giveaways.rules import DrawError, GiveawayRefusal
from loyaltybot.features.giveaways.service import Giveaway, Giveaways, Pick, Terms, terms_of
from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.errors import InvalidAmount, UnknownChannel
from loyaltybot.settings import ChannelSettings
from loyaltybot.web.access import Access, context, int_param, public_base, require_access
from loyaltybot.web.access import stored_settings as stored
from loyaltybot.web.api import ApiError
from loyaltybot.web.auth import flash
from loyaltybot.web.pages import PageError, iso, render, render_public
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import BANK, CONFIG

log = structlog.get_logger(__name__)

SCRIPT = Path(__file__).parent / "static" / "giveaway.js"
TOP_ENTRIES = 50
HISTORY = 20
OVERLAY_REFRESH = 1  # seconds: the overlay shows changes within 2 s
MAX_TICKETS = 1_000_000


@dataclass
class OpenForm:
    """A submitted "open a giveaway" form: what was typed, the errors, or the values."""

    typed: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    prize: str = ""
    terms: Terms | None = None


def defaults(settings: ChannelSettings) -> dict[str, str]:
    return {
        "prize": "",
        "ticket_cost": str(settings.giveaway_ticket_cost),
        "max_tickets": str(settings.giveaway_max_tickets),
        "luck": f"{settings.giveaway_subscriber_luck:g}",
    }


def parse_open(form: Mapping[str, str]) -> OpenForm:
    """Prize, ticket cost (0 = free), tickets per viewer and subscriber luck, read as chat
    and the settings read them (SPEC §5 amounts; luck 1 to 10)."""
    typed = {k: str(form.get(k, "")).strip() for k in ("prize", "ticket_cost", "max_tickets",
                                                         "luck")}  # fmt: skip
    errors: dict[str, str] = {}
    prize = ""
    try:
        prize = rules.clean_prize(typed["prize"])
    except ValueError:
        errors["prize"] = "say what the winner gets"
    cost = max_tickets = luck = 0
    try:
        cost = parse_amount(typed["ticket_cost"], allow_zero=True)
    except InvalidAmount as exc:
        errors["ticket_cost"] = exc.reason
    try:
        max_tickets = parse_amount(typed["max_tickets"])
        if max_tickets > MAX_TICKETS:
            errors["max_tickets"] = f"must be at most {MAX_TICKETS:,}"
    except InvalidAmount as exc:
        errors["max_tickets"] = exc.reason
    try:
        luck = rules.luck_hundredths(typed["luck"])
    except DrawError:
        errors["luck"] = "must be a number from 1 to 10, like 1.5"
    if errors:
        return OpenForm(typed, errors)
    return OpenForm(typed, {}, prize, Terms(cost, max_tickets, luck))


# ---- the dashboard -----------------------------------------------------------------------


@dataclass(frozen=True)
class GiveawayViews:
    giveaways: Giveaways
    summary: TicketSummary
    say: Say
    present: Present

    async def page(self, request: web.Request) -> web.StreamResponse:
        """GET /dashboard/{channel}/giveaway: the running (or latest) giveaway and the rest."""
        access = await require_access(request)
        found = await self.giveaways.latest(access.channel)
        return await self._render(request, access, found)

    async def detail(self, request: web.Request) -> web.StreamResponse:
        """GET /dashboard/{channel}/giveaway/{id}: one giveaway; ``?verify=1`` recomputes
        its winners from the recorded seed and entries."""
        access = await require_access(request)
        giveaway_id = int_param(request.match_info["id"])
        found = None if giveaway_id is None else await self.giveaways.get(access.channel,
                                                                            giveaway_id)
        if found is None:
            raise PageError(404, "There is no giveaway with that number in this channel.")
        return await self._render(request, access, found)

    async def _render(
        self,
        request: web.Request,
        access: Access,
        giveaway: Giveaway | None,
        *,
        typed: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> web.Response:
        values = (await stored(request, access.channel_id)).values
        picks: list[Pick] = []
        top = []
        checked = None
        if giveaway is not None:
            picks = await self.giveaways.picks(giveaway)
            top = await self.giveaways.entries(giveaway, limit=TOP_ENTRIES)
            if request.query.get("verify") == "1" and giveaway.drawn_at is not None:
                checked = await self.giveaways.check(giveaway)
        busy = giveaway is not None and giveaway.state in ("open", "closed")
        page_context = context(
            access,
            "giveaway",
            giveaway=giveaway,
            winners=[p for p in picks if p.outcome == "won"],
            skipped=[p for p in picks if p.outcome == "skipped"],
            entries=top,
            top=TOP_ENTRIES,
            checked=checked,
            history=await self.giveaways.history(access.channel, HISTORY),
            can_open=not busy,
            typed=typed or defaults(values),
            errors=errors or {},
            currency=values.currency_name_plural,
            terms=None if giveaway is None else announce.terms_text(giveaway, values),
            public_url=public_base(request),
            max_draw=rules.MAX_DRAW,
        )
        return await render(
            request, "giveaways/giveaway.html", page_context, status=400 if errors else 200
        )

    async def open(self, request: web.Request) -> web.StreamResponse:
        """POST /dashboard/{channel}/giveaway/open."""
        access = await require_access(request)
        form = parse_open(await request.post())  # type: ignore[arg-type]
        if form.terms is None:
            found = await self.giveaways.latest(access.channel)
            return await self._render(request, access, found, typed=form.typed,
                                      errors=form.errors)  # fmt: skip
        settings = (await stored(request, access.channel_id)).values
        try:
            opened = await self.giveaways.open(
                access.channel, form.prize, form.terms, actor=access.actor
            )
        except GiveawayRefusal as exc:
            return await self._refused(request, access, exc, settings)
        await self.say(access.channel, announce.opened(opened, settings))
        return await self._done(request, access, "open", f"Giveaway #{opened.id} is open.")

    async def act(self, request: web.Request) -> web.StreamResponse:
        """POST /dashboard/{channel}/giveaway/{id}/{close|draw|cancel}: acts on the running
        giveaway only if it is still the one the page showed."""
        access = await require_access(request)
        action = request.match_info["action"]
        if action not in ("close", "draw", "cancel"):
            raise PageError(404, "There is no such giveaway action.")
        giveaway_id = int_param(request.match_info["id"])
        settings = (await stored(request, access.channel_id)).values
        running = await self.giveaways.running(access.channel)
        session = await get_session(request)
        if running is None or running.id != giveaway_id:
            flash(session, "That giveaway is not the running one any more; nothing changed.",
                  "error")  # fmt: skip
            raise web.HTTPSeeOther(f"/dashboard/{access.channel}/giveaway")
        form = await request.post()
        channel = access.channel
        try:
            if action == "close":
                await self.summary.flush(channel)
                closed = await self.giveaways.close(channel, actor=access.actor)
                await self.say(channel, announce.closed(closed))
                message = f"Giveaway #{closed.id} is closed; the seed's SHA-256 is posted."
            elif action == "draw":
                n, present = _draw_form(form)
                here = {v.user_id for v in self.present(channel)} if present else None
                drawn = await self.giveaways.draw(channel, n, present=here, actor=access.actor)
                for line in announce.drawn(drawn, _verify_url(request, channel, drawn.giveaway)):
                    await self.say(channel, line)
                names = ", ".join(p.login for p in drawn.winners) or "nobody (all skipped)"
                message = f"Giveaway #{drawn.giveaway.id}: drew {names}."
            else:
                await self.summary.flush(channel)
                done = await self.giveaways.cancel(channel, actor=access.actor)
                await self.say(channel, announce.canceled(done, settings))
                message = f"Giveaway #{done.giveaway.id} is canceled; every ticket was refunded."
        except _BadDraw as exc:
            flash(session, f"Nothing was drawn: {exc}.", "error")
            raise web.HTTPSeeOther(f"/dashboard/{access.channel}/giveaway") from None
        except GiveawayRefusal as exc:
            return await self._refused(request, access, exc, settings)
        return await self._done(request, access, action, message)

    async def _refused(
        self, request: web.Request, access: Access, exc: GiveawayRefusal,
        settings: ChannelSettings,
    ) -> web.StreamResponse:  # fmt: skip
        text = announce.explain(exc, settings)
        flash(await get_session(request), text[0].upper() + text[1:] + " Nothing changed.",
              "error")  # fmt: skip
        raise web.HTTPSeeOther(f"/dashboard/{access.channel}/giveaway")

    async def _done(
        self, request: web.Request, access: Access, action: str, message: str
    ) -> web.StreamResponse:
        log.info("giveaway_action", channel=access.channel, action=action, by=access.user.login)
        flash(await get_session(request), message)
        raise web.HTTPSeeOther(f"/dashboard/{access.channel}/giveaway")


class _BadDraw(ValueError):
    pass


def _draw_form(form: Mapping[str, Any]) -> tuple[int, bool]:
    raw = str(form.get("n", "1")).strip() or "1"
    try:
        n = parse_amount(raw)
    except InvalidAmount as exc:
        raise _BadDraw(f"the number of winners {exc.reason}") from None
    if n > rules.MAX_DRAW:
        raise _BadDraw(f"draw at most {rules.MAX_DRAW} winners at a time")
    return n, str(form.get("present", "")) in ("on", "true", "1")


def _verify_url(request: web.Request, channel: str, giveaway: Giveaway) -> str:
    return f"{public_base(request)}/c/{channel}/giveaway?id={giveaway.id}"


# ---- public: the page (an OBS browser source) and the JSON -------------------------------


def as_json(giveaway: Giveaway | None, picks: list[Pick], channel: str) -> dict[str, Any]:
    """What the API and the overlay show; the seed only once drawn (it was secret before)."""
    if giveaway is None:
        return {"id": None, "state": "none", "channel": channel}
    terms = giveaway.terms
    return {
        "id": giveaway.id,
        "channel": channel,
        "state": giveaway.state,
        "prize": giveaway.prize,
        "ticket_cost": terms.ticket_cost,
        "max_tickets": terms.limit,
        "subscriber_luck": terms.luck / 100,
        "tickets": giveaway.tickets,
        "entrants": giveaway.entrants,
        "commitment": giveaway.commitment,
        "seed": giveaway.seed,
        "algorithm": giveaway.algorithm,
        "opened_at": iso(giveaway.opened_at),
        "closed_at": None if giveaway.closed_at is None else iso(giveaway.closed_at),
        "drawn_at": None if giveaway.drawn_at is None else iso(giveaway.drawn_at),
        "winners": [_pick(p) for p in picks if p.outcome == "won"],
        "skipped": [_pick(p) for p in picks if p.outcome == "skipped"],
        "entries_url": f"/api/v1/channels/{channel}/giveaways/{giveaway.id}",
    }


def _pick(p: Pick) -> dict[str, Any]:
    return {"pick": p.pick, "draw": p.draw_no, "user_id": p.user_id, "username": p.login}


_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}


def _channel(request: web.Request, api: bool) -> str:
    channel = request.match_info["channel"]
    if channel not in request.app[CONFIG].current.channels:
        if api:
            raise ApiError(404, f"no channel named {channel[:25]!r} here")
        raise PageError(404, "There is no giveaway page for that channel here.")
    try:
        request.app[BANK].channel_id(channel)
    except UnknownChannel:
        raise (ApiError(404, "no such channel") if api else PageError(404, "No such channel.")
               ) from None  # fmt: skip
    return channel


async def _shown(giveaways: Giveaways, channel: str, raw_id: str | None, api: bool
                 ) -> Giveaway | None:  # fmt: skip
    if raw_id is None:
        return await giveaways.latest(channel)
    giveaway_id = int_param(raw_id)
    found = None if giveaway_id is None else await giveaways.get(channel, giveaway_id)
    if found is None:
        raise (ApiError(404, "no giveaway with that id in this channel") if api
               else PageError(404, "There is no giveaway with that number here."))
    return found


async def giveaway_json(request: web.Request, giveaways: Giveaways) -> web.StreamResponse:
    """GET /api/v1/channels/{channel}/giveaway: the latest giveaway (``?id=N``: that one)."""
    channel = _channel(request, api=True)
    found = await _shown(giveaways, channel, request.query.get("id"), api=True)
    picks = [] if found is None else await giveaways.picks(found)
    return web.json_response(as_json(found, picks, channel), headers=_HEADERS)


async def giveaway_export(request: web.Request, giveaways: Giveaways) -> web.StreamResponse:
    """GET /api/v1/channels/{channel}/giveaways/{id}: one giveaway with every entry (user
    id, tickets, luck) in the draw's canonical order: what anyone needs to recompute the
    winners (README, "How a giveaway draw works")."""
    channel = _channel(request, api=True)
    found = await _shown(giveaways, channel, request.match_info["id"], api=True)
    if found is None:  # not reached: a missing id raised already
        raise ApiError(404, "no giveaway with that id in this channel")
    body = as_json(found, await giveaways.picks(found), channel)
    luck = found.terms.luck / 100
    body["entries"] = [
        {"user_id": e.user_id, "username": e.login, "tickets": e.tickets,
         "luck": luck if e.subscriber else 1.0}
        for e in await giveaways.entries(found)
    ]  # fmt: skip
    return web.json_response(body, headers=_HEADERS)


async def public_page(request: web.Request, giveaways: Giveaways) -> web.StreamResponse:
    """GET /c/{channel}/giveaway: public; ``?overlay=1`` is the OBS browser source,
    ``?id=N`` a past giveaway. Refreshed from the JSON every second."""
    channel = _channel(request, api=False)
    raw_id = request.query.get("id")
    found = await _shown(giveaways, channel, raw_id, api=False)
    picks = [] if found is None else await giveaways.picks(found)
    overlay = request.query.get("overlay", "") in ("1", "true", "yes")
    api_url = f"/api/v1/channels/{channel}/giveaway" + (f"?id={found.id}" if raw_id and found
                                                         else "")  # fmt: skip
    page_context = {
        "channel": channel,
        "giveaway": found,
        "winners": [p for p in picks if p.outcome == "won"],
        "overlay": overlay,
        "refresh": OVERLAY_REFRESH,
        "api_url": api_url,
    }
    response = render_public(request, "giveaways/public_giveaway.html", page_context)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def script(request: web.Request) -> web.StreamResponse:
    """GET /assets/giveaway.js: the overlay's refresher (CSP: scripts only from here)."""
    return web.FileResponse(SCRIPT, headers={"Content-Type": "text/javascript",
                                             "Cache-Control": "max-age=3600"})  # fmt: skip


def routes(views: GiveawayViews) -> list[web.RouteDef]:
    giveaways = views.giveaways
    return [
        web.get("/dashboard/{channel}/giveaway", views.page),
        web.post("/dashboard/{channel}/giveaway/open", views.open),
        web.get("/dashboard/{channel}/giveaway/{id}", views.detail),
        web.post("/dashboard/{channel}/giveaway/{id}/{action}", views.act),
        web.get("/api/v1/channels/{channel}/giveaway", partial(giveaway_json,
                                                               giveaways=giveaways)),
        web.get("/api/v1/channels/{channel}/giveaways/{id}", partial(giveaway_export,
                                                                     giveaways=giveaways)),
        web.get("/c/{channel}/giveaway", partial(public_page, giveaways=giveaways)),
        web.get("/assets/giveaway.js", script),
    ]


__all__ = ["GiveawayViews", "as_json", "parse_open", "routes", "terms_of"]
