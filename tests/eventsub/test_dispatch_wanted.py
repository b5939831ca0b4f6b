"""The dispatcher as both transports use it: which kinds a channel needs (features say),
per-transport counters, and events fetched again after a gap handled once, also when
Twitch delivers the same redemption later under its own message id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest

from loyaltybot.clock import SystemClock
from loyaltybot.db import Store, Tx, open_store
from loyaltybot.eventsub.dispatch import Dispatcher, Missed, Outcome, Routed
from loyaltybot.eventsub.events import (
    REDEMPTION_ADD,
    Follow,
    Notification,
    Raid,
    RedemptionAdded,
    Reward,
    StreamOnline,
    Subscription,
    User,
)
from loyaltybot.eventsub.kinds import KINDS
from loyaltybot.points.bank import Bank


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    db = await open_store(tmp_path / "bot.db", clock=SystemClock())
    yield db
    await db.close()


async def dispatcher_of(store: Store) -> Dispatcher:
    bank = Bank(store)
    await bank.ensure_channels(["alice"])
    dispatcher = Dispatcher(store=store, bank=bank, channels=["alice"])
    await dispatcher.start()
    return dispatcher


def redemption(redemption_id: str) -> RedemptionAdded:
    alice, bob = User("1337", "alice", "Alice"), User("42", "bob", "Bob")
    return RedemptionAdded(
        alice, redemption_id, bob, "", "unfulfilled", Reward("r1", "Hug", 10, ""), "2024"
    )


async def test_the_webhook_wants_everything_handled_the_websocket_what_is_on(
    store: Store,
) -> None:
    """handled(): every kind some feature handles, in creation order (the webhook's list,
    as before); wanted(channel): only what each feature needs there now."""
    dispatcher = await dispatcher_of(store)

    def nothing(tx: Tx, routed: Routed) -> None:
        return None

    async def only_raids(channel: str) -> Collection[type]:
        return {Raid}

    dispatcher.register({StreamOnline: nothing})
    dispatcher.register({Follow: nothing, Raid: nothing}, wanted=only_raids)
    dispatcher.register({RedemptionAdded: nothing})
    assert [k.type for k in dispatcher.handled()] == [
        k.type for k in KINDS if k.event in (RedemptionAdded, StreamOnline, Follow, Raid)
    ]
    assert [k.type for k in await dispatcher.wanted("alice")] == [
        REDEMPTION_ADD,
        "stream.online",
        "channel.raid",
    ]
    with pytest.raises(ValueError, match="two handlers for Raid"):
        dispatcher.register({Raid: nothing})


async def test_missed_events_are_handled_once_whichever_way_they_come(store: Store) -> None:
    """A redemption fetched after a gap (keyed redemption:<id>) and fetched again is one
    effect; Twitch's own notification of it later is a new message id, and the handler's
    redemption check (here: a set) keeps it to one effect too."""
    dispatcher = await dispatcher_of(store)
    handled: list[str] = []

    def once(tx: Tx, routed: Routed) -> None:
        event = routed.event
        assert isinstance(event, RedemptionAdded)
        if event.id not in handled:
            handled.append(event.id)

    dispatcher.register({RedemptionAdded: once})
    missed = [Missed("redemption:r-1", redemption("r-1"))]
    assert await dispatcher.deliver_missed(missed, transport="websocket", now=1.0) == 1
    assert await dispatcher.deliver_missed(missed, transport="websocket", now=2.0) == 0
    subscription = Subscription("s", REDEMPTION_ADD, "1", "enabled", {}, None)
    late = Notification("msg-1", 3.0, 0, subscription, redemption("r-1"))
    assert await dispatcher.deliver(late, transport="websocket") == Outcome.PROCESSED
    assert handled == ["r-1"]
    counts: Any = dispatcher.stats.of("websocket")
    assert (counts.recovered, counts.duplicates, counts.processed) == (1, 1, 2)
    assert dispatcher.stats.of("webhook").notifications == 0
    assert dispatcher.status.channel("alice").last_event == (REDEMPTION_ADD, 3.0)
