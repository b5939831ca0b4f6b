"""The simulator's EventSub: Twitch's signature, headers, challenge handshake, payloads, replays."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from loyaltybot.simulator import (
    BROADCASTER_SCOPES,
    NoSubscription,
    Simulator,
    payloads,
    sign_message,
)

SECRET = "a-webhook-secret-of-some-length"
REDEMPTION_ADD = "channel.channel_points_custom_reward_redemption.add"
HEADERS = (
    "Twitch-Eventsub-Message-Id",
    "Twitch-Eventsub-Message-Retry",
    "Twitch-Eventsub-Message-Type",
    "Twitch-Eventsub-Message-Signature",
    "Twitch-Eventsub-Message-Timestamp",
    "Twitch-Eventsub-Subscription-Type",
    "Twitch-Eventsub-Subscription-Version",
)
NANO_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


# ---- the signature ------------------------------------------------------------------------


def test_signature_vector_twitch_api_crate() -> None:
    """Reference §3.3 vector 1 (twitch_api's verify_request test)."""
    body = (
        b'{"subscription":{"id":"ae2ff348-e102-16be-a3eb-6830c1bf38d2","status":"enabled",'
        b'"type":"channel.follow","version":"1","condition":{"broadcaster_user_id":"44429626"},'
        b'"transport":{"method":"webhook","callback":"null"},"created_at":"2021-02-19T23:47:00.7621315Z"},'
        b'"event":{"user_id":"28408015","user_login":"testFromUser","user_name":"testFromUser",'
        b'"broadcaster_user_id":"44429626","broadcaster_user_login":"44429626",'
        b'"broadcaster_user_name":"testBroadcaster"}}'
    )
    assert len(body) == 458
    assert (
        sign_message(
            "secretabcd",
            "ae2ff348-e102-16be-a3eb-6830c1bf38d2",
            "2021-02-19T23:47:00.8091512Z",
            body,
        )
        == "sha256=d10f5bd9474b7ac7bd7105eb79c2d52768b4d0cd2a135982c3bf5a1d59a78823"
    )


def test_signature_vector_go_helix() -> None:
    """Reference §3.3 vector 2 (a Go Helix client's TestVerifyEventSubNotification)."""
    body = (
        b'{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4",'
        b'"status":"webhook_callback_verification_pending","type":"channel.follow","version":"1",'
        b'"condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook",'
        b'"callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.123Z"}}'
    )
    assert (
        sign_message(
            "s3cRe7", "e76c6bd4-55c9-4987-8304-da1588d8988b", "2019-11-16T10:11:12.123Z", body
        )
        == "sha256=7e5a96480c29cdf834b371e7a5b049638cba6e425ea51b9b2a9fabf69bc5d227"
    )


# ---- a tiny webhook receiver --------------------------------------------------------------


@dataclass
class Receiver:
    """A callback that checks signatures itself and answers as told."""

    url: str = ""
    mode: str = "good"  # good | json | wrong | status204
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = {k: request.headers[k] for k in HEADERS if k in request.headers}
        self.requests.append((headers, raw))
        if request.headers.get("Twitch-Eventsub-Message-Type") == "webhook_callback_verification":
            challenge = json.loads(raw)["challenge"]
            if self.mode == "json":
                return web.json_response({"challenge": challenge})
            if self.mode == "wrong":
                return web.Response(text=challenge + "x")
            if self.mode == "status204":
                return web.Response(status=204)
            return web.Response(text=challenge, content_type="text/plain")
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/webhook", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
    yield recv
    await runner.cleanup()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator()
    await sim.start()
    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    sim.issue_token("alice", BROADCASTER_SCOPES)  # alice authorizes the client
    yield sim
    await sim.close()


async def subscribe(
    sim: Simulator,
    url: str,
    kind: str,
    condition: dict[str, str],
    version: str = "1",
    token: str | None = None,
) -> tuple[int, Any]:
    body = {
        "type": kind,
        "version": version,
        "condition": condition,
        "transport": {"method": "webhook", "callback": url, "secret": SECRET},
    }
    headers = {
        "Authorization": f"Bearer {token or sim.issue_app_token()}",
        "Client-Id": sim.client_id,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(sim.api_url + "/eventsub/subscriptions", json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def verify(headers: dict[str, str], raw: bytes, secret: str = SECRET) -> bool:
    message = (
        headers["Twitch-Eventsub-Message-Id"] + headers["Twitch-Eventsub-Message-Timestamp"]
    ).encode() + raw
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["Twitch-Eventsub-Message-Signature"])


# ---- subscribing ----------------------------------------------------------------------------


async def test_challenge_handshake_enables(sim: Simulator, receiver: Receiver) -> None:
    """POST answers 202 pending, then a signed challenge; the right reply makes it enabled."""
    alice = sim.channel("alice").id
    status, body = await subscribe(
        sim, receiver.url, REDEMPTION_ADD, {"broadcaster_user_id": alice}
    )
    assert status == 202
    (created,) = body["data"]
    assert created["status"] == "webhook_callback_verification_pending"
    assert created["transport"] == {"method": "webhook", "callback": receiver.url}
    assert "secret" not in json.dumps(body)
    assert (body["total"], body["max_total_cost"]) == (1, 10000)
    (sub,) = await sim.eventsub.wait_enabled(REDEMPTION_ADD)
    headers, raw = receiver.requests[0]
    assert set(headers) == set(HEADERS)
    assert headers["Twitch-Eventsub-Message-Type"] == "webhook_callback_verification"
    assert headers["Twitch-Eventsub-Message-Retry"] == "0"
    assert headers["Twitch-Eventsub-Subscription-Type"] == REDEMPTION_ADD
    assert headers["Twitch-Eventsub-Subscription-Version"] == "1"
    assert NANO_STAMP.fullmatch(headers["Twitch-Eventsub-Message-Timestamp"])
    assert verify(headers, raw)
    challenge = json.loads(raw)
    assert list(challenge) == ["challenge", "subscription"]
    assert challenge["subscription"]["status"] == "webhook_callback_verification_pending"
    assert set(challenge["subscription"]) == {
        "id", "status", "type", "version", "cost", "condition", "transport", "created_at",
    }  # fmt: skip
    assert sub.id == created["id"]


@pytest.mark.parametrize("mode", ["json", "wrong", "status204"])
async def test_wrong_challenge_reply_fails(sim: Simulator, receiver: Receiver, mode: str) -> None:
    """JSON, a wrong body or a non-200 answer leaves the subscription verification_failed."""
    receiver.mode = mode
    await subscribe(
        sim, receiver.url, "stream.online", {"broadcaster_user_id": sim.channel("alice").id}
    )
    (sub,) = await sim.eventsub.wait_verified()
    assert sub.status == "webhook_callback_verification_failed"
    with pytest.raises(TimeoutError):
        await sim.eventsub.wait_enabled(timeout=0.01)


async def test_subscription_rules(sim: Simulator, receiver: Receiver) -> None:
    """User tokens, duplicates (409), missing authorization (403) and bad types are refused."""
    alice = {"broadcaster_user_id": sim.channel("alice").id}
    user_token = sim.issue_token("alice", BROADCASTER_SCOPES)
    assert (await subscribe(sim, receiver.url, "stream.online", alice, token=user_token))[0] == 400
    assert (await subscribe(sim, receiver.url, "stream.online", alice))[0] == 202
    assert (await subscribe(sim, receiver.url, "stream.online", alice))[0] == 409
    assert (await subscribe(sim, receiver.url, "no.such.type", alice))[0] == 400
    sim.add_channel("bob_tv")
    status, body = await subscribe(
        sim, receiver.url, "channel.cheer", {"broadcaster_user_id": sim.channel("bob_tv").id}
    )
    assert status == 403
    assert "bits:read" in body["message"]
    follow = {
        "broadcaster_user_id": sim.channel("alice").id,
        "moderator_user_id": sim.user("mybot").id,
    }
    assert (await subscribe(sim, receiver.url, "channel.follow", follow, version="2"))[0] == 403
    sim.issue_token("mybot", ["moderator:read:followers"])
    assert (await subscribe(sim, receiver.url, "channel.follow", follow, version="2"))[0] == 202
    raid = {"to_broadcaster_user_id": sim.channel("alice").id}
    assert (await subscribe(sim, receiver.url, "channel.raid", raid))[0] == 202


async def test_list_and_delete(sim: Simulator, receiver: Receiver) -> None:
    """Get lists the app's subscriptions (a user token sees none); Delete answers 204, then 404."""
    app = sim.issue_app_token()
    _, created = await subscribe(
        sim,
        receiver.url,
        "stream.online",
        {"broadcaster_user_id": sim.channel("alice").id},
        token=app,
    )
    await sim.eventsub.wait_enabled()
    headers = {"Authorization": f"Bearer {app}", "Client-Id": sim.client_id}
    user_headers = {**headers, "Authorization": f"Bearer {sim.issue_token('alice')}"}
    url = sim.api_url + "/eventsub/subscriptions"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers, params={"status": "enabled"}) as r:
            body = await r.json()
            assert (body["total"], body["data"][0]["status"], body["pagination"]) == (
                1,
                "enabled",
                {},
            )
        async with http.get(url, headers=user_headers) as r:
            assert (await r.json())["data"] == []
        async with http.get(url, headers=headers, params={"status": "enabled", "type": "x"}) as r:
            assert r.status == 400
        sub_id = created["data"][0]["id"]
        async with http.delete(url, headers=headers, params={"id": sub_id}) as r:
            assert r.status == 204
        async with http.delete(url, headers=headers, params={"id": sub_id}) as r:
            assert r.status == 404


# ---- notifications ----------------------------------------------------------------------------


async def test_redemption_notification_redeliver_and_revoke(
    sim: Simulator, receiver: Receiver
) -> None:
    """A redemption arrives signed, shaped as in §3.8; redeliver repeats it; revoke tells."""
    alice = sim.channel("alice")
    await subscribe(sim, receiver.url, REDEMPTION_ADD, {"broadcaster_user_id": alice.id})
    (sub,) = await sim.eventsub.wait_enabled()
    sim.add_reward("alice", "Hydrate", cost=100, prompt="drink water", client_id=sim.client_id)
    sim.add_user("cooler_user", display_name="Cooler_User")
    redemption = await sim.redeem("alice", "cooler_user", "hydrate", "pogchamp")
    (delivery,) = redemption.deliveries
    assert delivery.ok
    assert delivery.status == 204
    headers, raw = receiver.requests[-1]
    assert verify(headers, raw)
    assert headers["Twitch-Eventsub-Message-Type"] == "notification"
    body = json.loads(raw)
    assert list(body) == ["subscription", "event"]
    assert list(body["subscription"]) == [
        "id", "type", "version", "status", "cost", "condition", "transport", "created_at",
    ]  # fmt: skip
    event = body["event"]
    assert list(event) == [
        "id", "broadcaster_user_id", "broadcaster_user_login", "broadcaster_user_name", "user_id",
        "user_login", "user_name", "user_input", "status", "reward", "redeemed_at",
    ]  # fmt: skip
    assert event["reward"] == {
        "id": redemption.reward_id,
        "title": "Hydrate",
        "cost": 100,
        "prompt": "drink water",
    }
    assert (event["user_login"], event["user_name"], event["user_input"], event["status"]) == (
        "cooler_user",
        "Cooler_User",
        "pogchamp",
        "unfulfilled",
    )
    assert NANO_STAMP.fullmatch(event["redeemed_at"])
    again = await sim.eventsub.redeliver(delivery.message_id)
    headers2, raw2 = receiver.requests[-1]
    assert raw2 == raw
    assert again.ok
    assert headers2["Twitch-Eventsub-Message-Id"] == headers["Twitch-Eventsub-Message-Id"]
    assert headers2["Twitch-Eventsub-Message-Retry"] == "1"
    assert verify(headers2, raw2)
    await sim.eventsub.revoke(sub.id)
    headers3, raw3 = receiver.requests[-1]
    assert headers3["Twitch-Eventsub-Message-Type"] == "revocation"
    assert verify(headers3, raw3)
    assert json.loads(raw3)["subscription"]["status"] == "authorization_revoked"
    assert (await sim.redeem("alice", "cooler_user", "hydrate")).deliveries == []


async def test_send_to_any_callback_and_bad_secret(sim: Simulator, receiver: Receiver) -> None:
    """send() can target a callback with no subscription, fix id and timestamp, or sign wrongly."""
    event = payloads.follow_event(
        user=sim.add_user("fan"),
        broadcaster=sim.user("alice"),
        followed_at="2020-07-15T18:16:11.17106713Z",
    )
    with pytest.raises(NoSubscription):
        await sim.eventsub.send("channel.follow", event)
    (delivery,) = await sim.eventsub.send(
        "channel.follow",
        event,
        callback=receiver.url,
        secret=SECRET,
        message_id="m-1",
        timestamp="2019-11-16T10:11:12.634234626Z",
    )
    headers, raw = receiver.requests[-1]
    assert headers["Twitch-Eventsub-Message-Id"] == "m-1"
    assert headers["Twitch-Eventsub-Message-Timestamp"] == "2019-11-16T10:11:12.634234626Z"
    assert headers["Twitch-Eventsub-Subscription-Version"] == "2"
    sub = json.loads(raw)["subscription"]
    assert sub["condition"] == {
        "broadcaster_user_id": sim.user("alice").id,
        "moderator_user_id": sim.user("alice").id,
    }
    assert verify(headers, raw)
    assert delivery.ok
    await sim.eventsub.send(
        "channel.follow", event, callback=receiver.url, secret="another-secret-entirely"
    )
    headers, raw = receiver.requests[-1]
    assert not verify(headers, raw)
    assert verify(headers, raw, "another-secret-entirely")


async def test_world_events_reach_their_subscriptions(sim: Simulator, receiver: Receiver) -> None:
    """Stream online/offline, follow, sub, gifts, cheer and raid reach matching subscriptions."""
    alice = {"broadcaster_user_id": sim.channel("alice").id}
    sim.issue_token("mybot", ["moderator:read:followers"])
    for kind in (
        "stream.online",
        "stream.offline",
        "channel.subscribe",
        "channel.subscription.gift",
        "channel.cheer",
    ):
        assert (await subscribe(sim, receiver.url, kind, alice))[0] == 202
    follow = {**alice, "moderator_user_id": sim.user("mybot").id}
    assert (await subscribe(sim, receiver.url, "channel.follow", follow, version="2"))[0] == 202
    raid = {"to_broadcaster_user_id": sim.channel("alice").id}
    assert (await subscribe(sim, receiver.url, "channel.raid", raid))[0] == 202
    await sim.eventsub.wait_enabled(count=7)
    assert len(await sim.stream_online("alice")) == 1
    assert sim.channel("alice").live
    assert len(await sim.follow("alice", "fan")) == 1
    assert len(await sim.subscribe("alice", "fan", 2000)) == 1
    assert len(await sim.gift_subs("alice", "santa", ["kid1", "kid2"])) == 3
    assert len(await sim.gift_subs("alice", None, ["kid3"])) == 2
    assert len(await sim.cheer("alice", "fan", 100, "nice")) == 1
    assert len(await sim.raid("alice", "other_streamer", 42)) == 1
    assert len(await sim.stream_offline("alice")) == 1
    assert not sim.channel("alice").live
    events = [
        (h["Twitch-Eventsub-Subscription-Type"], json.loads(raw)["event"])
        for h, raw in receiver.requests
        if h["Twitch-Eventsub-Message-Type"] == "notification"
    ]
    kinds = [kind for kind, _ in events]
    assert kinds == [
        "stream.online", "channel.follow", "channel.subscribe", "channel.subscribe",
        "channel.subscribe", "channel.subscription.gift", "channel.subscribe",
        "channel.subscription.gift", "channel.cheer", "channel.raid", "stream.offline",
    ]  # fmt: skip
    by_kind = dict(events)
    assert list(by_kind["stream.online"]) == [
        "id", "broadcaster_user_id", "broadcaster_user_login", "broadcaster_user_name", "type",
        "started_at",
    ]  # fmt: skip
    assert list(by_kind["channel.follow"]) == [
        "user_id", "user_login", "user_name", "broadcaster_user_id", "broadcaster_user_login",
        "broadcaster_user_name", "followed_at",
    ]  # fmt: skip
    assert list(by_kind["channel.cheer"]) == [
        "is_anonymous", "user_id", "user_login", "user_name", "broadcaster_user_id",
        "broadcaster_user_login", "broadcaster_user_name", "message", "bits",
    ]  # fmt: skip
    assert by_kind["channel.raid"]["viewers"] == 42
    assert list(by_kind["channel.raid"])[:3] == [
        "from_broadcaster_user_id", "from_broadcaster_user_login", "from_broadcaster_user_name",
    ]  # fmt: skip
    anonymous = by_kind["channel.subscription.gift"]
    assert (anonymous["is_anonymous"], anonymous["user_id"], anonymous["cumulative_total"]) == (
        True,
        None,
        None,
    )
    gift = next(e for k, e in events if k == "channel.subscription.gift")
    assert (gift["total"], gift["tier"], gift["is_anonymous"], gift["user_login"]) == (
        2,
        "1000",
        False,
        "santa",
    )
    subscribe_event = next(e for k, e in events if k == "channel.subscribe")
    assert (subscribe_event["tier"], subscribe_event["is_gift"]) == ("2000", False)
    assert list(by_kind["stream.offline"]) == [
        "broadcaster_user_id",
        "broadcaster_user_login",
        "broadcaster_user_name",
    ]
    assert sim.channel("alice").subs.get(sim.user("kid3").id) is not None
