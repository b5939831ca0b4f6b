"""The dashboard in headless chromium, logged in through the simulator's OAuth."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Page, expect

from loyaltybot import settings
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.viewers import Viewer
from loyaltybot.simulator import payloads
from loyaltybot.simulator.world import SimUser
from tests.browser.conftest import WEBHOOK_SECRET, Stack, log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

NAMES = ["NinjaFan", "cozy_cat", "Pixel_Pete", "lurkmaster", "SpeedyGonzo", "moonbeam"]


async def seed(bank: Bank) -> None:
    """A few viewers with points, watch time and messages, credited by earning ticks."""
    channel_id = bank.channel_id("alice")
    people = [
        Presence(str(2000 + i), name.lower(), name, subscriber=i % 3 == 0, messages=i % 2)
        for i, name in enumerate(NAMES)
    ]
    for seq in range(1, 4):
        await bank.credit_tick(
            TickPlan(
                channel_id,
                seq,
                0,
                300,
                EarningRates(10, 15, 2, 0),
                people[: 7 - seq],
                bank.known_logins("alice"),
            )
        )
        await bank.load_known_logins("alice")


async def redeem(stack: Stack, title: str, text: str, who: str = "viewer_bob") -> str:
    """A channel-point redemption sent to the webhook, signed as Twitch signs it."""
    redemption_id = str(uuid.uuid4())
    broadcaster = stack.sim.world.user("alice")
    user: SimUser = stack.sim.world.ensure_user(who)
    event = payloads.redemption_event(
        redemption_id=redemption_id,
        broadcaster=broadcaster,
        user=user,
        reward_id=f"reward-{title}",
        title=title,
        cost=100,
        prompt="",
        user_input=text,
        redeemed_at="2025-01-01T12:00:00Z",
    )
    deliveries = await stack.sim.eventsub.send(
        "channel.channel_points_custom_reward_redemption.add",
        event,
        callback=stack.webhook_url,
        secret=WEBHOOK_SECRET,
    )
    assert [d.status for d in deliveries] == [204]
    return redemption_id


async def test_broadcaster_logs_in_and_every_page_renders(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """Landing -> Twitch login -> own channel; every tab and the public pages render."""
    await seed(stack.bank)
    for i, game in enumerate(["Elden Ring", "Tetris", "elden ring", "Celeste", "Tetris", "tetris"]):
        await redeem(stack, "Next game", game, who=f"voter{i}")
    await redeem(stack, "Hydrate", "Stretch and drink!", who="cozy_cat")
    await page.goto(stack.url + "/")
    await shot(page, request, "landing")
    await log_in(page, stack, "alice")
    await expect(page).to_have_url(stack.url + "/dashboard/alice")
    await expect(page.get_by_role("heading", name="#alice")).to_be_visible()
    await shot(page, request, "overview")
    tabs = page.get_by_role("navigation", name="#alice")
    for tab in ("Viewers", "Leaderboard", "Transactions", "Queue", "Votes", "Settings"):
        await tabs.get_by_role("link", name=tab).click()
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await shot(page, request, tab.lower())
        if tab == "Votes":
            await expect(page.locator(".poll")).to_contain_text("6 votes")
    await page.get_by_role("navigation", name="#alice").get_by_role("link", name="Viewers").click()
    await page.get_by_role("link", name="NinjaFan").click()
    await expect(page.get_by_role("heading", name="NinjaFan")).to_be_visible()
    await shot(page, request, "viewer")
    await page.goto(stack.url + "/c/alice/leaderboard")
    await expect(page.locator(".board-list li")).to_have_count(6)
    await shot(page, request, "public-leaderboard")
    await page.goto(stack.url + "/c/alice/leaderboard?overlay=1")
    await shot(page, request, "overlay")


async def test_setting_change_is_stored_and_bad_input_is_explained(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """A valid change is saved (owner: dashboard); a bad one shows why and keeps the text."""
    await log_in(page, stack, "alice")
    await page.goto(stack.url + "/dashboard/alice/settings")
    await expect(page.get_by_label("Points per interval")).to_be_disabled()  # config.toml's
    await page.get_by_label("Chat bonus").fill("4")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved: chat bonus")
    await shot(page, request, "saved")
    channel_id = stack.bank.channel_id("alice")
    stored = await stack.store.read(lambda c: settings.load(c, channel_id))
    assert stored.values.active_bonus == 4
    assert stored.owner("active_bonus") == "dashboard"

    await page.get_by_label("Interval", exact=True).fill("soon")
    await page.get_by_label("Chat bonus").fill("9")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#err-interval_minutes")).to_have_text("must be a number, like 1.5")
    await expect(page.get_by_label("Interval", exact=True)).to_have_value("soon")
    await expect(page.get_by_label("Chat bonus")).to_have_value("9")
    await shot(page, request, "invalid")
    stored = await stack.store.read(lambda c: settings.load(c, channel_id))
    assert stored.values.active_bonus == 4
    assert stored.values.interval_minutes == 5.0


async def test_adjusting_points_shows_the_ledger_row(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """Add points with a reason: the balance, the flash and the history row all show it."""
    await seed(stack.bank)
    await log_in(page, stack, "alice_mod")
    await page.goto(stack.url + "/dashboard/alice/viewers?q=cozy")
    await page.get_by_role("link", name="cozy_cat").click()
    before = await stack.bank.viewer("alice", "cozy_cat")
    assert before is not None
    await page.get_by_label("Action").select_option("add")
    await page.get_by_label("Amount").fill("1,250")
    await page.get_by_label("Reason").fill("Won the raffle")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.get_by_role("status")).to_contain_text("Added 1,250 cookies to cozy_cat")
    await expect(page.locator("#balance")).to_have_text(f"{before.points + 1250:,}")
    row = page.locator("table.ledger tbody tr").first
    await expect(row).to_contain_text("Won the raffle")
    await expect(row).to_contain_text("+1,250")
    await expect(row).to_contain_text("dashboard:alice_mod")
    await shot(page, request, "adjusted")
    rows = await stack.store.read(
        lambda c: c.execute("SELECT type, amount, reason, actor FROM ledger").fetchall()
    )
    assert rows == [("add", 1250, "Won the raffle", "dashboard:alice_mod")]
    assert await stack.bank.audit() == []


async def test_approving_a_queued_redemption(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """A redemption that came through the webhook waits in the queue; Approve fulfils it."""
    redemption_id = await redeem(stack, "Hydrate", "drink water pls")
    await log_in(page, stack, "alice")
    await page.get_by_role("navigation", name="#alice").get_by_role("link", name="Queue").click()
    row = page.locator("table.queue tbody tr").first
    await expect(row).to_contain_text("Hydrate")
    await expect(row).to_contain_text("drink water pls")
    await shot(page, request, "queued")
    await row.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_have_text("Approved.")
    await expect(page.locator("table.queue")).to_contain_text("Nothing is waiting")
    await shot(page, request, "approved")
    record = await stack.rewards.redemption("alice", redemption_id)
    assert record is not None
    assert record.status == "fulfilled"
    assert record.decided_by == "dashboard:alice"


async def test_reward_input_with_markup_shows_as_text(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """A viewer's `<script>` in a redemption is displayed literally and never runs."""
    await redeem(stack, "Hydrate", "<script>alert(1)</script>")
    evil = Viewer("666", "evil", '<img src=x onerror="alert(2)">')
    await stack.bank.credit("alice", evil, 5, kind=EntryType.ADD, reason="<b>bold</b>")
    await log_in(page, stack, "alice")
    await page.goto(stack.url + "/dashboard/alice/queue")
    cell = page.locator("table.queue td.reason").first
    await expect(cell).to_have_text("<script>alert(1)</script>")
    await shot(page, request, "queue")
    await page.goto(stack.url + "/dashboard/alice/viewers/666")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(
        '<img src=x onerror="alert(2)">'
    )
    await expect(page.locator("td.reason").first).to_have_text("<b>bold</b>")
    await shot(page, request, "viewer")
    assert page.dialogs == []  # type: ignore[attr-defined]


async def test_user_without_rights_is_refused(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """Someone who is neither broadcaster nor admin sees no channel, and 403 on alice's."""
    await seed(stack.bank)
    await log_in(page, stack, "mallory")
    await expect(page.get_by_text("does not manage any channel")).to_be_visible()
    await shot(page, request, "no-channels")
    response = await page.goto(stack.url + "/dashboard/alice/viewers")
    assert response is not None
    assert response.status == 403
    await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert "ninjafan" not in (await page.content()).lower()
    await shot(page, request, "refused")


async def test_post_without_csrf_token_is_refused(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """A form stripped of its CSRF token is refused with 403 and changes nothing."""
    await seed(stack.bank)
    await log_in(page, stack, "alice")
    await page.goto(stack.url + "/dashboard/alice/viewers/2000")
    await page.locator("form.inline-form input[name=csrf_token]").evaluate("el => el.remove()")
    await page.get_by_label("Amount").fill("999")
    await page.get_by_label("Reason").fill("sneaky")
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Apply").click()
    assert (await posted.value).status == 403
    await expect(page.get_by_text("This form has expired")).to_be_visible()
    await shot(page, request, "refused")
    count = await stack.store.read(lambda c: c.execute("SELECT count(*) FROM ledger").fetchone())
    assert count == (0,)


async def test_overlay_refreshes_itself(
    page: Page, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """The OBS overlay picks up a new leader without a reload."""
    await seed(stack.bank)
    await page.goto(stack.url + "/c/alice/leaderboard?overlay=1&refresh=2")
    first = page.locator(".board-list li").first
    await expect(page.locator(".board-list li")).to_have_count(6)
    await expect(page.locator(".board-list")).not_to_contain_text("newcomer")
    await stack.bank.credit(
        "alice", Viewer("3000", "newcomer", "Newcomer"), 10_000, kind=EntryType.ADD
    )
    await expect(first).to_contain_text("newcomer", timeout=6000)
    await expect(first).to_contain_text("10,000")
    await shot(page, request, "overlay")
