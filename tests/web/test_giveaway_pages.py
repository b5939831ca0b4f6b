"""The giveaway pages over HTTP: bad form input is one clear error and changes nothing;
actions act only on the giveaway the page showed; the public JSON and page."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from loyaltybot.chat.outbox import Outbox
from loyaltybot.clock import FakeClock
from loyaltybot.config import Config
from loyaltybot.daemon import apply_channel_config, web_app
from loyaltybot.db import Store
from loyaltybot.features.giveaways.feature import GiveawaysFeature
from loyaltybot.features.wallet.feature import Wallet
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from tests.web.conftest import Chat, Twitch, csrf_of, login, page

Client = TestClient[web.Request, web.Application]
BAD_AMOUNTS = ("-5", "1e5", "1.5", "abc", "99999999999999999999")


@pytest.fixture
def outbox(clock: FakeClock) -> Outbox:
    return Outbox(None, clock)  # never started: announcements stay queued, to be read


@pytest.fixture
def giveaways(bank: Bank, store: Store, clock: FakeClock, outbox: Outbox,
              config: Config) -> GiveawaysFeature:  # fmt: skip
    return GiveawaysFeature(bank=bank, store=store, clock=clock, outbox=outbox,
                            present=lambda channel: [], config=config)  # fmt: skip


@pytest.fixture
async def app(
    bank: Bank, store: Store, config: Config, chat: Chat, metrics: Metrics, clock: FakeClock,
    giveaways: GiveawaysFeature,
) -> web.Application:  # fmt: skip
    await apply_channel_config(config, bank, store)
    return await web_app(config=config, bank=bank, store=store,
                         features=[Wallet(present=lambda channel: []), giveaways],
                         health=chat, metrics=metrics, clock=clock)  # fmt: skip


async def post(client: Client, path: str, form: dict[str, str]) -> tuple[int, str]:
    html = await page(client, "/dashboard/alice/giveaway")
    response = await client.post(path, data={"csrf_token": csrf_of(html), **form},
                                 allow_redirects=True)  # fmt: skip
    return response.status, await response.text()


GOOD = {"prize": "A mug", "ticket_cost": "10", "max_tickets": "3", "luck": "1.5"}


async def test_the_open_form_refuses_bad_values_and_opens_nothing(
    client: Client, twitch: Twitch, giveaways: GiveawaysFeature
) -> None:
    """Every bad field is named with its reason; no giveaway is opened."""
    await login(client, twitch, "alice")
    status, html = await post(client, "/dashboard/alice/giveaway/open",
                              {"prize": "  ", "ticket_cost": "abc", "max_tickets": "0",
                               "luck": "11"})  # fmt: skip
    assert status == 400
    assert "Nothing was opened: 4 values need fixing" in html
    assert "say what the winner gets" in html and "must be at least 1" in html
    assert "must be a number from 1 to 10" in html
    for bad in BAD_AMOUNTS:
        status, html = await post(client, "/dashboard/alice/giveaway/open",
                                  {**GOOD, "ticket_cost": bad})  # fmt: skip
        assert status == 400 and "Nothing was opened: 1 value needs fixing" in html, bad
    assert await giveaways.giveaways.latest("alice") is None


async def test_open_close_draw_cancel_from_the_dashboard(
    client: Client, twitch: Twitch, giveaways: GiveawaysFeature, bank: Bank, outbox: Outbox
) -> None:
    """The buttons do what the chat commands do, each announced; stale pages and bad
    draws change nothing."""
    await login(client, twitch, "alice_mod")
    status, html = await post(client, "/dashboard/alice/giveaway/open", GOOD)
    assert status == 200 and "Giveaway #1 is open." in html
    assert outbox.pending == 1  # the announcement, for chat
    g = giveaways.giveaways
    fan = Viewer("4242", "fan", "Fan")
    await bank.credit("alice", fan, 100, kind=EntryType.ADD)
    await g.buy("alice", fan, 3)
    status, html = await post(client, "/dashboard/alice/giveaway/2/close", {})
    assert "not the running one any more; nothing changed" in html
    status, html = await post(client, "/dashboard/alice/giveaway/1/draw", {"n": "1"})
    assert "still open: close it first" in html and "Nothing changed." in html
    status, html = await post(client, "/dashboard/alice/giveaway/1/close", {})
    assert "Giveaway #1 is closed" in html and "Seed SHA-256" in html
    for bad, reason in (("abc", "must be a whole number"), ("0", "must be at least 1"),
                        ("26", "at most 25")):  # fmt: skip
        status, html = await post(client, "/dashboard/alice/giveaway/1/draw", {"n": bad})
        assert "Nothing was drawn: " in html and reason in html, bad
    status, html = await post(client, "/dashboard/alice/giveaway/1/draw", {"n": "1"})
    assert "Giveaway #1: drew fan." in html
    status, html = await post(client, "/dashboard/alice/giveaway/1/cancel", {})
    assert "drawn already: its tickets are spent" in html
    verify = await page(client, "/dashboard/alice/giveaway/1?verify=1")
    assert "Verified: the seed hashes to the commitment" in verify
    assert await bank.audit() == []


async def test_forms_need_the_csrf_token_and_the_right_to_manage(
    client: Client, twitch: Twitch, giveaways: GiveawaysFeature
) -> None:
    """A forged form or someone else's login: refused, nothing opened."""
    await login(client, twitch, "alice")
    response = await client.post("/dashboard/alice/giveaway/open", data=GOOD)
    assert response.status == 403
    await login(client, twitch, "mallory")
    assert (await client.get("/dashboard/alice/giveaway")).status == 403
    assert await giveaways.giveaways.latest("alice") is None


async def test_the_public_json_and_page(
    client: Client, twitch: Twitch, giveaways: GiveawaysFeature, bank: Bank
) -> None:
    """No giveaway: state none; then the id, counts, commitment, and the seed only once
    drawn; entries for checking; unknown channels and ids are 404 without a traceback."""
    empty = await (await client.get("/api/v1/channels/alice/giveaway")).json()
    assert empty == {"id": None, "state": "none", "channel": "alice"}
    g = giveaways.giveaways
    await login(client, twitch, "alice")
    await post(client, "/dashboard/alice/giveaway/open", GOOD)
    fan = Viewer("4242", "fan", "Fan")
    await bank.credit("alice", fan, 100, kind=EntryType.ADD)
    await g.buy("alice", fan, 2, subscriber=True)
    await post(client, "/dashboard/alice/giveaway/1/close", {})
    closed = await (await client.get("/api/v1/channels/alice/giveaway")).json()
    assert (closed["id"], closed["state"], closed["tickets"], closed["entrants"]) == (
        1, "closed", 2, 1)  # fmt: skip
    assert len(closed["commitment"]) == 64 and closed["seed"] is None
    await post(client, "/dashboard/alice/giveaway/1/draw", {"n": "1"})
    drawn = await (await client.get("/api/v1/channels/alice/giveaways/1")).json()
    assert drawn["winners"] == [{"pick": 1, "draw": 1, "user_id": "4242", "username": "fan"}]
    assert drawn["entries"] == [{"user_id": "4242", "username": "fan", "tickets": 2,
                                 "luck": 1.5}]  # fmt: skip
    assert len(drawn["seed"]) == 64
    for path in ("/api/v1/channels/nobody/giveaway", "/api/v1/channels/alice/giveaways/9",
                 "/api/v1/channels/alice/giveaways/x", "/api/v1/channels/alice/giveaway?id=x"):
        response = await client.get(path)
        assert response.status == 404, path
        assert "error" in json.loads(await response.text())
    public = await client.get("/c/alice/giveaway?overlay=1")
    assert public.status == 200 and "Giveaway #1" in await public.text()
    assert (await client.get("/c/alice/giveaway?id=77")).status == 404
    assert (await client.get("/assets/giveaway.js")).status == 200
