"""The shop as the daemon registers it (SPEC §10.1).

What it is handed: ``actions`` (the core's chat and Discord delivery, which resolves the
shop's webhooks through ``Shop.webhook``) and ``live`` (whether a channel is live, which
the earning feature knows: ``per_viewer`` limits count per stream). What it offers the
rewards feature's approval queue is ``queue`` (an ``actions.queue.QueueSource``), handed
over by the daemon too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog
from aiohttp import web

from loyaltybot.actions.delivery import Delivery
from loyaltybot.actions.queue import Decided, Waiting
from loyaltybot.chat.registry import Command, ErrorRenderer
from loyaltybot.config import Config, Secret, ShopItemConfig
from loyaltybot.db import Store, Tx
from loyaltybot.db.jobs import Finish, WorkItem, WorkKind
from loyaltybot.features import Feature, NavLink
from loyaltybot.features.shop import service, views
from loyaltybot.features.shop.commands import ShopCommands, renderers
from loyaltybot.features.shop.service import FORWARD, WEBHOOKS, LiveNow, Shop
from loyaltybot.points.bank import Bank
from loyaltybot.web.state import Stat

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
STREAM_WATCH_SECONDS = 2.0
USER_AGENT = "loyaltybot (shop forward)"


class ShopQueue:
    """Queued purchases as the approval queue lists them."""

    name = service.SOURCE

    def __init__(self, shop: Shop) -> None:
        self._shop = shop

    def holds(self, channel: str) -> bool:
        return channel in self._shop.queue_channels

    async def waiting(self, channel: str, limit: int) -> Sequence[Waiting]:
        return await self._shop.waiting(channel, limit)

    async def decide(self, channel: str, entry_id: str, *, approve: bool, actor: str) -> Decided:
        return await self._shop.decide(channel, entry_id, approve=approve, actor=actor)


class ShopFeature(Feature):
    name = "shop"

    def __init__(
        self,
        *,
        config: Config,
        bank: Bank,
        store: Store,
        actions: Delivery,
        live: LiveNow = lambda channel: None,
    ) -> None:
        self._config = config
        self._actions = actions
        self.shop = Shop(bank, store, live)
        self.queue = ShopQueue(self.shop)
        self._commands = ShopCommands(self.shop, self._page_url)
        actions.add_webhooks(WEBHOOKS, self._webhook)
        self._watcher: asyncio.Task[None] | None = None

    # ---- what the edges get --------------------------------------------------------------

    def commands(self) -> Sequence[Command]:
        return self._commands.commands()

    def error_renderers(self) -> Sequence[ErrorRenderer]:
        return renderers()

    def routes(self) -> Sequence[web.RouteDef]:
        return views.routes(self.shop)

    def nav(self) -> Sequence[NavLink]:
        return (NavLink("Shop", "shop"),)

    def templates(self) -> Sequence[Path]:
        return (TEMPLATES,)

    def jobs(self) -> Mapping[str, WorkKind]:
        return {
            FORWARD: WorkKind(
                self._forward,
                max_attempts=lambda item: int(item.payload.get("retries", 0)) + 1,
                on_give_up=self._forward_failed,
            )
        }

    async def stats(self, channel: str) -> Sequence[Stat]:
        items = await self.shop.items(channel)
        if not items:
            return ()
        return (Stat("Items for sale", sum(1 for i in items if i.stock_left != 0), "shop"),)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.shop.apply_file(_items_of(self._config))
        self._watcher = asyncio.create_task(self._watch_streams(), name="shop-streams")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def apply(self, config: Config) -> None:
        self._config = config
        await self.shop.apply_file(_items_of(config))

    # ---- internals -------------------------------------------------------------------------

    def _page_url(self, channel: str) -> str | None:
        public = self._config.web.public_url
        return f"{public.rstrip('/')}/c/{channel}/shop" if public else None

    async def _webhook(self, channel: str, key: str) -> Secret | None:
        return await self.shop.webhook(channel, key)

    async def _watch_streams(self) -> None:
        while True:
            try:
                await self.shop.watch_streams(list(self._config.channels))
            except Exception:
                log.exception("shop_stream_watch_failed")
            await asyncio.sleep(STREAM_WATCH_SECONDS)

    async def _forward(self, item: WorkItem) -> Finish | None:
        payload = item.payload
        await self._actions.post_json(
            str(payload["url"]),
            payload["body"],
            timeout_seconds=float(payload["timeout"]),
            user_agent=USER_AGENT,
        )
        log.info(
            "shop_purchase_forwarded",
            channel=payload["channel"],
            purchase_id=payload["purchase_id"],
        )
        announce = payload.get("announce")

        def finish(tx: Tx) -> None:
            service.forward_finished(
                tx,
                item.channel_id,
                str(payload["channel"]),
                int(payload["purchase_id"]),
                delivered=True,
                announce=str(announce) if announce else None,
            )

        return finish

    @staticmethod
    def _forward_failed(tx: Tx, item: WorkItem, reason: str) -> None:
        service.forward_finished(
            tx,
            item.channel_id,
            str(item.payload["channel"]),
            int(item.payload["purchase_id"]),
            delivered=False,
            announce=None,
        )


def _items_of(config: Config) -> dict[str, tuple[ShopItemConfig, ...]]:
    return {channel: tuple(cfg.shop) for channel, cfg in config.channels.items()}
