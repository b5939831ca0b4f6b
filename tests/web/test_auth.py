"""Login with Twitch, sessions, who may see which channel, CSRF and logout."""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from loyaltybot.clock import FakeClock
from loyaltybot.db import Store
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.points.ledger import EntryType
from loyaltybot.web.app import COOKIE_NAME, make_app
from loyaltybot.web.auth import safe_next
from tests.conftest import viewer
from tests.web.conftest import Twitch, csrf_of, login, make_config, page

Client = TestClient[web.Request, web.Application]


async def test_logged_out_visitor_is_offered_twitch_login(client: Client) -> None:
    """GET / shows 'Log in with Twitch'; a dashboard URL sends the visitor to /login."""
    html = await page(client, "/")
    assert "Log in with Twitch" in html
    assert 'href="/login"' in html
    response = await client.get("/dashboard/alice/viewers", allow_redirects=False)
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/dashboard/alice/viewers"]}


async def test_login_redirects_to_twitch_with_state_and_no_scope(
    client: Client, twitch: Twitch
) -> None:
    """/login asks Twitch's authorize endpoint for a code, with our client id and a state."""
    response = await client.get("/login", allow_redirects=False)
    assert response.status == 302
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == twitch.auth_url + "/authorize"
    query = parse_qs(target.query, keep_blank_values=True)
    assert query["client_id"] == ["sim-client-id"]
    assert query["response_type"] == ["code"]
    assert query["scope"] == [""]
    assert query["redirect_uri"] == [str(client.make_url("/auth/callback"))]
    assert len(query["state"][0]) >= 32


async def test_broadcaster_logs_in_and_lands_on_their_channel(
    client: Client, twitch: Twitch
) -> None:
    """The full code flow ends on the broadcaster's dashboard with a HttpOnly, Lax cookie."""
    twitch.oauth.login_as("alice")
    start = await client.get("/login", allow_redirects=False)
    authorize = await client.session.get(start.headers["Location"], allow_redirects=False)
    callback = await client.session.get(authorize.headers["Location"], allow_redirects=False)
    assert callback.status == 302
    assert callback.headers["Location"] == "/dashboard/alice"
    cookie = callback.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    assert "alice" not in cookie.value  # encrypted, not readable
    assert "#alice" in await page(client, "/dashboard/alice")


async def test_login_returns_to_the_page_asked_for(client: Client, twitch: Twitch) -> None:
    """After login the visitor is back on the dashboard page they first opened."""
    twitch.oauth.login_as("alice")
    response = await client.get("/dashboard/alice/settings")
    assert response.url.path == "/dashboard/alice/settings"
    assert "Save settings" in await response.text()


async def test_callback_with_a_foreign_state_is_refused(client: Client, twitch: Twitch) -> None:
    """A callback whose state was not issued to this browser logs nobody in."""
    twitch.oauth.login_as("alice")
    first = await client.get("/login", allow_redirects=False)
    authorize = await client.session.get(first.headers["Location"], allow_redirects=False)
    callback = urlsplit(authorize.headers["Location"])
    code = parse_qs(callback.query)["code"][0]
    response = await client.get("/auth/callback", params={"code": code, "state": "forged"})
    assert response.status == 400
    assert "expired" in await response.text()
    assert (await client.get("/dashboard", allow_redirects=False)).status == 302


async def test_declined_login_shows_a_clear_page(client: Client, twitch: Twitch) -> None:
    """When Twitch answers access_denied the visitor sees why and can try again."""
    twitch.oauth.login_as(None)
    response = await client.get("/login", params={"next": "/dashboard"})
    chooser = await response.text()
    assert "Simulated Twitch" in chooser  # nobody chosen: the simulator asks who
    deny = re.search(r'href="([^"]+deny=1)"', chooser)
    assert deny
    response = await client.session.get(str(response.url.origin()) + htmllib.unescape(deny[1]))
    assert response.status == 400
    text = await response.text()
    assert "did not approve" in text
    assert 'href="/login"' in text
    assert "Traceback" not in text


async def test_unreachable_twitch_is_a_502_not_a_traceback(
    bank: Bank, store: Store, db_path: Path, clock: FakeClock
) -> None:
    """If the token endpoint cannot be reached the page says so, with a 502."""
    config = make_config(db_path, "http://127.0.0.1:9/oauth2")
    app = await make_app(
        bank=bank,
        config=config,
        store=store,
        health=lambda: True,
        metrics=Metrics(process=False),
        clock=clock,
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        start = await client.get("/login", allow_redirects=False)
        state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        response = await client.get("/auth/callback", params={"code": "abc", "state": state})
        assert response.status == 502
        assert "Could not reach Twitch" in await response.text()


async def test_admin_may_manage_the_channel(client: Client, twitch: Twitch) -> None:
    """A login listed in the channel's admins gets its dashboard."""
    await login(client, twitch, "alice_mod")
    assert "Viewers" in await page(client, "/dashboard/alice/viewers")


async def test_user_without_rights_sees_nothing_of_the_channel(
    client: Client, twitch: Twitch, bank: Bank
) -> None:
    """Anyone else gets 403 on every page and POST of the channel, and none of its data."""
    await bank.credit("alice", viewer(1), 777_777, kind=EntryType.ADD, reason="secret-reason")
    html = await login(client, twitch, "mallory")
    assert "does not manage any channel" in html
    token = csrf_of(html)
    for path in (
        "/dashboard/alice",
        "/dashboard/alice/viewers",
        "/dashboard/alice/viewers/1001",
        "/dashboard/alice/transactions",
        "/dashboard/alice/transactions.csv",
        "/dashboard/alice/settings",
        "/dashboard/alice/queue",
        "/dashboard/alice/votes",
        "/dashboard/alice/leaderboard",
    ):
        response = await client.get(path)
        text = await response.text()
        assert response.status == 403, path
        for secret in ("777", "secret-reason", "user1"):
            assert secret not in text, path
    response = await client.post(
        "/dashboard/alice/viewers/1001/adjust",
        data={
            "csrf_token": token,
            "direction": "add",
            "amount": "5",
            "reason": "x",
            "nonce": "n" * 20,
        },
    )
    assert response.status == 403
    assert (await bank.viewer("alice", "user1")).points == 777_777  # type: ignore[union-attr]
    assert (await client.get("/dashboard/nope")).status == 404


async def test_post_without_csrf_token_is_refused(
    client: Client, twitch: Twitch, bank: Bank
) -> None:
    """A logged-in POST with no token, or the wrong one, changes nothing (403)."""
    await bank.credit("alice", viewer(1), 10, kind=EntryType.ADD)
    await login(client, twitch, "alice")
    form = {"direction": "add", "amount": "5", "reason": "x", "nonce": "n" * 20}
    for extra in ({}, {"csrf_token": "wrong"}):
        response = await client.post("/dashboard/alice/viewers/1001/adjust", data=form | extra)
        assert response.status == 403
        assert "Reload the page" in await response.text()
    assert (await bank.viewer("alice", "user1")).points == 10  # type: ignore[union-attr]


async def test_logout_ends_the_session(client: Client, twitch: Twitch) -> None:
    """POST /logout (with the token) forgets the visitor; the dashboard asks to log in."""
    html = await login(client, twitch, "alice")
    response = await client.post("/logout", data={"csrf_token": csrf_of(html)})
    assert response.status == 200
    assert response.url.path == "/"
    assert (await client.get("/dashboard", allow_redirects=False)).status == 302


async def test_tampered_cookie_is_a_logged_out_visitor(client: Client, twitch: Twitch) -> None:
    """A cookie that does not decrypt is ignored, not an error."""
    await login(client, twitch, "alice")
    assert (await client.get("/dashboard", allow_redirects=False)).status == 200
    client.session.cookie_jar.clear()
    response = await client.get(
        "/dashboard", allow_redirects=False, headers={"Cookie": f"{COOKIE_NAME}=garbage"}
    )
    assert response.status == 302


async def test_session_key_survives_restart_and_cookies_are_secure_on_https(
    bank: Bank, store: Store, db_path: Path, twitch: Twitch, clock: FakeClock
) -> None:
    """The generated key is stored once (logins survive restarts); https public URLs get
    Secure cookies."""
    from loyaltybot.web.app import session_key

    config = make_config(
        db_path,
        twitch.auth_url,
        public_url="https://bot.example.org",
        eventsub_secret="0123456789abcdef",
    )
    assert await session_key(store, config) == await session_key(store, config)
    assert len(await session_key(store, config)) == 32
    app = await make_app(
        bank=bank,
        config=config,
        store=store,
        health=lambda: True,
        metrics=Metrics(process=False),
        clock=clock,
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/login", allow_redirects=False)
        assert "Secure" in response.headers["Set-Cookie"]
        redirect = parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"]
        assert redirect == ["https://bot.example.org/auth/callback"]


def test_next_is_only_a_local_path() -> None:
    """No open redirects: only paths on this site survive."""
    assert safe_next("/dashboard/alice?x=1") == "/dashboard/alice?x=1"
    for bad in (None, "", "https://evil.example", "//evil.example", "/\\evil", "dashboard"):
        assert safe_next(bad) == "/dashboard"


async def test_reloaded_admins_apply_without_restart(
    client: Client, twitch: Twitch, app: web.Application, db_path: Path
) -> None:
    """A SIGHUP that adds an admin lets them in; one that removes them shuts them out."""
    from loyaltybot.web.app import reload_config

    await login(client, twitch, "mallory")
    assert (await client.get("/dashboard/alice")).status == 403
    config = make_config(db_path, twitch.auth_url)
    alice = config.channels["alice"].model_copy(update={"admins": ("alice_mod", "mallory")})
    reload_config(app, replace(config, channels={**config.channels, "alice": alice}))
    assert (await client.get("/dashboard/alice")).status == 200
    reload_config(app, config)
    assert (await client.get("/dashboard/alice")).status == 403
