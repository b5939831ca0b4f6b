"""The shop's transactions on a real SQLite file: limits per stream, forwards and their
refunds, the dashboard's items beside the file's, and the item form (SPEC §10.1)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loyaltybot.actions.delivery import Delivery
from loyaltybot.clock import FakeClock
from loyaltybot.config import ShopItemConfig
from loyaltybot.db import Store, jobs
from loyaltybot.features.shop.feature import ShopFeature
from loyaltybot.features.shop.rules import LimitReached, NoSuchItem, SoldOut
from loyaltybot.features.shop.service import FileOwned, NameTaken, Shop
from loyaltybot.features.shop.views import parse_item
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from tests.conftest import CHANNEL, viewer
from tests.eventsub_support import ForwardReceiver

WHOLE = "must be a whole number, like 100 or 1,000"


def item(**values: Any) -> ShopItemConfig:
    return ShopItemConfig.model_validate({"name": "hug", "cost": 10, "message": "hi", **values})


async def funded(bank: Bank, *numbers: int, amount: int = 1000) -> None:
    for n in numbers:
        await bank.credit(CHANNEL, viewer(n), amount, kind=EntryType.ADD, actor="cli")


async def test_per_viewer_limit_counts_per_stream(bank: Bank, store: Store) -> None:
    """per_viewer = 1: a second purchase in the same stream is refused; the next stream
    (offline, then live again) allows one more, also when nobody bought in between."""
    live = {"alice": True}
    shop = Shop(bank, store, lambda channel: live.get(channel))
    await shop.apply_file({CHANNEL: [item(per_viewer=1)]})
    await funded(bank, 1)
    await shop.buy(CHANNEL, viewer(1), "hug", "")
    with pytest.raises(LimitReached) as refused:
        await shop.buy(CHANNEL, viewer(1), "HUG", "")
    assert refused.value.per_viewer == 1
    live["alice"] = False
    await shop.watch_streams([CHANNEL])
    with pytest.raises(LimitReached):  # offline after the stream: still that stream's
        await shop.buy(CHANNEL, viewer(1), "hug", "")
    live["alice"] = True
    await shop.watch_streams([CHANNEL])
    await shop.buy(CHANNEL, viewer(1), "hug", "")
    assert await bank.audit() == []


async def test_stock_is_exact_under_concurrent_purchases(bank: Bank, store: Store) -> None:
    """50 concurrent purchases of a stock of 7: 7 sold, 43 sold out, 7 debits."""
    shop = Shop(bank, store)
    await shop.apply_file({CHANNEL: [item(stock=7)]})
    await funded(bank, *range(50))
    results = await asyncio.gather(
        *(shop.buy(CHANNEL, viewer(n), "hug", "") for n in range(50)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 7
    assert all(isinstance(r, SoldOut) for r in results if isinstance(r, Exception))
    (found,) = await shop.items(CHANNEL)
    assert (found.sold, found.stock_left) == (7, 0)
    assert await bank.audit() == []


async def test_a_forward_that_never_arrives_is_refunded(
    bank: Bank, store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """forward: delivered -> fulfilled and announced; failed for good -> shop_refund and
    the stock back, and the buyer told."""
    receiver = ForwardReceiver(behaviour=["200", "500"])
    await receiver.start()
    said: list[str] = []

    async def chat(channel: str, text: str) -> bool:
        said.append(text)
        return True

    async with aiohttp.ClientSession() as session:
        actions = Delivery(session=session, chat=chat)
        config = make_config_for(
            tmp_path,
            [
                item(
                    action="forward",
                    url=receiver.url,
                    retries=0,
                    stock=3,
                    message="{user} got {reward}",
                )
            ],
        )
        feature = ShopFeature(config=config, bank=bank, store=store, actions=actions)
        await feature.shop.apply_file({CHANNEL: config.channels[CHANNEL].shop})
        worker = jobs.Worker(
            store, clock, {**actions.kinds(), **feature.jobs()}, backoff=lambda attempts: 0.0
        )
        worker.start()
        try:
            await funded(bank, 1, amount=100)
            first = await feature.shop.buy(CHANNEL, viewer(1), "hug", "")
            assert first.status == "pending"
            async with asyncio.timeout(10):
                await worker.wait_idle()
            await feature.shop.buy(CHANNEL, viewer(1), "hug", "")
            async with asyncio.timeout(10):
                await worker.wait_idle()
        finally:
            await worker.close()
            await receiver.close()
    assert receiver.received[0]["item"] == "hug" and receiver.attempts == 2
    assert said == ["User1 got hug", "@User1, hug could not be delivered. 10 points refunded."]
    record = await bank.viewer_by_id(CHANNEL, viewer(1).user_id)
    assert record is not None and record.points == 90
    statuses = [p.status for p in await feature.shop.recent(CHANNEL)]
    assert statuses == ["canceled", "fulfilled"]
    (found,) = await feature.shop.items(CHANNEL)
    assert found.sold == 1
    assert await bank.audit() == []


def make_config_for(tmp_path: Path, items: list[ShopItemConfig]) -> Any:
    from loyaltybot.config import parse_config

    return parse_config(
        {
            "twitch": {"client_id": "x", "bot_login": "bot"},
            "channels": {
                CHANNEL: {
                    "shop": [
                        {**i.model_dump(exclude_none=True, exclude={"webhook_url"})} for i in items
                    ]
                }
            },
        },
        tmp_path / "config.toml",
    )


async def test_dashboard_items_beside_the_files(bank: Bank, store: Store) -> None:
    """The file owns its items (the dashboard cannot change, take or remove them); the
    dashboard adds, renames (keeping the count sold) and removes its own; an item the
    file drops leaves the shop."""
    shop = Shop(bank, store)
    await shop.apply_file({CHANNEL: [item(name="hydrate")]})
    with pytest.raises(FileOwned):
        await shop.save(CHANNEL, item(name="Hydrate"), "dashboard:alice")
    with pytest.raises(FileOwned):
        await shop.save(CHANNEL, item(name="x"), "dashboard:alice", replacing="hydrate")
    with pytest.raises(FileOwned):
        await shop.delete(CHANNEL, "hydrate", "dashboard:alice")
    await shop.save(CHANNEL, item(name="song", cost=50), "dashboard:alice")
    with pytest.raises(NameTaken):
        await shop.save(CHANNEL, item(name="SONG"), "dashboard:alice")
    await funded(bank, 1)
    await shop.buy(CHANNEL, viewer(1), "song", "")
    await shop.save(CHANNEL, item(name="tune", cost=60), "dashboard:alice", replacing="song")
    names = [(i.name, i.owner, i.sold, i.cost) for i in await shop.items(CHANNEL)]
    assert names == [("hydrate", "file", 0, 10), ("tune", "dashboard", 1, 60)]
    with pytest.raises(NoSuchItem):
        await shop.buy(CHANNEL, viewer(1), "song", "")
    await shop.delete(CHANNEL, "tune", "dashboard:alice")
    await shop.apply_file({CHANNEL: []})
    assert await shop.items(CHANNEL) == []
    assert [p.item_name for p in await shop.recent(CHANNEL)] == ["song"]  # history stays
    assert await bank.audit() == []


@pytest.mark.parametrize(
    ("form", "errors"),
    [
        ({"name": "hug", "cost": "1,000", "message": "hi"}, {}),
        ({"name": "hug", "cost": "0", "message": "hi"}, {"cost": "must be at least 1"}),
        ({"name": "hug", "cost": "-5", "message": "hi"}, {"cost": "must be positive"}),
        (
            {"name": "hug", "cost": "1e5", "message": "hi"},
            {"cost": WHOLE},
        ),
        (
            {"name": "hug", "cost": "1.5", "message": "hi"},
            {"cost": WHOLE},
        ),
        (
            {"name": "hug", "cost": "abc", "message": "hi"},
            {"cost": WHOLE},
        ),
        (
            {"name": "hug", "cost": "99999999999999999999", "message": "hi"},
            {"cost": "must be at most 9,007,199,254,740,991"},
        ),
        ({"name": "hug", "message": "hi"}, {"cost": "is required"}),
        (
            {"name": "two words", "cost": "5", "message": "hi"},
            {"name": "must be 1 to 32 letters, digits, _ or - (no spaces)"},
        ),
        (
            {"name": "hug", "cost": "5", "stock": "0", "message": "hi"},
            {"stock": "must be at least 1"},
        ),
        (
            {"name": "hug", "cost": "5", "action": "title"},
            {"unlocks": "is required for action 'title'"},
        ),
        (
            {
                "name": "hug",
                "cost": "5",
                "action": "discord",
                "message": "hi",
                "webhook_url": "https://discord.com/api/webhooks/1/token",
            },
            {
                "webhook_url": "write env:NAME or file:/path (the URL itself is a secret and is"
                " never stored)"
            },
        ),
        (
            {"name": "hug", "cost": "5", "message": "hi", "cooldown_seconds": "soon"},
            {"cooldown_seconds": "must be a number"},
        ),
    ],
)
def test_item_form(form: dict[str, str], errors: dict[str, str]) -> None:
    """The dashboard's item form: amounts as chat reads them, the rest as config.toml."""
    parsed = parse_item(form)
    assert parsed.errors == errors
    assert (parsed.item is None) == bool(errors)
