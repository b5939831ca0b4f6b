"""The rules of the shop: items, whether a purchase may go ahead, and the ``!shop`` line.

SPEC §10.1. The service runs :func:`check_purchase` inside the transaction that debits
the cost and takes the stock (DESIGN invariant 2), with the figures read in it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from loyaltybot.points.amounts import MAX_POINTS, format_points
from loyaltybot.points.errors import LoyaltyError

Action = Literal["chat", "title", "queue", "forward", "discord"]
ACTIONS: tuple[Action, ...] = ("chat", "title", "queue", "forward", "discord")
NAME_MAX_CHARS = 32
DESCRIPTION_MAX_CHARS = 200
MESSAGE_MAX_CHARS = 500
_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{NAME_MAX_CHARS}}}")
# The action keys each action needs, as for channel-point rewards (SPEC §6). discord's
# webhook URL is a secret the config layer resolves; its message template is checked here.
_NEEDS: Mapping[str, tuple[str, ...]] = {
    "chat": ("message",), "title": ("unlocks",), "forward": ("url",), "discord": ("message",),
}


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


def check_purchase(item: ShopItem, balance: int, stock_left: int | None,
                   bought_this_stream: int, now: float,
                   last_bought_by_viewer_at: float | None,
                   last_bought_globally_at: float | None) -> None:
    """Decide whether a viewer may buy one ``item`` now; returns None when they may.

    Checks, in this order, the most lasting reason first (so nobody waits out a
    cooldown to learn the item is gone): sold out (``stock_left`` 0; None =
    unlimited), the viewer's limit this stream, the item's channel-wide cooldown, the
    viewer's cooldown, then the balance (the one the viewer can fix by earning). Times
    are seconds on one clock; ``seconds_left`` is rounded up, so never 0.

    Raises:
        SoldOut, LimitReached, ShopOnCooldown, ItemOnCooldown, NotEnoughPoints.
    """
    if stock_left is not None and stock_left <= 0:
        raise SoldOut(item.name)
    if item.per_viewer is not None and bought_this_stream >= item.per_viewer:
        raise LimitReached(item.name, item.per_viewer)
    left = _seconds_left(now, last_bought_globally_at, item.global_cooldown_seconds)
    if left:
        raise ShopOnCooldown(left, item.name)
    left = _seconds_left(now, last_bought_by_viewer_at, item.cooldown_seconds)
    if left:
        raise ItemOnCooldown(item.name, left)
    if balance < item.cost:
        raise NotEnoughPoints(balance, item.cost)


def _seconds_left(now: float, last: float | None, cooldown: float) -> int:
    if last is None or cooldown <= 0:
        return 0
    return max(0, math.ceil(last + cooldown - now))


# ---- validation -------------------------------------------------------------------------


def validate_item(values: Mapping[str, Any], *, taken_names: Iterable[str] = ()
                  ) -> list[tuple[str, str]]:
    """Every problem of one item table, as ``(key, problem)``; empty when valid.

    ``taken_names`` are the channel's other item names (compared case-insensitively).
    Names are 1 to 32 of ``A-Z a-z 0-9 _ -`` (so no spaces) and are matched
    case-insensitively; ``cost`` follows the amount rules; ``stock`` and ``per_viewer``
    are whole numbers >= 1 when present; cooldowns are numbers >= 0; ``action`` is one
    of chat, title, queue, forward, discord, with the key it needs (chat and discord:
    ``message``; title: ``unlocks``; forward: ``url``). Other keys are the action's and
    left to the config layer.
    """
    problems: list[tuple[str, str]] = []
    name = values.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(("name", f"must be 1 to {NAME_MAX_CHARS} letters, digits, _ or -"
                                 " (no spaces)"))
    elif name.casefold() in {taken.casefold() for taken in taken_names}:
        problems.append(("name", "another item has this name"))
    if "cost" not in values:
        problems.append(("cost", "is required"))
    elif not _whole(values["cost"], 1):
        problems.append(("cost", f"must be a whole number from 1 to {MAX_POINTS:,}"))
    for key in ("stock", "per_viewer"):
        if values.get(key) is not None and not _whole(values[key], 1):
            problems.append((key, f"must be a whole number from 1 to {MAX_POINTS:,}"))
    for key in ("cooldown_seconds", "global_cooldown_seconds"):
        value = values.get(key, 0)
        if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
            problems.append((key, "must be a number >= 0"))
    description = values.get("description", "")
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX_CHARS:
        problems.append(("description", f"must be text of at most {DESCRIPTION_MAX_CHARS}"
                                        " characters"))
    action = values.get("action", "chat")
    if action not in ACTIONS:
        problems.append(("action", f"must be one of {', '.join(ACTIONS)}"))
    else:
        for key in _NEEDS.get(action, ()):
            if values.get(key) in (None, ""):
                problems.append((key, f"is required for action {action!r}"))
    message = values.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > MESSAGE_MAX_CHARS):
        problems.append(("message", f"must be text of at most {MESSAGE_MAX_CHARS} characters"))
    return problems


def validate_items(tables: Sequence[Any]) -> list[tuple[str, str]]:
    """Every problem of a channel's items, keys relative to the list (``[1].cost``)."""
    problems: list[tuple[str, str]] = []
    names: list[str] = []
    for i, table in enumerate(tables):
        if not isinstance(table, Mapping):
            problems.append((f"[{i}]", "must be a table"))
            continue
        problems += [(f"[{i}].{key}", problem)
                     for key, problem in validate_item(table, taken_names=names)]
        if isinstance(table.get("name"), str):
            names.append(table["name"])
    return problems


def item_from(values: Mapping[str, Any]) -> ShopItem:
    """A :class:`ShopItem` from a table that :func:`validate_item` passed.

    Raises:
        ValueError: the table has problems.
    """
    problems = validate_item(values)
    if problems:
        raise ValueError("; ".join(f"{key}: {problem}" for key, problem in problems))
    return ShopItem(
        name=values["name"], cost=values["cost"], description=values.get("description", ""),
        action=values.get("action", "chat"), stock=values.get("stock"),
        per_viewer=values.get("per_viewer"),
        cooldown_seconds=values.get("cooldown_seconds", 0),
        global_cooldown_seconds=values.get("global_cooldown_seconds", 0),
    )


def _whole(value: Any, low: int) -> bool:
    return type(value) is int and low <= value <= MAX_POINTS


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
