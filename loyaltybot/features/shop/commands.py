"""``!shop`` (a read command: one line) and ``!buy <item> [text]``, alias ``!redeem``.

Each refusal of a purchase is an error that carries data (``rules``); ``renderers`` word
them, one short sentence each, with how long to wait for a cooldown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from loyaltybot.actions.text import format_wait
from loyaltybot.chat.registry import Command, CommandContext, ErrorRenderer
from loyaltybot.chat.replies import MAX_REPLY_CHARS, points_text, quote
from loyaltybot.features.shop.rules import (
    ItemOnCooldown,
    LimitReached,
    NeedsText,
    NoSuchItem,
    NotEnoughPoints,
    ShopOnCooldown,
    SoldOut,
    shop_line,
)
from loyaltybot.features.shop.service import Shop
from loyaltybot.settings import ChannelSettings

log = structlog.get_logger(__name__)

PageUrl = Callable[[str], str | None]
"""channel -> the public shop page's URL, when the bot has a public address."""


class ShopCommands:
    def __init__(self, shop: Shop, page_url: PageUrl) -> None:
        self._shop = shop
        self._page_url = page_url

    def commands(self) -> list[Command]:
        return [
            Command("shop", self.list_items, read_cooldown=True, usage="!shop"),
            Command("buy", self.buy, aliases=("redeem",), usage="!buy <item> [text], see !shop"),
        ]

    async def list_items(self, ctx: CommandContext) -> str:
        """``!shop``: the items on sale with their costs, in one line."""
        items = [i for i in await self._shop.items(ctx.channel) if i.stock_left != 0]
        if not items:
            return "the shop has nothing for sale right now."
        head = f"the shop, in {ctx.settings.currency_name_plural} (!buy <item>): "
        room = MAX_REPLY_CHARS - len(f"@{ctx.sender.login}, ") - len(head)
        return head + shop_line(
            [i.rule for i in items], page_url=self._page_url(ctx.channel), max_len=room
        )

    async def buy(self, ctx: CommandContext) -> str:
        """``!buy <item> [text]``: one purchase; the text fills the item's ``{input}``."""
        if not ctx.args:
            raise ctx.usage()
        name, text = ctx.args[0], " ".join(ctx.args[1:])
        purchase = await self._shop.buy(ctx.channel, ctx.sender, name, text)
        log.info(
            "shop_purchase",
            channel=ctx.channel,
            user=ctx.sender.login,
            item=purchase.item,
            cost=purchase.cost,
            purchase_id=purchase.id,
        )
        reply = (
            f"you bought {purchase.item} for {ctx.points(purchase.cost)}; "
            f"you have {ctx.points(purchase.balance)} left."
        )
        if purchase.status == "queued":
            reply += " It waits for the streamer's approval (refunded if rejected)."
        if purchase.stock_left is not None:
            reply += f" {purchase.stock_left:,} left in stock."
        return reply


def renderers() -> Sequence[ErrorRenderer]:
    """The shop's refusals in chat, one sentence each."""
    return (
        (NoSuchItem, _no_such_item),
        (NeedsText, _needs_text),
        (SoldOut, _sold_out),
        (LimitReached, _limit),
        (ShopOnCooldown, _shop_cooldown),
        (ItemOnCooldown, _item_cooldown),
        (NotEnoughPoints, _not_enough),
    )


def _no_such_item(exc: NoSuchItem, settings: ChannelSettings) -> str:
    return f"the shop has no item {quote(exc.name)}: !shop lists them."


def _needs_text(exc: NeedsText, settings: ChannelSettings) -> str:
    return f"{exc.item} needs a text: !buy {exc.item} <your text>."


def _sold_out(exc: SoldOut, settings: ChannelSettings) -> str:
    return f"{exc.item} is sold out."


def _limit(exc: LimitReached, settings: ChannelSettings) -> str:
    times = "once" if exc.per_viewer == 1 else f"{exc.per_viewer:,} times"
    return f"you can buy {exc.item} {times} per stream, and you have."


def _shop_cooldown(exc: ShopOnCooldown, settings: ChannelSettings) -> str:
    return (
        f"{exc.item} was just bought: anyone can buy it again in {format_wait(exc.seconds_left)}."
    )


def _item_cooldown(exc: ItemOnCooldown, settings: ChannelSettings) -> str:
    return f"you can buy {exc.item} again in {format_wait(exc.seconds_left)}."


def _not_enough(exc: NotEnoughPoints, settings: ChannelSettings) -> str:
    return (
        f"that costs {points_text(exc.cost, settings)} and you have "
        f"{points_text(exc.balance, settings)}."
    )
