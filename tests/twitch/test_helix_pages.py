"""Get Chatters over every page, fetched one page ahead (twitch/helix.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from loyaltybot.config import Secret
from loyaltybot.simulator import BOT_SCOPES, BROADCASTER_SCOPES, Simulator
from loyaltybot.twitch.helix import (
    Helix,
    HelixError,
    _cursor_in,
    get_chatters,
    get_subscriber_ids,
    pages,
)
from loyaltybot.twitch.oauth import StaticToken


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(client_id="pages-client", client_secret="pages-secret")
    await simulator.start()
    simulator.add_channel("alice", bot_login="mybot", bot_role="moderator")
    yield simulator
    await simulator.close()


@pytest.fixture
async def helix(sim: Simulator) -> AsyncIterator[Helix]:
    token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    async with aiohttp.ClientSession() as session:
        yield Helix(session, sim.api_url, sim.client_id, StaticToken(Secret(token)))


def chatter_calls(sim: Simulator) -> int:
    return sum(1 for _, _, path in sim.helix.requests if path.startswith("/helix/chat/chatters"))


async def test_every_page_once_and_nothing_after_the_last(sim: Simulator, helix: Helix) -> None:
    users = sim.add_users(2_500)
    sim.set_chatters("alice", users)
    channel, bot = sim.channel("alice"), sim.user("mybot")
    chatters = await get_chatters(helix, channel.id, bot.id)
    assert chatters == {u.id: (u.login, u.display_name) for u in users}
    assert chatter_calls(sim) == 3  # the prefetch guessed every cursor right


async def test_a_failing_page_fails_the_whole_list(sim: Simulator, helix: Helix) -> None:
    """Half a list would stop paying the viewers on the other half: it is all or an error."""
    sim.set_chatters("alice", sim.add_users(2_500))
    sim.faults.add("/chat/chatters", status=403, count=None)
    channel, bot = sim.channel("alice"), sim.user("mybot")
    with pytest.raises(HelixError) as refused:
        await get_chatters(helix, channel.id, bot.id)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("raw", "cursor"),
    [
        (b'{"data":[],"pagination":{"cursor":"eyJiIjpudWxsfQ"},"total":0}', "eyJiIjpudWxsfQ"),
        (b'{"data": [], "pagination" : { "cursor" : "abc-_=" }, "total": 0}', "abc-_="),
        (b'{"data":[],"pagination":{},"total":0}', ""),
        (b'{"data":[{"user_name":"\\"pagination\\":{\\"cursor\\":\\"x\\"}"}],"pagination":{}}', ""),
        (b"not json at all", ""),
    ],
)
def test_the_cursor_hint_is_read_from_the_raw_answer(raw: bytes, cursor: str) -> None:
    assert _cursor_in(raw) == cursor


async def test_stopping_early_leaves_no_request_behind(sim: Simulator, helix: Helix) -> None:
    """A reader that stops after two pages leaves no request in flight behind it."""
    sim.set_chatters("alice", sim.add_users(3_500))
    channel, bot = sim.channel("alice"), sim.user("mybot")
    params = [("broadcaster_id", channel.id), ("moderator_id", bot.id), ("first", "1000")]
    read = 0
    async with contextlib.aclosing(pages(helix, "/chat/chatters", params)) as listed:
        async for data in listed:
            read += len(data)
            if read >= 1_500:
                break
    assert read == 2_000  # whole pages: the second one crossed the limit
    await asyncio.sleep(0.05)
    assert chatter_calls(sim) <= 3  # at most the one prefetch, which was cancelled
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_past_the_limit_the_chatters_are_counted_and_the_first_named(
    sim: Simulator, helix: Helix
) -> None:
    """No silent cap: past ``limit`` the list is still read, counted, and its first few
    logins kept, so the daemon can say whom it left out."""
    sim.set_chatters("alice", sim.add_users(3_500))
    channel, bot = sim.channel("alice"), sim.user("mybot")
    chatters = await get_chatters(helix, channel.id, bot.id, limit=1_500)
    assert len(chatters) == 1_500
    assert chatters.listed == len(sim.channel("alice").chatters)
    assert len(chatters.beyond) == 10 and not set(chatters.beyond) & {
        login for login, _ in chatters.values()
    }


async def test_subscribers_over_every_page(sim: Simulator) -> None:
    users = sim.add_users(250)
    for user in users:
        sim.set_role("alice", user.login, subscriber_tier=1000)
    token = sim.issue_token("alice", scopes=list(BROADCASTER_SCOPES))
    async with aiohttp.ClientSession() as session:
        helix = Helix(session, sim.api_url, sim.client_id, StaticToken(Secret(token)))
        ids = await get_subscriber_ids(helix, sim.channel("alice").id)
    assert ids == {u.id for u in users}  # the broadcaster's own sub is not a viewer's


async def test_a_long_list_is_paced_within_the_rate_limit_not_refused() -> None:
    """30 pages through a bucket of 120 a minute with 100 kept in reserve: the client
    spreads the last pages at the refill rate instead of meeting a single 429."""
    simulator = Simulator(
        client_id="pages-client", client_secret="pages-secret", helix_points_per_minute=120
    )
    await simulator.start()
    try:
        simulator.add_channel("alice", bot_login="mybot", bot_role="moderator")
        simulator.set_chatters("alice", simulator.add_users(300))
        token = simulator.issue_token("mybot", scopes=list(BOT_SCOPES))
        async with aiohttp.ClientSession() as session:
            helix = Helix(
                session, simulator.api_url, simulator.client_id, StaticToken(Secret(token)),
                reserve=100,
            )
            channel, bot = simulator.channel("alice"), simulator.user("mybot")
            with capture_logs() as events:
                chatters = await get_chatters(helix, channel.id, bot.id, page_size=10)
        assert len(chatters) == len(simulator.channel("alice").chatters)
        assert not [e for e in events if e["event"] == "helix_rate_limited"]
        assert [e for e in events if e["event"] == "helix_paced"]
    finally:
        await simulator.close()

