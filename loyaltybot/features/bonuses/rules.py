"""Which bonus an event earns (SPEC §4), as a pure function of the event and the settings.

Who gets what:

- follow: ``follow_bonus`` to the follower, once per viewer and channel ever (the service
  keys it by user id), so unfollowing and following again earns nothing.
- subscribe: ``sub_bonus_tier1..3`` to the subscriber (Prime counts as tier 1). The
  recipient of a gifted sub gets nothing: the gifter is rewarded by the gift event.
- subscription gift: ``gift_bonus`` per gifted sub to the gifter.
- cheer: ``cheer_bonus_per_100`` per whole 100 bits to the cheerer.
- raid: ``raid_bonus`` to the raiding broadcaster, as a viewer of the raided channel.
- anonymous gifts and cheers credit nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyaltybot.eventsub.events import (
    Cheer,
    Event,
    Follow,
    Raid,
    Subscribe,
    SubscriptionGift,
    User,
)
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.settings import ChannelSettings


@dataclass(frozen=True, slots=True)
class BonusPlan:
    kind: str  # follow, sub, gift, cheer, raid
    user: User | None  # None: nobody to credit (anonymous)
    amount: int  # 0: off, or too little to earn anything
    reason: str


def plan_bonus(event: Event, rules: ChannelSettings) -> BonusPlan | None:
    """The bonus an event earns under these settings; None if the event earns none."""
    if isinstance(event, Follow):
        return BonusPlan("follow", event.user, rules.follow_bonus, "follow")
    if isinstance(event, Subscribe):
        if event.is_gift:
            return None
        amount = (rules.sub_bonus_tier1, rules.sub_bonus_tier2, rules.sub_bonus_tier3)[
            event.tier - 1
        ]
        return BonusPlan("sub", event.user, amount, f"subscription (tier {event.tier})")
    if isinstance(event, SubscriptionGift):
        plural = "s" if event.total != 1 else ""
        return BonusPlan(
            "gift",
            event.user,
            min(MAX_POINTS, rules.gift_bonus * event.total),
            f"gifted {event.total} sub{plural} (tier {event.tier})",
        )
    if isinstance(event, Cheer):
        return BonusPlan(
            "cheer",
            event.user,
            min(MAX_POINTS, rules.cheer_bonus_per_100 * (event.bits // 100)),
            f"cheered {event.bits} bits",
        )
    if isinstance(event, Raid):
        if event.raider.id == event.broadcaster.id:
            return None
        return BonusPlan(
            "raid", event.raider, rules.raid_bonus, f"raid with {event.viewers} viewers"
        )
    return None


def events_switched_on(rules: ChannelSettings) -> frozenset[type]:
    """The event classes whose bonus is on (> 0) in these settings: over EventSub WebSocket
    only those are subscribed to."""
    on: set[type] = set()
    if rules.follow_bonus > 0:
        on.add(Follow)
    if max(rules.sub_bonus_tier1, rules.sub_bonus_tier2, rules.sub_bonus_tier3) > 0:
        on.add(Subscribe)
    if rules.gift_bonus > 0:
        on.add(SubscriptionGift)
    if rules.cheer_bonus_per_100 > 0:
        on.add(Cheer)
    if rules.raid_bonus > 0:
        on.add(Raid)
    return frozenset(on)
