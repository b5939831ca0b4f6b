"""The bonuses feature as the daemon registers it: EventSub handlers for five event types."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from loyaltybot.db import Tx
from loyaltybot.eventsub.dispatch import AfterCommit, Handler, Routed
from loyaltybot.eventsub.events import Cheer, Follow, Raid, Subscribe, SubscriptionGift
from loyaltybot.features import Feature
from loyaltybot.features.bonuses.service import BonusOutcome, apply_bonus

log = structlog.get_logger(__name__)


class Bonuses(Feature):
    name = "bonuses"

    def eventsub(self) -> Mapping[type, Handler]:
        return dict.fromkeys((Follow, Subscribe, SubscriptionGift, Cheer, Raid), self._apply)

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
