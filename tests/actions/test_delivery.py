"""The discord action's delivery against a local stand-in of a Discord webhook: JSON
{"content": ...} answered 204; 429 (after its retry_after) and 5xx tried again; other 4xx
given up; the URL never in a log event (SPEC §6)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from loyaltybot import logs
from loyaltybot.actions.delivery import Delivery, enqueue_discord
from loyaltybot.clock import SystemClock
from loyaltybot.config import Secret
from loyaltybot.db import Store, jobs, open_store
from loyaltybot.points.bank import Bank
from tests.conftest import CHANNEL
from tests.eventsub_support import serve

TOKEN = "stand-in-webhook-token-0123456789"


@dataclass
class DiscordStandIn:
    """Answers each POST with the next of ``answers`` (then 204), recording the bodies."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    at: list[float] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.at.append(time.monotonic())
        status, body = self.answers.pop(0) if self.answers else (204, None)
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)


@pytest.fixture
async def discord() -> AsyncIterator[DiscordStandIn]:
    stand_in = DiscordStandIn()
    app = web.Application()
    app.router.add_post(f"/api/webhooks/42/{TOKEN}", stand_in.handle)
    runner, base = await serve(app)
    stand_in.url = f"{base}/api/webhooks/42/{TOKEN}"
    yield stand_in
    await runner.cleanup()


async def deliver(store: Store, stand_in: DiscordStandIn, *, retries: int = 3) -> jobs.Worker:
    """Enqueue one Discord message as a purchase would, and run the worker until idle."""
    channel_id = (await store.read(lambda c: c.execute("SELECT id FROM channels").fetchone()))[0]
    await store.write(
        lambda tx: enqueue_discord(
            tx,
            channel_id,
            CHANNEL,
            origin="shop",
            key="hydrate",
            text="bob bought hydrate: @everyone",
            retries=retries,
        )
    )
    async with aiohttp.ClientSession() as session:
        delivery = Delivery(session=session)

        async def webhook(channel: str, key: str) -> Secret | None:
            return Secret(stand_in.url) if (channel, key) == (CHANNEL, "hydrate") else None

        delivery.add_webhooks("shop", webhook)
        worker = jobs.Worker(store, SystemClock(), delivery.kinds(), backoff=lambda n: 0.0)
        worker.start()
        try:
            async with asyncio.timeout(10):
                while await store.read(_pending):  # a retry may be due later (a 429's wait)
                    await worker.wait_idle()
                    await asyncio.sleep(0.05)
        finally:
            await worker.close()
    return worker


def _pending(conn: sqlite3.Connection) -> int:
    return int(
        conn.execute("SELECT count(*) FROM pending_work WHERE state = 'pending'").fetchone()[0]
    )


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    """On the system clock: the wait a 429 asks for is real time."""
    store = await open_store(db_path, clock=SystemClock())
    yield store
    await store.close()


@pytest.fixture
async def channel(store: Store) -> None:
    await Bank(store).ensure_channels([CHANNEL])


async def test_a_message_is_posted_as_json_content(
    store: Store, channel: None, discord: DiscordStandIn
) -> None:
    """204: done after one POST of {"content": ...} with mentions turned off."""
    worker = await deliver(store, discord)
    assert discord.bodies == [
        {"content": "bob bought hydrate: @everyone", "allowed_mentions": {"parse": []}}
    ]
    assert (worker.stats.done, worker.stats.dead) == (1, 0)


async def test_429_waits_retry_after_and_5xx_is_tried_again(
    store: Store, channel: None, discord: DiscordStandIn
) -> None:
    """429 with retry_after 0.3 s, then 502: tried again (after the wait), then delivered."""
    discord.answers = [
        (429, {"message": "You are being rate limited.", "retry_after": 0.3, "global": False}),
        (502, {"message": "bad gateway"}),
    ]
    worker = await deliver(store, discord)
    assert len(discord.bodies) == 3 and (worker.stats.done, worker.stats.retried) == (1, 2)
    assert discord.at[1] - discord.at[0] >= 0.3


async def test_a_4xx_is_given_up_at_once(
    store: Store, channel: None, discord: DiscordStandIn
) -> None:
    """404 (the webhook was deleted): one attempt, the work is dead, not retried."""
    discord.answers = [(404, {"message": "Unknown Webhook", "code": 10015})]
    worker = await deliver(store, discord)
    assert len(discord.bodies) == 1 and (worker.stats.dead, worker.stats.retried) == (1, 0)
    states = await store.read(
        lambda c: c.execute("SELECT state, last_error FROM pending_work").fetchall()
    )
    assert states == [("dead", "HTTP 404")]


async def test_retries_run_out(store: Store, channel: None, discord: DiscordStandIn) -> None:
    """500 every time: retries + 1 attempts, then dead."""
    discord.answers = [(500, None)] * 5
    worker = await deliver(store, discord, retries=2)
    assert len(discord.bodies) == 3 and worker.stats.dead == 1


async def test_the_url_is_never_logged(
    store: Store, channel: None, discord: DiscordStandIn
) -> None:
    """No log event carries the URL or its token, and the redactor masks both."""
    discord.answers = [(500, None), (404, None)]
    with capture_logs() as events:
        await deliver(store, discord)
    assert events and all(
        TOKEN not in repr(event) and discord.url not in repr(event) for event in events
    )
    assert TOKEN not in logs.redact(f"posting to {discord.url}")
