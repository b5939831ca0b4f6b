"""EventSub throughput and latency: the webhook over real HTTP, and (``--transport
websocket``, which runs the webhook too, for comparison) EventSub over WebSocket from the
simulator, all on loopback.

A server process runs the real webhook (``Webhook`` + ``Dispatcher`` on aiohttp, a real SQLite
file, a grant_points reward) the way the daemon would; this process plays Twitch: it
signs notifications ahead of time and POSTs them on keep-alive connections (a minimal
HTTP/1.1 client, so the load generator takes little of the CPU it shares), then checks
the database (one credit per unique redemption, the books balanced).

Each notification is verified (HMAC, freshness), deduplicated and applied in one
transaction: a redemption row, a ledger row, the viewer's balance and its message id. A
share of the requests are redeliveries of a message id already sent (Twitch's at-least-
once delivery), answered 204 with no effect.

WebSocket (SPEC §6.1): the simulator (this process) is Twitch's EventSub WebSocket server;
a server process runs the daemon's transport (``EventSubWebSocket`` with ``TwitchClients``
and the broadcaster's token, creating its subscriptions through the simulator's Helix)
feeding the real ``Dispatcher`` and a grant_points reward over a real SQLite file. The
simulator sends notifications on the session (10 % of them again with the same message
id); latency is from the simulator's send (the message's own ``message_timestamp``,
stamped as it goes out) to the ledger commit of its credit (an after-commit in the server,
the same clock); RSS is sampled every 10,000 notifications. Two runs: paced at ``--rate``
for ``--notifications`` (latency and memory), after ``--warmup`` notifications sent as fast
as possible (they fill SQLite's page cache, 32 MB per connection by design, so the RSS
measured afterwards shows what the transport itself keeps); and as fast as the simulator
sends (throughput).

Prints one JSON line per run. Targets: >= 2,000 notifications/s, p99 <= 25 ms, RSS flat.

    .venv/bin/python bench/eventsub.py [--requests 20000] [--concurrency 16] [--duplicates 0.1]
    .venv/bin/python bench/eventsub.py --transport websocket [--notifications 100000]
        [--rate 2500] [--max-notifications 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SECRET = "bench-secret-0123456789"
PATH = "/twitch/eventsub"
TITLE = "Bench reward"
REDEEM = "channel.channel_points_custom_reward_redemption.add"


# ---- the server process ---------------------------------------------------------------------


async def serve(db_path: Path) -> None:
    from aiohttp import web

    from loyaltybot import logs
    from loyaltybot.clock import SystemClock
    from loyaltybot.config import RewardConfig
    from loyaltybot.db import open_store
    from loyaltybot.eventsub.dispatch import Dispatcher
    from loyaltybot.eventsub.events import RedemptionAdded
    from loyaltybot.eventsub.webhook import Webhook
    from loyaltybot.features.rewards.service import Rewards
    from loyaltybot.points.bank import Bank

    logs.configure("warning", "json")
    clock = SystemClock()
    store = await open_store(db_path, clock=clock)
    bank = Bank(store)
    await bank.ensure_channels(["alice"])
    config = RewardConfig.model_validate({"title": TITLE, "action": "grant_points", "amount": 1})
    rewards = Rewards(bank, store, {"alice": [config]})
    dispatcher = Dispatcher(store=store, bank=bank, channels={"alice": None})
    dispatcher.register(
        {RedemptionAdded: lambda tx, routed: rewards.handle(tx, routed.channel, routed.event)}
    )
    await dispatcher.start()
    service = Webhook(dispatcher, secret=SECRET, clock=clock, path=PATH)
    app = web.Application()
    app.router.add_routes(service.routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    await runner.cleanup()
    await dispatcher.close()
    await store.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(usage.ru_utime + usage.ru_stime, flush=True)  # the parent reads the server's CPU


# ---- the Twitch side ------------------------------------------------------------------------


def build_requests(count: int, duplicates: float) -> tuple[list[tuple[dict[str, str], bytes]], int]:
    """Signed notifications; a share of them repeat an earlier message id exactly."""
    from loyaltybot.eventsub.events import format_timestamp, sign

    rng = random.Random(7)
    requests: list[tuple[dict[str, str], bytes]] = []
    unique = 0
    for n in range(count):
        if requests and rng.random() < duplicates:
            requests.append(requests[rng.randrange(len(requests))])
            continue
        unique += 1
        viewer = n % 5000
        event = {
            "id": str(uuid.uuid4()),
            "broadcaster_user_id": "1337",
            "broadcaster_user_login": "alice",
            "broadcaster_user_name": "Alice",
            "user_id": str(100_000 + viewer),
            "user_login": f"viewer{viewer}",
            "user_name": f"Viewer{viewer}",
            "user_input": "",
            "status": "unfulfilled",
            "reward": {"id": "reward-1", "title": TITLE, "cost": 100, "prompt": ""},
            "redeemed_at": "2024-01-01T00:00:00Z",
        }
        body = json.dumps(
            {
                "subscription": {
                    "id": "sub-1",
                    "type": REDEEM,
                    "version": "1",
                    "status": "enabled",
                    "cost": 0,
                    "condition": {"broadcaster_user_id": "1337"},
                    "transport": {"method": "webhook", "callback": "https://example.com/cb"},
                    "created_at": "2024-01-01T00:00:00Z",
                },
                "event": event,
            }
        ).encode()
        message_id = str(uuid.uuid4())
        timestamp = format_timestamp(time.time())
        headers = {
            "Content-Type": "application/json",
            "Twitch-Eventsub-Message-Id": message_id,
            "Twitch-Eventsub-Message-Retry": "0",
            "Twitch-Eventsub-Message-Type": "notification",
            "Twitch-Eventsub-Message-Signature": sign(SECRET, message_id, timestamp, body),
            "Twitch-Eventsub-Message-Timestamp": timestamp,
            "Twitch-Eventsub-Subscription-Type": REDEEM,
            "Twitch-Eventsub-Subscription-Version": "1",
        }
        requests.append((headers, body))
    return requests, unique


def wire_request(port: int, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 POST, serialised ahead of time so the load generator stays light: on a
    two-core box it shares the CPU with the server it measures."""
    lines = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Status of one response on a keep-alive connection (its body, if any, is skipped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    length = 0
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            raise RuntimeError("the benchmark client does not read chunked responses")
    if length:
        await reader.readexactly(length)
    return status


async def drive(
    port: int, requests: list[bytes], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    """``concurrency`` keep-alive connections, each sending its next request as soon as the
    previous answer arrived; returns the elapsed time, each latency, and the statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client(queue: Iterator[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                started = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()
            await writer.wait_closed()

    warm = iter(requests[:200])  # warm-up: first statements prepared, caches filled
    await asyncio.gather(*(client(warm) for _ in range(concurrency)))
    latencies.clear()
    statuses.clear()
    rest = iter(requests[200:])
    started = time.perf_counter()
    await asyncio.gather(*(client(rest) for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def check(db_path: Path) -> dict[str, object]:
    conn = sqlite3.connect(db_path)
    try:
        from loyaltybot.points.ledger import audit

        (credits,) = conn.execute("SELECT count(*) FROM ledger WHERE type = 'reward'").fetchone()
        (redemptions,) = conn.execute("SELECT count(*) FROM redemptions").fetchone()
        problems = audit(conn)
    finally:
        conn.close()
    return {"credits": credits, "redemptions": redemptions, "audit_ok": not problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=("webhook", "websocket"), default="webhook")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--notifications", type=int, default=100_000, help="websocket, paced")
    parser.add_argument("--rate", type=float, default=2500.0, help="websocket, per second")
    parser.add_argument("--warmup", type=int, default=100_000, help="websocket, before pacing")
    parser.add_argument("--max-notifications", type=int, default=50_000, help="websocket")
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--serve-ws", metavar="PARAMS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve)))
        return
    if args.serve_ws:
        asyncio.run(serve_websocket(json.loads(args.serve_ws)))
        return
    print(json.dumps(run_webhook(args)), flush=True)
    if args.transport == "websocket":
        paced = asyncio.run(
            run_websocket(args.notifications, args.rate, args.duplicates, warmup=args.warmup)
        )
        print(json.dumps(paced), flush=True)
        fastest = asyncio.run(run_websocket(args.max_notifications, None, args.duplicates))
        print(json.dumps(fastest), flush=True)


def run_webhook(args: argparse.Namespace) -> dict[str, object]:
    """The webhook: ``--requests`` signed POSTs on ``--concurrency`` connections."""
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            requests, unique = build_requests(args.requests + 200, args.duplicates)
            wire = [wire_request(port, headers, body) for headers, body in requests]
            elapsed, latencies, statuses = asyncio.run(drive(port, wire, args.concurrency))
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=30)
        server_cpu = float(server.stdout.read().strip() or "nan")
        return {
            "bench": "eventsub_webhook",
            "requests": len(latencies),
            "unique_notifications": unique,
            "concurrency": args.concurrency,
            "seconds": round(elapsed, 3),
            "notifications_per_second": round(len(latencies) / elapsed),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "max_ms": round(max(latencies) * 1000, 2),
            # CPU the server spent per request over its whole life (start-up included):
            # what the figure above costs, less sensitive to a busy machine than time is.
            "server_cpu_ms_per_request": round(server_cpu * 1000 / len(requests), 3),
            "statuses": statuses,
            **check(db_path),
        }


# ---- EventSub over WebSocket: the daemon's side, in the server process -------------------------


def rss_kb() -> int:
    """This process's resident set, from /proc (kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def handled(counts: Any, total: int) -> None:
    """Until the transport has handed ``total`` notifications over (new or duplicates)."""
    for _ in itertools.count():
        if counts.processed + counts.duplicates >= total:
            return
        await asyncio.sleep(0.02)


async def serve_websocket(params: dict[str, Any]) -> None:
    """The transport as the daemon runs it, until stdin closes; prints "ready", "warm" when
    the warm-up was handled, then one JSON line when every notification was, then its CPU
    seconds. Latency and RSS are measured after the warm-up."""
    import aiohttp

    from loyaltybot import logs
    from loyaltybot.clock import SystemClock
    from loyaltybot.config import parse_config
    from loyaltybot.db import Tx, open_store
    from loyaltybot.eventsub.dispatch import WEBSOCKET, Dispatcher, Missed, Routed
    from loyaltybot.eventsub.events import RedemptionAdded
    from loyaltybot.eventsub.websocket import EventSubWebSocket
    from loyaltybot.features.rewards.service import Rewards
    from loyaltybot.points.bank import Bank
    from loyaltybot.twitch.clients import TwitchClients
    from loyaltybot.twitch.tokens import Tokens

    logs.configure("warning", "json")
    gc.freeze()  # as `loyaltybot run` does: what is imported lives as long as the process
    db_path = Path(params["db"])
    config = parse_config(
        {
            "database": {"path": str(db_path)},
            "twitch": {
                "client_id": params["client_id"],
                "bot_login": "mybot",
                "bot_token": params["bot_token"],
                "api_url": params["api_url"],
                "auth_url": params["auth_url"],
                "eventsub_ws_url": params["ws_url"],
            },
            "channels": {
                "alice": {
                    "broadcaster_token": params["broadcaster_token"],
                    "rewards": [{"title": TITLE, "action": "grant_points", "amount": 1}],
                }
            },
        },
        db_path.parent / "config.toml",
    )
    clock = SystemClock()
    store = await open_store(db_path, clock=clock)
    bank = Bank(store)
    await bank.ensure_channels(["alice"])
    rewards = Rewards(bank, store, {"alice": list(config.channels["alice"].rewards)})
    dispatcher = Dispatcher(store=store, bank=bank, channels=config.channels)
    expected = int(params["expected"])
    latencies = array("d", bytes(8 * expected))  # allocated before the first RSS sample
    done = [0]
    rss: list[tuple[int, int]] = []
    last_commit = [0.0]

    def handle(tx: Tx, routed: Routed) -> Callable[[], None]:
        event = routed.event
        assert isinstance(event, RedemptionAdded)
        rewards.handle(tx, routed.channel, event)
        sent = routed.timestamp

        def committed() -> None:
            now = time.time()
            latencies[done[0]] = now - sent
            done[0] += 1
            last_commit[0] = now
            if done[0] % 10_000 == 0:
                rss.append((done[0], rss_kb()))

        return committed

    async def nothing(channel: str, broadcaster_id: str) -> list[Missed]:
        return []

    dispatcher.register({RedemptionAdded: handle})
    await dispatcher.start()
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        tokens = Tokens(config, store, http, clock=clock)
        await tokens.start()
        transport = EventSubWebSocket(
            dispatcher,
            clients=TwitchClients(config, http, tokens, clock=clock),
            http=http,
            url=config.twitch.eventsub_ws_url,
            clock=clock,
            recover=nothing,
        )
        transport.start(["alice"])
        rss.append((0, rss_kb()))
        print("ready", flush=True)
        counts = dispatcher.stats.of(WEBSOCKET)
        warmup = int(params["warmup"])
        if warmup:
            await handled(counts, warmup)
            done[0] = 0  # latencies and RSS from here on
            rss[:] = [(0, rss_kb())]
            print("warm", flush=True)
        await handled(counts, warmup + expected)
        ordered = sorted(latencies[: done[0]])
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        windows = [  # the tail by stretch of 10,000: a busy machine shows as one bad stretch
            sorted(latencies[start : min(done[0], start + 10_000)])
            for start in range(0, done[0], 10_000)
        ]
        print(
            json.dumps(
                {
                    "processed": counts.processed,
                    "duplicates": counts.duplicates,
                    "malformed": counts.malformed,
                    "reconnects": counts.reconnects,
                    "last_commit": last_commit[0],
                    "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
                    "p99_ms": round(p99 * 1000, 2),
                    "max_ms": round(ordered[-1] * 1000, 2),
                    "p99_ms_every_10000": [
                        round(w[min(len(w) - 1, int(0.99 * len(w)))] * 1000, 1) for w in windows
                    ],
                    "rss_kb": rss,
                }
            ),
            flush=True,
        )
        await loop.run_in_executor(None, sys.stdin.read)  # until closed
        await transport.close()
    await dispatcher.close()
    await store.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(usage.ru_utime + usage.ru_stime, flush=True)


# ---- EventSub over WebSocket: Twitch's side (the simulator), in this process --------------------


def redemption_event(n: int, broadcaster_id: str) -> dict[str, Any]:
    viewer = n % 5000
    return {
        "id": str(uuid.uuid4()),
        "broadcaster_user_id": broadcaster_id,
        "broadcaster_user_login": "alice",
        "broadcaster_user_name": "Alice",
        "user_id": str(100_000 + viewer),
        "user_login": f"viewer{viewer}",
        "user_name": f"Viewer{viewer}",
        "user_input": "",
        "status": "unfulfilled",
        "reward": {"id": "reward-1", "title": TITLE, "cost": 100, "prompt": ""},
        "redeemed_at": "2024-01-01T00:00:00Z",
    }


async def run_websocket(
    count: int, rate: float | None, duplicates: float, *, warmup: int = 0
) -> dict[str, object]:
    """One run: ``warmup`` notifications as fast as possible, then ``count`` from the
    simulator (paced at ``rate`` per second, or as fast as it sends), 10 % of them sent
    twice; the server's figures over the ``count``."""
    from loyaltybot import logs
    from loyaltybot.simulator import BOT_SCOPES, BROADCASTER_SCOPES, Simulator

    logs.configure("warning", "json")  # the simulator's own lines stay out of the figures
    sim = Simulator(client_id="bench-client", client_secret="bench-secret-0123")
    await sim.start()
    sim.add_channel("alice", bot_login="mybot")
    broadcaster_id = sim.user("alice").id
    try:
        with tempfile.TemporaryDirectory() as tmp:
            params = {
                "db": str(Path(tmp) / "bench.db"),
                "client_id": sim.client_id,
                "bot_token": sim.issue_token("mybot", list(BOT_SCOPES), expires_in=86400),
                "broadcaster_token": sim.issue_token(
                    "alice", list(BROADCASTER_SCOPES), expires_in=86400
                ),
                "api_url": sim.api_url,
                "auth_url": sim.auth_url,
                "ws_url": sim.eventsub_ws_url,
                "expected": count,
                "warmup": warmup,
            }
            server = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--serve-ws",
                json.dumps(params),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert server.stdout is not None
            assert server.stdin is not None
            try:
                ready = await server.stdout.readline()
                assert ready.strip() == b"ready", ready
                await sim.eventsub_ws.wait_enabled(1, timeout=30)
                if warmup:
                    await send(sim, warmup, None, 0.0, broadcaster_id, first=count)
                    assert (await server.stdout.readline()).strip() == b"warm"
                    await asyncio.sleep(1.0)  # the warm-up's last checkpoint, out of the figures
                started, unique = await send(sim, count, rate, duplicates, broadcaster_id)
                figures = json.loads(await server.stdout.readline())
            finally:
                server.stdin.close()
                await asyncio.wait_for(server.wait(), 60)
            server_cpu = float((await server.stdout.read()).strip() or "nan")
            elapsed = figures.pop("last_commit") - started
            rss = [kb for _, kb in figures.pop("rss_kb")]
            return {
                "bench": "eventsub_websocket",
                "paced_per_second": rate,
                "warmup_notifications": warmup,
                "notifications": count,
                "unique_notifications": unique,
                "seconds": round(elapsed, 3),
                "notifications_per_second": round(count / elapsed),
                **figures,
                "server_cpu_ms_per_notification": round(server_cpu * 1000 / (warmup + count), 3),
                # measured from the end of the warm-up (the start, without one)
                "rss_mb_at_start": round(rss[0] / 1024, 1),
                "rss_mb_at_end": round(rss[-1] / 1024, 1),
                "rss_mb_growth": round((rss[-1] - rss[0]) / 1024, 1),
                "rss_mb_every_10000": [round(kb / 1024, 1) for kb in rss],
                **check(Path(params["db"])),
            }
    finally:
        await sim.close()


async def send(
    sim: Any,
    count: int,
    rate: float | None,
    duplicates: float,
    broadcaster_id: str,
    *,
    first: int = 0,
) -> tuple[float, int]:
    """Notify ``count`` times (a share of them resending a recent message id); returns the
    wall-clock start and how many were new."""
    rng = random.Random(7)
    recent: deque[str] = deque(maxlen=100)
    loop = asyncio.get_running_loop()
    # Twitch's side: its garbage collector must not pause between a message's timestamp
    # and its send, or the pause would count as the daemon's latency.
    gc.disable()
    started_wall, started = time.time(), loop.time()
    unique = 0
    for n in range(count):
        if rate is not None:
            due = started + n / rate
            if due - loop.time() > 0.002:
                await asyncio.sleep(due - loop.time())
        if recent and rng.random() < duplicates:
            await sim.eventsub_ws.resend(rng.choice(recent))
            continue
        event = redemption_event(first + n, broadcaster_id)
        [delivery] = await sim.eventsub_ws.notify(REDEEM, event)
        recent.append(delivery.message_id)
        unique += 1
    gc.enable()
    return started_wall, unique


if __name__ == "__main__":
    main()
