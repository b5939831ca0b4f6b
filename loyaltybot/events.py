"""Event bonuses (SPEC §4): follows, subscriptions, gifts, cheers and raids earn points.

Amounts come from the channel's settings (0 = off), read inside the transaction that
credits them. Who gets what, decided here:

- follow: ``follow_bonus`` to the follower, once per viewer and channel ever (ledger
  ref ``follow:<user id>``), so unfollowing and following again earns nothing.
- subscribe: ``sub_bonus_tier1..3`` to the subscriber (Prime counts as tier 1). The
  recipient of a gifted sub gets nothing: the gifter is rewarded by the gift event.
- subscription gift: ``gift_bonus`` per gifted sub to the gifter.
- cheer: ``cheer_bonus_per_100`` per whole 100 bits to the cheerer.
- raid: ``raid_bonus`` to the raiding broadcaster, as a viewer of the raided channel.
  They are credited even if the channel has never seen them: points are keyed by Twitch
  user id, and a raider usually arrives with the raid.
- anonymous gifts and cheers credit nobody.

Each bonus is one ledger row of type ``bonus`` whose ref makes it happen once.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyaltybot import settings
from loyaltybot.db import Tx
from loyaltybot.points import ledger
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.errors import BalanceTooHigh
from loyaltybot.points.ledger import EntryType
from loyaltybot.settings import ChannelSettings
from loyaltybot.twitch.eventsub import (
    Cheer,
    Event,
    Follow,
    Raid,
    Subscribe,
    SubscriptionGift,
    User,
)


@dataclass(frozen=True, slots=True)
class BonusPlan:
    kind: str  # follow, sub, gift, cheer, raid
    user: User | None  # None: nobody to credit (anonymous)
    amount: int  # 0: off, or too little to earn anything
    reason: str


@dataclass(frozen=True, slots=True)
class BonusOutcome:
    channel: str
    kind: str
    user_id: str | None
    amount: int  # applied
    outcome: str  # credited, off, anonymous, already_given, balance_full


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


def apply_bonus(
    tx: Tx, channel_id: int, channel: str, event: Event, message_id: str
) -> BonusOutcome | None:
    """Credit the event's bonus inside the caller's transaction (the one that records
    the message id)."""
    plan = plan_bonus(event, settings.load(tx.conn, channel_id).values)
    if plan is None:
        return None
    user_id = plan.user.id if plan.user else None
    if plan.user is None:
        return BonusOutcome(channel, plan.kind, None, 0, "anonymous")
    if plan.amount <= 0:
        return BonusOutcome(channel, plan.kind, user_id, 0, "off")
    ref = f"follow:{plan.user.id}" if plan.kind == "follow" else f"eventsub:{message_id}"
    # Checked first: a reused ref would fail only after the balance moved.
    if ledger.ref_exists(tx.conn, channel_id, ref):
        return BonusOutcome(channel, plan.kind, user_id, 0, "already_given")
    try:
        change = ledger.credit(
            tx,
            channel_id,
            plan.user.viewer,
            plan.amount,
            kind=EntryType.BONUS,
            reason=plan.reason,
            actor="twitch",
            ref=ref,
        )
    except BalanceTooHigh:
        return BonusOutcome(channel, plan.kind, user_id, 0, "balance_full")
    return BonusOutcome(channel, plan.kind, user_id, change.applied, "credited")
