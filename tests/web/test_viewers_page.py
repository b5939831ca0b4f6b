"""Viewers: prefix search, sorting, keyset pagination, adjusting points, one viewer's history."""

from __future__ import annotations

import html as htmllib
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from loyaltybot.clock import FakeClock
from loyaltybot.db import Store
from loyaltybot.points import history as queries
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EarningRates, EntryType, Presence, TickPlan
from loyaltybot.points.viewers import Viewer
from tests.conftest import viewer
from tests.web.conftest import Twitch, csrf_of, login, page

Client = TestClient[web.Request, web.Application]
_ROW = re.compile(r'<td><a href="/dashboard/alice/viewers/([^"]+)">')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')


def nonce_of(html: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', html)
    assert found, "no nonce in the adjust form"
    return found[1]


async def seed(bank: Bank, clock: FakeClock, n: int) -> None:
    """n viewers with varied points, watch time, messages and last-seen, via earning ticks."""
    channel_id = bank.channel_id("alice")
    people = [Presence(str(1000 + i), f"user{i}", f"User{i}", messages=i % 4) for i in range(n)]
    for seq in range(1, 5):
        clock.advance(60)
        present = [p for i, p in enumerate(people) if seq == 1 or i % (seq + 1) != 0]
        await bank.credit_tick(
            TickPlan(
                channel_id,
                seq,
                0,
                60 * seq,
                EarningRates(seq, seq, 1, 0),
                present,
                bank.known_logins("alice"),
            )
        )
        await bank.load_known_logins("alice")


async def walk(client: Client, path: str) -> list[str]:
    """Every user id listed, following 'Next page' to the end."""
    seen: list[str] = []
    while True:
        html = await page(client, path)
        seen += _ROW.findall(html)
        found = _NEXT.search(html)
        if not found:
            return seen
        path = "/dashboard/alice/viewers" + htmllib.unescape(found[1])


@pytest.mark.parametrize("sort", ["points", "watch", "messages", "last_seen", "name"])
async def test_keyset_pages_list_every_viewer_once_in_order(
    client: Client, twitch: Twitch, bank: Bank, store: Store, clock: FakeClock, sort: str
) -> None:
    """Walking the pages of any sort visits each viewer exactly once, in sort order."""
    await seed(bank, clock, 120)
    await login(client, twitch, "alice")
    seen = await walk(client, f"/dashboard/alice/viewers?sort={sort}")
    assert len(seen) == len(set(seen)) == 120
    column, descending = queries.SORTS[sort]
    rows = await store.read(
        lambda c: c.execute(f"SELECT user_id, {column} FROM viewers").fetchall()
    )
    value = dict(rows)
    keys = [value[u] for u in seen]
    assert keys == sorted(keys, reverse=descending)


@pytest.mark.parametrize("sort", ["name", "points"])
@pytest.mark.parametrize("prefix", ["1", "11"])  # a broad prefix scans, a narrow one seeks
async def test_prefix_search_matches_logins_that_start_with_it(
    client: Client, twitch: Twitch, bank: Bank, clock: FakeClock, sort: str, prefix: str
) -> None:
    """'user1' finds user1, user10..user19, user100..; never a login that merely contains it."""
    await seed(bank, clock, 120)
    await bank.credit("alice", Viewer("9", "xuser1", "xuser1"), 5, kind=EntryType.ADD)
    await login(client, twitch, "alice")
    seen = await walk(client, f"/dashboard/alice/viewers?q=%40User{prefix}&sort={sort}")
    expected = {str(1000 + i) for i in range(120) if str(i).startswith(prefix)}
    assert sorted(seen) == sorted(expected)
    html = await page(client, f"/dashboard/alice/viewers?q=user{prefix}")
    assert f"{len(expected)} viewers whose login starts with" in html
    bad = await client.get("/dashboard/alice/viewers?q=%3Cscript%3E")
    assert bad.status == 400
    assert "letters, digits and _ only" in await bad.text()


async def test_adjusting_points_writes_a_ledger_row_with_actor_and_reason(
    client: Client, twitch: Twitch, bank: Bank, store: Store
) -> None:
    """Add then remove through the form: balance, ledger rows (type, actor, reason), flash."""
    await bank.credit("alice", viewer(1), 100, kind=EntryType.ADD)
    await login(client, twitch, "alice_mod")
    html = await page(client, "/dashboard/alice/viewers/1001")
    form = {
        "csrf_token": csrf_of(html),
        "direction": "add",
        "amount": "1,500",
        "reason": "raffle winner",
        "nonce": nonce_of(html),
    }
    response = await client.post("/dashboard/alice/viewers/1001/adjust", data=form)
    assert response.status == 200
    assert response.url.path == "/dashboard/alice/viewers/1001"
    text = await response.text()
    assert "Added 1,500 cookies to user1" in text
    assert "Balance: 1,600" in text
    html = await page(client, "/dashboard/alice/viewers/1001")
    nonce = nonce_of(html)
    form |= {"direction": "remove", "amount": "600", "reason": "typo", "nonce": nonce}
    await client.post("/dashboard/alice/viewers/1001/adjust", data=form)
    rows = await store.read(
        lambda c: c.execute(
            "SELECT type, amount, balance_after, reason, actor FROM ledger ORDER BY id"
        ).fetchall()
    )
    assert rows[1:] == [
        ("add", 1500, 1600, "raffle winner", "dashboard:alice_mod"),
        ("remove", -600, 1000, "typo", "dashboard:alice_mod"),
    ]
    assert await bank.audit() == []
    history = await page(client, "/dashboard/alice/viewers/1001")
    assert "raffle winner" in history
    assert "typo" in history


async def test_a_form_sent_twice_changes_the_balance_once(
    client: Client, twitch: Twitch, bank: Bank
) -> None:
    """The form's nonce is the ledger ref: a double submit is applied once."""
    await bank.credit("alice", viewer(1), 1, kind=EntryType.ADD)
    await login(client, twitch, "alice")
    html = await page(client, "/dashboard/alice/viewers/1001")
    form = {
        "csrf_token": csrf_of(html),
        "direction": "add",
        "amount": "50",
        "reason": "r",
        "nonce": nonce_of(html),
    }
    await client.post("/dashboard/alice/viewers/1001/adjust", data=form)
    second = await client.post("/dashboard/alice/viewers/1001/adjust", data=form)
    assert "already made" in await second.text()
    assert (await bank.viewer("alice", "user1")).points == 51  # type: ignore[union-attr]


async def test_refused_adjustments_say_why_and_change_nothing(
    client: Client, twitch: Twitch, bank: Bank, store: Store
) -> None:
    """Removing more than the balance, a bad amount or no reason: a clear error, no row."""
    await bank.credit("alice", viewer(1), 40, kind=EntryType.ADD)
    await login(client, twitch, "alice")
    html = await page(client, "/dashboard/alice/viewers/1001")
    base = {"csrf_token": csrf_of(html), "nonce": "n" * 22}
    cases = [
        ({"direction": "remove", "amount": "41", "reason": "r"}, "has only 40 cookies"),
        ({"direction": "add", "amount": "1.5", "reason": "r"}, "must be a whole number"),
        ({"direction": "add", "amount": "5", "reason": ""}, "say why"),
    ]
    for fields, message in cases:
        response = await client.post("/dashboard/alice/viewers/1001/adjust", data=base | fields)
        assert response.status == 400
        text = await response.text()
        assert message in text
        assert "Nothing changed" in text
        assert f'value="{fields["amount"]}"' in text  # what was typed stays
    count = await store.read(lambda c: c.execute("SELECT count(*) FROM ledger").fetchone()[0])
    assert count == 1
    assert (await client.get("/dashboard/alice/viewers/424242")).status == 404


async def test_reasons_and_names_are_escaped(client: Client, twitch: Twitch, bank: Bank) -> None:
    """Markup in a reason or a display name is shown as text, never run."""
    evil = Viewer("666", "evil", '<img src=x onerror="alert(1)">')
    await bank.credit("alice", evil, 5, kind=EntryType.ADD, reason="<script>alert(1)</script>")
    await login(client, twitch, "alice")
    for path in (
        "/dashboard/alice/viewers/666",
        "/dashboard/alice/transactions",
        "/dashboard/alice/viewers",
        "/dashboard/alice",
    ):
        html = await page(client, path)
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
