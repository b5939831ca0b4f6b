"""What the dashboard shows about EventSub, per channel, whichever transport is in force.

The transports and the dispatcher write here; a page reads it. It lives in memory: after a
restart the state is rebuilt within seconds (connections, subscriptions), and history
(revocations, gaps) is in the log. Everything is bounded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

MAX_KEPT: int = 20  # revocations and gaps shown per channel

Transport = Literal["webhook", "websocket"]


@dataclass(slots=True)
class SubscriptionState:
    """One subscription the channel needs, as Twitch last told us."""

    type: str
    status: str  # enabled, failed, revoked (with its reason in ``detail``), ...
    id: str | None = None
    detail: str | None = None  # why it failed or was revoked, safe to show
    at: float = 0.0  # when this became its status (Unix seconds)
    http_status: int | None = None  # Twitch's answer when it refused to create it


@dataclass(frozen=True, slots=True)
class Revoked:
    type: str
    reason: str  # Twitch's status: authorization_revoked, user_removed, version_removed
    at: float


@dataclass(slots=True)
class Gap:
    """A stretch when the connection was down: Twitch replays nothing sent meanwhile."""

    since: float  # last sign of life of the lost connection
    until: float | None = None  # when the new session's subscriptions were in place
    cause: str = ""
    recovered: int | None = None  # redemptions fetched from Helix and handled afterwards


@dataclass(slots=True)
class ChannelState:
    transport: Transport
    state: str = "starting"  # connecting, connected, reconnecting, no token, stopped, ...
    problem: str | None = None  # one line for the operator, with the command that fixes it
    connected_since: float | None = None
    session_id: str | None = None
    keepalive_seconds: int | None = None
    reconnects: int = 0  # new sessions after a lost connection
    session_reconnects: int = 0  # Twitch's session_reconnect followed
    subscriptions: dict[str, SubscriptionState] = field(default_factory=dict)
    last_event: tuple[str, float] | None = None  # subscription type, when Twitch sent it
    revocations: deque[Revoked] = field(default_factory=lambda: deque(maxlen=MAX_KEPT))
    gaps: deque[Gap] = field(default_factory=lambda: deque(maxlen=MAX_KEPT))

    @property
    def missed_warning(self) -> bool:
        """A gap was seen since start: events sent meanwhile may be lost."""
        return bool(self.gaps)


class EventSubStatus:
    """Each configured channel's ``ChannelState``."""

    def __init__(self, transport: Transport) -> None:
        self.transport: Transport = transport
        self._channels: dict[str, ChannelState] = {}

    def channel(self, channel: str) -> ChannelState:
        """The channel's state, made on first use."""
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = ChannelState(self.transport)
        return state

    def get(self, channel: str) -> ChannelState | None:
        return self._channels.get(channel)

    def forget(self, channel: str) -> None:
        self._channels.pop(channel, None)

    def channels(self) -> dict[str, ChannelState]:
        return dict(self._channels)
