"""Dashboard and leaderboard API latency at 100,000 viewers; prints JSON lines.

    .venv/bin/python bench/web.py [--viewers 100000] [--seconds 3] [--clients 32]

Builds a real SQLite bank (viewers credited through earning ticks, ledger rows through
the bank), serves the real app on 127.0.0.1, logs in through the simulator, then:

- ``page``: server time of each dashboard page (the app's own ``Server-Timing`` header:
  from the first middleware to the response, template rendering included), median, p95
  and max over repeated requests. Target: <= 50 ms each.
- ``api``: leaderboard API requests per second over loopback, measured by a load
  generator in another process (so client and server do not share a CPU), keep-alive,
  N concurrent connections. Target: >= 1,000 requests/s.
- ``tick``: what one earning tick of all viewers costs (no index on the sort columns; this
  is the cost an index would add to).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loyaltybot.clock import SystemClock
from loyaltybot.config import parse_config
from loyaltybot.daemon import apply_channel_config, web_app
from loyaltybot.db import open_store
from loyaltybot.features.wallet.feature import Wallet
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.viewers import Viewer
from loyaltybot.simulator import Simulator
from loyaltybot.web.app import start_web

CHANNEL = "alice"
TARGET_PAGE_MS = 50.0
TARGET_API_RPS = 1000.0


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def populate(bank: Bank, viewers: int, ledger_rows: int) -> None:
    channel_id = bank.channel_id(CHANNEL)
    rnd = random.Random(7)
    people = [
        (str(10_000_000 + i), f"viewer{i}", f"Viewer{i}", rnd.random() < 0.1)
        for i in range(viewers)
    ]
    for seq in range(1, 4):
        present = [
            Presence(uid, login, name, subscriber=sub, messages=rnd.choice((0, 0, 0, 1, 4)))
            for uid, login, name, sub in people
            if seq == 1 or rnd.random() < 0.7
        ]
        started = time.perf_counter()
        await bank.credit_tick(
            TickPlan(
                channel_id,
                seq,
                0,
                300,
                EarningRates(10, 15, 2, 0),
                present,
                bank.known_logins(CHANNEL),
            )
        )
        await bank.load_known_logins(CHANNEL)
        emit(
            bench="tick",
            seq=seq,
            present=len(present),
            ms=round((time.perf_counter() - started) * 1000, 1),
            note="first tick inserts every viewer; later ones update",
        )
    credits = [
        bank.credit(
            CHANNEL,
            Viewer(*people[rnd.randrange(viewers)][:3]),
            rnd.randint(1, 500),
            kind=rnd.choice((EntryType.ADD, EntryType.BONUS, EntryType.REWARD)),
            reason="bench",
            actor="bench",
        )
        for _ in range(ledger_rows)
    ]
    await asyncio.gather(*credits)


async def login(session: aiohttp.ClientSession, base: str, sim: Simulator) -> None:
    sim.oauth.login_as(CHANNEL)
    async with session.get(base + "/login") as response:
        assert response.status == 200, response.status


def server_ms(response: aiohttp.ClientResponse) -> float:
    timing = response.headers["Server-Timing"]  # app;dur=12.34
    return float(timing.split("dur=")[1])


async def measure_pages(
    session: aiohttp.ClientSession, base: str, repeat: int
) -> list[dict[str, Any]]:
    deep_cursor = await _deep_cursor(session, base, pages=20)
    paths = {
        "overview": "/dashboard/alice",
        "viewers sort=points": "/dashboard/alice/viewers?sort=points",
        "viewers sort=watch": "/dashboard/alice/viewers?sort=watch",
        "viewers sort=messages": "/dashboard/alice/viewers?sort=messages",
        "viewers sort=last_seen": "/dashboard/alice/viewers?sort=last_seen",
        "viewers sort=name": "/dashboard/alice/viewers?sort=name",
        "viewers page 21 (keyset)": f"/dashboard/alice/viewers?sort=points&after={deep_cursor}",
        "viewers q=v (matches all, scan)": "/dashboard/alice/viewers?q=v&sort=points",
        "viewers q=viewer5 (11%, index)": "/dashboard/alice/viewers?q=viewer5&sort=watch",
        "viewers q=viewer12345": "/dashboard/alice/viewers?q=viewer12345",
        "viewer detail": "/dashboard/alice/viewers/10012345",
        "leaderboard page 1": "/dashboard/alice/leaderboard",
        "leaderboard page 1000": "/dashboard/alice/leaderboard?page=1000",
        "transactions": "/dashboard/alice/transactions",
        "transactions type=bonus": "/dashboard/alice/transactions?type=bonus",
        "public leaderboard": "/c/alice/leaderboard",
        "api leaderboard limit=100": "/api/v1/channels/alice/leaderboard?limit=100",
    }
    results = []
    for name, path in paths.items():
        samples = []
        for _ in range(repeat):
            async with session.get(base + path) as response:
                await response.read()
                assert response.status == 200, (path, response.status)
                samples.append(server_ms(response))
        samples.sort()
        results.append(
            {
                "bench": "page",
                "page": name,
                "median_ms": round(statistics.median(samples), 2),
                "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
                "max_ms": round(samples[-1], 2),
                "target_ms": TARGET_PAGE_MS,
                "ok": samples[int(0.95 * (len(samples) - 1))] <= TARGET_PAGE_MS,
            }
        )
    return results


async def _deep_cursor(session: aiohttp.ClientSession, base: str, pages: int) -> str:
    import html
    import re

    path = "/dashboard/alice/viewers?sort=points"
    cursor = ""
    for _ in range(pages):
        async with session.get(base + path) as response:
            text = await response.text()
        found = re.search(r'<a href="\?([^"]+)" rel="next">', text)
        assert found, "no next page"
        query = html.unescape(found[1])
        cursor = dict(part.split("=", 1) for part in query.split("&"))["after"]
        path = "/dashboard/alice/viewers?" + query
    return cursor


def _load_generator(url: str, seconds: float, clients: int, out: Any) -> None:
    """In a child process: hammer ``url`` from ``clients`` keep-alive connections."""

    async def run() -> tuple[int, int, list[float]]:
        done = errors = 0
        latencies: list[float] = []
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:
            stop = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal done, errors
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        await response.read()
                        if response.status == 200:
                            done += 1
                        else:
                            errors += 1
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(clients)))
        return done, errors, latencies

    started = time.perf_counter()
    done, errors, latencies = asyncio.run(run())
    elapsed = time.perf_counter() - started
    latencies.sort()
    out.send(
        {
            "requests": done,
            "errors": errors,
            "seconds": round(elapsed, 2),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        }
    )


async def measure_api(base: str, seconds: float, clients: int, limit: int) -> dict[str, Any]:
    url = f"{base}/api/v1/channels/{CHANNEL}/leaderboard?limit={limit}"
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_load_generator, args=(url, seconds, clients, send))
    process.start()
    loop = asyncio.get_running_loop()
    result: dict[str, Any] = await loop.run_in_executor(None, receive.recv)
    await loop.run_in_executor(None, process.join)
    rps = result["requests"] / result["seconds"]
    return {
        "bench": "api",
        "endpoint": f"leaderboard?limit={limit}",
        "clients": clients,
        "requests_per_s": round(rps),
        **result,
        "target_rps": TARGET_API_RPS,
        "ok": rps >= TARGET_API_RPS and result["errors"] == 0,
    }


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        sim = Simulator()
        await sim.start()
        sim.add_user(CHANNEL)
        config = parse_config(
            {
                "database": {"path": str(db_path)},
                "twitch": {
                    "client_id": sim.client_id,
                    "client_secret": sim.client_secret,
                    "bot_login": "mybot",
                    "auth_url": sim.auth_url,
                },
                "channels": {CHANNEL: {}},
            },
            Path(tmp) / "config.toml",
        )
        store = await open_store(db_path, clock=SystemClock())
        bank = Bank(store)
        await apply_channel_config(config, bank, store)
        await populate(bank, args.viewers, args.ledger_rows)
        app = await web_app(
            config=config,
            bank=bank,
            store=store,
            features=[Wallet(present=lambda channel: [])],
            health=lambda: True,
            metrics=Metrics(),
            clock=SystemClock(),
        )
        server = await start_web(app, "127.0.0.1", 0)
        try:
            jar = aiohttp.CookieJar(unsafe=True)  # cookies from 127.0.0.1
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                await login(session, server.url, sim)
                for result in await measure_pages(session, server.url, args.repeat):
                    emit(viewers=args.viewers, **result)
            for limit in (10, 100):
                emit(
                    viewers=args.viewers,
                    **await measure_api(server.url, args.seconds, args.clients, limit),
                )
        finally:
            await server.close()
            await store.close()
            await sim.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=100_000)
    parser.add_argument("--ledger-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=32)
    sys.exit(asyncio.run(main(parser.parse_args())))
