"""What redemptions send to the outside world, run by the pending-work ``Worker``.

Two kinds of work of this feature's own, each created inside a redemption's transaction
by ``service``: a forward (POST the redemption as JSON to a local URL) and a Helix
redemption status update (FULFILLED / CANCELED). Chat lines and Discord messages are the
core's (``loyaltybot.actions.delivery``), as is the forward's HTTP. Here is how each
failure is classified; what a result means for the redemption is in ``service``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from loyaltybot.actions.delivery import Delivery
from loyaltybot.db import Tx
from loyaltybot.db.jobs import Finish, GiveUp, Retry, WorkItem, WorkKind
from loyaltybot.features.rewards import service as rewards
from loyaltybot.twitch.helix import Helix, HelixError

log = structlog.get_logger(__name__)

HelixFor = Callable[[str], Helix | None]
"""The Helix client acting as a channel's broadcaster, or None without a token."""

STATUS_ATTEMPTS = 10
USER_AGENT = "loyaltybot (reward forward)"


class RewardDelivery:
    def __init__(self, *, actions: Delivery, helix_for: HelixFor | None = None) -> None:
        self._actions = actions
        self.helix_for = helix_for

    def kinds(self) -> dict[str, WorkKind]:
        return {
            rewards.FORWARD: WorkKind(
                self._forward,
                max_attempts=lambda item: int(item.payload.get("retries", 0)) + 1,
                on_give_up=_forward_failed,
            ),
            rewards.REDEMPTION_STATUS: WorkKind(
                self._status, max_attempts=lambda item: STATUS_ATTEMPTS
            ),
        }

    async def _forward(self, item: WorkItem) -> Finish | None:
        payload = item.payload
        await self._actions.post_json(
            str(payload["url"]),
            payload["body"],
            timeout_seconds=float(payload["timeout"]),
            user_agent=USER_AGENT,
        )
        log.info(
            "redemption_forwarded",
            channel=payload["channel"],
            redemption_id=payload["redemption_id"],
            attempt=item.attempts + 1,
        )
        channel = str(payload["channel"])
        redemption_id = str(payload["redemption_id"])
        announce = payload.get("announce")

        def finish(tx: Tx) -> None:
            rewards.forward_finished(
                tx,
                item.channel_id,
                channel,
                redemption_id,
                delivered=True,
                announce=str(announce) if announce else None,
            )

        return finish

    async def _status(self, item: WorkItem) -> Finish | None:
        payload: dict[str, Any] = dict(item.payload)
        channel = str(payload["channel"])
        helix = self.helix_for(channel) if self.helix_for else None
        if helix is None:
            raise GiveUp(f"no broadcaster token for #{channel}")
        try:
            await helix.request(
                "PATCH",
                "/channel_points/custom_rewards/redemptions",
                params={
                    "id": str(payload["redemption_id"]),
                    "broadcaster_id": str(payload["broadcaster_id"]),
                    "reward_id": str(payload["reward_id"]),
                },
                json={"status": str(payload["status"])},
            )
        except HelixError as exc:
            if exc.status == 400:  # already fulfilled or canceled: nothing left to do
                log.warning(
                    "redemption_status_unchanged",
                    channel=channel,
                    redemption_id=payload["redemption_id"],
                    reason=exc.message,
                )
                return None
            if exc.status in (403, 404):
                raise GiveUp(exc.message) from None
            raise Retry(exc.message) from None
        log.info(
            "redemption_status_set",
            channel=channel,
            redemption_id=payload["redemption_id"],
            status=payload["status"],
        )
        return None


def _forward_failed(tx: Tx, item: WorkItem, reason: str) -> None:
    payload = item.payload
    rewards.forward_finished(
        tx,
        item.channel_id,
        str(payload["channel"]),
        str(payload["redemption_id"]),
        delivered=False,
        announce=None,
    )
