"""Event bonuses (SPEC §4): follows, subs, gifts, cheers and raids over the real webhook."""

from __future__ import annotations

from typing import Any

from loyaltybot import settings
from loyaltybot.eventsub.events import Cheer, Follow, Raid, Subscribe, SubscriptionGift, User
from loyaltybot.features.bonuses import rules as bonus_rules
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.settings import ChannelSettings
from tests.conftest import viewer
from tests.eventsub_support import (
    CHANNEL,
    Harness,
    MakeHarness,
    broadcaster,
    user,
)

pytest_plugins = ("tests.eventsub_fixtures",)  # helix, make_harness


async def bonuses(harness: Harness, **values: int) -> None:
    assert harness.bank is not None
    assert harness.store is not None
    channel_id = harness.bank.channel_id(CHANNEL)
    await harness.store.write(lambda tx: settings.apply_dashboard(tx, channel_id, values, "test"))


def anonymous() -> dict[str, Any]:
    return {"user_id": None, "user_login": None, "user_name": None, "is_anonymous": True}


async def bonus_rows(harness: Harness) -> list[tuple[Any, ...]]:
    return await harness.query(
        "SELECT user_id, amount, reason FROM ledger WHERE type = 'bonus' ORDER BY id"
    )


async def test_follow_bonus_is_paid_once_per_viewer_ever(make_harness: MakeHarness) -> None:
    """Following again (a new message) pays nothing; another follower is paid."""
    harness = await make_harness()
    await bonuses(harness, follow_bonus=50)
    follow = {**user(1), **broadcaster(), "followed_at": "2024-01-01T00:00:00Z"}
    assert await harness.send("channel.follow", follow) == 204
    assert await harness.send("channel.follow", follow) == 204  # unfollow, follow: new message
    assert await harness.send("channel.follow", {**follow, **user(2)}) == 204
    assert (await harness.balance(1), await harness.balance(2)) == (50, 50)
    assert await harness.query("SELECT ref FROM ledger ORDER BY id") == [
        ("follow:1001",),
        ("follow:1002",),
    ]


async def test_subscription_bonus_per_tier_and_none_for_gift_recipients(
    make_harness: MakeHarness,
) -> None:
    """Tier 1, 2, 3 pay their own amounts; the recipient of a gifted sub gets nothing."""
    harness = await make_harness()
    await bonuses(harness, sub_bonus_tier1=100, sub_bonus_tier2=200, sub_bonus_tier3=500)
    for n, tier, gift in [
        (1, "1000", False),
        (2, "2000", False),
        (3, "3000", False),
        (4, "1000", True),
    ]:
        event = {**user(n), **broadcaster(), "tier": tier, "is_gift": gift}
        assert await harness.send("channel.subscribe", event) == 204
    assert [await harness.balance(n) for n in (1, 2, 3, 4)] == [100, 200, 500, 0]
    assert [r[2] for r in await bonus_rows(harness)] == [
        "subscription (tier 1)",
        "subscription (tier 2)",
        "subscription (tier 3)",
    ]


async def test_gift_bonus_goes_to_the_gifter_per_gift(make_harness: MakeHarness) -> None:
    """Five gifted subs pay the gifter five gift bonuses; an anonymous gift pays nobody."""
    harness = await make_harness()
    await bonuses(harness, gift_bonus=25)
    gift = {
        **user(1),
        **broadcaster(),
        "total": 5,
        "tier": "1000",
        "cumulative_total": 9,
        "is_anonymous": False,
    }
    assert await harness.send("channel.subscription.gift", gift) == 204
    assert await harness.send("channel.subscription.gift", {**gift, **anonymous()}) == 204
    assert await harness.balance(1) == 125
    assert await bonus_rows(harness) == [("1001", 125, "gifted 5 subs (tier 1)")]
    assert await harness.query("SELECT count(*) FROM viewers") == [(1,)]


async def test_cheer_bonus_per_whole_hundred_bits(make_harness: MakeHarness) -> None:
    """250 bits earn 2 bonuses, 99 none, anonymous nobody's; a redelivery pays once."""
    harness = await make_harness()
    await bonuses(harness, cheer_bonus_per_100=10)
    cheer = {**user(1), **broadcaster(), "is_anonymous": False, "message": "Cheer250", "bits": 250}
    assert await harness.send("channel.cheer", cheer, message_id="cheer-1") == 204
    assert await harness.send("channel.cheer", cheer, message_id="cheer-1") == 204
    assert await harness.send("channel.cheer", {**cheer, **user(2), "bits": 99}) == 204
    assert await harness.send("channel.cheer", {**cheer, **anonymous(), "bits": 10_000}) == 204
    assert (await harness.balance(1), await harness.balance(2)) == (20, 0)
    assert await bonus_rows(harness) == [("1001", 20, "cheered 250 bits")]


async def test_raid_bonus_goes_to_the_raiding_broadcaster(make_harness: MakeHarness) -> None:
    """The raider is credited as a viewer of the raided channel, even if never seen."""
    harness = await make_harness()
    await bonuses(harness, raid_bonus=300)
    raid = {
        **broadcaster("raider_tv", "7777", prefix="from_broadcaster_user_"),
        **broadcaster(prefix="to_broadcaster_user_"),
        "viewers": 42,
    }
    assert await harness.send("channel.raid", raid) == 204
    assert await harness.query("SELECT login, points FROM viewers WHERE user_id = '7777'") == [
        ("raider_tv", 300)
    ]
    assert await bonus_rows(harness) == [("7777", 300, "raid with 42 viewers")]


async def test_bonuses_default_to_off(make_harness: MakeHarness) -> None:
    """With every bonus at its default 0, events are acknowledged and pay nothing."""
    harness = await make_harness()
    assert await harness.send("channel.follow", {**user(1), **broadcaster()}) == 204
    assert (
        await harness.send(
            "channel.subscribe", {**user(1), **broadcaster(), "tier": "3000", "is_gift": False}
        )
        == 204
    )
    assert (
        await harness.send(
            "channel.cheer", {**user(1), **broadcaster(), "is_anonymous": False, "bits": 5000}
        )
        == 204
    )
    assert await harness.query("SELECT count(*) FROM ledger") == [(0,)]
    assert await harness.query("SELECT count(*) FROM processed_events") == [(3,)]


async def test_a_full_balance_takes_no_bonus(make_harness: MakeHarness) -> None:
    """A viewer at the maximum stays there; the event is still acknowledged."""
    harness = await make_harness()
    await bonuses(harness, follow_bonus=50)
    assert harness.bank is not None
    await harness.bank.set_balance(CHANNEL, viewer(1), MAX_POINTS)
    assert await harness.send("channel.follow", {**user(1), **broadcaster()}) == 204
    assert await harness.balance(1) == MAX_POINTS
    assert await bonus_rows(harness) == []


def test_plan_bonus_rules() -> None:
    """The pure rules: amounts per event, clamping, self-raids, anonymity."""
    rules = ChannelSettings(
        follow_bonus=1,
        sub_bonus_tier2=20,
        gift_bonus=MAX_POINTS,
        cheer_bonus_per_100=3,
        raid_bonus=9,
    )
    alice, bob = User("1", "alice", "Alice"), User("2", "bob", "Bob")
    assert bonus_rules.plan_bonus(Follow(alice, bob), rules) == bonus_rules.BonusPlan(
        "follow", bob, 1, "follow"
    )
    sub = bonus_rules.plan_bonus(Subscribe(alice, bob, 2, False), rules)
    assert sub is not None
    assert sub.amount == 20
    assert bonus_rules.plan_bonus(Subscribe(alice, bob, 2, True), rules) is None
    gift = bonus_rules.plan_bonus(SubscriptionGift(alice, bob, 3, 1), rules)
    assert gift is not None
    assert gift.amount == MAX_POINTS
    cheer = bonus_rules.plan_bonus(Cheer(alice, None, 1000), rules)
    assert cheer is not None
    assert (cheer.user, cheer.amount) == (None, 30)
    assert bonus_rules.plan_bonus(Raid(alice, alice, 5), rules) is None
    raid = bonus_rules.plan_bonus(Raid(alice, bob, 5), rules)
    assert raid is not None
    assert (raid.user, raid.amount) == (bob, 9)
