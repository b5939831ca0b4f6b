"""EventSub signatures, freshness and envelope parsing (twitch-reference.md §3), no I/O."""

from __future__ import annotations

import json

import pytest

from loyaltybot.eventsub import events as eventsub
from loyaltybot.eventsub.events import (
    Challenge,
    Cheer,
    Follow,
    Notification,
    OtherEvent,
    Raid,
    RedemptionAdded,
    Rejected,
    Revocation,
    StreamOffline,
    StreamOnline,
    Subscribe,
    SubscriptionGift,
)
from tests.eventsub_support import envelope, signed

pytest_plugins = ("tests.eventsub_fixtures",)  # helix, make_harness

# §3.3 vector 1 (twitch-rs/twitch_api verify_request), body exactly 458 bytes.
V1_SECRET = "secretabcd"
V1_ID = "ae2ff348-e102-16be-a3eb-6830c1bf38d2"
V1_TIMESTAMP = "2021-02-19T23:47:00.8091512Z"
V1_BODY = (
    b'{"subscription":{"id":"ae2ff348-e102-16be-a3eb-6830c1bf38d2","status":"enabled",'
    b'"type":"channel.follow","version":"1","condition":{"broadcaster_user_id":"44429626"},'
    b'"transport":{"method":"webhook","callback":"null"},"created_at":"2021-02-19T23:47:00.7621315Z"},'
    b'"event":{"user_id":"28408015","user_login":"testFromUser","user_name":"testFromUser",'
    b'"broadcaster_user_id":"44429626","broadcaster_user_login":"44429626",'
    b'"broadcaster_user_name":"testBroadcaster"}}'
)
V1_SIGNATURE = "sha256=d10f5bd9474b7ac7bd7105eb79c2d52768b4d0cd2a135982c3bf5a1d59a78823"

# §3.3 vector 2 (a Go Helix client's TestVerifyEventSubNotification).
V2_SECRET = "s3cRe7"
V2_ID = "e76c6bd4-55c9-4987-8304-da1588d8988b"
V2_TIMESTAMP = "2019-11-16T10:11:12.123Z"
V2_BODY = (
    b'{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-'
    b'a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow",'
    b'"version":"1","condition":{"broadcaster_user_id":"12826"},"transport":{"method":"webhook",'
    b'"callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.123Z"}}'
)
V2_SIGNATURE = "sha256=7e5a96480c29cdf834b371e7a5b049638cba6e425ea51b9b2a9fabf69bc5d227"

SECRET = "a-secret-of-20-chars"


def headers(message_id: str, timestamp: str, signature: str, kind: str) -> dict[str, str]:
    return {
        "Twitch-Eventsub-Message-Id": message_id,
        "Twitch-Eventsub-Message-Timestamp": timestamp,
        "Twitch-Eventsub-Message-Signature": signature,
        "Twitch-Eventsub-Message-Type": kind,
        "Twitch-Eventsub-Message-Retry": "0",
    }


def test_reference_vectors_sign_as_documented() -> None:
    """Both test vectors of §3.3 give exactly the documented signatures."""
    assert len(V1_BODY) == 458
    assert eventsub.sign(V1_SECRET, V1_ID, V1_TIMESTAMP, V1_BODY) == V1_SIGNATURE
    assert eventsub.sign(V2_SECRET, V2_ID, V2_TIMESTAMP, V2_BODY) == V2_SIGNATURE
    assert eventsub.signature_matches(V1_SECRET, V1_ID, V1_TIMESTAMP, V1_BODY, V1_SIGNATURE)


def test_reference_vector_verifies_at_its_own_time() -> None:
    """Vector 2 passes the whole check when 'now' is its timestamp, and is a challenge."""
    now = eventsub.parse_timestamp(V2_TIMESTAMP)
    message = eventsub.verify(
        headers(V2_ID, V2_TIMESTAMP, V2_SIGNATURE, "webhook_callback_verification"),
        V2_BODY,
        V2_SECRET,
        now + 5,
    )
    assert isinstance(message, Challenge)
    assert message.challenge == "pogchamp-kappa-360noscope-vohiyo"
    assert message.subscription.type == "channel.follow"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"secret": "secretabce"}, 403),  # wrong secret
        ({"body": V1_BODY.replace(b"28408015", b"28408016")}, 403),  # body changed
        ({"body": json.dumps(json.loads(V1_BODY)).encode()}, 403),  # re-serialised body
        ({"id": "ae2ff348-e102-16be-a3eb-6830c1bf38d3"}, 403),  # id changed
        ({"timestamp": "2021-02-19T23:47:01.8091512Z"}, 403),  # timestamp changed
        ({"signature": V1_SIGNATURE.upper()}, 403),  # not Twitch's form
        ({"signature": V1_SIGNATURE[:-2]}, 403),  # truncated
        ({"signature": "sha1=" + V1_SIGNATURE[7:]}, 403),
        ({"signature": "sha256=" + "é" * 64}, 403),  # non-ASCII must not raise
    ],
)
def test_any_change_breaks_the_signature(change: dict[str, object], status: int) -> None:
    """Changing the secret, any signed part or the signature's form is refused with 403."""
    secret = str(change.get("secret", V1_SECRET))
    body = change.get("body", V1_BODY)
    assert isinstance(body, bytes)
    request = headers(
        str(change.get("id", V1_ID)),
        str(change.get("timestamp", V1_TIMESTAMP)),
        str(change.get("signature", V1_SIGNATURE)),
        "notification",
    )
    now = eventsub.parse_timestamp(V1_TIMESTAMP)
    with pytest.raises(Rejected) as refused:
        eventsub.verify(request, body, secret, now)
    assert refused.value.status == status


def test_header_names_are_case_insensitive() -> None:
    """Lowercase header names verify as well as Twitch's capitalised ones."""
    lower = {
        k.lower(): v for k, v in headers(V1_ID, V1_TIMESTAMP, V1_SIGNATURE, "notification").items()
    }
    message = eventsub.verify(lower, V1_BODY, V1_SECRET, eventsub.parse_timestamp(V1_TIMESTAMP))
    assert isinstance(message, Notification)
    assert isinstance(message.event, Follow)


NOW = 1_700_000_000.0


def make(age: float = 0.0, **options: object) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        envelope(
            "stream.offline",
            {
                "broadcaster_user_id": "1",
                "broadcaster_user_login": "a",
                "broadcaster_user_name": "A",
            },
        )
    ).encode()
    request = signed(body, timestamp=eventsub.format_timestamp(NOW - age), secret=SECRET)
    return request.headers, body


@pytest.mark.parametrize(
    ("age", "ok"),
    [
        (0, True),
        (599, True),
        (601, False),
        (3600, False),
        (-299, True),
        (-301, False),
        (-86400, False),
    ],
)
def test_freshness_window(age: float, ok: bool) -> None:
    """Older than 10 minutes, or more than 5 minutes ahead of our clock: 403."""
    request, body = make(age)
    if ok:
        assert isinstance(eventsub.verify(request, body, SECRET, NOW), Notification)
    else:
        with pytest.raises(Rejected) as refused:
            eventsub.verify(request, body, SECRET, NOW)
        assert refused.value.status == 403


@pytest.mark.parametrize(
    ("drop", "status"),
    [
        ("Twitch-Eventsub-Message-Signature", 403),
        ("Twitch-Eventsub-Message-Id", 400),
        ("Twitch-Eventsub-Message-Type", 400),
        ("Twitch-Eventsub-Message-Timestamp", 403),
    ],
)
def test_missing_headers_are_refused(drop: str, status: int) -> None:
    """No signature or timestamp: 403 (nothing to trust); no id or type: 400."""
    request, body = make()
    del request[drop]
    with pytest.raises(Rejected) as refused:
        eventsub.verify(request, body, SECRET, NOW)
    assert refused.value.status == status


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"subscription": {}}',
        b'{"subscription": {"id": "x", "type": "stream.offline", "version": "1",'
        b' "status": "enabled"}}',
        json.dumps(envelope("channel.cheer", {"bits": "100"})).encode(),
        json.dumps(
            envelope(
                "channel.subscribe",
                {
                    "user_id": "1",
                    "user_login": "u",
                    "user_name": "U",
                    "broadcaster_user_id": "2",
                    "broadcaster_user_login": "b",
                    "broadcaster_user_name": "B",
                    "tier": "4000",
                },
            )
        ).encode(),
        json.dumps(
            envelope(
                "channel.follow",
                {
                    "user_id": "1",
                    "user_login": "not a login!",
                    "user_name": "U",
                    "broadcaster_user_id": "2",
                    "broadcaster_user_login": "b",
                    "broadcaster_user_name": "B",
                },
            )
        ).encode(),
    ],
)
def test_signed_but_malformed_bodies_get_400(body: bytes) -> None:
    """A correctly signed body that is not the envelope its type promises: 400."""
    request = signed(body, timestamp=eventsub.format_timestamp(NOW), secret=SECRET)
    with pytest.raises(Rejected) as refused:
        eventsub.verify(request.headers, body, SECRET, NOW)
    assert refused.value.status == 400


def test_unknown_message_type_is_400() -> None:
    """A signed message of a type Twitch does not send: 400."""
    request, body = make()
    request["Twitch-Eventsub-Message-Type"] = "surprise"
    request["Twitch-Eventsub-Message-Signature"] = eventsub.sign(
        SECRET,
        request["Twitch-Eventsub-Message-Id"],
        request["Twitch-Eventsub-Message-Timestamp"],
        body,
    )
    with pytest.raises(Rejected) as refused:
        eventsub.verify(request, body, SECRET, NOW)
    assert refused.value.status == 400


def test_timestamps_parse_with_nanoseconds_and_round_trip() -> None:
    """RFC 3339 with up to nine fraction digits and a zone; naive or odd forms are refused."""
    assert eventsub.parse_timestamp("2019-11-16T10:11:12.634234626Z") == pytest.approx(
        1573899072.634234626
    )
    assert eventsub.parse_timestamp("2019-11-16T11:11:12+01:00") == 1573899072.0
    stamp = eventsub.format_timestamp(1573899072.5)
    assert stamp == "2019-11-16T10:11:12.500000000Z"
    assert eventsub.parse_timestamp(stamp) == 1573899072.5
    for bad in (
        "2019-11-16T10:11:12",
        "2019-11-16",
        "yesterday",
        "2019-11-16T10:11:12.1234567890Z",
    ):
        with pytest.raises(ValueError, match="RFC 3339"):
            eventsub.parse_timestamp(bad)


# ---- typed events: the docs' example payloads (§3.8) ---------------------------------------

BROADCASTER = {
    "broadcaster_user_id": "1337",
    "broadcaster_user_login": "cool_user",
    "broadcaster_user_name": "Cool_User",
}


def parse(sub_type: str, event: dict[str, object]) -> object:
    return eventsub.parse_event(sub_type, event)


def test_redemption_payload() -> None:
    """The docs' redemption.add event becomes a typed redemption."""
    event = parse(
        eventsub.REDEMPTION_ADD,
        {
            "id": "17fa2df1-ad76-4804-bfa5-a40ef63efe63",
            **BROADCASTER,
            "user_id": "9001",
            "user_login": "cooler_user",
            "user_name": "Cooler_User",
            "user_input": "pogchamp",
            "status": "unfulfilled",
            "reward": {
                "id": "92af127c-7326-4483-a52b-b0da0be61c01",
                "title": "title",
                "cost": 100,
                "prompt": "reward prompt",
            },
            "redeemed_at": "2020-07-15T17:16:03.17106713Z",
        },
    )
    assert isinstance(event, RedemptionAdded)
    assert (event.user.id, event.user.login, event.user_input) == (
        "9001",
        "cooler_user",
        "pogchamp",
    )
    assert (event.reward.title, event.reward.cost, event.status) == ("title", 100, "unfulfilled")
    assert event.broadcaster.id == "1337"


def test_stream_follow_sub_gift_cheer_raid_payloads() -> None:
    """Every other subscribed type parses into its typed event, anonymity included."""
    online = parse(
        "stream.online",
        {"id": "9001", **BROADCASTER, "type": "live", "started_at": "2020-10-11T10:11:12.123Z"},
    )
    assert isinstance(online, StreamOnline)
    assert online.broadcaster.login == "cool_user"
    assert isinstance(parse("stream.offline", dict(BROADCASTER)), StreamOffline)
    viewer = {"user_id": "1234", "user_login": "cool_user", "user_name": "Cool_User"}
    follow = parse(
        "channel.follow", {**viewer, **BROADCASTER, "followed_at": "2020-07-15T18:16:11.17106713Z"}
    )
    assert isinstance(follow, Follow)
    assert follow.user.id == "1234"
    sub = parse("channel.subscribe", {**viewer, **BROADCASTER, "tier": "2000", "is_gift": False})
    assert isinstance(sub, Subscribe)
    assert (sub.tier, sub.is_gift) == (2, False)
    gift = parse(
        "channel.subscription.gift",
        {
            **viewer,
            **BROADCASTER,
            "total": 2,
            "tier": "1000",
            "cumulative_total": 284,
            "is_anonymous": False,
        },
    )
    assert isinstance(gift, SubscriptionGift)
    assert gift.user is not None
    assert gift.total == 2
    anonymous = parse(
        "channel.subscription.gift",
        {
            "user_id": None,
            "user_login": None,
            "user_name": None,
            **BROADCASTER,
            "total": 1,
            "tier": "3000",
            "cumulative_total": None,
            "is_anonymous": True,
        },
    )
    assert isinstance(anonymous, SubscriptionGift)
    assert anonymous.user is None
    cheer = parse(
        "channel.cheer",
        {"is_anonymous": False, **viewer, **BROADCASTER, "message": "pogchamp", "bits": 1000},
    )
    assert isinstance(cheer, Cheer)
    assert cheer.bits == 1000
    assert cheer.user is not None
    raid = parse(
        "channel.raid",
        {
            "from_broadcaster_user_id": "1234",
            "from_broadcaster_user_login": "cool_user",
            "from_broadcaster_user_name": "Cool_User",
            "to_broadcaster_user_id": "1337",
            "to_broadcaster_user_login": "cooler_user",
            "to_broadcaster_user_name": "Cooler_User",
            "viewers": 9001,
        },
    )
    assert isinstance(raid, Raid)
    assert (raid.raider.id, raid.broadcaster.id, raid.viewers) == ("1234", "1337", 9001)
    assert isinstance(parse("channel.update", {"broadcaster_user_id": "1"}), OtherEvent)


def test_revocation_is_typed() -> None:
    """The docs' revocation body becomes a Revocation carrying the reason."""
    body = (
        b'{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":'
        b'"authorization_revoked","type":"channel.follow","cost":1,"version":"1","condition":'
        b'{"broadcaster_user_id":"12826"},"transport":{"method":"webhook","callback":'
        b'"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z"}}'
    )
    request = signed(
        body, message_type="revocation", timestamp=eventsub.format_timestamp(NOW), secret=SECRET
    )
    message = eventsub.verify(request.headers, body, SECRET, NOW)
    assert isinstance(message, Revocation)
    assert message.subscription.status == "authorization_revoked"
    assert message.subscription.condition == {"broadcaster_user_id": "12826"}
