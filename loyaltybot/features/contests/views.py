"""Contest pages: the dashboard's (open with a question and its options; close, settle,
cancel; the pools, the largest bets, past contests), the public page that doubles as an
OBS overlay (updated every second from the JSON API), and the JSON (SPEC §10.7):
``/api/v1/channels/C/contest`` (the latest contest; ``?id=N`` that one).

Every action is announced in chat with the same words as the chat commands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from loyaltybot.features.contests import announce, rules
from loyaltybot.features.contests.announce import BetSummary, Say
from loyaltybot.features.contests.rules import (
    BadContest,
    ContestRefusal,
    ContestSpec,
    EmptyPart,
    PartTooLong,
    format_odds,
    odds,
)
from loyaltybot.features.contests.service import Contest, Contests, Terms, terms_of
from loyaltybot.points.errors import UnknownChannel
from loyaltybot.settings import ChannelSettings
from loyaltybot.web.access import Access, context, int_param, public_base, require_access
from loyaltybot.web.access import stored_settings as stored
from loyaltybot.web.api import ApiError
from loyaltybot.web.auth import flash
from loyaltybot.web.forms import display_value
from loyaltybot.web.pages import PageError, iso, render, render_public
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import BANK, CONFIG

log = structlog.get_logger(__name__)

SCRIPT = Path(__file__).parent / "static" / "contest.js"
STYLE = Path(__file__).parent / "static" / "contest.css"
TOP_BETS = 50
HISTORY = 20
OVERLAY_REFRESH = 1  # seconds: the overlay shows changes within 2 s
MAX_CLOSE_AFTER = 86_400


@dataclass
class OpenForm:
    """A submitted "open a contest" form: what was typed, the errors, or the values."""

    typed: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    spec: ContestSpec | None = None
    close_after: float = 0.0


def defaults(settings: ChannelSettings) -> dict[str, str]:
    return {
        "question": "",
        "options": "",
        "close_after": display_value(settings.contest_close_after_seconds),
    }


def parse_open(form: Mapping[str, str], settings: ChannelSettings) -> OpenForm:
    """The question, the options (one per line, 2 to 10) and when bets close (seconds, 0 =
    when a moderator closes them), read with the rules ``!contest open`` uses."""
    typed = {k: str(form.get(k, "")).strip() for k in ("question", "options", "close_after")}
    errors: dict[str, str] = {}
    options = [line.strip() for line in typed["options"].splitlines() if line.strip()]
    spec = None
    if "|" in typed["question"]:
        errors["question"] = "must not contain |"
    elif any("|" in option for option in options):
        errors["options"] = "an option must not contain |"
    else:
        try:
            spec = rules.parse_contest(" | ".join([typed["question"], *options]))
        except BadContest as exc:
            where = "question" if isinstance(exc, EmptyPart | PartTooLong) and exc.index == 0 \
                else "options"  # fmt: skip
            errors[where] = announce.explain(exc, settings).rstrip(".")
    close_after = 0.0
    try:
        close_after = float(typed["close_after"] or "0")
        if not math.isfinite(close_after) or not 0 <= close_after <= MAX_CLOSE_AFTER:
            raise ValueError
    except ValueError:
        errors["close_after"] = f"must be a number of seconds from 0 to {MAX_CLOSE_AFTER:,}"
    if errors or spec is None:
        return OpenForm(typed, errors or {"options": "give 2 to 10 options"})
    return OpenForm(typed, {}, spec, close_after)


def option_rows(contest: Contest) -> list[dict[str, Any]]:
    """Each option with its pool, bettors and payout ratio (what a point brings back)."""
    ratios = odds(contest.pools)
    return [
        {"number": o.number, "text": o.text, "pool": o.pool, "bettors": o.bettors,
         "ratio": format_odds(ratio), "share": (o.pool / contest.pool) if contest.pool else 0.0,
         "won": contest.winner == o.number}
        for o, ratio in zip(contest.options, ratios, strict=True)
    ]  # fmt: skip


# ---- the dashboard -----------------------------------------------------------------------


@dataclass(frozen=True)
class ContestViews:
    contests: Contests
    summary: BetSummary
    say: Say
    opened: Callable[[], None]  # wakes the feature's closing timer

    async def page(self, request: web.Request) -> web.StreamResponse:
        """GET /dashboard/{channel}/contest: the running (or latest) contest and the rest."""
        access = await require_access(request)
        return await self._render(request, access, await self.contests.latest(access.channel))

    async def detail(self, request: web.Request) -> web.StreamResponse:
        """GET /dashboard/{channel}/contest/{id}: one contest."""
        access = await require_access(request)
        contest_id = int_param(request.match_info["id"])
        found = None if contest_id is None else await self.contests.get(access.channel,
                                                                          contest_id)
        if found is None:
            raise PageError(404, "There is no contest with that number in this channel.")
        return await self._render(request, access, found)

    async def _render(
        self,
        request: web.Request,
        access: Access,
        contest: Contest | None,
        *,
        typed: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> web.Response:
        values = (await stored(request, access.channel_id)).values
        now = self.contests.now_ms()
        page_context = context(
            access,
            "contest",
            contest=contest,
            options=[] if contest is None else option_rows(contest),
            bets=[] if contest is None else await self.contests.bets(contest, TOP_BETS),
            top=TOP_BETS,
            takes_bets=contest is not None and contest.takes_bets(now),
            history=await self.contests.history(access.channel, HISTORY),
            can_open=contest is None or not contest.running,
            typed=typed or defaults(values),
            errors=errors or {},
            currency=values.currency_name_plural,
            currency_one=values.currency_name,
            limits=terms_of(values),
            public_url=public_base(request),
        )
        return await render(
            request, "contests/contest.html", page_context, status=400 if errors else 200
        )

    async def open(self, request: web.Request) -> web.StreamResponse:
        """POST /dashboard/{channel}/contest/open."""
        access = await require_access(request)
        settings = (await stored(request, access.channel_id)).values
        form = parse_open(await _form(request), settings)
        if form.spec is None:
            found = await self.contests.latest(access.channel)
            return await self._render(request, access, found, typed=form.typed,
                                      errors=form.errors)  # fmt: skip
        limits = terms_of(settings)
        terms = Terms(limits.min_bet, limits.max_bet, form.close_after)
        try:
            opened = await self.contests.open(access.channel, form.spec, terms,
                                              actor=access.actor)  # fmt: skip
        except ContestRefusal as exc:
            return await self._refused(request, access, exc, settings)
        self.opened()
        await self.say(access.channel, announce.opened(opened, settings, self.contests.now_ms()))
        return await self._done(request, access, "open", f"Contest #{opened.id} is open.")

    async def act(self, request: web.Request) -> web.StreamResponse:
        """POST /dashboard/{channel}/contest/{id}/{close|winner|cancel}: acts on the running
        contest only if it is still the one the page showed."""
        access = await require_access(request)
        action = request.match_info["action"]
        if action not in ("close", "winner", "cancel"):
            raise PageError(404, "There is no such contest action.")
        contest_id = int_param(request.match_info["id"])
        settings = (await stored(request, access.channel_id)).values
        running = await self.contests.running(access.channel)
        session = await get_session(request)
        here = f"/dashboard/{access.channel}/contest"
        if running is None or running.id != contest_id:
            flash(session, "That contest is not the running one any more; nothing changed.",
                  "error")  # fmt: skip
            raise web.HTTPSeeOther(here)
        form = await _form(request)
        channel = access.channel
        try:
            if action == "close":
                await self.summary.flush(channel)
                closed = await self.contests.close(channel, actor=access.actor)
                await self.say(channel, announce.closed(closed, settings))
                message = f"Contest #{closed.id} is closed: no more bets."
            elif action == "winner":
                number = int_param(form.get("winner"))
                if number is None:
                    flash(session, "Choose the option that won; nothing changed.", "error")
                    raise web.HTTPSeeOther(here)
                running.option(number)
                await self.summary.flush(channel)
                done = await self.contests.settle(channel, number, actor=access.actor)
                await self.say(channel, announce.ended(done, settings))
                message = announce.ended(done, settings)
            else:
                await self.summary.flush(channel)
                done = await self.contests.cancel(channel, actor=access.actor)
                await self.say(channel, announce.ended(done, settings))
                message = f"Contest #{done.contest.id} is canceled; every bet was refunded."
        except ContestRefusal as exc:
            return await self._refused(request, access, exc, settings)
        return await self._done(request, access, action, message)

    async def _refused(self, request: web.Request, access: Access, exc: ContestRefusal,
                       settings: ChannelSettings) -> web.StreamResponse:  # fmt: skip
        text = announce.explain(exc, settings)
        flash(await get_session(request), text[0].upper() + text[1:] + " Nothing changed.",
              "error")  # fmt: skip
        raise web.HTTPSeeOther(f"/dashboard/{access.channel}/contest")

    async def _done(self, request: web.Request, access: Access, action: str, message: str
                    ) -> web.StreamResponse:  # fmt: skip
        log.info("contest_action", channel=access.channel, action=action, by=access.user.login)
        flash(await get_session(request), message)
        raise web.HTTPSeeOther(f"/dashboard/{access.channel}/contest")


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


# ---- public: the page (an OBS browser source) and the JSON -------------------------------


def as_json(contest: Contest | None, channel: str, now_ms: int) -> dict[str, Any]:
    """What the API and the overlay show: the pools and ratios as they are now."""
    if contest is None:
        return {"id": None, "state": "none", "channel": channel}
    state = contest.state
    if state == "open" and not contest.takes_bets(now_ms):
        state = "closed"  # its time ran out; the timer closes it in a moment
    return {
        "id": contest.id,
        "channel": channel,
        "state": state,
        "question": contest.question,
        "options": [
            {key: o[key] for key in ("number", "text", "pool", "bettors", "ratio", "won")}
            for o in option_rows(contest)
        ],
        "pool": contest.pool,
        "bettors": contest.bettors,
        "min_bet": contest.min_bet,
        "max_bet": contest.max_bet,
        "winner": contest.winner,
        "opened_at": iso(contest.opened_at),
        "closes_at": None if contest.closes_at is None else iso(contest.closes_at),
        "closes_in": None if contest.closes_at is None or state != "open"
        else max(0, round((contest.closes_at - now_ms) / 1000)),
    }


_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}


def _channel(request: web.Request, api: bool) -> str:
    channel = request.match_info["channel"]
    missing = (ApiError(404, f"no channel named {channel[:25]!r} here") if api
               else PageError(404, "There is no contest page for that channel here."))  # fmt: skip
    if channel not in request.app[CONFIG].current.channels:
        raise missing
    try:
        request.app[BANK].channel_id(channel)
    except UnknownChannel:
        raise missing from None
    return channel


async def _shown(contests: Contests, channel: str, raw_id: str | None, api: bool
                 ) -> Contest | None:  # fmt: skip
    if raw_id is None:
        return await contests.latest(channel)
    contest_id = int_param(raw_id)
    found = None if contest_id is None else await contests.get(channel, contest_id)
    if found is None:
        raise (ApiError(404, "no contest with that id in this channel") if api
               else PageError(404, "There is no contest with that number here."))
    return found


async def contest_json(request: web.Request, contests: Contests) -> web.StreamResponse:
    """GET /api/v1/channels/{channel}/contest: the latest contest (``?id=N``: that one)."""
    channel = _channel(request, api=True)
    found = await _shown(contests, channel, request.query.get("id"), api=True)
    return web.json_response(as_json(found, channel, contests.now_ms()), headers=_HEADERS)


async def public_page(request: web.Request, contests: Contests) -> web.StreamResponse:
    """GET /c/{channel}/contest: public; ``?overlay=1`` is the OBS browser source, ``?id=N``
    a past contest. Refreshed from the JSON every second."""
    channel = _channel(request, api=False)
    raw_id = request.query.get("id")
    found = await _shown(contests, channel, raw_id, api=False)
    body = as_json(found, channel, contests.now_ms())
    api_url = f"/api/v1/channels/{channel}/contest" + (f"?id={found.id}" if raw_id and found
                                                       else "")  # fmt: skip
    page_context = {
        "channel": channel,
        "contest": body,
        "overlay": request.query.get("overlay", "") in ("1", "true", "yes"),
        "refresh": OVERLAY_REFRESH,
        "api_url": api_url,
    }
    response = render_public(request, "contests/public_contest.html", page_context)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def script(request: web.Request) -> web.StreamResponse:
    """GET /assets/contest.js: the overlay's refresher (CSP: scripts only from here)."""
    return web.FileResponse(SCRIPT, headers={"Content-Type": "text/javascript",
                                             "Cache-Control": "max-age=3600"})  # fmt: skip


async def style(request: web.Request) -> web.StreamResponse:
    """GET /assets/contest.css: the contest pages' own styles."""
    return web.FileResponse(STYLE, headers={"Content-Type": "text/css",
                                            "Cache-Control": "max-age=3600"})  # fmt: skip


def routes(views: ContestViews) -> list[web.RouteDef]:
    contests = views.contests
    return [
        web.get("/dashboard/{channel}/contest", views.page),
        web.post("/dashboard/{channel}/contest/open", views.open),
        web.get("/dashboard/{channel}/contest/{id}", views.detail),
        web.post("/dashboard/{channel}/contest/{id}/{action}", views.act),
        web.get("/api/v1/channels/{channel}/contest", partial(contest_json, contests=contests)),
        web.get("/c/{channel}/contest", partial(public_page, contests=contests)),
        web.get("/assets/contest.js", script),
        web.get("/assets/contest.css", style),
    ]
