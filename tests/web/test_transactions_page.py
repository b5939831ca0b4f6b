"""The transaction log: filters (type, viewer, dates), pagination and the CSV download."""

from __future__ import annotations

import csv
import html as htmllib
import io
import re

from aiohttp import web
from aiohttp.test_utils import TestClient

from loyaltybot.clock import FakeClock
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from tests.conftest import viewer
from tests.web.conftest import Twitch, login, page

Client = TestClient[web.Request, web.Application]
DAY = 86_400
_AMOUNT = re.compile(r'<td class="num (?:pos|neg)">([^<]+)')


async def seed(bank: Bank, clock: FakeClock) -> None:
    """Day 0 (2023-11-14 UTC): adds for user1 and user2; day 1: a transfer; day 2: a removal."""
    await bank.credit("alice", viewer(1), 100, kind=EntryType.ADD, reason="=HYPERLINK(1)")
    await bank.credit("alice", viewer(2), 200, kind=EntryType.ADD, reason="welcome")
    clock.advance(DAY)
    await bank.give("alice", viewer(1), "user2", 30)
    clock.advance(DAY)
    await bank.debit("alice", viewer(2), 5, kind=EntryType.REMOVE, reason="spam")


async def amounts(client: Client, query: str) -> list[str]:
    return _AMOUNT.findall(await page(client, "/dashboard/alice/transactions" + query))


async def test_filters_by_type_viewer_and_date(
    client: Client, twitch: Twitch, bank: Bank, clock: FakeClock
) -> None:
    """Each filter narrows the log; they combine; newest first."""
    await seed(bank, clock)
    await login(client, twitch, "alice")
    assert await amounts(client, "") == ["−5", "+30", "−30", "+200", "+100"]
    assert await amounts(client, "?type=transfer") == ["+30", "−30"]
    assert await amounts(client, "?viewer=%40USER2") == ["−5", "+30", "+200"]
    assert await amounts(client, "?from=2023-11-15&to=2023-11-15") == ["+30", "−30"]
    assert await amounts(client, "?from=2023-11-15") == ["−5", "+30", "−30"]
    assert await amounts(client, "?to=2023-11-14") == ["+200", "+100"]
    assert await amounts(client, "?viewer=user1&type=add") == ["+100"]


async def test_bad_filters_are_explained(client: Client, twitch: Twitch, bank: Bank) -> None:
    """Unknown type, unknown viewer, a bad or backwards date: a clear error per filter."""
    await login(client, twitch, "alice")
    response = await client.get(
        "/dashboard/alice/transactions",
        params={"type": "steal", "viewer": "nobody", "from": "2024-02-30", "to": ""},
    )
    assert response.status == 400
    text = await response.text()
    assert "choose a type from the list" in text
    assert "no viewer of this channel has that login" in text
    assert "must be a date like" in text
    backwards = await client.get(
        "/dashboard/alice/transactions", params={"from": "2024-02-02", "to": "2024-02-01"}
    )
    assert "must not be before the start date" in await backwards.text()
    csv_response = await client.get("/dashboard/alice/transactions.csv?type=steal")
    assert csv_response.status == 400


async def test_pages_follow_older_rows(client: Client, twitch: Twitch, bank: Bank) -> None:
    """60 rows show as 50 and then 10, newest first, with the filter kept on 'Older'."""
    for i in range(60):
        await bank.credit("alice", viewer(1), i + 1, kind=EntryType.ADD)
    await login(client, twitch, "alice")
    html = await page(client, "/dashboard/alice/transactions?type=add")
    assert len(_AMOUNT.findall(html)) == 50
    assert _AMOUNT.findall(html)[0] == "+60"
    older = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert older
    assert "type=add" in older[1]
    rest = _AMOUNT.findall(
        await page(client, "/dashboard/alice/transactions" + htmllib.unescape(older[1]))
    )
    assert rest == [f"+{i}" for i in range(10, 0, -1)]


async def test_csv_download_has_every_matching_row(
    client: Client, twitch: Twitch, bank: Bank, clock: FakeClock
) -> None:
    """The CSV is an attachment with a header row; formulas in text cells are neutralised."""
    await seed(bank, clock)
    for i in range(2500):  # more than one chunk
        await bank.credit("alice", viewer(3), 1, kind=EntryType.ADD, reason=f"r{i}")
    await login(client, twitch, "alice")
    response = await client.get("/dashboard/alice/transactions.csv")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment;" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0][:7] == [
        "id",
        "time_utc",
        "user_id",
        "username",
        "type",
        "amount",
        "balance_after",
    ]
    assert len(rows) == 1 + 5 + 2500
    first = rows[-1]
    assert first[2:8] == ["1001", "user1", "add", "100", "100", "'=HYPERLINK(1)"]
    filtered = await client.get("/dashboard/alice/transactions.csv?type=transfer")
    transfers = list(csv.reader(io.StringIO(await filtered.text())))[1:]
    assert [(r[3], r[5], r[9]) for r in transfers] == [
        ("user2", "30", "user1"),
        ("user1", "-30", "user2"),
    ]
