"""The bonuses feature as the daemon registers it: EventSub handlers for five event types,
and which of them a channel needs (those whose bonus is switched on)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping

import structlog

from loyaltybot.db import Tx
from loyaltybot.eventsub.dispatch import AfterCommit, Handler, Routed
from loyaltybot.eventsub.events import Cheer, Follow, Raid, Subscribe, SubscriptionGift
from loyaltybot.features import Feature
from loyaltybot.features.bonuses.rules import events_switched_on
from loyaltybot.features.bonuses.service import BonusOutcome, apply_bonus
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)


class Bonuses(Feature):
    name = "bonuses"

    def __init__(
        self, settings: Callable[[str], Awaitable[ChannelSettings]] | None = None
    ) -> None:
        self._settings = settings  # a channel's current settings; None: every bonus counts

    def eventsub(self) -> Mapping[type, Handler]:
        return dict.fromkeys((Follow, Subscribe, SubscriptionGift, Cheer, Raid), self._apply)

    async def eventsub_wanted(self, channel: str) -> Collection[type]:
        if self._settings is None:
            return tuple(self.eventsub())
        return events_switched_on(await self._settings(channel))

    @staticmethod
    def _apply(tx: Tx, routed: Routed) -> AfterCommit | None:
        outcome = apply_bonus(
            tx, routed.channel_id, routed.channel, routed.event, routed.message_id
        )
        return None if outcome is None else lambda: _report(outcome)


def _report(result: BonusOutcome) -> None:
    log.info(
        "event_bonus",
        channel=result.channel,
        kind=result.kind,
        user_id=result.user_id,
        amount=result.amount,
        outcome=result.outcome,
    )
