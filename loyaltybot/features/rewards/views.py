"""The approval queue on the dashboard: what waits for a moderator, oldest first, with
approve and reject (reject gives the loyalty cost back; for a redemption of a reward the
bot owns, Twitch refunds the channel points too).

Channel-point redemptions are this feature's; the daemon hands over the other features'
waiting entries (shop purchases) as ``actions.queue.QueueSource``s, listed side by side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial

import structlog
from aiohttp import web

from loyaltybot.actions.queue import NotWaiting, QueueSource, UnknownEntry
from loyaltybot.points.errors import LoyaltyError
from loyaltybot.web.access import context, require_access
from loyaltybot.web.auth import flash
from loyaltybot.web.pages import PageError, render
from loyaltybot.web.sessions import get_session

log = structlog.get_logger(__name__)

_ENTRY_ID = re.compile(r"[A-Za-z0-9_\-]{1,100}")
QUEUE_LIMIT = 100


async def queue(request: web.Request, sources: Sequence[QueueSource]) -> web.StreamResponse:
    """GET /dashboard/{channel}/queue: every source's waiting entries, oldest first."""
    access = await require_access(request)
    items = [
        entry for source in sources for entry in await source.waiting(access.channel, QUEUE_LIMIT)
    ]
    items.sort(key=lambda entry: (entry.created_at, entry.source, entry.id))
    page_context = context(
        access,
        "queue",
        items=items[:QUEUE_LIMIT],
        configured=any(source.holds(access.channel) for source in sources),
    )
    return await render(request, "rewards/queue.html", page_context)


async def decide(request: web.Request, sources: Sequence[QueueSource]) -> web.StreamResponse:
    """POST /dashboard/{channel}/queue/{redemption_id}/{approve|reject} (a redemption) and
    /dashboard/{channel}/queue/{source}/{entry_id}/{approve|reject} (another source's)."""
    access = await require_access(request)
    decision = request.match_info["decision"]
    entry_id = request.match_info["entry_id"]
    wanted = request.match_info.get("source", sources[0].name)
    source = next((s for s in sources if s.name == wanted), None)
    if decision not in ("approve", "reject") or source is None:
        raise PageError(404, "The approval queue is not available here.")
    if not _ENTRY_ID.fullmatch(entry_id):
        raise PageError(404, "Nothing like that waits for approval.")
    session = await get_session(request)
    try:
        decided = await source.decide(
            access.channel, entry_id, approve=decision == "approve", actor=access.actor
        )
    except NotWaiting as exc:
        flash(session, f"Someone already decided that one: it is {exc.status} now.", "info")
    except UnknownEntry:
        flash(session, "There is no such redemption or purchase in this channel.", "error")
    except LoyaltyError as exc:
        flash(session, f"Could not {decision} it: {exc}", "error")
    else:
        log.info(
            "queue_decided",
            channel=access.channel,
            by=access.user.login,
            source=source.name,
            entry_id=entry_id,
            decision=decision,
            refunded=decided.refunded,
        )
        flash(
            session,
            "Approved." if decision == "approve" else "Rejected; the points go back to the viewer.",
        )
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/queue")


def routes(sources: Sequence[QueueSource]) -> list[web.RouteDef]:
    """``sources[0]`` (the redemptions) keeps the short decision URL."""
    return [
        web.get("/dashboard/{channel}/queue", partial(queue, sources=sources)),
        web.post(
            "/dashboard/{channel}/queue/{entry_id}/{decision}",
            partial(decide, sources=sources),
        ),
        web.post(
            "/dashboard/{channel}/queue/{source}/{entry_id}/{decision}",
            partial(decide, sources=sources),
        ),
    ]
