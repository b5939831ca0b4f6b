"""Shop rules: purchases and the !shop line (SPEC §10.1); items are validated by the config
(tests/features/shop/test_config.py)."""

from __future__ import annotations

from typing import Any

import pytest

from loyaltybot.features.shop.rules import (
    ItemOnCooldown,
    LimitReached,
    NoSuchItem,
    NotEnoughPoints,
    ShopItem,
    ShopOnCooldown,
    ShopRefusal,
    SoldOut,
    check_purchase,
    find_item,
    shop_line,
)
from loyaltybot.points.errors import LoyaltyError

ITEM = ShopItem("hydrate", 500, stock=20, per_viewer=2, cooldown_seconds=60,
                global_cooldown_seconds=10)


def buy(item: ShopItem = ITEM, *, balance: int = 1000, stock_left: int | None = 5,
        bought: int = 0, now: float = 1000.0, mine: float | None = None,
        anyone: float | None = None) -> None:
    check_purchase(item, balance, stock_left, bought, now, mine, anyone)


# ---- purchases --------------------------------------------------------------------------


def test_a_purchase_that_may_go_ahead() -> None:
    """Enough points, stock, under the limit, past both cooldowns: no refusal."""
    buy()
    buy(balance=500, bought=1, mine=940.0, anyone=990.0)  # cooldowns just over
    buy(ShopItem("free", 1), balance=1, stock_left=None, bought=99, mine=999.9, anyone=999.9)


def test_refusals_carry_data() -> None:
    """Each refusal is a ShopRefusal and a LoyaltyError with its figures."""
    with pytest.raises(NotEnoughPoints) as poor:
        buy(balance=499)
    assert (poor.value.balance, poor.value.cost) == (499, 500)
    assert isinstance(poor.value, ShopRefusal) and isinstance(poor.value, LoyaltyError)
    with pytest.raises(SoldOut) as sold:
        buy(stock_left=0)
    assert sold.value.item == "hydrate"
    with pytest.raises(LimitReached) as limit:
        buy(bought=2)
    assert (limit.value.item, limit.value.per_viewer) == ("hydrate", 2)
    with pytest.raises(ItemOnCooldown) as mine:
        buy(mine=950.5)
    assert (mine.value.item, mine.value.seconds_left) == ("hydrate", 11)  # 10.5 rounded up
    with pytest.raises(ShopOnCooldown) as anyone:
        buy(anyone=999.0)
    assert (anyone.value.seconds_left, anyone.value.item) == (9, "hydrate")


def test_seconds_left_is_never_zero() -> None:
    """A cooldown with a fraction of a second left says 1 s, not 0 s."""
    with pytest.raises(ItemOnCooldown) as caught:
        buy(mine=940.01)
    assert caught.value.seconds_left == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"stock_left": 0, "bought": 2, "mine": 999.0, "anyone": 999.0, "balance": 0}, SoldOut),
        ({"bought": 2, "mine": 999.0, "anyone": 999.0, "balance": 0}, LimitReached),
        ({"mine": 999.0, "anyone": 999.0, "balance": 0}, ItemOnCooldown),  # 59 s > 9 s
        ({"mine": 945.0, "anyone": 999.0, "balance": 0}, ShopOnCooldown),  # 9 s > 5 s
        ({"mine": 999.0, "balance": 0}, ItemOnCooldown),
        ({"balance": 0}, NotEnoughPoints),
    ],
)
def test_order_of_checks(kwargs: dict[str, Any], error: type[ShopRefusal]) -> None:
    """Sold out, then the viewer's limit, then the cooldowns (the longer wait of the two),
    then the balance: the most lasting reason is the one reported."""
    with pytest.raises(error):
        buy(**kwargs)


def test_find_item_is_case_insensitive() -> None:
    """!buy Hydrate and !buy !HYDRATE find hydrate; an unknown name is refused with it."""
    items = [ShopItem("Hydrate", 1), ShopItem("song", 2)]
    assert find_item(items, "hydrate").name == "Hydrate"
    assert find_item(items, " !SONG ").name == "song"
    with pytest.raises(NoSuchItem) as caught:
        find_item(items, "pizza")
    assert caught.value.name == "pizza"


# ---- the !shop line ---------------------------------------------------------------------

URL = "https://bot.example/c/alice/shop"


def test_shop_line_when_everything_fits() -> None:
    """All items with costs, separated, and no URL."""
    items = [ShopItem("hydrate", 500), ShopItem("song", 1000)]
    assert shop_line(items, page_url=URL) == "hydrate 500 · song 1,000"
    assert shop_line([], page_url=URL) == ""


def test_shop_line_when_too_long_ends_with_the_page() -> None:
    """The first items that fit, then the page URL, within max_len."""
    items = [ShopItem(f"item{i:02d}", 1000 * i + 1) for i in range(60)]
    line = shop_line(items, page_url=URL, max_len=120)
    assert len(line) <= 120
    assert line.startswith("item00 1 · item01 1,001")
    assert line.endswith(f" · {URL}")
    shown = line.removesuffix(f" · {URL}").split(" · ")
    assert shown == [f"{it.name} {it.cost:,}" for it in items[: len(shown)]]
    # one more item would not have fitted
    longer = " · ".join([*line.removesuffix(f" · {URL}").split(" · "),
                         f"{items[len(shown)].name} {items[len(shown)].cost:,}", URL])
    assert len(longer) > 120


def test_shop_line_without_a_url_or_room() -> None:
    """Without a URL an ellipsis marks more; a tiny budget still respects max_len."""
    items = [ShopItem(f"item{i}", 10) for i in range(100)]
    assert shop_line(items, page_url=None, max_len=40).endswith(" · …")
    assert len(shop_line(items, page_url=URL, max_len=20)) <= 20
