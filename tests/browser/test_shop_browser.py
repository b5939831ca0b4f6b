"""The shop in headless chromium, on the real daemon against the simulator, from an empty
database: viewers buy in chat; the streamer sees the shop page and the approval queue with
a shop item in it, rejects it (a refund), adds an item with the form; the public page
refreshes itself. Every page passes axe-core."""

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
from tests.e2e.conftest import CLIENT_SECRET, RunningBot, StartBot, audit, sim, start_bot

__all__ = ["sim", "start_bot"]  # the end-to-end fixtures, used here too

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

if shutil.which(CHROMIUM) is None and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed: make browser", allow_module_level=True)

SHOP = [
    {
        "name": "hydrate",
        "cost": 100,
        "stock": 3,
        "description": "The streamer drinks water",
        "message": "{user} made alice drink",
    },
    {"name": "request", "cost": 250, "action": "queue", "message": "{user} gets {input}"},
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    yield page
    await context.close()
    assert dialogs == [], f"a page opened a dialog (script ran?): {dialogs}"


async def accessible(page: Page) -> None:
    """axe-core finds no violation on the page as it is now."""
    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def shop_bot(sim: Simulator, start_bot: StartBot) -> RunningBot:
    sim.set_role("alice", "modmo", mod=True)
    bot = await start_bot(
        {"alice": {"currency_name": "cookie", "currency_name_plural": "cookies", "shop": SHOP}},
        twitch={"client_secret": CLIENT_SECRET},
    )
    for login in ("bob", "carol"):
        await sim.say("alice", login, "hi!")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", "!addpoints all 1000")
    await sim.wait_for_reply("alice", contains="to each of", after=mark)
    return bot


async def buy(sim: Simulator, login: str, line: str) -> str:
    mark = len(sim.sent)
    await sim.say("alice", login, line)
    return (await sim.wait_for_reply("alice", contains=f"@{login}", after=mark)).text


async def log_in(page: Page, bot: RunningBot, sim: Simulator, login: str) -> None:
    sim.oauth.login_as(login)
    await page.goto(bot.daemon.web_url + "/")
    await page.get_by_role("link", name="Log in with Twitch").click()
    await page.wait_for_load_state()


async def test_shop_page_queue_and_reject(
    page: Page, sim: Simulator, start_bot: StartBot, request: pytest.FixtureRequest
) -> None:
    """A queue purchase waits beside redemptions; Reject refunds it; the shop page lists
    items, stock and purchases; all pages pass axe-core."""
    bot = await shop_bot(sim, start_bot)
    assert "you bought hydrate" in await buy(sim, "carol", "!buy hydrate")
    assert "waits for the streamer's approval" in await buy(
        sim, "bob", "!buy request <b>Never Gonna Give You Up</b>"
    )
    await log_in(page, bot, sim, "alice")
    nav = page.get_by_role("navigation", name="#alice")
    await nav.get_by_role("link", name="Queue").click()
    row = page.locator("table.queue tbody tr").first
    await expect(row).to_contain_text("request")
    await expect(row).to_contain_text("Shop")
    await expect(row.locator("td.reason")).to_have_text("<b>Never Gonna Give You Up</b>")
    await expect(row).to_contain_text("250")
    await accessible(page)
    await shot(page, request, "queue-with-shop-item")
    await row.get_by_role("button", name="Reject").click()
    await expect(page.get_by_role("status")).to_contain_text("Rejected")
    await expect(page.locator("table.queue")).to_contain_text("Nothing is waiting")
    assert "you have 1,000 cookies" in await buy(sim, "bob", "!points")

    await nav.get_by_role("link", name="Shop").click()
    items = page.locator("table.shop-table tbody tr")
    await expect(items).to_have_count(2)
    await expect(items.first).to_contain_text("2 of 3")
    await expect(items.first).to_contain_text("config.toml")
    purchases = page.locator("table.purchases tbody tr")
    await expect(purchases).to_have_count(2)
    await expect(purchases.first).to_contain_text("canceled")
    await accessible(page)
    await shot(page, request, "shop")
    await items.first.get_by_role("link", name="hydrate").click()
    await expect(page.get_by_label("Cost")).to_be_disabled()  # config.toml's
    await accessible(page)
    assert await audit(bot.config.database.path) == []


async def test_adding_an_item_and_bad_input(
    page: Page, sim: Simulator, start_bot: StartBot, request: pytest.FixtureRequest
) -> None:
    """The form refuses a bad cost with one message at the field and keeps what was typed;
    a good item is for sale in chat at once."""
    bot = await shop_bot(sim, start_bot)
    await log_in(page, bot, sim, "alice")
    await page.goto(bot.daemon.web_url + "/dashboard/alice/shop")
    await page.get_by_label("Name").fill("hug")
    await page.get_by_label("Cost").fill("1e5")
    await page.get_by_label("Message").fill("{user} gets a hug")
    await page.get_by_role("button", name="Add to the shop").click()
    await expect(page.locator("#err-cost")).to_have_text(
        "must be a whole number, like 100 or 1,000"
    )
    await expect(page.get_by_label("Name")).to_have_value("hug")
    await accessible(page)
    await shot(page, request, "bad-item")
    await page.get_by_label("Cost").fill("1,000")
    await page.get_by_label("Stock").fill("2")
    await page.get_by_role("button", name="Add to the shop").click()
    await expect(page.get_by_role("status")).to_contain_text("Added hug to the shop")
    await expect(page.locator("table.shop-table")).to_contain_text("2 of 2")
    assert "you bought hug for 1,000 cookies" in await buy(sim, "modmo", "!buy hug")
    assert "dashboard" in await page.locator("table.shop-table tbody tr").last.inner_text()
    assert await audit(bot.config.database.path) == []


async def test_public_shop_page_refreshes_itself(
    page: Page, sim: Simulator, start_bot: StartBot, request: pytest.FixtureRequest
) -> None:
    """/c/alice/shop (and its overlay) show items and stock, and within 2 s of a purchase
    the new stock and the buyer, without a reload."""
    bot = await shop_bot(sim, start_bot)
    await page.goto(bot.daemon.web_url + "/c/alice/shop")
    first = page.locator(".shop-items li").first
    await expect(first).to_contain_text("hydrate")
    await expect(first).to_contain_text("3 left")
    await accessible(page)
    await shot(page, request, "public-shop")
    assert "you bought hydrate" in await buy(sim, "bob", "!buy hydrate")
    await expect(first).to_contain_text("2 left", timeout=3000)
    await expect(page.locator(".shop-recent")).to_contain_text("bob bought hydrate")
    await page.goto(bot.daemon.web_url + "/c/alice/shop?overlay=1")
    await expect(page.locator("body.overlay .shop-items li")).to_have_count(2)
    await shot(page, request, "shop-overlay")
    assert re.search(r"\bhydrate\b", await page.locator(".shop-items").inner_text())
