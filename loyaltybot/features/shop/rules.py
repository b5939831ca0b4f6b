"""The rules of the shop: whether a purchase may go ahead, and the ``!shop`` line.

SPEC §10.1. The service runs :func:`check_purchase` inside the transaction that debits
the cost and takes the stock (DESIGN invariant 2), with the figures read in it. What a
valid item is, the config and the dashboard's form say alike (``config.ShopItemConfig``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from loyaltybot.config import ShopAction as Action
from loyaltybot.points.amounts import format_points
from loyaltybot.points.errors import LoyaltyError

# ---- refusals ---------------------------------------------------------------------------


class ShopRefusal(LoyaltyError):
    """A purchase that is refused: nothing changes; the chat layer words it."""


class NoSuchItem(ShopRefusal):
    def __init__(self, name: str) -> None:
        super().__init__(f"no item {name!r}")
        self.name = name


class NotEnoughPoints(ShopRefusal):
    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(f"balance {balance} is less than the cost {cost}")
        self.balance = balance
        self.cost = cost


class SoldOut(ShopRefusal):
    def __init__(self, item: str) -> None:
        super().__init__(f"{item} is sold out")
        self.item = item


class LimitReached(ShopRefusal):
    """The viewer bought ``per_viewer`` of the item this stream already."""

    def __init__(self, item: str, per_viewer: int) -> None:
        super().__init__(f"{item}: at most {per_viewer} per viewer per stream")
        self.item = item
        self.per_viewer = per_viewer


class ItemOnCooldown(ShopRefusal):
    """This viewer bought the item less than ``cooldown_seconds`` ago."""

    def __init__(self, item: str, seconds_left: int) -> None:
        super().__init__(f"{item} again in {seconds_left} s")
        self.item = item
        self.seconds_left = seconds_left


class NeedsText(ShopRefusal):
    """The item shows what the buyer types (``{input}``), and they typed nothing."""

    def __init__(self, item: str) -> None:
        super().__init__(f"{item} needs a text")
        self.item = item


class ShopOnCooldown(ShopRefusal):
    """Somebody in the channel bought the item less than ``global_cooldown_seconds`` ago."""

    def __init__(self, seconds_left: int, item: str = "") -> None:
        super().__init__(f"{item or 'the shop'} again for anyone in {seconds_left} s")
        self.seconds_left = seconds_left
        self.item = item


# ---- items ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopItem:
    """What the rules need of an item; the action's own keys stay with the service."""

    name: str
    cost: int
    description: str = ""
    action: Action = "chat"
    stock: int | None = None  # None: unlimited
    per_viewer: int | None = None  # None: no limit per stream
    cooldown_seconds: float = 0
    global_cooldown_seconds: float = 0

    @property
    def key(self) -> str:
        """The name as matched: ``!buy Hydrate`` buys ``hydrate``."""
        return self.name.casefold()


def find_item(items: Iterable[ShopItem], name: str) -> ShopItem:
    """The item called ``name``, case-insensitively, with or without a leading ``!``.

    Raises:
        NoSuchItem.
    """
    wanted = name.strip().removeprefix("!").casefold()
    for item in items:
        if item.key == wanted:
            return item
    raise NoSuchItem(name)


def check_purchase(
    item: ShopItem,
    balance: int,
    stock_left: int | None,
    bought_this_stream: int,
    now: float,
    last_bought_by_viewer_at: float | None,
    last_bought_globally_at: float | None,
) -> None:
    """Decide whether a viewer may buy one ``item`` now; returns None when they may.

    Checks, in this order, the most lasting reason first (so nobody waits out a
    cooldown to learn the item is gone): sold out (``stock_left`` 0; None =
    unlimited), the viewer's limit this stream, the cooldowns (the item's channel-wide
    one and the viewer's; when both run, the one with longer to wait, so the wait the
    reply names is the real one), then the balance (the one the viewer can fix by
    earning). Times
    are seconds on one clock; ``seconds_left`` is rounded up, so never 0.

    Raises:
        SoldOut, LimitReached, ShopOnCooldown, ItemOnCooldown, NotEnoughPoints.
    """
    if stock_left is not None and stock_left <= 0:
        raise SoldOut(item.name)
    if item.per_viewer is not None and bought_this_stream >= item.per_viewer:
        raise LimitReached(item.name, item.per_viewer)
    everyone = _seconds_left(now, last_bought_globally_at, item.global_cooldown_seconds)
    mine = _seconds_left(now, last_bought_by_viewer_at, item.cooldown_seconds)
    if everyone and everyone >= mine:
        raise ShopOnCooldown(everyone, item.name)
    if mine:
        raise ItemOnCooldown(item.name, mine)
    if balance < item.cost:
        raise NotEnoughPoints(balance, item.cost)


def _seconds_left(now: float, last: float | None, cooldown: float) -> int:
    if last is None or cooldown <= 0:
        return 0
    return max(0, math.ceil(last + cooldown - now))


# ---- the !shop line ---------------------------------------------------------------------


def shop_line(items: Sequence[ShopItem], *, page_url: str | None, max_len: int = 500) -> str:
    """The one-line ``!shop`` text: ``hydrate 500 · song 1,000 · ...``.

    When every item fits in ``max_len`` characters, just the items. Otherwise the first
    items that fit, then the page's URL (``page_url``, the public ``/c/<channel>/shop``)
    after ``" · "``; without a URL, ``" · …"`` marks that more exist. Empty for no items.
    The caller passes ``max_len`` less whatever it puts in front (``@bob, ``).
    """
    parts = [f"{item.name} {format_points(item.cost)}" for item in items]
    whole = " · ".join(parts)
    if len(whole) <= max_len:
        return whole
    tail = page_url if page_url else "…"
    room = max_len - len(tail) - len(" · ")
    line = ""
    for part in parts:
        candidate = f"{line} · {part}" if line else part
        if len(candidate) > room:
            break
        line = candidate
    out = f"{line} · {tail}" if line else tail
    return out[:max_len]
