"""Giveaways in headless chromium, on the real daemon against the simulator, from an empty
database: the streamer opens a giveaway on the dashboard (after a typo in the form),
viewers buy tickets in chat, the public overlay follows within 2 s, the streamer closes,
draws and recomputes the winners. Every page passes axe-core (the overlay is the public
page on a transparent background, so its contrast is the stream's: axe checks the page)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, async_playwright, expect

from loyaltybot.simulator import Simulator
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, shot
from tests.e2e.conftest import CLIENT_SECRET, StartBot, audit, sim, start_bot

__all__ = ["sim", "start_bot"]  # the end-to-end fixtures, used here too

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

if shutil.which(CHROMIUM) is None and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed: make browser", allow_module_level=True)

ALICE = {
    "currency_name": "cookie",
    "currency_name_plural": "cookies",
    "giveaway_ticket_cost": 10,
    "giveaway_max_tickets": 5,
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def new_page(browser: Browser) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a page opened a dialog: {dialog.message}"))
    return page


async def accessible(page: Page) -> None:
    """axe-core finds no violation on the page as it is now."""
    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def test_open_buy_close_draw_verify_in_the_browser(
    browser: Browser, sim: Simulator, start_bot: StartBot, request: pytest.FixtureRequest
) -> None:
    """The whole cycle through the dashboard and chat; the overlay keeps up within 2 s."""
    sim.set_role("alice", "modmo", mod=True)
    bot = await start_bot({"alice": ALICE}, twitch={"client_secret": CLIENT_SECRET})
    for login in ("bob", "carol", "dave"):
        await sim.say("alice", login, "hi!")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!addpoints all 500")
    await sim.wait_for_reply("alice", contains="to each of", after=mark)

    page = await new_page(browser)
    sim.oauth.login_as("alice")
    await page.goto(bot.daemon.web_url + "/")
    await page.get_by_role("link", name="Log in with Twitch").click()
    await page.wait_for_load_state()
    await page.goto(f"{bot.daemon.web_url}/dashboard/alice")
    await page.get_by_role("link", name="Giveaways").click()
    await expect(page.get_by_role("heading", name="Giveaways", exact=True)).to_be_visible()
    await expect(page.get_by_text("No giveaways yet.")).to_be_visible()
    await accessible(page)
    await shot(page, request, "empty")

    # a typo in the form: one clear error, nothing opened
    await page.get_by_label("Prize").fill("A signed poster")
    await page.get_by_label("Ticket cost").fill("1.5")
    await page.get_by_role("button", name="Open the giveaway").click()
    await expect(page.get_by_text("Nothing was opened: 1 value needs fixing")).to_be_visible()
    await expect(page.get_by_text("must be a whole number")).to_be_visible()
    await accessible(page)
    await page.get_by_label("Ticket cost").fill("10")
    mark = len(sim.sent)
    await page.get_by_role("button", name="Open the giveaway").click()
    await expect(page.get_by_text("Giveaway #1 is open.")).to_be_visible()
    await sim.wait_for_reply("alice", contains="Giveaway #1 is open: A signed poster", after=mark)

    overlay = await new_page(browser)
    await overlay.goto(f"{bot.daemon.web_url}/c/alice/giveaway?overlay=1")
    await expect(overlay.locator(".gw-title")).to_have_text("Giveaway #1")
    await expect(overlay.locator(".gw-tickets")).to_have_text("0")
    public = await new_page(browser)  # the same page without the overlay's transparency
    await public.goto(f"{bot.daemon.web_url}/c/alice/giveaway")
    await accessible(public)

    for login, tickets in (("bob", 3), ("carol", 5), ("dave", 1)):
        await sim.say("alice", login, f"!ticket {tickets}")
    await expect(overlay.locator(".gw-tickets")).to_have_text("9", timeout=2500)
    await expect(overlay.locator(".gw-entrants")).to_have_text("3")
    await shot(overlay, request, "overlay-open")

    await page.reload()
    entries = page.locator("table.data").first
    await expect(entries.get_by_role("row", name=re.compile(r"carol\s+5\s+50"))).to_be_visible()
    await page.get_by_role("button", name="Close entries").click()
    await expect(page.get_by_text("Giveaway #1 is closed; the seed's SHA-256 is posted.")
                 ).to_be_visible()  # fmt: skip
    commitment = await page.locator("code.hash").first.inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", commitment)
    await expect(overlay.locator(".gw-state")).to_have_text(re.compile("Closed"), timeout=2500)
    await accessible(page)

    await page.get_by_label("Winners").fill("2")
    await page.get_by_role("button", name="Draw", exact=True).click()
    await expect(page.get_by_text(re.compile(r"Giveaway #1: drew \w+, \w+\."))).to_be_visible()
    winners = await page.locator("ol.winners li a").all_inner_texts()
    assert len(winners) == 2 and set(winners) <= {"bob", "carol", "dave"}
    await expect(overlay.locator(".gw-winners li .name")).to_have_text(winners, timeout=2500)
    await shot(overlay, request, "overlay-drawn")
    await page.get_by_role("link", name="Recompute the winners").click()
    await expect(page.get_by_text(re.compile("Verified: the seed hashes to the commitment"))
                 ).to_be_visible()  # fmt: skip
    await accessible(page)
    await shot(page, request, "verified")
    await expect(public.locator(".gw-winners li .name")).to_have_text(winners, timeout=2500)
    await accessible(public)
    await shot(public, request, "public-drawn")
    assert await audit(bot.config.database.path) == []
