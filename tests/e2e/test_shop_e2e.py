"""The shop and levels end to end (SPEC §10.1, §10.5): the real daemon against the simulator,
from an empty database, driven the way viewers and a streamer use it (chat, the
dashboard over HTTP, a Discord webhook stand-in)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from loyaltybot.simulator import Simulator
from tests.e2e.conftest import CLIENT_SECRET, RunningBot, StartBot, audit
from tests.eventsub_support import serve

pytestmark = pytest.mark.timeout(120)

COOKIES = {"currency_name": "cookie", "currency_name_plural": "cookies"}


def alice(**extra: Any) -> dict[str, dict[str, Any]]:
    return {"alice": {**COOKIES, "command_cooldown_seconds": 0, **extra}}


@pytest.fixture
def modded(sim: Simulator) -> Simulator:
    sim.set_role("alice", "modmo", mod=True)
    return sim


async def ask(sim: Simulator, user: str, text: str, expect: str, within: float = 5.0) -> str:
    mark = len(sim.sent)
    await sim.say("alice", user, text)
    return (await sim.wait_for_reply("alice", contains=expect, after=mark, timeout=within)).text


async def fund(sim: Simulator, viewers: list[str], amount: int) -> None:
    """Each viewer says hello, then a moderator gives everyone present ``amount``."""
    for login in viewers:
        await sim.say("alice", login, "hello!")
    await ask(sim, "modmo", f"!addpoints all {amount}", f"to each of {len(viewers) + 1:,}")


def query(bot: RunningBot, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the daemon's database file as an operator would (sqlite3, read-only)."""
    path = Path(bot.config.database.path)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql, args).fetchall()


async def replies(sim: Simulator, mark: int, count: int, within: float = 10.0) -> list[str]:
    """The bot's next ``count`` lines after ``mark``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    for _ in range(round(within / 0.05)):
        if len(sim.sent) - mark >= count or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    return [m.text for m in sim.sent[mark:]]


async def test_twelve_viewers_race_for_five_in_stock(
    modded: Simulator, start_bot: StartBot
) -> None:
    """12 viewers !buy an item with stock 5 at once: exactly 5 sold, 5 debits, 7 told
    it is sold out, and the books balance."""
    sim = modded
    item = {"name": "hydrate", "cost": 100, "stock": 5, "message": "{user} made alice drink"}
    bot = await start_bot(alice(shop=[item]))
    viewers = [f"racer{i}" for i in range(12)]
    await fund(sim, viewers, 1000)
    mark = len(sim.sent)
    sim.irc.say_many("alice", [(sim.world.ensure_user(v), "!buy hydrate") for v in viewers])
    lines = await replies(sim, mark, 12 + 5)  # a reply each, and 5 chat-action lines
    bought = [line for line in lines if "you bought hydrate" in line]
    sold_out = [line for line in lines if "hydrate is sold out" in line]
    assert (len(bought), len(sold_out)) == (5, 7), lines
    assert len([line for line in lines if "made alice drink" in line]) == 5
    assert "0 left in stock" in lines[-1] or any("0 left in stock" in b for b in bought)
    debits = query(bot, "SELECT count(*), sum(amount) FROM ledger WHERE type = 'shop_purchase'")
    assert debits == [(5, -500)]
    assert query(bot, "SELECT sold FROM shop_items WHERE key = 'hydrate'") == [(5,)]
    assert query(bot, "SELECT count(*) FROM shop_purchases") == [(5,)]
    assert await audit(bot.config.database.path) == []


async def test_cooldowns_say_how_long_to_wait(modded: Simulator, start_bot: StartBot) -> None:
    """A second purchase within the viewer's cooldown, and another viewer's within the
    channel's, are refused with the wait; nothing is taken."""
    sim = modded
    item = {
        "name": "song",
        "cost": 10,
        "cooldown_seconds": 90,
        "global_cooldown_seconds": 30,
        "message": "{user} picks the next song",
    }
    bot = await start_bot(alice(shop=[item]))
    await fund(sim, ["bob", "carol"], 100)
    assert "you bought song for 10 cookies; you have 90 cookies left" in await ask(
        sim, "bob", "!buy song", "song"
    )
    again = await ask(sim, "bob", "!buy song", "again")
    assert re.fullmatch(r"@bob, you can buy song again in (8\d|90) s\.", again), again
    other = await ask(sim, "carol", "!buy SONG", "again")
    assert re.fullmatch(r"@carol, song was just bought: anyone can buy it again in \d+ s\.", other)
    assert query(bot, "SELECT count(*) FROM ledger WHERE type = 'shop_purchase'") == [(1,)]
    assert "you have 100 cookies" in await ask(sim, "carol", "!points", "carol")
    assert await audit(bot.config.database.path) == []


async def test_per_viewer_cooldown_names_the_item(modded: Simulator, start_bot: StartBot) -> None:
    """Without a channel-wide cooldown, the viewer's own cooldown is what the reply says."""
    sim = modded
    hug = {"name": "hug", "cost": 5, "cooldown_seconds": 120, "message": "{user} gets a hug"}
    bot = await start_bot(alice(shop=[hug]))
    await fund(sim, ["bob"], 100)
    await ask(sim, "bob", "!buy hug", "you bought hug")
    assert re.fullmatch(
        r"@bob, you can buy hug again in 2 min\.|@bob, you can buy hug again in 1\d\d s\.",
        await ask(sim, "bob", "!redeem hug", "again"),
    )
    assert await audit(bot.config.database.path) == []


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("!buy", "@bob, usage: !buy <item> [text], see !shop"),
        ("!buy pizza", '@bob, the shop has no item "pizza": !shop lists them.'),
        ("!buy -5", '@bob, the shop has no item "-5": !shop lists them.'),
        ("!buy 0", '@bob, the shop has no item "0": !shop lists them.'),
        ("!buy 1e5", '@bob, the shop has no item "1e5": !shop lists them.'),
        ("!buy 1.5", '@bob, the shop has no item "1.5": !shop lists them.'),
        (
            "!buy 99999999999999999999",
            '@bob, the shop has no item "99999999999999999999": !shop lists them.',
        ),
        ("!buy request", "@bob, request needs a text: !buy request <your text>."),
        ("!buy statue", "@bob, that costs 5,000 cookies and you have 100 cookies."),
    ],
)
async def test_bad_buy_gets_one_line_and_changes_nothing(
    modded: Simulator, start_bot: StartBot, line: str, expect: str
) -> None:
    """Unknown items, amounts where an item goes, a missing text, too few points: one
    clear line each, and no purchase, no ledger row, no stock taken."""
    sim = modded
    shop = [
        {"name": "request", "cost": 10, "action": "queue", "message": "{user} asks: {input}"},
        {"name": "statue", "cost": 5000, "stock": 1, "action": "title", "unlocks": "Patron"},
    ]
    bot = await start_bot(alice(shop=shop))
    await fund(sim, ["bob"], 100)
    mark = len(sim.sent)
    await sim.say("alice", "bob", line)
    reply = await sim.wait_for_reply("alice", contains="@bob", after=mark, timeout=5)
    assert reply.text == expect
    await asyncio.sleep(0.3)
    assert [m.text for m in sim.sent[mark:]] == [expect]  # one line, nothing after it
    assert query(bot, "SELECT count(*) FROM shop_purchases") == [(0,)]
    assert query(bot, "SELECT count(*) FROM ledger WHERE type LIKE 'shop%'") == [(0,)]
    assert query(bot, "SELECT sum(sold) FROM shop_items") == [(0,)]
    assert await audit(bot.config.database.path) == []


async def test_shop_lists_items_in_one_line(modded: Simulator, start_bot: StartBot) -> None:
    """!shop: every item with its cost; a long shop ends with the public page."""
    sim = modded
    many = [{"name": f"item{i:02d}", "cost": 1000 + i, "action": "queue"} for i in range(60)]
    web = {"public_url": "https://bot.example", "eventsub_secret": "0123456789abcdef"}
    await start_bot(alice(shop=many), web=web)
    reply = await ask(sim, "bob", "!shop", "shop")
    assert reply.startswith("@bob, the shop, in cookies (!buy <item>): item00 1,000 · item01 1,001")
    assert reply.endswith(" · https://bot.example/c/alice/shop")
    assert len(reply) <= 500


# ---- the dashboard's queue: reject refunds --------------------------------------------------


async def logged_in(bot: RunningBot, sim: Simulator, login: str) -> aiohttp.ClientSession:
    """A browser-like HTTP session logged in to the dashboard through Twitch's OAuth."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    sim.oauth.login_as(login)
    async with http.get(f"{bot.daemon.web_url}/login") as response:
        assert response.status == 200, await response.text()
    return http


async def test_rejecting_a_queued_purchase_refunds_it(
    modded: Simulator, start_bot: StartBot
) -> None:
    """A queue item waits on the dashboard's queue beside redemptions; Reject gives the
    cost back (shop_refund) and the stock, and tells the viewer."""
    sim = modded
    item = {
        "name": "request",
        "cost": 300,
        "stock": 2,
        "action": "queue",
        "message": "{user} gets {input}",
    }
    bot = await start_bot(alice(shop=[item]), twitch={"client_secret": CLIENT_SECRET})
    await fund(sim, ["bob"], 1000)
    reply = await ask(sim, "bob", "!buy request a song please", "request")
    assert "you have 700 cookies left. It waits for the streamer's approval" in reply
    http = await logged_in(bot, sim, "alice")
    async with http:
        async with http.get(f"{bot.daemon.web_url}/dashboard/alice/queue") as response:
            html = await response.text()
        assert "a song please" in html and "Shop" in html
        (action,) = re.findall(r'action="(/dashboard/alice/queue/shop/\d+/reject)"', html)
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token is not None
        mark = len(sim.sent)
        async with http.post(bot.daemon.web_url + action, data={"csrf_token": token[1]}) as done:
            assert done.status == 200 and "Rejected" in await done.text()
        said = await sim.wait_for_reply("alice", contains="not accepted", after=mark)
        assert said.text == "@bob, request was not accepted. 300 cookies refunded."
        async with http.post(bot.daemon.web_url + action, data={"csrf_token": token[1]}) as again:
            assert "already decided" in await again.text()
    assert "you have 1,000 cookies" in await ask(sim, "bob", "!points", "bob")
    assert query(bot, "SELECT type, amount FROM ledger WHERE type LIKE 'shop%' ORDER BY id") == [
        ("shop_purchase", -300),
        ("shop_refund", 300),
    ]
    assert query(bot, "SELECT sold FROM shop_items") == [(0,)]
    assert query(bot, "SELECT status, refunded FROM shop_purchases") == [("canceled", 300)]
    assert await audit(bot.config.database.path) == []


# ---- the discord action ---------------------------------------------------------------------


async def test_a_discord_item_posts_to_the_webhook(
    modded: Simulator, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A discord item's message reaches the webhook (given as env:NAME) as
    {"content": ...} with mentions off; the URL appears in no log line."""
    sim = modded
    received: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/api/webhooks/1/secret-token-abcdef", hook)
    runner, base = await serve(app)
    try:
        monkeypatch.setenv("SHOP_HOOK", base + "/api/webhooks/1/secret-token-abcdef")
        item = {
            "name": "shoutout",
            "cost": 50,
            "action": "discord",
            "message": "{user} bought a shoutout: {input}",
            "webhook_url": "env:SHOP_HOOK",
        }
        bot = await start_bot(alice(shop=[item]))
        await fund(sim, ["bob"], 100)
        await ask(sim, "bob", "!buy shoutout @everyone hello", "you bought shoutout")
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        assert received == [
            {"content": "bob bought a shoutout: @everyone hello", "allowed_mentions": {"parse": []}}
        ]
        assert await audit(bot.config.database.path) == []
    finally:
        await runner.cleanup()


# ---- levels ---------------------------------------------------------------------------------


async def test_level_and_points_name_the_level(modded: Simulator, start_bot: StartBot) -> None:
    """!level says the level and the watch time to the next; !points adds the level."""
    sim = modded
    levels = [{"name": "Newcomer", "watch_hours": 0}, {"name": "Regular", "watch_hours": 10}]
    await start_bot(alice(levels=levels))
    assert await ask(sim, "bob", "!level", "bob") == (
        "@bob, you are Newcomer (less than a minute watched); 10 hours more to Regular."
    )
    assert "· level: Newcomer" in await ask(sim, "bob", "!points", "bob")
    assert await ask(sim, "carol", "!level bob", "carol") == (
        "@carol, bob is Newcomer (less than a minute watched); 10 hours more to Regular."
    )
    assert "haven't seen nobody_here" in await ask(sim, "carol", "!level nobody_here", "carol")


async def test_viewers_page_shows_the_level(modded: Simulator, start_bot: StartBot) -> None:
    """The dashboard's viewers page has a Level column when the channel has levels."""
    sim = modded
    levels = [{"name": "Newcomer", "watch_hours": 0}, {"name": "Regular", "watch_hours": 10}]
    bot = await start_bot(alice(levels=levels), twitch={"client_secret": CLIENT_SECRET})
    await ask(sim, "bob", "!points", "bob")
    http = await logged_in(bot, sim, "alice")
    async with http, http.get(f"{bot.daemon.web_url}/dashboard/alice/viewers") as response:
        html = await response.text()
    assert "<th>Level</th>" in html
    assert re.search(r"<td>Newcomer</td>", html)
