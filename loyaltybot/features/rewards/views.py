"""The redemption queue on the dashboard: redemptions waiting for approval, approve and
reject (reject refunds the loyalty cost, and Twitch refunds the channel points)."""

from __future__ import annotations

import re
from functools import partial

import structlog
from aiohttp import web

from loyaltybot.features.rewards.service import NotQueued, Rewards, UnknownRedemption
from loyaltybot.points.errors import LoyaltyError
from loyaltybot.web.access import context, require_access
from loyaltybot.web.auth import flash
from loyaltybot.web.pages import PageError, render
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import CONFIG

log = structlog.get_logger(__name__)

_REDEMPTION_ID = re.compile(r"[A-Za-z0-9_\-]{1,100}")


def _has_action(request: web.Request, channel: str, action: str) -> bool:
    rewards = request.app[CONFIG].current.channels[channel].rewards
    return any(r.action == action for r in rewards)


async def queue(request: web.Request, rewards: Rewards) -> web.StreamResponse:
    """GET /dashboard/{channel}/queue: redemptions waiting for approval, oldest first."""
    access = await require_access(request)
    items = await rewards.list_queue(access.channel)
    page_context = context(
        access,
        "queue",
        items=items,
        configured=_has_action(request, access.channel, "queue"),
    )
    return await render(request, "rewards/queue.html", page_context)


async def decide(request: web.Request, rewards: Rewards) -> web.StreamResponse:
    """POST /dashboard/{channel}/queue/{redemption_id}/{approve|reject}."""
    access = await require_access(request)
    decision = request.match_info["decision"]
    redemption_id = request.match_info["redemption_id"]
    if decision not in ("approve", "reject"):
        raise PageError(404, "The redemption queue is not available here.")
    if not _REDEMPTION_ID.fullmatch(redemption_id):
        raise PageError(404, "There is no such redemption.")
    session = await get_session(request)
    try:
        if decision == "approve":
            await rewards.approve(access.channel, redemption_id, access.actor)
        else:
            await rewards.reject(access.channel, redemption_id, access.actor)
    except NotQueued as exc:
        flash(session, f"Someone already decided that one: it is {exc.status} now.", "info")
    except UnknownRedemption:
        flash(session, "There is no such redemption in this channel.", "error")
    except LoyaltyError as exc:
        flash(session, f"Could not {decision} it: {exc}", "error")
    else:
        log.info(
            "redemption_decided",
            channel=access.channel,
            by=access.user.login,
            redemption_id=redemption_id,
            decision=decision,
        )
        flash(
            session,
            "Approved." if decision == "approve" else "Rejected; the points go back to the viewer.",
        )
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/queue")


def routes(rewards: Rewards) -> list[web.RouteDef]:
    return [
        web.get("/dashboard/{channel}/queue", partial(queue, rewards=rewards)),
        web.post(
            "/dashboard/{channel}/queue/{redemption_id}/{decision}",
            partial(decide, rewards=rewards),
        ),
    ]
