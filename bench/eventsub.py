"""EventSub webhook throughput and latency over real HTTP on loopback.

A server process runs the real webhook (``Webhook`` + ``Dispatcher`` on aiohttp, a real SQLite
file, a grant_points reward) the way the daemon would; this process plays Twitch: it
signs notifications ahead of time and POSTs them on keep-alive connections (a minimal
HTTP/1.1 client, so the load generator takes little of the CPU it shares), then checks
the database (one credit per unique redemption, the books balanced).

Each notification is verified (HMAC, freshness), deduplicated and applied in one
transaction: a redemption row, a ledger row, the viewer's balance and its message id. A
share of the requests are redeliveries of a message id already sent (Twitch's at-least-
once delivery), answered 204 with no effect.

Prints one JSON line. Target: >= 2,000 notifications/s, p99 <= 25 ms.

    .venv/bin/python bench/eventsub.py [--requests 20000] [--concurrency 16] [--duplicates 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

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
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve)))
        return

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
        result = {
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
    print(json.dumps(result))


if __name__ == "__main__":
    main()
