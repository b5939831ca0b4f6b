"""EventSub over WebSocket: one text frame in, one typed message out, with no I/O.

Every frame is ``{"metadata": {...}, "payload": {...}}`` (twitch-reference.md §7.2). There
is no signature and no age check: the TLS connection to Twitch is the authentication
(SPEC §6.1). Notifications and revocations become the same ``Notification`` and
``Revocation`` the webhook produces, so the dispatcher cannot tell which transport carried
them. A frame that is not what its type promises is ``Malformed``, with a short reason
that is safe to log (never the frame itself).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from loyaltybot.eventsub.events import (
    Malformed,
    Notification,
    Revocation,
    parse_event,
    parse_subscription,
    parse_timestamp,
)

MAX_FRAME_CHARS: Final = 256 * 1024  # Twitch's messages are a few KB
MIN_KEEPALIVE: Final = 1  # Twitch allows 10..600; the simulator may go lower in tests
MAX_KEEPALIVE: Final = 600


@dataclass(frozen=True, slots=True)
class Welcome:
    message_id: str
    session_id: str
    keepalive_seconds: int


@dataclass(frozen=True, slots=True)
class Keepalive:
    message_id: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    message_id: str
    session_id: str
    url: str  # used exactly as given (Twitch: "do not modify it")


Frame = Welcome | Keepalive | Reconnect | Notification | Revocation


def parse_frame(text: str) -> Frame:
    """The typed message of one text frame.

    Raises:
        Malformed: not JSON, not an envelope, an unknown type, or a payload missing what
            its type needs.
    """
    if len(text) > MAX_FRAME_CHARS:
        raise Malformed("the frame is too large")
    try:
        envelope = json.loads(text)
    except RecursionError:
        raise Malformed("the frame is nested too deeply") from None
    except ValueError:
        raise Malformed("the frame is not JSON") from None
    if not isinstance(envelope, dict):
        raise Malformed("the frame is not a JSON object")
    metadata, payload = envelope.get("metadata"), envelope.get("payload")
    if not isinstance(metadata, dict) or not isinstance(payload, dict):
        raise Malformed("the frame has no metadata or payload")
    message_id = _text(metadata, "message_id")
    kind = _text(metadata, "message_type")
    if kind == "session_keepalive":
        return Keepalive(message_id)
    if kind == "session_welcome":
        session = _session(payload)
        keepalive = session.get("keepalive_timeout_seconds")
        if not isinstance(keepalive, int) or isinstance(keepalive, bool):
            raise Malformed("the welcome has no keepalive_timeout_seconds")
        clamped = min(MAX_KEEPALIVE, max(MIN_KEEPALIVE, keepalive))
        return Welcome(message_id, _text(session, "id"), clamped)
    if kind == "session_reconnect":
        session = _session(payload)
        url = session.get("reconnect_url")
        if not isinstance(url, str) or not url.startswith(("wss://", "ws://")) or len(url) > 2048:
            raise Malformed("session_reconnect without a ws(s) reconnect_url")
        return Reconnect(message_id, _text(session, "id"), url)
    if kind not in ("notification", "revocation"):
        raise Malformed(f"unknown message type {kind[:40]!r}")
    try:
        sent = parse_timestamp(_text(metadata, "message_timestamp"))
    except ValueError:
        raise Malformed("message_timestamp is not an RFC 3339 timestamp") from None
    subscription = parse_subscription(payload.get("subscription"))
    if kind == "revocation":
        return Revocation(message_id, sent, subscription)
    event = payload.get("event")
    if not isinstance(event, dict):
        raise Malformed("notification without an event")
    return Notification(message_id, sent, 0, subscription, parse_event(subscription.type, event))


def _session(payload: dict[str, Any]) -> dict[str, Any]:
    session = payload.get("session")
    if not isinstance(session, dict):
        raise Malformed("the payload has no session")
    return session


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value or len(value) > 200:
        raise Malformed(f"{key} missing or not text")
    if not value.isprintable() or not value.isascii():
        raise Malformed(f"{key} is not printable ASCII")
    return value
