"""The EventSub tab in headless chromium, on the real daemon over EventSub WebSocket against
the simulator, from an empty database: the streamer sees the transport, the session and
each subscription; after Twitch goes silent, the page says events may have been missed and
how many redemptions were fetched again. Every state passes axe-core."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect

from loyaltybot.config import load_config
from loyaltybot.simulator import BROADCASTER_SCOPES, Simulator
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, shot
from tests.e2e.conftest import CLIENT_ID, StartBot, audit, sim, start_bot
from tests.e2e.test_eventsub_ws_e2e import REWARD, write_config

__all__ = ["sim", "start_bot"]  # the end-to-end fixtures, used here too

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

if shutil.which(CHROMIUM) is None and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed: make browser", allow_module_level=True)


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        yield await context.new_page()
        await context.close()
        await browser.close()


async def accessible(page: Page) -> None:
    """axe-core finds no violation on the page as it is now."""
    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def test_the_eventsub_tab_shows_the_session_and_a_gap(
    page: Page, sim: Simulator, start_bot: StartBot, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Transport, session and subscriptions; then, after a silent connection, the warning
    that events may have been missed, with the redemption fetched again."""
    sim.eventsub_ws.keepalive_bounds = (1, 1)
    sim.add_reward("alice", REWARD, cost=500, client_id=CLIENT_ID)
    token = sim.issue_token("alice", scopes=list(BROADCASTER_SCOPES))
    config = write_config(tmp_path / "config.toml", sim, broadcaster_token=token)
    bot = await start_bot(config=load_config(config))
    await sim.eventsub_ws.wait_enabled(3, timeout=10)
    [first] = sim.eventsub_ws.open_sessions()

    sim.oauth.login_as("alice")
    await page.goto(bot.daemon.web_url + "/")
    await page.get_by_role("link", name="Log in with Twitch").click()
    await page.wait_for_load_state()
    await page.get_by_role("navigation", name="#alice").get_by_role("link", name="EventSub").click()
    await expect(page.get_by_role("heading", name="EventSub", level=1)).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Transport: WebSocket")
    await expect(page.locator("main")).to_contain_text(first.id)
    rows = page.locator("table.data").first.locator("tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.filter(has_text="enabled")).to_have_count(3)
    await accessible(page)
    await shot(page, request, "eventsub-connected")

    sim.eventsub_ws.silence(first.id)
    await sim.redeem("alice", "bob", REWARD)  # lost in the silence
    await sim.eventsub_ws.wait_closed(first.id, timeout=10)
    for _ in range(500):
        state = bot.daemon.dispatcher.status.channel("alice")
        if state.gaps and state.gaps[0].recovered is not None:
            break
        await page.wait_for_timeout(20)
    await page.reload()
    await expect(page.get_by_role("alert")).to_contain_text("may have been missed")
    gaps = page.locator("table.data").nth(1).locator("tbody tr")
    await expect(gaps).to_have_count(1)
    await expect(gaps.first.locator("td.num")).to_have_text("1")
    await accessible(page)
    await shot(page, request, "eventsub-after-a-gap")
    await page.get_by_role("navigation", name="#alice").get_by_role("link", name="Overview").click()
    await expect(page.locator("main")).to_contain_text("EventSub connections lost")
    assert await bot.stop() == 0
    assert await audit(bot.config.database.path) == []
