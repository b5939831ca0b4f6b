"""The rewards feature as the daemon registers it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from loyaltybot.actions.delivery import ChatSend, Delivery
from loyaltybot.actions.queue import Decided, QueueSource, Waiting
from loyaltybot.config import Config, RewardConfig, Secret
from loyaltybot.db import Store, Tx
from loyaltybot.db.jobs import WorkKind
from loyaltybot.eventsub.dispatch import AfterCommit, Handler, Missed, Routed
from loyaltybot.eventsub.events import RedemptionAdded
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.rewards import views
from loyaltybot.features.rewards.delivery import HelixFor, RewardDelivery
from loyaltybot.features.rewards.rules import Status, reward_key
from loyaltybot.features.rewards.service import WEBHOOKS, RedemptionOutcome, Rewards, prune
from loyaltybot.points.bank import Bank
from loyaltybot.twitch.helix import HelixError
from loyaltybot.web.state import Stat

log = structlog.get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
TEMPLATES = Path(__file__).parent / "templates"


class RedemptionQueue:
    """Queued redemptions as the approval queue lists them (``actions.queue``)."""

    name = "redemption"

    def __init__(self, rewards: Rewards) -> None:
        self._rewards = rewards

    def holds(self, channel: str) -> bool:
        return any(r.action == "queue" for r in self._rewards.configured(channel))

    async def waiting(self, channel: str, limit: int) -> Sequence[Waiting]:
        return [
            Waiting(
                self.name,
                r.redemption_id,
                "Channel points",
                r.reward_title,
                r.user_login,
                r.user_name,
                r.user_input,
                r.loyalty_cost,
                r.created_at,
            )
            for r in await self._rewards.list_queue(channel, limit)
        ]

    async def decide(self, channel: str, entry_id: str, *, approve: bool, actor: str) -> Decided:
        if approve:
            decision = await self._rewards.approve(channel, entry_id, actor)
        else:
            decision = await self._rewards.reject(channel, entry_id, actor)
        return Decided(entry_id, approve, decision.refunded)


class RewardsFeature(Feature):
    """``actions`` runs chat lines and Discord messages (the core's, shared with the shop;
    the daemon registers its job kinds); ``queues`` are the other features' waiting
    entries the approval queue page lists beside redemptions, handed over by the daemon.

    Built alone (tests, tools), without ``actions``, it runs its own delivery over
    ``session`` and ``chat``, and ``jobs()`` includes that delivery's kinds."""

    name = "rewards"

    def __init__(
        self,
        *,
        config: Config,
        bank: Bank,
        store: Store,
        helix_for: HelixFor,
        actions: Delivery | None = None,
        session: aiohttp.ClientSession | None = None,
        chat: ChatSend | None = None,
        queues: Sequence[QueueSource] = (),
    ) -> None:
        self._config = config
        self._store = store
        self._helix_for = helix_for
        self.rewards = Rewards(bank, store, _rewards_of(config))
        self._own: Delivery | None = None
        if actions is None:
            if session is None:
                raise ValueError("RewardsFeature needs actions, or a session to deliver with")
            actions = self._own = Delivery(session=session, chat=chat)
        self.delivery = RewardDelivery(actions=actions, helix_for=helix_for)
        actions.add_webhooks(WEBHOOKS, self._webhook)
        self.queue = RedemptionQueue(self.rewards)
        self._queues: tuple[QueueSource, ...] = (self.queue, *queues)
        self._pruner: asyncio.Task[None] | None = None

    # ---- what the edges get ------------------------------------------------------------

    def eventsub(self) -> Mapping[type, Handler]:
        return {RedemptionAdded: self._redeemed}

    def jobs(self) -> Mapping[str, WorkKind]:
        own = self._own.kinds() if self._own is not None else {}
        return {**own, **self.delivery.kinds()}

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self._queues)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Queue", "queue"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)

    async def title_badge(self, channel: str, user_id: str) -> str | None:
        """What ``!points`` adds: the title the viewer unlocked most recently."""
        title = await self.rewards.title_of(channel, user_id)
        return f"title: {title}" if title else None

    async def stats(self, channel: str) -> Sequence[Stat]:
        """Entries waiting for approval, where something is held for it."""
        held = [source for source in self._queues if source.holds(channel)]
        if not held:
            return ()
        queued = sum([len(await source.waiting(channel, 1000)) for source in held])
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

    async def eventsub_missed(self, channel: str, broadcaster_id: str) -> Sequence[Missed]:
        """After an EventSub gap: redemptions of our own rewards still UNFULFILLED on Twitch
        and never handled here. Keyed by redemption id, so one is handled once whichever
        way it arrives (this catch-up, or Twitch delivering it late)."""
        helix = self._helix_for(channel)
        if helix is None:
            return ()
        try:
            found = await self.rewards.unhandled_on_twitch(channel, helix, broadcaster_id)
        except HelixError as exc:
            log.warning("redemptions_not_recovered", channel=channel, error=str(exc))
            return ()
        return [Missed(f"redemption:{event.id}", event) for event in found]

    # ---- internals ---------------------------------------------------------------------

    async def _webhook(self, channel: str, key: str) -> Secret | None:
        """The Discord webhook of a reward (by its key), as the config says now."""
        for reward in self.rewards.configured(channel):
            if reward_key(reward) == key:
                return reward.webhook_url
        return None

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

