"""A real dashboard in a real browser: the app on a real port with a real SQLite bank, the
EventSub webhook wired as the daemon wires it, the simulator as Twitch, headless chromium.

Screenshots of every page a test visits go to test-artifacts/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from loyaltybot.clock import SystemClock
from loyaltybot.config import Config
from loyaltybot.daemon import apply_channel_config, web_app
from loyaltybot.db import Store, open_store
from loyaltybot.eventsub.dispatch import Dispatcher
from loyaltybot.eventsub.webhook import Webhook
from loyaltybot.features.rewards.service import Rewards
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.simulator import Simulator
from loyaltybot.web.app import WebServer, start_web
from tests.dashboard_support import dashboard_features, rewards_of
from tests.web.conftest import CLIENT_ID, CLIENT_SECRET, USERS, make_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WEBHOOK_SECRET = "browser-test-secret"

if shutil.which(CHROMIUM) is None and not os.environ.get("CI"):
    # `make test` installs it (apt); in CI a missing browser fails the run instead.
    pytest.skip(f"{CHROMIUM} is not installed: make browser", allow_module_level=True)


@dataclass
class Stack:
    url: str
    sim: Simulator
    bank: Bank
    store: Store
    rewards: Rewards
    config: Config
    webhook_url: str


# One chromium for the whole module (launching it costs a second); so that it can be
# shared, this module's tests and fixtures run on one event loop.
LOOP: Final = "module"


@pytest_asyncio.fixture(loop_scope=LOOP)
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    sim = Simulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    await sim.start(host="127.0.0.1", port=0)
    for login in USERS:
        sim.add_user(login)
    db_path = tmp_path / "loyaltybot.db"
    config = make_config(db_path, sim.auth_url)
    clock = SystemClock()
    store = await open_store(db_path, clock=clock)
    bank = Bank(store)
    await apply_channel_config(config, bank, store)

    session = aiohttp.ClientSession()
    features = dashboard_features(bank, store, config, session)
    rewards = rewards_of(features)
    dispatcher = Dispatcher(store=store, bank=bank, channels=config.channels)
    dispatcher.register(rewards.eventsub())
    await dispatcher.start()
    eventsub = Webhook(
        dispatcher, secret=WEBHOOK_SECRET, clock=clock, path=config.web.eventsub_path
    )
    app = await web_app(
        config=config,
        bank=bank,
        store=store,
        features=features,
        health=lambda: True,
        metrics=Metrics(),
        clock=clock,
    )
    app.router.add_routes(eventsub.routes())  # as the daemon adds the webhook route
    server: WebServer = await start_web(app, "127.0.0.1", 0)
    yield Stack(
        server.url,
        sim,
        bank,
        store,
        rewards.rewards,
        config,
        server.url + config.web.eventsub_path,
    )
    await server.close()
    await dispatcher.close()
    await session.close()
    await store.close()
    await sim.close()


@pytest_asyncio.fixture(scope="module", loop_scope=LOOP)
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope=LOOP)
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    await context.close()
    assert dialogs == [], f"a page opened a dialog (script ran?): {dialogs}"


async def shot(page: Page, request: pytest.FixtureRequest, name: str) -> None:
    """Keep a full-page screenshot of what the test saw."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name).strip("_")
    await page.screenshot(path=str(SCREENSHOTS / f"{test}--{name}.png"), full_page=True)


async def log_in(page: Page, stack: Stack, login: str) -> None:
    """Click 'Log in with Twitch' on the landing page; the simulator approves as ``login``."""
    stack.sim.oauth.login_as(login)
    await page.goto(stack.url + "/")
    await page.get_by_role("link", name="Log in with Twitch").click()
    await page.wait_for_load_state()
