"""Event bonuses (SPEC §4): follows, subscriptions, gifts, cheers and raids earn points.

Amounts come from the channel's settings (0 = off), read inside the transaction that
credits them (``rules.plan_bonus`` decides who gets what). Raiders are credited even if the
channel has never seen them: points are keyed by Twitch user id, and a raider usually
arrives with the raid. Each bonus is one ledger row of type ``bonus`` whose ref makes it
happen once.
"""

from __future__ import annotations

from dataclasses import dataclass

from loyaltybot import settings
from loyaltybot.db import Tx
from loyaltybot.eventsub.events import Event
from loyaltybot.features.bonuses.rules import plan_bonus
from loyaltybot.points import ledger
from loyaltybot.points.errors import BalanceTooHigh
from loyaltybot.points.ledger import EntryType


@dataclass(frozen=True, slots=True)
class BonusOutcome:
    channel: str
    kind: str
    user_id: str | None
    amount: int  # applied
    outcome: str  # credited, off, anonymous, already_given, balance_full


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
