"""The rewards feature as the daemon registers it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from loyaltybot.config import Config, RewardConfig
from loyaltybot.db import Store, Tx
from loyaltybot.db.jobs import WorkKind
from loyaltybot.eventsub.dispatch import AfterCommit, Handler, Routed
from loyaltybot.eventsub.events import RedemptionAdded
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.rewards import views
from loyaltybot.features.rewards.delivery import ChatSend, HelixFor, RewardDelivery
from loyaltybot.features.rewards.rules import Status
from loyaltybot.features.rewards.service import RedemptionOutcome, Rewards, prune
from loyaltybot.points.bank import Bank
from loyaltybot.twitch.helix import HelixError
from loyaltybot.web.state import Stat

log = structlog.get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
TEMPLATES = Path(__file__).parent / "templates"


class RewardsFeature(Feature):
    name = "rewards"

    def __init__(
        self,
        *,
        config: Config,
        bank: Bank,
        store: Store,
        session: aiohttp.ClientSession,
        chat: ChatSend,
        helix_for: HelixFor,
        chat_max_age: float | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._helix_for = helix_for
        self.rewards = Rewards(bank, store, _rewards_of(config))
        options = {} if chat_max_age is None else {"chat_max_age": chat_max_age}
        self.delivery = RewardDelivery(session=session, chat=chat, helix_for=helix_for, **options)
        self._pruner: asyncio.Task[None] | None = None

    # ---- what the edges get ------------------------------------------------------------

    def eventsub(self) -> Mapping[type, Handler]:
        return {RedemptionAdded: self._redeemed}

    def jobs(self) -> Mapping[str, WorkKind]:
        return self.delivery.kinds()

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self.rewards)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Queue", "queue"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)

    async def title_badge(self, channel: str, user_id: str) -> str | None:
        """What ``!points`` adds: the title the viewer unlocked most recently."""
        title = await self.rewards.title_of(channel, user_id)
        return f"title: {title}" if title else None

    async def stats(self, channel: str) -> Sequence[Stat]:
        """Redemptions waiting for approval, where a reward is held for it."""
        if not any(r.action == "queue" for r in self.rewards.configured(channel)):
            return ()
        queued = len(await self.rewards.list_queue(channel))
        return (Stat("Waiting for approval", queued, "queue"),)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._pruner = asyncio.create_task(self._prune_forever(), name="rewards-prune")

    async def close(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner

    async def apply(self, config: Config) -> None:
        self._config = config
        self.rewards.update(_rewards_of(config))

    async def broadcasters_known(self, ids: Mapping[str, str]) -> None:
        """Which of each channel's rewards our client id manages (asked at start)."""
        for channel, broadcaster_id in ids.items():
            helix = self._helix_for(channel)
            if helix is not None:
                with contextlib.suppress(HelixError):
                    await self.rewards.refresh_owned(channel, helix, broadcaster_id)

    # ---- internals ---------------------------------------------------------------------

    def _redeemed(self, tx: Tx, routed: Routed) -> AfterCommit | None:
        event = routed.event
        if not isinstance(event, RedemptionAdded):  # registered for this class only
            return None
        outcome = self.rewards.handle(tx, routed.channel, event)
        return lambda: _report(outcome, event)

    async def _prune_forever(self) -> None:
        while True:
            try:
                await self._store.write(prune)
            except Exception:
                log.exception("rewards_prune_failed")
            await asyncio.sleep(PRUNE_EVERY_SECONDS)


def _rewards_of(config: Config) -> dict[str, tuple[RewardConfig, ...]]:
    return {channel: tuple(cfg.rewards) for channel, cfg in config.channels.items()}


def _report(result: RedemptionOutcome | None, event: RedemptionAdded) -> None:
    if result is None:
        log.info("redemption_seen_before", redemption_id=event.id)
        return
    emit = log.warning if result.status is Status.UNMATCHED else log.info
    emit(
        "redemption_handled" if result.action else "redemption_unmatched",
        channel=result.channel,
        redemption_id=result.redemption_id,
        reward=result.reward,
        action=result.action,
        status=str(result.status),
        outcome=result.outcome,
        twitch_status=result.twitch_status,
    )

