"""Public routes: the JSON leaderboard, the HTML leaderboard/overlay, health, metrics, errors."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from loyaltybot.db import Store
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from tests.conftest import viewer
from tests.web.conftest import Chat, Twitch, csrf_of, login, page

Client = TestClient[web.Request, web.Application]


async def seed(bank: Bank) -> None:
    for n, points in ((1, 50), (2, 300), (3, 300), (4, 10)):
        await bank.credit("alice", viewer(n), points, kind=EntryType.ADD)
    await bank.credit("alice", Viewer("77", "mybot", "MyBot"), 10_000, kind=EntryType.ADD)


async def test_leaderboard_api_shape_and_order(client: Client, bank: Bank) -> None:
    """[{rank, user_id, username, points}], best first, ties share a rank, the bot excluded."""
    await seed(bank)
    response = await client.get("/api/v1/channels/alice/leaderboard", params={"limit": "3"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await response.json() == [
        {"rank": 1, "user_id": "1002", "username": "user2", "points": 300},
        {"rank": 1, "user_id": "1003", "username": "user3", "points": 300},
        {"rank": 3, "user_id": "1001", "username": "user1", "points": 50},
    ]
    default = await (await client.get("/api/v1/channels/alice/leaderboard")).json()
    assert len(default) == 4


async def test_leaderboard_api_validates_limit_and_channel(client: Client) -> None:
    """limit must be 1..100; an unknown channel is 404; errors are JSON."""
    for limit in ("0", "101", "-1", "abc", "1.5", "１"):
        response = await client.get("/api/v1/channels/alice/leaderboard", params={"limit": limit})
        assert response.status == 400, limit
        assert await response.json() == {"error": "limit must be a whole number from 1 to 100"}
    assert (await client.get("/api/v1/channels/alice/leaderboard?limit=100")).status == 200
    missing = await client.get("/api/v1/channels/nobody/leaderboard")
    assert missing.status == 404
    assert "error" in await missing.json()


async def test_public_leaderboard_page_and_overlay(client: Client, bank: Bank) -> None:
    """The HTML page lists the top viewers; ?overlay=1 is transparent and refreshes itself."""
    await seed(bank)
    html = await page(client, "/c/alice/leaderboard?limit=2")
    assert "Top cookies" in html
    assert "user2" in html
    assert "user3" in html
    assert "user1" not in html
    assert 'class="public"' in html
    overlay = await page(client, "/c/alice/leaderboard?overlay=1&refresh=5")
    assert 'class="overlay"' in overlay
    assert 'data-refresh="5"' in overlay
    assert "leaderboard.js" in overlay
    assert "/api/v1/channels/alice/leaderboard?limit=10" in overlay
    response = await client.get("/c/alice/leaderboard")
    assert "Set-Cookie" not in response.headers  # public pages start no session
    assert "frame-ancestors" not in response.headers["Content-Security-Policy"]
    assert (await client.get("/c/nobody/leaderboard")).status == 404
    assert (await client.get("/c/alice/leaderboard?refresh=1")).status == 400


async def test_healthz_reports_database_and_chat(client: Client, chat: Chat, store: Store) -> None:
    """200 with both up; 503 naming the part that is down."""
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "chat": "connected"}
    chat.connected = False
    response = await client.get("/healthz")
    assert response.status == 503
    assert await response.json() == {
        "status": "unavailable",
        "database": "ok",
        "chat": "disconnected",
    }
    chat.connected = True
    await store.close()
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["database"] == "error"


async def test_metrics_are_prometheus_text(client: Client, metrics: Metrics) -> None:
    """Counters other parts bump, totals they keep themselves (read at scrape time) and
    request latency by route template appear in /metrics."""
    metrics.chat_replies_sent.labels("alice").inc(3)
    metrics.chat_replies_dropped.labels("alice", "too_late").inc()
    metrics.earning_ticks.labels("alice").inc()
    metrics.points_credited.labels("alice", "tick").inc(120)
    metrics.webhook_notifications.labels("channel.follow", "processed").inc()
    totals = {("alice", "overflow"): 2.0}
    metrics.add_counter_source(
        "loyaltybot_outbox_dropped", "Dropped.", ["channel", "why"], totals.items
    )
    metrics.add_gauge_source("loyaltybot_outbox_queued", "Queued.", [], lambda: [((), 4.0)])
    await client.get("/c/alice/leaderboard")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    for line in (
        'loyaltybot_chat_replies_sent_total{channel="alice"} 3.0',
        'loyaltybot_chat_replies_dropped_total{channel="alice",reason="too_late"} 1.0',
        'loyaltybot_earning_ticks_total{channel="alice"} 1.0',
        'loyaltybot_points_credited_total{channel="alice",source="tick"} 120.0',
        'loyaltybot_eventsub_notifications_total{outcome="processed",type="channel.follow"} 1.0',
        'loyaltybot_outbox_dropped_total{channel="alice",why="overflow"} 2.0',
        "loyaltybot_outbox_queued 4.0",
    ):
        assert line in text
    assert (
        'loyaltybot_http_request_duration_seconds_count{method="GET",'
        'route="/c/{channel}/leaderboard",status="200"} 1.0'
    ) in text


async def test_errors_are_clean_pages(app: web.Application, twitch: Twitch) -> None:
    """404, 405, an oversized body and an unexpected exception: a page, never a traceback."""

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        missing = await client.get("/no/such/page")
        assert missing.status == 404
        assert "Not found" in await missing.text()
        wrong = await client.get("/logout")
        assert wrong.status == 405
        assert "does not take this kind of request" in await wrong.text()
        html = await login(client, twitch, "alice")
        big = await client.post(
            "/logout", data={"csrf_token": csrf_of(html), "filler": "x" * 300_000}
        )
        assert big.status == 413
        assert "too much data" in await big.text()
        crash = await client.get("/boom")
        text = await crash.text()
        assert crash.status == 500
        assert "Something went wrong" in text
        assert "secret internals" not in text
        assert "Traceback" not in text
        api_missing = await client.get("/api/v1/nothing")
        assert api_missing.status == 404
        assert "error" in await api_missing.json()


async def test_dashboard_pages_carry_security_headers(client: Client) -> None:
    """CSP without inline scripts, no framing, no sniffing; the dashboard is not cached."""
    response = await client.get("/dashboard", allow_redirects=False)
    headers = response.headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    static = await client.get("/static/app.css")
    assert static.status == 200
    assert "text/css" in static.headers["Content-Type"]
