"""``loyaltybot demo``: the real daemon against the built-in Twitch simulator.

Nothing is mocked but Twitch: the simulator plays chat, Helix, OAuth and EventSub on
loopback, a crowd of simulated viewers chats, gives and redeems, and the daemon runs
exactly as in production on a temporary database. The terminal shows what happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import secrets
import signal
import socket
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from loyaltybot import daemon as daemon_mod
from loyaltybot.config import Config, parse_config
from loyaltybot.daemon import Daemon
from loyaltybot.db import open_store
from loyaltybot.points.bank import Bank
from loyaltybot.simulator import Simulator, populate_demo

CHANNEL = "alice"
BOT = "mybot"
REDEEM_EVERY = 4.0  # seconds between simulated redemptions (the crowd's default is 20)

REWARDS: list[dict[str, Any]] = [
    {"title": "Buy 100 cookies", "action": "grant_points", "amount": 100},
    {"title": "Hydrate!", "action": "chat", "message": "{user} says: drink some water! ({input})"},
    {"title": "Cookie Monster title", "action": "title", "unlocks": "Cookie Monster", "cost": 50},
    {"title": "Vote next game", "action": "vote"},
    {"title": "Song request", "action": "queue", "prompt": "Which song?"},
]

# The shop (!shop, !buy) and levels (!level, and in !points): the crowd uses both.
SHOP: list[dict[str, Any]] = [
    {
        "name": "hydrate",
        "cost": 30,
        "stock": 25,
        "cooldown_seconds": 30,
        "description": "alice drinks some water",
        "message": "{user} made alice drink water",
    },
    {
        "name": "song",
        "cost": 60,
        "action": "queue",
        "description": "a song request",
        "message": "{user}'s song is next: {input}",
    },
    {
        "name": "knight",
        "cost": 100,
        "action": "title",
        "unlocks": "Cookie Knight",
        "per_viewer": 1,
        "description": "the title Cookie Knight in !points",
    },
]
# Every game on, with short waits so duels and heists resolve within the demo.
GAMES: dict[str, Any] = {
    "enabled": ["gamble", "slots", "duel", "heist"],
    "min_bet": 1,
    "max_bet": 500,
    "cooldown_seconds": 15,
    "duel_accept_seconds": 20,
    "heist_join_seconds": 15,
    "heist_min_players": 3,
    "heist_cooldown_seconds": 30,
}
LEVELS: list[dict[str, Any]] = [
    {"name": "Crumb", "watch_hours": 0},
    {"name": "Cookie", "watch_hours": 0.05},  # 3 minutes: levels show within the demo
    {"name": "Jar", "watch_hours": 0.25},
]


def free_port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


def demo_config(
    sim: Simulator, directory: Path, bot_token: str, broadcaster_token: str, port: int
) -> Config:
    return parse_config(
        {
            "database": {"path": str(directory / "demo.db")},
            "log": {"level": "warning", "format": "console"},
            "twitch": {
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
                "bot_login": BOT,
                "bot_token": bot_token,
                "irc_url": sim.irc_url,
                "api_url": sim.api_url,
                "auth_url": sim.auth_url,
                "eventsub_ws_url": sim.eventsub_ws_url,
            },
            # No public address, as at home: EventSub comes over WebSocket (SPEC §6.1).
            "eventsub": {"transport": "websocket"},
            "web": {"listen": f"127.0.0.1:{port}"},
            "channels": {
                CHANNEL: {
                    "currency_name": "cookie",
                    "currency_name_plural": "cookies",
                    "points_per_interval": 10,
                    "interval_minutes": 0.1,  # a tick every 6 s
                    "subscriber_multiplier": 2.0,
                    "active_bonus": 5,
                    "follow_bonus": 50,
                    "sub_bonus_tier1": 500,
                    "cheer_bonus_per_100": 10,
                    "admins": ["alice_mod"],
                    "ignored_users": ["nightbot"],
                    "broadcaster_token": broadcaster_token,
                    "rewards": REWARDS,
                    "shop": SHOP,
                    "levels": LEVELS,
                    "giveaway_ticket_cost": 5,
                    "giveaway_max_tickets": 5,
                    "giveaway_subscriber_luck": 1.5,
                    "contest_max_bet": 200,
                    "contest_close_after_seconds": 20,
                    "games": GAMES,
                }
            },
        },
        directory / "config.toml",
    )


async def run_demo(
    *, port: int = 8080, viewers: int = 150, seconds: float | None = None, quiet: bool = False
) -> int:
    """Run until Ctrl-C (or for ``seconds``); 0 on a clean stop."""
    with tempfile.TemporaryDirectory(prefix="loyaltybot-demo-") as tmp:
        directory = Path(tmp)
        sim = Simulator(client_id="demo-client-id", client_secret=secrets.token_urlsafe(16))
        await sim.start()
        try:
            world = await populate_demo(
                sim, (CHANNEL,), bot_login=BOT, viewers=viewers, rate=3.0, start_crowds=False
            )
            sim.add_user("alice_mod")
            sim.set_role(CHANNEL, "alice_mod", mod=True)
            sim.oauth.login_as(CHANNEL)  # the dashboard link logs the broadcaster straight in
            web_port = free_port(port)
            config = demo_config(
                sim, directory, world.bot_token, world.broadcaster_tokens[CHANNEL], web_port
            )
            for reward in REWARDS:
                sim.add_reward(
                    CHANNEL,
                    reward["title"],
                    cost=200,
                    prompt=reward.get("prompt", ""),
                    client_id=sim.client_id,
                )
            return await _run(config, sim, world, seconds, quiet)
        finally:
            await sim.close()


async def _run(
    config: Config, sim: Simulator, world: Any, seconds: float | None, quiet: bool
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    ready: list[Daemon] = []
    started = asyncio.Event()

    def on_started(daemon: Daemon) -> None:
        ready.append(daemon)
        started.set()

    task = asyncio.create_task(daemon_mod.run(config, stop=stop, started=on_started))
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not ready:
        print("the daemon did not start (see the log above)")
        return task.result() or 1
    bot = ready[0]
    for crowd in world.crowds:
        crowd.redeem_every = REDEEM_EVERY
        crowd.shop_items = tuple(item["name"] for item in SHOP)
        crowd.tickets = True
        crowd.games = True
        await crowd.start()
    cycle = asyncio.create_task(_giveaway_cycle(sim))
    contests = asyncio.create_task(_contest_cycle(sim))
    url = bot.web_url
    if not quiet:
        print(_banner(url, config.twitch.eventsub_ws_url), flush=True)
    feed = asyncio.create_task(_feed(sim, bot, quiet))
    try:
        if seconds is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
    finally:
        feed.cancel()
        cycle.cancel()
        contests.cancel()
        for crowd in world.crowds:
            await crowd.stop()
        stop.set()
        code = await task
    problems = await _audit(config)
    print(
        "\nstopped. audit: "
        + ("ok, every balance equals its history" if not problems else "; ".join(problems))
    )
    return code if not problems else 1


def _banner(url: str, eventsub_ws_url: str) -> str:
    line = "-" * 72
    return f"""{line}
loyaltybot demo: the real daemon, with a simulated Twitch and ~150 simulated viewers
  dashboard (logs you in as the broadcaster): {url}/login
  public leaderboard:                         {url}/c/{CHANNEL}/leaderboard
  OBS overlay:                                {url}/c/{CHANNEL}/leaderboard?overlay=1
  the shop (viewers type !shop, !buy, !level): {url}/c/{CHANNEL}/shop
  a giveaway every minute (viewers !ticket):  {url}/c/{CHANNEL}/giveaway
  a contest every minute (viewers !bet):      {url}/c/{CHANNEL}/contest
  games (!gamble !slots !duel !heist), economy: {url}/dashboard/{CHANNEL}/games  .../economy
  JSON API:                                   {url}/api/v1/channels/{CHANNEL}/leaderboard?limit=5
  health / metrics:                           {url}/healthz   {url}/metrics
  EventSub over WebSocket (no public URL):    {eventsub_ws_url}
  EventSub state on the dashboard:            {url}/dashboard/{CHANNEL}/eventsub
Below: what the bot says in #{CHANNEL}, and the books every few seconds. Ctrl-C stops.
{line}"""


async def _contest_cycle(sim: Simulator) -> None:
    """A moderator runs contests over and over: open (bets close by themselves after 20 s),
    then name a winner 25 s after opening."""
    questions = (
        "Will alice beat the boss first try? | Yes | No | She rage quits",
        "Which map next? | Dust | Mirage | Inferno",
        "How many deaths this level? | 0-2 | 3-5 | More",
    )
    await asyncio.sleep(4)
    for n in itertools.count():
        await sim.say(CHANNEL, "alice_mod", f"!contest open {questions[n % len(questions)]}")
        await asyncio.sleep(25)
        await sim.say(CHANNEL, "alice_mod", f"!contest winner {secrets.randbelow(3) + 1}")
        await asyncio.sleep(35)


async def _giveaway_cycle(sim: Simulator) -> None:
    """A moderator runs giveaways over and over: open, close 25 s later, draw two winners;
    each open ends the drawn one before it."""
    prizes = ("a signed poster", "a game key", "a shout-out", "a cookie jar")
    await asyncio.sleep(2)
    for n in itertools.count():
        await sim.say(CHANNEL, "alice_mod", f"!giveaway open {prizes[n % len(prizes)]}")
        await asyncio.sleep(25)
        await sim.say(CHANNEL, "alice_mod", "!giveaway close")
        await asyncio.sleep(3)
        await sim.say(CHANNEL, "alice_mod", "!giveaway draw 2")
        await asyncio.sleep(30)


async def _feed(sim: Simulator, bot: Daemon, quiet: bool) -> None:
    """Print the bot's chat lines as they leave, each redemption's outcome, and a summary
    every 6 seconds."""
    shown = 0
    printed: set[str] = set()
    since_ms = 0
    last_summary = 0.0
    while True:
        await asyncio.sleep(0.5)
        sent = sim.sent
        if not quiet:
            for message in sent[shown:]:
                print(f"  #{message.channel} <{BOT}> {message.text}", flush=True)
        shown = len(sent)
        rows = await bot.store.read(functools.partial(_redemptions_since, since_ms=since_ms))
        for redemption_id, created_at, user, title, status, outcome, cost in rows:
            if redemption_id in printed:
                continue
            printed.add(redemption_id)
            since_ms = max(since_ms, created_at)
            if not quiet:
                paid = f", {cost:,} cookies spent" if cost else ""
                print(f"  * {user} redeemed \"{title}\": {status} ({outcome}{paid})", flush=True)
        if time.monotonic() - last_summary >= 6:
            last_summary = time.monotonic()
            if not quiet:
                print(await _summary(bot), flush=True)


async def _summary(bot: Daemon) -> str:
    def read(conn: sqlite3.Connection) -> tuple[Any, ...]:
        viewers, points, watch = conn.execute(
            "SELECT count(*), coalesce(sum(points), 0), coalesce(sum(watch_seconds), 0)"
            " FROM viewers"
        ).fetchone()
        ticks = conn.execute("SELECT count(*) FROM earning_ticks").fetchone()[0]
        queued = _count(conn, "SELECT count(*) FROM redemptions WHERE status = 'queued'")
        return viewers, points, watch, ticks, queued

    viewers, points, watch, ticks, queued = await bot.store.read(read)
    top = await bot.bank.top(CHANNEL, 3)
    leaders = ", ".join(f"{s.login} {s.points:,}" for s in top) or "nobody yet"
    return (
        f"== tick {ticks}: {viewers} viewers, {points:,} cookies, "
        f"{watch // 60:,} watch-minutes, {queued} queued redemptions; top: {leaders}"
    )


def _redemptions_since(conn: sqlite3.Connection, since_ms: int) -> list[tuple[Any, ...]]:
    """Redemptions recorded at or after ``since_ms``, oldest first (none before the table
    exists)."""
    try:
        return conn.execute(
            "SELECT redemption_id, created_at, user_login, reward_title, status, outcome,"
            " loyalty_cost FROM redemptions WHERE created_at >= ? ORDER BY created_at",
            (since_ms,),
        ).fetchall()
    except sqlite3.OperationalError:
        return []


def _count(conn: sqlite3.Connection, sql: str) -> int:
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


async def _audit(config: Config) -> list[str]:
    """The same audit as `loyaltybot audit`, on the demo's database after the daemon stopped."""
    store = await open_store(config.database.path)
    try:
        bank = Bank(store)
        await bank.load_channels()
        return [str(problem) for problem in await bank.audit()]
    finally:
        await store.close()
