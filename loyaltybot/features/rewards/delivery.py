"""What redemptions send to the outside world, run by the pending-work ``Worker``.

Three kinds of work, each created inside a redemption's transaction by ``rewards``:
a chat line, a forward (POST the redemption as JSON to a local URL), and a Helix
redemption status update (FULFILLED / CANCELED). Here is only the I/O and how each
failure is classified; what a result means for the redemption is in ``rewards``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from loyaltybot.db import Tx
from loyaltybot.db.jobs import Finish, GiveUp, Retry, WorkItem, WorkKind
from loyaltybot.features.rewards import service as rewards
from loyaltybot.twitch.helix import Helix, HelixError

log = structlog.get_logger(__name__)

ChatSend = Callable[[str, str], Awaitable[bool]]
"""``(channel, text) -> sent``; False (or an exception) means try again later."""

HelixFor = Callable[[str], Helix | None]
"""The Helix client acting as a channel's broadcaster, or None without a token."""

CHAT_MAX_AGE_SECONDS = 120.0  # a reward's chat line later than this is worse than none
STATUS_ATTEMPTS = 10
USER_AGENT = "loyaltybot (reward forward)"


class RewardDelivery:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        chat: ChatSend | None = None,
        helix_for: HelixFor | None = None,
        chat_max_age: float = CHAT_MAX_AGE_SECONDS,
    ) -> None:
        self._session = session
        self.chat = chat
        self.helix_for = helix_for
        self._chat_max_age_ms = round(chat_max_age * 1000)

    def kinds(self) -> dict[str, WorkKind]:
        return {
            rewards.CHAT: WorkKind(
                self._chat, max_attempts=lambda item: 1000, max_age_ms=self._chat_max_age_ms
            ),
            rewards.FORWARD: WorkKind(
                self._forward,
                max_attempts=lambda item: int(item.payload.get("retries", 0)) + 1,
                on_give_up=_forward_failed,
            ),
            rewards.REDEMPTION_STATUS: WorkKind(
                self._status, max_attempts=lambda item: STATUS_ATTEMPTS
            ),
        }

    async def _chat(self, item: WorkItem) -> Finish | None:
        if self.chat is None:
            raise Retry("chat is not connected")
        if not await self.chat(str(item.payload["channel"]), str(item.payload["text"])):
            raise Retry("chat did not take the line")
        return None

    async def _forward(self, item: WorkItem) -> Finish | None:
        payload = item.payload
        url = str(payload["url"])
        timeout = aiohttp.ClientTimeout(total=float(payload["timeout"]))
        try:
            async with self._session.post(
                url, json=payload["body"], timeout=timeout, headers={"User-Agent": USER_AGENT}
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            raise Retry("timed out") from None
        except aiohttp.ClientError as exc:
            raise Retry(type(exc).__name__) from None
        if not 200 <= status < 300:
            raise Retry(f"HTTP {status}")
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
