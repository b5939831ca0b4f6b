"""The games page (SPEC §10.7): the settings (a key config.toml writes is shown read-only,
the others are the dashboard's, validated with the config's own model), each game's house
edge by its settings beside the one its rounds realised, and the recent rounds with their
rolls; one round's every roll on its own page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from aiohttp import web
from multidict import MultiMapping
from pydantic import ValidationError

from loyaltybot.config import GamesConfig, validation_problems
from loyaltybot.features.games.rules import GAMES, GameSettings
from loyaltybot.features.games.service import Games
from loyaltybot.points.amounts import parse_amount
from loyaltybot.points.errors import InvalidAmount
from loyaltybot.web.access import context, int_param, require_access
from loyaltybot.web.access import stored_settings as stored
from loyaltybot.web.auth import flash
from loyaltybot.web.forms import display_value
from loyaltybot.web.pages import PageError, render
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import CONFIG

log = structlog.get_logger(__name__)

ROLLS_SHOWN = 500

# key -> (label, hint, unit), in the order the form shows them
FIELDS: dict[str, tuple[str, str, str]] = {
    "enabled": ("Games on", "Each game answers in chat only when it is on", ""),
    "min_bet": ("Smallest bet", "For every game", ""),
    "max_bet": ("Largest bet", "For every game", ""),
    "cooldown_seconds": ("Cooldown", "Per viewer and game", "seconds"),
    "gamble_win_at": ("Gamble: wins at", "A roll of 1 to 100; this or more doubles the bet", ""),
    "slots_symbols": ("Slots: symbols", "2 to 10, separated by spaces", ""),
    "slots_pair_multiplier": ("Slots: a pair returns", "The bet times this comes back", "×"),
    "slots_triple_multiplier": ("Slots: three alike return", "The bet times this", "×"),
    "duel_accept_seconds": ("Duel: time to answer", "Then the stake is refunded", "seconds"),
    "heist_join_seconds": ("Heist: time to join", "From the first !heist", "seconds"),
    "heist_min_players": ("Heist: fewest players", "Fewer: every bet refunded", ""),
    "heist_success_percent": ("Heist: chance to get away", "Per player", "%"),
    "heist_payout_multiplier": ("Heist: a survivor gets", "The bet times this", "×"),
    "heist_cooldown_seconds": ("Heist: cooldown", "Per channel, after a heist ran", "seconds"),
}
_AMOUNTS = ("min_bet", "max_bet")


@dataclass
class GamesForm:
    typed: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    changes: dict[str, Any] = field(default_factory=dict)


def typed_of(settings: GameSettings) -> dict[str, Any]:
    """The settings as the form shows them."""
    typed: dict[str, Any] = {}
    for key in FIELDS:
        value = getattr(settings, key)
        if key == "enabled":
            typed[key] = list(value)
        elif key == "slots_symbols":
            typed[key] = " ".join(value)
        else:
            typed[key] = display_value(value)
    return typed


def parse_form(form: MultiMapping[str], current: GameSettings, file_keys: frozenset[str]
               ) -> GamesForm:  # fmt: skip
    """Validate the dashboard's keys of a submitted games form against the settings in
    force, with the config's model (lax: a form sends strings). A key the file owns is an
    error if the form tries to change it (the page never offers that)."""
    typed: dict[str, Any] = {}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key in FIELDS:
        if key == "enabled":
            raw: Any = [str(v) for v in form.getall("enabled", [])]
        elif key not in form:
            if key not in file_keys:
                errors[key] = "is missing from the form; reload the page"
            continue
        else:
            raw = str(form[key]).strip()
        if key in file_keys:
            shown = typed_of(current)[key]
            if key != "enabled" and raw != shown:
                errors[key] = "is set in config.toml; change it there"
            continue
        typed[key] = raw
        if key == "slots_symbols":
            values[key] = [s for s in re.split(r"[\s,]+", raw) if s]
        elif key in _AMOUNTS:
            try:
                values[key] = parse_amount(raw)
            except InvalidAmount as exc:
                errors[key] = exc.reason
        else:
            values[key] = raw
    merged = {**current.model_dump(), **values}
    try:
        validated = GamesConfig.model_validate(merged, strict=False)
    except ValidationError as exc:
        for problem in validation_problems(exc):
            key = re.split(r"[.\[]", problem.key, maxsplit=1)[0]
            errors.setdefault(key, problem.message)
        return GamesForm({**typed_of(current), **typed}, errors)
    if errors:
        return GamesForm({**typed_of(current), **typed}, errors)
    new = validated.model_dump()
    old = current.model_dump()
    changes = {k: new[k] for k in typed if new[k] != old[k]}
    return GamesForm({**typed_of(current), **typed}, {}, changes)


# ---- pages ------------------------------------------------------------------------------------


async def page(request: web.Request, games: Games) -> web.StreamResponse:
    """GET /dashboard/{channel}/games."""
    access = await require_access(request)
    return await _render(request, games, access.channel, access.channel_id, None, {})


async def _render(
    request: web.Request, games: Games, channel: str, channel_id: int,
    typed: dict[str, Any] | None, errors: dict[str, str],
) -> web.Response:  # fmt: skip
    settings = games.settings(channel)
    values = (await stored(request, channel_id)).values
    page_context = {
        "channel": channel,
        "tab": "games",
        "fields": FIELDS,
        "games": GAMES,
        "typed": typed or typed_of(settings),
        "errors": errors,
        "file_keys": games.file_keys(channel),
        "file_path": str(request.app[CONFIG].current.path),
        "edges": await games.edges(channel),
        "rounds": await games.recent(channel),
        "currency": values.currency_name_plural,
        "enabled": settings.enabled,
    }
    return await render(request, "games/games.html", page_context,
                        status=400 if errors else 200)  # fmt: skip


async def save(request: web.Request, games: Games) -> web.StreamResponse:
    """POST /dashboard/{channel}/games: the dashboard's games settings."""
    access = await require_access(request)
    form = parse_form(await request.post(), games.settings(access.channel),  # type: ignore[arg-type]
                      games.file_keys(access.channel))  # fmt: skip
    if form.errors:
        return await _render(request, games, access.channel, access.channel_id, form.typed,
                             form.errors)  # fmt: skip
    session = await get_session(request)
    if not form.changes:
        flash(session, "Nothing to save: the games settings are as they were.", "info")
        raise web.HTTPSeeOther(f"/dashboard/{access.channel}/games")
    await games.save_settings(access.channel, form.changes, access.actor)
    log.info("game_settings_saved", channel=access.channel, by=access.user.login,
             keys=sorted(form.changes))  # fmt: skip
    flash(session, f"Saved: {', '.join(FIELDS[k][0] for k in form.changes)}.")
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/games")


async def round_page(request: web.Request, games: Games) -> web.StreamResponse:
    """GET /dashboard/{channel}/games/rounds/{id}: every roll of one round."""
    access = await require_access(request)
    round_id = int_param(request.match_info["id"])
    rolls = None if round_id is None else await games.rolls(access.channel, round_id,
                                                             ROLLS_SHOWN)  # fmt: skip
    if rolls is None:
        raise PageError(404, "There is no game round with that number in this channel.")
    found = await games.round(access.channel, round_id or 0)
    page_context = context(access, "games", round=found, round_id=round_id, rolls=rolls,
                           shown=ROLLS_SHOWN)  # fmt: skip
    return await render(request, "games/round.html", page_context)


def routes(games: Games) -> list[web.RouteDef]:
    return [
        web.get("/dashboard/{channel}/games", partial(page, games=games)),
        web.post("/dashboard/{channel}/games", partial(save, games=games)),
        web.get("/dashboard/{channel}/games/rounds/{id}", partial(round_page, games=games)),
    ]


__all__ = ["FIELDS", "GamesForm", "parse_form", "routes", "typed_of"]
