"""Redemption queue (approve/reject) and votes, through the real channel-points code."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient

from loyaltybot.db import Store, Tx
from loyaltybot.eventsub.events import RedemptionAdded, Reward, User
from loyaltybot.features.rewards.service import Rewards
from loyaltybot.features.votes.service import Votes
from loyaltybot.points.bank import Bank
from tests.web.conftest import Twitch, csrf_of, login, page

Client = TestClient[web.Request, web.Application]


async def redeem(
    store: Store, rewards: Rewards, redemption_id: str, title: str, text: str, who: str = "bob"
) -> None:
    """A channel-point redemption as the webhook hands it to the rewards code."""
    event = RedemptionAdded(
        broadcaster=User("1", "alice", "alice"),
        id=redemption_id,
        user=User(str(abs(hash(who)) % 10**8), who, who.capitalize()),
        user_input=text,
        status="unfulfilled",
        reward=Reward(f"reward-{title}", title, 100, ""),
        redeemed_at="2023-11-14T22:13:20Z",
    )

    def run(tx: Tx) -> None:
        rewards.handle(tx, "alice", event)

    await store.write(run)


def decision_forms(html: str) -> dict[str, str]:
    """action URL -> CSRF token, for each approve/reject button."""
    return {
        action: csrf_of(html)
        for action in re.findall(r'action="(/dashboard/alice/queue/[^"]+)"', html)
    }


async def test_queued_redemption_is_approved_from_the_dashboard(
    client: Client, twitch: Twitch, store: Store, rewards: Rewards
) -> None:
    """A queued redemption is listed (its input escaped) and leaves the queue when approved."""
    await redeem(store, rewards, "r-1", "Hydrate", "<script>alert(1)</script>")
    await login(client, twitch, "alice")
    html = await page(client, "/dashboard/alice/queue")
    assert "Hydrate" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    forms = decision_forms(html)
    assert set(forms) == {"/dashboard/alice/queue/r-1/approve", "/dashboard/alice/queue/r-1/reject"}
    response = await client.post(
        "/dashboard/alice/queue/r-1/approve", data={"csrf_token": forms.popitem()[1]}
    )
    text = await response.text()
    assert response.url.path == "/dashboard/alice/queue"
    assert "Approved." in text
    assert "Nothing is waiting" in text
    record = await rewards.redemption("alice", "r-1")
    assert record is not None
    assert record.status == "fulfilled"
    assert record.decided_by == "dashboard:alice"


async def test_reject_cancels_and_a_second_decision_is_explained(
    client: Client, twitch: Twitch, store: Store, rewards: Rewards
) -> None:
    """Reject cancels; deciding again (a stale page) says it was already decided."""
    await redeem(store, rewards, "r-2", "Hydrate", "water please")
    html = await login(client, twitch, "alice_mod")
    token = csrf_of(html)
    response = await client.post("/dashboard/alice/queue/r-2/reject", data={"csrf_token": token})
    assert "Rejected" in await response.text()
    record = await rewards.redemption("alice", "r-2")
    assert record is not None
    assert record.status == "canceled"
    again = await client.post("/dashboard/alice/queue/r-2/approve", data={"csrf_token": token})
    assert "already decided" in await again.text()
    unknown = await client.post("/dashboard/alice/queue/nope/approve", data={"csrf_token": token})
    assert "no such redemption" in await unknown.text()
    bad = await client.post("/dashboard/alice/queue/r-2/steal", data={"csrf_token": token})
    assert bad.status == 404


async def test_votes_show_tallies_and_reset(
    client: Client, twitch: Twitch, store: Store, rewards: Rewards, bank: Bank
) -> None:
    """Vote redemptions tally per option with shares; reset clears them."""
    for i, option in enumerate(["Elden Ring", "elden ring", "Tetris"]):
        await redeem(store, rewards, f"v-{i}", "Next game", option, who=f"voter{i}")
    html = await login(client, twitch, "alice")
    votes = await page(client, "/dashboard/alice/votes")
    assert "Next game" in votes
    assert "3 votes" in votes
    assert re.search(r"elden ring</span>.*?2 <span class=\"muted\">\(67%\)", votes, re.S | re.I)
    response = await client.post("/dashboard/alice/votes/reset", data={"csrf_token": csrf_of(html)})
    assert "Votes reset" in await response.text()
    assert await Votes(bank, store).tally("alice") == []
