"""GET /dashboard/{channel}/eventsub: the transport, the session, each subscription and its
status, the last event, revocations, and the gaps when events may have been missed."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from loyaltybot.eventsub.status import ChannelState, EventSubStatus
from loyaltybot.web.access import context, require_access
from loyaltybot.web.pages import render


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def page_values(state: ChannelState | None, transport: str) -> dict[str, Any]:
    """What the template shows, times in ms (for the ``when`` macro), newest first."""
    if state is None:
        return {"transport": transport, "known": False}
    return {
        "transport": state.transport,
        "known": True,
        "state": state.state,
        "problem": state.problem,
        "connected_since": _ms(state.connected_since),
        "session_id": state.session_id,
        "keepalive": state.keepalive_seconds,
        "reconnects": state.reconnects,
        "session_reconnects": state.session_reconnects,
        "subscriptions": [
            {
                "type": sub.type,
                "status": sub.status,
                "id": sub.id,
                "detail": sub.detail,
                "at": _ms(sub.at) if sub.at else None,
            }
            for sub in sorted(state.subscriptions.values(), key=lambda s: s.type)
        ],
        "last_event": (
            None
            if state.last_event is None
            else {"type": state.last_event[0], "at": _ms(state.last_event[1])}
        ),
        "revocations": [
            {"type": r.type, "reason": r.reason, "at": _ms(r.at)}
            for r in reversed(state.revocations)
        ],
        "gaps": [
            {
                "since": _ms(g.since),
                "until": _ms(g.until),
                "cause": g.cause,
                "recovered": g.recovered,
            }
            for g in reversed(state.gaps)
        ],
    }


async def eventsub_page(request: web.Request, status: EventSubStatus) -> web.StreamResponse:
    """GET /dashboard/{channel}/eventsub."""
    access = await require_access(request)
    values = page_values(status.get(access.channel), status.transport)
    page_context = context(access, "eventsub", **values)
    return await render(request, "eventsub_status/eventsub.html", page_context)
