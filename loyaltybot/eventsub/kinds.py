"""What each typed event is on Twitch: its subscription type, version, condition and scope.

Features say which event *classes* they handle (``Feature.eventsub()``) and which of those
they need for a channel right now (``Feature.eventsub_wanted``); this table turns a class
into the subscription to create, for either transport (twitch-reference.md §3.7, §7.6).
Nobody else keeps a list of subscription types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from loyaltybot.eventsub import events
from loyaltybot.eventsub.events import (
    Cheer,
    Follow,
    Raid,
    RedemptionAdded,
    StreamOffline,
    StreamOnline,
    Subscribe,
    SubscriptionGift,
)


@dataclass(frozen=True, slots=True)
class Kind:
    """One subscription type as this daemon asks for it, for a broadcaster's channel."""

    event: type
    type: str
    version: str
    condition_keys: tuple[str, ...]  # each one is the broadcaster's user id
    scopes: tuple[str, ...] = ()  # the broadcaster must have granted one of these

    def condition(self, broadcaster_id: str) -> dict[str, str]:
        return dict.fromkeys(self.condition_keys, broadcaster_id)

    def body(self, broadcaster_id: str, transport: dict[str, str]) -> dict[str, object]:
        """The Create EventSub Subscription request."""
        return {
            "type": self.type,
            "version": self.version,
            "condition": self.condition(broadcaster_id),
            "transport": transport,
        }


_MINE = ("broadcaster_user_id",)
_SUBS = ("channel:read:subscriptions",)

# In the order subscriptions are created. ``channel.follow`` v2 needs a moderator: the
# broadcaster, whose token granted moderator:read:followers. Raids are those *to* the channel.
KINDS: tuple[Kind, ...] = (
    Kind(
        RedemptionAdded,
        events.REDEMPTION_ADD,
        "1",
        _MINE,
        ("channel:read:redemptions", "channel:manage:redemptions"),
    ),
    Kind(StreamOnline, events.STREAM_ONLINE, "1", _MINE),
    Kind(StreamOffline, events.STREAM_OFFLINE, "1", _MINE),
    Kind(
        Follow,
        events.FOLLOW,
        "2",
        ("broadcaster_user_id", "moderator_user_id"),
        ("moderator:read:followers",),
    ),
    Kind(Subscribe, events.SUBSCRIBE, "1", _MINE, _SUBS),
    Kind(SubscriptionGift, events.SUBSCRIPTION_GIFT, "1", _MINE, _SUBS),
    Kind(Cheer, events.CHEER, "1", _MINE, ("bits:read",)),
    Kind(Raid, events.RAID, "1", ("to_broadcaster_user_id",)),
)

BY_EVENT: dict[type, Kind] = {kind.event: kind for kind in KINDS}
BY_TYPE: dict[str, Kind] = {kind.type: kind for kind in KINDS}


def kinds_of(classes: Iterable[type]) -> list[Kind]:
    """The kinds of these event classes, in creation order (classes with none are left out)."""
    wanted = set(classes)
    return [kind for kind in KINDS if kind.event in wanted]
