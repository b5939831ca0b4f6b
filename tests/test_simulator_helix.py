"""The simulator's Helix and OAuth: shapes, auth, paging, permissions, limits, faults, flows."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from loyaltybot.clock import FakeClock
from loyaltybot.simulator import BROADCASTER_SCOPES, Simulator

CLIENT_ID = "sim-client-id"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator()
    await sim.start()
    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    yield sim
    await sim.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Api:
    """Helix calls as the daemon makes them: Bearer token plus Client-Id."""

    def __init__(self, sim: Simulator, http: aiohttp.ClientSession, token: str) -> None:
        self.sim, self.http, self.token = sim, http, token

    async def call(
        self,
        method: str,
        path: str,
        params: Any = (),
        json: Any = None,
        *,
        client_id: str = CLIENT_ID,
    ) -> tuple[int, Any, CIMultiDictProxy[str]]:
        headers = {"Authorization": f"Bearer {self.token}", "Client-Id": client_id}
        async with self.http.request(
            method, self.sim.api_url + path, params=params, json=json, headers=headers
        ) as response:
            body = await response.json() if response.content_length != 0 else None
            return response.status, body, response.headers


def bot_api(sim: Simulator, http: aiohttp.ClientSession) -> Api:
    return Api(sim, http, sim.issue_token("mybot"))


# ---- auth, headers, errors -------------------------------------------------------------


async def test_auth_errors_and_headers(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Missing or bad tokens and a wrong Client-Id get 401 bodies; answers carry rate headers."""
    api = bot_api(sim, http)
    status, _, headers = await api.call("GET", "/users")
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Ratelimit-Limit"] == "800"
    assert int(headers["Ratelimit-Remaining"]) == 799
    assert int(headers["Ratelimit-Reset"]) >= int(time.time())
    assert (await api.call("GET", "/users", client_id="other"))[:2] == (
        401,
        {
            "error": "Unauthorized",
            "status": 401,
            "message": "Client ID and OAuth token do not match",
        },
    )
    assert (await Api(sim, http, "nope").call("GET", "/users"))[:2] == (
        401,
        {"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"},
    )
    async with http.get(sim.api_url + "/users") as response:
        assert response.status == 401
        assert (await response.json())["message"] == "OAuth token is missing"


async def test_bucket_empties_to_429(http: aiohttp.ClientSession) -> None:
    """The per-client bucket counts calls; an empty one gives 429 with Remaining 0."""
    sim = Simulator(helix_points_per_minute=3)
    await sim.start()
    try:
        sim.add_user("mybot")
        api = bot_api(sim, http)
        remaining = [(await api.call("GET", "/users"))[2]["Ratelimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        status, body, headers = await api.call("GET", "/users")
        assert (status, body["status"], headers["Ratelimit-Remaining"]) == (429, 429, "0")
        assert int(headers["Ratelimit-Reset"]) > time.time()
    finally:
        await sim.close()


# ---- users and streams -------------------------------------------------------------------


async def test_get_users(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """By id and login (unknown ones left out), the token's own user with no parameters, <= 100."""
    api = bot_api(sim, http)
    bob = sim.add_user("bob", user_id="4242", display_name="Bob")
    status, body, _ = await api.call(
        "GET", "/users", [("id", "4242"), ("login", "ALICE"), ("login", "ghost")]
    )
    assert status == 200
    assert sorted(u["login"] for u in body["data"]) == ["alice", "bob"]
    user = next(u for u in body["data"] if u["id"] == bob.id)
    assert set(user) == {
        "id",
        "login",
        "display_name",
        "type",
        "broadcaster_type",
        "description",
        "profile_image_url",
        "offline_image_url",
        "view_count",
        "created_at",
    }
    assert (user["display_name"], user["type"], user["broadcaster_type"]) == ("Bob", "", "")
    _, body, _ = await api.call("GET", "/users")
    assert [u["login"] for u in body["data"]] == ["mybot"]
    status, _, _ = await api.call("GET", "/users", [("id", str(n)) for n in range(101)])
    assert status == 400


async def test_get_streams_live_iff_listed(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A channel is in Get Streams only while live, with every field twitchio's Stream reads."""
    sim.add_channel("bob_tv")
    api = bot_api(sim, http)
    query = [("user_login", "alice"), ("user_login", "bob_tv")]
    assert (await api.call("GET", "/streams", query))[1] == {"data": [], "pagination": {}}
    sim.set_live("alice", True, title="Cozy")
    sim.add_chatters("alice", ["x1", "x2"])
    _, body, _ = await api.call("GET", "/streams", query)
    (stream,) = body["data"]
    assert set(stream) >= {
        "id", "user_id", "user_login", "user_name", "game_id", "game_name", "type", "title",
        "viewer_count", "started_at", "language", "thumbnail_url", "tag_ids", "is_mature", "tags",
    }  # fmt: skip
    assert (stream["user_login"], stream["type"], stream["title"], stream["viewer_count"]) == (
        "alice",
        "live",
        "Cozy",
        2,
    )
    assert (stream["tag_ids"], stream["tags"]) == ([], ["English"])
    sim.set_live("alice", False)
    assert (await api.call("GET", "/streams", [("user_id", sim.channel("alice").id)]))[1][
        "data"
    ] == []


# ---- chatters -------------------------------------------------------------------------------


async def test_chatters_pagination_over_ten_pages(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """1,000 chatters come back in 10 pages of 100, each exactly once, in order, with the total."""
    users = sim.add_users(1000, "fan")
    sim.add_chatters("alice", users)
    api = bot_api(sim, http)
    base = [("broadcaster_id", sim.channel("alice").id), ("moderator_id", sim.user("mybot").id)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = base + ([("after", cursor)] if cursor else [])
        status, body, _ = await api.call("GET", "/chat/chatters", query)
        assert status == 200
        assert body["total"] == 1000
        pages += 1
        seen += [c["user_login"] for c in body["data"]]
        cursor = body["pagination"].get("cursor")
        if not cursor:
            assert body["pagination"] == {}
            break
        assert len(body["data"]) == 100
    assert pages == 10
    assert seen == [u.login for u in users]
    status, body, _ = await api.call("GET", "/chat/chatters", [*base, ("first", "1000")])
    assert len(body["data"]) == 1000
    assert body["pagination"] == {}
    for bad in ("0", "1001", "x"):
        assert (await api.call("GET", "/chat/chatters", [*base, ("first", bad)]))[0] == 400
    assert (await api.call("GET", "/chat/chatters", [*base, ("after", "garbage")]))[0] == 400


async def test_chatters_cursor_survives_changes(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """Leaves and joins between pages shift nothing after the cursor (no skips, no repeats)."""
    users = sim.add_users(300, "fan")
    sim.add_chatters("alice", users)
    api = bot_api(sim, http)
    base = [("broadcaster_id", sim.channel("alice").id), ("moderator_id", sim.user("mybot").id)]
    _, body, _ = await api.call("GET", "/chat/chatters", base)
    sim.remove_chatters("alice", users[:50])
    sim.add_chatters("alice", ["latecomer"])
    _, body2, _ = await api.call(
        "GET", "/chat/chatters", [*base, ("after", body["pagination"]["cursor"])]
    )
    assert [c["user_login"] for c in body2["data"]] == [u.login for u in users[100:200]]
    assert body2["total"] == 251


async def test_chatters_at_scale(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """100,000 users and chatters: created in bulk, and a deep page is exact."""
    users = sim.add_users(100_000, "crowd")
    assert len({u.id for u in users}) == 100_000
    sim.add_chatters("alice", users)
    api = bot_api(sim, http)
    base = [("broadcaster_id", sim.channel("alice").id), ("moderator_id", sim.user("mybot").id)]
    _, body, _ = await api.call("GET", "/chat/chatters", [*base, ("first", "1000")])
    for _ in range(49):
        _, body, _ = await api.call(
            "GET",
            "/chat/chatters",
            [*base, ("first", "1000"), ("after", body["pagination"]["cursor"])],
        )
    assert body["total"] == 100_000
    assert body["data"][0]["user_login"] == users[49_000].login
    assert body["data"][-1]["user_login"] == users[49_999].login


async def test_chatters_permissions(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """moderator_id must be the token's user and a moderator or the broadcaster; else 403/401."""
    sim.add_user("viewer")
    channel = sim.channel("alice").id
    mybot, viewer = sim.user("mybot").id, sim.user("viewer").id

    async def status(token: str, moderator: str) -> tuple[int, str]:
        query = [("broadcaster_id", channel), ("moderator_id", moderator)]
        code, body, _ = await Api(sim, http, token).call("GET", "/chat/chatters", query)
        return code, body.get("message", "") if code != 200 else ""

    bot = sim.issue_token("mybot")
    assert (await status(bot, mybot))[0] == 200
    assert (await status(sim.issue_token("alice", BROADCASTER_SCOPES), sim.user("alice").id))[
        0
    ] == 200
    assert (await status(bot, viewer))[0] == 403
    code, message = await status(sim.issue_token("viewer"), viewer)
    assert code == 403
    assert "moderators" in message
    assert (await status(sim.issue_token("mybot", ["chat:read"]), mybot)) == (
        401,
        "Missing scope: moderator:read:chatters",
    )
    assert (await status(sim.issue_app_token(), mybot))[0] == 401
    sim.set_role("alice", "viewer", mod=True)
    assert (await status(sim.issue_token("viewer"), viewer))[0] == 200


# ---- channel points -----------------------------------------------------------------------


async def test_rewards_and_redemption_status(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Only UNFULFILLED redemptions of this client's rewards can be updated, once."""
    alice = sim.channel("alice")
    api = Api(sim, http, sim.issue_token("alice", BROADCASTER_SCOPES))
    status, body, _ = await api.call(
        "POST",
        "/channel_points/custom_rewards",
        [("broadcaster_id", alice.id)],
        {"title": "Hydrate", "cost": 50},
    )
    assert status == 200
    reward = body["data"][0]
    assert (reward["title"], reward["cost"], reward["is_enabled"]) == ("Hydrate", 50, True)
    status, _, _ = await api.call(
        "POST",
        "/channel_points/custom_rewards",
        [("broadcaster_id", alice.id)],
        {"title": "hydrate", "cost": 5},
    )
    assert status == 400
    dashboard = sim.add_reward("alice", "Made on Twitch", cost=10)
    _, body, _ = await api.call(
        "GET",
        "/channel_points/custom_rewards",
        [("broadcaster_id", alice.id), ("only_manageable_rewards", "True")],
    )
    assert [r["title"] for r in body["data"]] == ["Hydrate"]
    one = await sim.redeem("alice", "bob", "Hydrate", "water!")
    two = await sim.redeem("alice", "bob", reward["id"])
    other = await sim.redeem("alice", "bob", dashboard.id)
    assert (one.status, one.user_input, one.deliveries) == ("UNFULFILLED", "water!", [])

    async def patch(ids: list[str], reward_id: str, status: str) -> tuple[int, Any]:
        query = [("first", "100"), *(("id", i) for i in ids)]
        query += [("broadcaster_id", alice.id), ("reward_id", reward_id)]
        code, body, _ = await api.call(
            "PATCH", "/channel_points/custom_rewards/redemptions", query, {"status": status}
        )
        return code, body

    code, body = await patch([one.id], reward["id"], "FULFILLED")
    assert code == 200
    assert body["data"][0]["status"] == "FULFILLED"
    assert set(body["data"][0]) >= {
        "broadcaster_id",
        "id",
        "user_id",
        "user_name",
        "user_input",
        "status",
        "redeemed_at",
        "reward",
    }
    assert (await patch([one.id], reward["id"], "CANCELED"))[0] == 400  # already fulfilled
    assert (await patch([two.id], reward["id"], "DONE"))[0] == 400
    assert (await patch(["no-such-id"], reward["id"], "CANCELED"))[0] == 404
    assert (await patch([other.id], dashboard.id, "CANCELED"))[0] == 403
    code, body = await patch([two.id], reward["id"], "CANCELED")
    assert code == 200
    assert alice.redemptions[two.id].status == "CANCELED"
    updates = [
        (u.redemption_id, u.status, u.accepted, u.http_status) for u in sim.redemption_updates
    ]
    assert updates == [
        (one.id, "FULFILLED", True, 200),
        (one.id, "CANCELED", False, 400),
        (two.id, "DONE", False, 400),
        ("no-such-id", "CANCELED", False, 404),
        (other.id, "CANCELED", False, 403),
        (two.id, "CANCELED", True, 200),
    ]
    bot = bot_api(sim, http)
    query = [("broadcaster_id", alice.id)]
    assert (await bot.call("GET", "/channel_points/custom_rewards", query))[0] == 401
    mod_token = Api(sim, http, sim.issue_token("mybot", BROADCASTER_SCOPES))
    assert (await mod_token.call("GET", "/channel_points/custom_rewards", query))[0] == 403


# ---- subscriptions -------------------------------------------------------------------------


async def test_broadcaster_subscriptions_paginated(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """Get Broadcaster Subscriptions pages every subscriber once, with total and points."""
    users = sim.add_users(45, "sub")
    for n, user in enumerate(users):
        sim.set_role("alice", user.login, subscriber_tier=3000 if n == 0 else 1000)
    sim.set_role("alice", users[1].login, subscriber_tier=2000, gifter="alice")
    api = Api(sim, http, sim.issue_token("alice", BROADCASTER_SCOPES))
    seen = []
    cursor = None
    while True:
        query = [("broadcaster_id", sim.channel("alice").id), ("first", "20")]
        status, body, _ = await api.call(
            "GET", "/subscriptions", query + ([("after", cursor)] if cursor else [])
        )
        assert status == 200
        assert (body["total"], body["points"]) == (45, 6 + 2 + 43)
        seen += body["data"]
        cursor = body["pagination"].get("cursor")
        if not cursor:
            break
    assert [s["user_login"] for s in seen] == [u.login for u in users]
    assert (seen[1]["is_gift"], seen[1]["gifter_login"], seen[1]["tier"]) == (True, "alice", "2000")
    assert (
        await bot_api(sim, http).call(
            "GET", "/subscriptions", [("broadcaster_id", sim.channel("alice").id)]
        )
    )[0] == 401


# ---- faults ----------------------------------------------------------------------------------


async def test_faults(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Injected 429s (with reset headers), 5xx, delays and drops hit their path, count times."""
    api = bot_api(sim, http)
    sim.faults.add("/users", status=429, count=2, reset_in=3)
    sim.faults.add("/streams", status=503)
    sim.faults.add("/oauth2/validate", status=None, delay=0.2)
    for _ in range(2):
        status, body, headers = await api.call("GET", "/users")
        assert (status, body["status"], headers["Ratelimit-Remaining"]) == (429, 429, "0")
        assert int(headers["Ratelimit-Reset"]) >= time.time() + 2
    assert (await api.call("GET", "/users"))[0] == 200
    assert (await api.call("GET", "/streams"))[0] == 503
    assert (await api.call("GET", "/streams"))[0] == 200
    started = time.monotonic()
    async with http.get(
        sim.auth_url + "/validate", headers={"Authorization": f"OAuth {api.token}"}
    ) as r:
        assert r.status == 200
    assert time.monotonic() - started >= 0.2
    sim.faults.add("/users", status=0, count=2)  # aiohttp retries a GET once on a fresh connection
    with pytest.raises(aiohttp.ClientError):
        await api.call("GET", "/users")
    assert (await api.call("GET", "/users"))[0] == 200


# ---- OAuth ---------------------------------------------------------------------------------


async def test_validate(http: aiohttp.ClientSession) -> None:
    """validate describes user and app tokens; expired and unknown ones get Twitch's 401 body."""
    clock = FakeClock()
    sim = Simulator(clock=clock)
    await sim.start()
    try:
        token = sim.issue_token("mybot", ["chat:read", "chat:edit"], expires_in=100)
        async with http.get(
            sim.auth_url + "/validate", headers={"Authorization": f"OAuth {token}"}
        ) as r:
            assert r.status == 200
            assert await r.json() == {
                "client_id": CLIENT_ID,
                "login": "mybot",
                "scopes": ["chat:read", "chat:edit"],
                "user_id": sim.user("mybot").id,
                "expires_in": 100,
            }
        app = sim.issue_app_token()
        async with http.get(
            sim.auth_url + "/validate", headers={"Authorization": f"OAuth {app}"}
        ) as r:
            body = await r.json()
            assert set(body) == {"client_id", "scopes", "expires_in"}
        clock.advance(101)
        async with http.get(
            sim.auth_url + "/validate", headers={"Authorization": f"OAuth {token}"}
        ) as r:
            assert (r.status, await r.json()) == (
                401,
                {"status": 401, "message": "invalid access token"},
            )
    finally:
        await sim.close()


async def test_client_credentials_query_or_form(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """An app token from the query string (twitchio) or a form body; a wrong secret is refused."""
    creds = {
        "client_id": CLIENT_ID,
        "client_secret": "sim-client-secret",
        "grant_type": "client_credentials",
    }
    async with http.post(sim.auth_url + "/token", params=creds) as r:
        body = await r.json()
        assert r.status == 200
        assert set(body) == {"access_token", "expires_in", "token_type"}
    async with http.post(sim.auth_url + "/token", data=creds) as r:
        assert r.status == 200
    info = sim.token_info(body["access_token"])
    assert info is not None
    assert info.is_app
    async with http.post(sim.auth_url + "/token", data={**creds, "client_secret": "wrong"}) as r:
        assert r.status == 403


async def test_refresh_rotates_the_refresh_token(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A refresh gives a new access and refresh token; the old refresh token stops working."""
    token = sim.issue_token("mybot", ["chat:read"])
    info = sim.token_info(token)
    assert info is not None
    assert info.refresh_token
    form = {
        "grant_type": "refresh_token",
        "refresh_token": info.refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": "sim-client-secret",
    }
    async with http.post(sim.auth_url + "/token", data=form) as r:
        body = await r.json()
        assert r.status == 200
        assert body["scope"] == ["chat:read"]
        assert body["token_type"] == "bearer"
    assert body["access_token"] != token
    assert body["refresh_token"] != info.refresh_token
    async with http.post(sim.auth_url + "/token", params=form) as r:
        assert (r.status, await r.json()) == (
            400,
            {"error": "Bad Request", "status": 400, "message": "Invalid refresh token"},
        )


async def test_authorization_code_flow(http: aiohttp.ClientSession) -> None:
    """authorize redirects with code and state (as login_as, or as the user picked on the page)."""
    sim = Simulator()
    await sim.start()
    try:
        sim.add_channel("alice")
        redirect = "http://127.0.0.1:9/auth/callback"
        query = {
            "client_id": CLIENT_ID,
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": "user:read:email channel:read:redemptions",
            "state": "xyz",
        }
        async with http.get(sim.auth_url + "/authorize", params=query) as r:
            page = await r.text()
            assert r.status == 200
            assert "alice" in page
            assert "login=alice" in page
        sim.oauth.login_as("alice")
        async with http.get(sim.auth_url + "/authorize", params=query, allow_redirects=False) as r:
            assert r.status == 302
            location = urlsplit(r.headers["Location"])
        got = parse_qs(location.query)
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect
        assert got["state"] == ["xyz"]
        form = {
            "client_id": CLIENT_ID,
            "client_secret": "sim-client-secret",
            "code": got["code"][0],
            "grant_type": "authorization_code",
            "redirect_uri": redirect,
        }
        async with http.post(sim.auth_url + "/token", data=form) as r:
            body = await r.json()
            assert r.status == 200
            assert body["scope"] == [
                "user:read:email",
                "channel:read:redemptions",
            ]
        async with http.post(sim.auth_url + "/token", data=form) as r:
            assert r.status == 400  # a code works once
        async with http.get(
            sim.auth_url + "/validate", headers={"Authorization": f"OAuth {body['access_token']}"}
        ) as r:
            assert (await r.json())["login"] == "alice"
        bad = {**query, "redirect_uri": "https://evil.example/cb"}
        async with http.get(sim.auth_url + "/authorize", params=bad, allow_redirects=False) as r:
            assert r.status == 400
    finally:
        await sim.close()


async def test_device_code_flow(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Polling gets authorization_pending until the user approves, then a token, once."""
    async with http.post(
        sim.auth_url + "/device", data={"client_id": CLIENT_ID, "scopes": "chat:read chat:edit"}
    ) as r:
        grant = await r.json()
    assert set(grant) == {"device_code", "expires_in", "interval", "user_code", "verification_uri"}
    poll = {
        "client_id": CLIENT_ID,
        "scopes": "chat:read chat:edit",
        "device_code": grant["device_code"],
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
    }
    async with http.post(sim.auth_url + "/token", data=poll) as r:
        assert (r.status, await r.json()) == (
            400,
            {"status": 400, "message": "authorization_pending"},
        )
    async with http.get(grant["verification_uri"]) as r:
        assert r.status == 200
        assert grant["user_code"] in await r.text()
    sim.oauth.approve_device(grant["user_code"], "mybot")
    async with http.post(sim.auth_url + "/token", data=poll) as r:
        body = await r.json()
        assert r.status == 200
        assert body["scope"] == ["chat:read", "chat:edit"]
        assert body["refresh_token"]
    info = sim.token_info(body["access_token"])
    assert info is not None
    assert info.user is not None
    assert info.user.login == "mybot"
    async with http.post(sim.auth_url + "/token", data=poll) as r:
        assert (await r.json())["message"] == "invalid device code"
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
        "client_id": CLIENT_ID,
    }
    async with http.post(sim.auth_url + "/token", data=refresh) as r:
        assert r.status == 200  # a public (device) client refreshes without a secret


async def test_revoke(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A revoked token no longer validates nor works on Helix."""
    token = sim.issue_token("mybot")
    async with http.post(
        sim.auth_url + "/revoke", data={"client_id": CLIENT_ID, "token": token}
    ) as r:
        assert r.status == 200
    async with http.get(
        sim.auth_url + "/validate", headers={"Authorization": f"OAuth {token}"}
    ) as r:
        assert r.status == 401
    assert (await Api(sim, http, token).call("GET", "/users"))[0] == 401
