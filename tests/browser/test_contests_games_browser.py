"""Contests, games and the economy in headless chromium, on the real daemon against the
simulator, from an empty database: the streamer opens a contest on the dashboard (after
a typo in the form), viewers bet in chat, the public overlay follows within 2 s, the
streamer closes and settles it; the games page refuses a bad setting and saves a good
one, and lists the rounds played in chat; the economy page draws its chart (offline: the
library comes from the bot) beside the table. Every page passes axe-core."""

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

ALICE = {
    "currency_name": "cookie",
    "currency_name_plural": "cookies",
    "contest_max_bet": 500,
    "command_cooldown_seconds": 0,
    "games": {"enabled": ["gamble"], "cooldown_seconds": 0},
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def new_page(browser: Browser, *, offline: bool = False) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    if offline:  # only the bot itself answers: no CDN, no outside request
        await context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda r: r.abort())
    page = await context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a page opened a dialog: {dialog.message}"))
    return page


async def accessible(page: Page) -> None:
    """axe-core finds no violation on the page as it is now."""
    results = await Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


async def logged_in(browser: Browser, sim: Simulator, bot: RunningBot) -> Page:
    page = await new_page(browser, offline=True)
    sim.oauth.login_as("alice")
    await page.goto(bot.daemon.web_url + "/")
    await page.get_by_role("link", name="Log in with Twitch").click()
    await page.wait_for_load_state()
    return page


async def crowd(sim: Simulator, logins: tuple[str, ...], each: int) -> None:
    for login in logins:
        await sim.say("alice", login, "hi!")
    mark = len(sim.sent)
    await sim.say("alice", "modmo", f"!addpoints all {each}")
    await sim.wait_for_reply("alice", contains="to each of", after=mark)


async def test_open_bet_close_settle_in_the_browser(
    browser: Browser, sim: Simulator, start_bot: StartBot, request: pytest.FixtureRequest
) -> None:
    """The whole contest through the dashboard and chat; the overlay keeps up within 2 s."""
    sim.set_role("alice", "modmo", mod=True)
    bot = await start_bot({"alice": ALICE}, twitch={"client_secret": CLIENT_SECRET})
    await crowd(sim, ("bob", "carol", "dave"), 500)
    page = await logged_in(browser, sim, bot)
    await page.goto(f"{bot.daemon.web_url}/dashboard/alice")
    await page.get_by_role("link", name="Contests").click()
    await expect(page.get_by_role("heading", name="Contests", exact=True)).to_be_visible()
    await expect(page.get_by_text("No contests yet.")).to_be_visible()
    await accessible(page)

    # a typo: one option only; one clear error, nothing opened
    await page.get_by_label("Question").fill("Who wins the race?")
    await page.get_by_label("Options").fill("Red car")
    await page.get_by_role("button", name="Open the contest").click()
    await expect(page.get_by_text("Nothing was opened: 1 value needs fixing")).to_be_visible()
    await expect(page.get_by_text(re.compile("a contest has 2 to 10 options, 1 given"))
                 ).to_be_visible()  # fmt: skip
    await accessible(page)
    await page.get_by_label("Options").fill("Red car\nBlue car\n\n")
    mark = len(sim.sent)
    await page.get_by_role("button", name="Open the contest").click()
    await expect(page.get_by_text("Contest #1 is open.")).to_be_visible()
    await sim.wait_for_reply("alice", contains="Contest #1 is open: Who wins the race?",
                             after=mark)  # fmt: skip

    overlay = await new_page(browser)
    await overlay.goto(f"{bot.daemon.web_url}/c/alice/contest?overlay=1")
    await expect(overlay.locator(".ct-title")).to_have_text("Contest #1")
    await expect(overlay.locator(".ct-pool")).to_have_text("0")
    public = await new_page(browser)
    await public.goto(f"{bot.daemon.web_url}/c/alice/contest")
    await accessible(public)

    for login, text in (("bob", "!bet 1 300"), ("carol", "!bet 2 100"), ("dave", "!bet 2 50")):
        await sim.say("alice", login, text)
    await expect(overlay.locator(".ct-pool")).to_have_text("450", timeout=2500)
    await expect(overlay.locator(".ct-options li").nth(1).locator(".ct-ratio")).to_have_text(
        "1:3.00")
    await expect(overlay.locator(".ct-bettors")).to_have_text("3")
    await shot(overlay, request, "overlay-open")

    await page.reload()
    options = page.locator("table.options")
    await expect(options.get_by_role("row", name=re.compile(r"1\s+Red car\s+300\s+1\s+1:1.50"))
                 ).to_be_visible()  # fmt: skip
    await accessible(page)
    await shot(page, request, "dashboard-open")
    await page.get_by_role("button", name="Close bets").click()
    await expect(page.get_by_text("Contest #1 is closed: no more bets.")).to_be_visible()
    await expect(overlay.locator(".ct-state")).to_have_text(re.compile("Bets are closed"),
                                                            timeout=2500)  # fmt: skip
    await page.get_by_label("Winning option").select_option("2")
    mark = len(sim.sent)
    await page.get_by_role("button", name="Settle: pay the winners").click()
    await expect(page.get_by_text(re.compile(r"option 2 \(Blue car\) wins! 2 winners share 450"))
                 ).to_be_visible()  # fmt: skip
    await sim.wait_for_reply("alice", contains="Contest #1: option 2", after=mark)
    await expect(overlay.locator(".ct-state")).to_have_text("Option 2 won!", timeout=2500)
    await accessible(page)
    await shot(page, request, "dashboard-settled")
    # W = 150, L = 300: carol gets 100 + 200, dave 50 + 100, bob loses his 300
    for login, expected in (("bob", 200), ("carol", 700), ("dave", 600)):
        record = await bot.daemon.bank.viewer("alice", login)
        assert record is not None and record.points == expected
    assert await audit(bot.config.database.path) == []


async def test_games_and_economy_pages(
    browser: Browser, sim: Simulator, start_bot: StartBot, request: pytest.FixtureRequest
) -> None:
    """A bad games setting is refused in place and changes nothing; a good one saves (the
    file's keys are shown read-only); rounds played in chat are listed with their rolls;
    the economy page draws its chart with no outside request, beside the table."""
    sim.set_role("alice", "modmo", mod=True)
    bot = await start_bot({"alice": ALICE}, twitch={"client_secret": CLIENT_SECRET})
    await crowd(sim, ("erin",), 1000)
    mark = len(sim.sent)
    await sim.say("alice", "erin", "!gamble 100")
    rolled = await sim.wait_for_reply("alice", contains="rolled", after=mark)
    page = await logged_in(browser, sim, bot)
    await page.goto(f"{bot.daemon.web_url}/dashboard/alice/games")
    await expect(page.get_by_role("heading", name="Games", exact=True)).to_be_visible()
    roll = re.search(r"rolled (\d+)", rolled.text)
    assert roll is not None
    await expect(page.locator("table.data").last.get_by_text(roll[1], exact=True)).to_be_visible()
    await expect(page.get_by_text("config.toml").first).to_be_visible()  # the file's keys
    await accessible(page)

    await page.get_by_label("Gamble: wins at").fill("0")
    await page.get_by_label("Slots: symbols").fill("Kappa")
    await page.get_by_role("button", name="Save the games settings").click()
    await expect(page.get_by_text("Nothing was saved: 2 values need fixing")).to_be_visible()
    await expect(page.get_by_text("must be >= 1")).to_be_visible()
    await expect(page.get_by_text("must have from 2 to 10 entries")).to_be_visible()
    await accessible(page)
    mark = len(sim.sent)
    await sim.say("alice", "erin", "!slots 10")  # still off, still the old rules
    await page.get_by_label("Gamble: wins at").fill("60")
    await page.get_by_label("Slots: symbols").fill("Kappa LUL")
    await page.get_by_role("button", name="Save the games settings").click()
    await expect(page.get_by_text(re.compile("Saved: Gamble: wins at, Slots: symbols"))
                 ).to_be_visible()  # fmt: skip
    assert [m.text for m in sim.sent[mark:] if "erin" in m.text] == []
    await shot(page, request, "games")

    await page.get_by_role("link", name="Economy").click()
    await expect(page.get_by_role("heading", name="Economy", exact=True)).to_be_visible()
    await expect(page.locator("#economy-chart canvas")).to_have_count(1)
    table = page.locator("table.economy")
    await expect(table.locator("tbody tr")).to_have_count(30)
    today = table.locator("tbody tr").first
    delta = 100 if int(roll[1]) >= 51 else -100
    won, lost = (100, 0) if delta > 0 else (0, 100)
    await expect(today.locator("td").nth(6)).to_have_text(f"{won:,}")
    await expect(today.locator("td").nth(7)).to_have_text(f"{lost:,}")
    (total,) = await bot.daemon.store.read(
        lambda c: c.execute("SELECT sum(points) FROM viewers").fetchone())
    await expect(today.locator("td").nth(8)).to_have_text(f"{total:,}")
    await expect(page.get_by_role("row", name=re.compile(r"^gamble\s"))).to_be_visible()
    await accessible(page)
    await shot(page, request, "economy")
    assert await audit(bot.config.database.path) == []
