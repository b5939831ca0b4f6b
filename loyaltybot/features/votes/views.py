"""The votes page: each vote reward's tally, and a reset."""

from __future__ import annotations

from functools import partial

import structlog
from aiohttp import web

from loyaltybot.features.votes.service import Votes
from loyaltybot.web.access import context, require_access
from loyaltybot.web.auth import flash
from loyaltybot.web.pages import render
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import CONFIG

log = structlog.get_logger(__name__)


def _has_action(request: web.Request, channel: str, action: str) -> bool:
    rewards = request.app[CONFIG].current.channels[channel].rewards
    return any(r.action == action for r in rewards)


async def votes_page(request: web.Request, votes: Votes) -> web.StreamResponse:
    """GET /dashboard/{channel}/votes: the tally of each vote reward."""
    access = await require_access(request)
    polls = []
    for poll in await votes.tally(access.channel):
        total = poll.total
        polls.append(
            {
                "title": poll.title,
                "total": total,
                "options": [
                    (option, count, round(100 * count / total) if total else 0)
                    for option, count in poll.options
                ],
            }
        )
    page_context = context(
        access, "votes", polls=polls, configured=_has_action(request, access.channel, "vote")
    )
    return await render(request, "votes/votes.html", page_context)


async def votes_reset(request: web.Request, votes: Votes) -> web.StreamResponse:
    """POST /dashboard/{channel}/votes/reset: clear every tally of the channel."""
    access = await require_access(request)
    removed = await votes.reset(access.channel)
    log.info("votes_reset", channel=access.channel, by=access.user.login, options=removed)
    flash(await get_session(request), "Votes reset: every tally starts from zero.")
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/votes")


def routes(votes: Votes) -> list[web.RouteDef]:
    return [
        web.get("/dashboard/{channel}/votes", partial(votes_page, votes=votes)),
        web.post("/dashboard/{channel}/votes/reset", partial(votes_reset, votes=votes)),
    ]
