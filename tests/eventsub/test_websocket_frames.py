"""EventSub over WebSocket, the pure parts: frames, the catalog of kinds, which bonuses a
channel subscribes to, the keepalive slack and close codes (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loyaltybot.eventsub import events
from loyaltybot.eventsub.events import (
    Cheer,
    Follow,
    Malformed,
    Notification,
    Raid,
    RedemptionAdded,
    Revocation,
    StreamOffline,
    StreamOnline,
    Subscribe,
    SubscriptionGift,
)
from loyaltybot.eventsub.frames import Keepalive, Reconnect, Welcome, parse_frame
from loyaltybot.eventsub.kinds import BY_EVENT, KINDS, kinds_of
from loyaltybot.eventsub.websocket import CLOSE_CODES, describe_close, slack
from loyaltybot.features.bonuses.rules import events_switched_on
from loyaltybot.settings import ChannelSettings
from loyaltybot.twitch.tokens import BROADCASTER_SCOPES

# Verbatim from twitch-reference.md §7.2 (the docs' examples).
WELCOME = (
    '{"metadata":{"message_id":"96a3f3b5-5dec-4eed-908e-e11ee657416c","message_type":'
    '"session_welcome","message_timestamp":"2023-07-19T14:56:51.634234626Z"},"payload":'
    '{"session":{"id":"AQoQILE98gtqShGmLD7AM6yJThAB","status":"connected","connected_at":'
    '"2023-07-19T14:56:51.616329898Z","keepalive_timeout_seconds":10,"reconnect_url":null}}}'
)
KEEPALIVE = (
    '{"metadata":{"message_id":"84c1e79a-2a4b-4c13-ba0b-4312293e9308","message_type":'
    '"session_keepalive","message_timestamp":"2023-07-19T10:11:12.634234626Z"},"payload":{}}'
)
NOTIFICATION = (
    '{"metadata":{"message_id":"befa7b53-d79d-478f-86b9-120f112b044e","message_type":'
    '"notification","message_timestamp":"2022-11-16T10:11:12.464757833Z","subscription_type":'
    '"channel.follow","subscription_version":"1"},"payload":{"subscription":{"id":'
    '"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"channel.follow",'
    '"version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},"transport":{"method":'
    '"websocket","session_id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB"},"created_at":'
    '"2022-11-16T10:11:12.464757833Z"},"event":{"user_id":"1337","user_login":"awesome_user",'
    '"user_name":"Awesome_User","broadcaster_user_id":"12826","broadcaster_user_login":'
    '"twitch","broadcaster_user_name":"Twitch","followed_at":"2023-07-15T18:16:11.17106713Z"}}}'
)
RECONNECT = (
    '{"metadata":{"message_id":"84c1e79a-2a4b-4c13-ba0b-4312293e9308","message_type":'
    '"session_reconnect","message_timestamp":"2022-11-18T09:10:11.634234626Z"},"payload":'
    '{"session":{"id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB","status":"reconnecting",'
    '"keepalive_timeout_seconds":null,"reconnect_url":"wss://eventsub.wss.twitch.tv?...",'
    '"connected_at":"2022-11-16T10:11:12.634234626Z"}}}'
)
REVOCATION = (
    '{"metadata":{"message_id":"84c1e79a-2a4b-4c13-ba0b-4312293e9308","message_type":'
    '"revocation","message_timestamp":"2022-11-16T10:11:12.464757833Z","subscription_type":'
    '"channel.follow","subscription_version":"1"},"payload":{"subscription":{"id":'
    '"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"authorization_revoked","type":'
    '"channel.follow","version":"1","cost":1,"condition":{"broadcaster_user_id":"12826"},'
    '"transport":{"method":"websocket","session_id":"AQoQexAWVYKSTIu4ec_2VAxyuhAB"},'
    '"created_at":"2022-11-16T10:11:12.464757833Z"}}}'
)


# ---- frames ---------------------------------------------------------------------------------


def test_the_docs_welcome_gives_the_session_and_its_keepalive() -> None:
    """session_welcome: the session id that goes into every subscription, and the window."""
    assert parse_frame(WELCOME) == Welcome(
        "96a3f3b5-5dec-4eed-908e-e11ee657416c", "AQoQILE98gtqShGmLD7AM6yJThAB", 10
    )


def test_the_docs_keepalive_and_reconnect_are_typed() -> None:
    """session_keepalive is a sign of life; session_reconnect carries its URL unchanged."""
    assert parse_frame(KEEPALIVE) == Keepalive("84c1e79a-2a4b-4c13-ba0b-4312293e9308")
    reconnect = parse_frame(RECONNECT)
    assert isinstance(reconnect, Reconnect)
    assert reconnect.url == "wss://eventsub.wss.twitch.tv?..."


def test_the_docs_notification_is_the_same_notification_as_a_webhooks() -> None:
    """A notification becomes the dispatcher's Notification with its typed event."""
    message = parse_frame(NOTIFICATION)
    assert isinstance(message, Notification)
    assert message.message_id == "befa7b53-d79d-478f-86b9-120f112b044e"
    assert message.subscription.type == "channel.follow"
    assert message.subscription.callback is None
    assert isinstance(message.event, Follow)
    assert (message.event.user.login, message.event.broadcaster.id) == ("awesome_user", "12826")
    assert message.timestamp == events.parse_timestamp("2022-11-16T10:11:12.464757833Z")


def test_the_docs_revocation_names_its_subscription_and_reason() -> None:
    """revocation: the subscription and Twitch's reason, as for webhooks."""
    message = parse_frame(REVOCATION)
    assert isinstance(message, Revocation)
    assert (message.subscription.type, message.subscription.status) == (
        "channel.follow",
        "authorization_revoked",
    )


def _mutated(text: str, change: Any) -> str:
    data = json.loads(text)
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"metadata": {}}', "no metadata or payload"),
        ("[" * 100_000, "nested too deeply"),
        ("x" * 300_000, "too large"),
        (_mutated(KEEPALIVE, lambda d: d["metadata"].pop("message_id")), "message_id"),
        (_mutated(KEEPALIVE, lambda d: d["metadata"].update(message_type="chat")), "unknown"),
        (
            _mutated(WELCOME, lambda d: d["payload"]["session"].pop("keepalive_timeout_seconds")),
            "keepalive_timeout_seconds",
        ),
        (
            _mutated(RECONNECT, lambda d: d["payload"]["session"].update(reconnect_url="http://x")),
            "reconnect_url",
        ),
        (
            _mutated(NOTIFICATION, lambda d: d["metadata"].update(message_timestamp="yesterday")),
            "message_timestamp",
        ),
        (_mutated(NOTIFICATION, lambda d: d["payload"].pop("event")), "without an event"),
        (
            _mutated(NOTIFICATION, lambda d: d["payload"]["event"].pop("user_login")),
            "user_login",
        ),
        (_mutated(NOTIFICATION, lambda d: d["metadata"].update(message_id="a\nb")), "printable"),
    ],
)
def test_a_bad_frame_is_refused_with_a_short_reason(frame: str, reason: str) -> None:
    """Anything that is not what its type promises is Malformed, saying why in a few words
    (the transport logs that line and changes nothing)."""
    with pytest.raises(Malformed) as refused:
        parse_frame(frame)
    assert reason in str(refused.value)
    assert len(str(refused.value)) < 100


# ---- the catalog of kinds -------------------------------------------------------------------


def test_every_event_class_has_one_kind_with_twitchs_condition() -> None:
    """The conditions of reference §3.7/§7.6: follow v2 names the broadcaster as moderator;
    raids are those to the channel."""
    assert {k.event for k in KINDS} == {
        RedemptionAdded,
        StreamOnline,
        StreamOffline,
        Follow,
        Subscribe,
        SubscriptionGift,
        Cheer,
        Raid,
    }
    assert BY_EVENT[Follow].version == "2"
    assert BY_EVENT[Follow].condition("42") == {
        "broadcaster_user_id": "42",
        "moderator_user_id": "42",
    }
    assert BY_EVENT[Raid].condition("42") == {"to_broadcaster_user_id": "42"}
    body = BY_EVENT[RedemptionAdded].body("42", {"method": "websocket", "session_id": "S"})
    assert body == {
        "type": "channel.channel_points_custom_reward_redemption.add",
        "version": "1",
        "condition": {"broadcaster_user_id": "42"},
        "transport": {"method": "websocket", "session_id": "S"},
    }


def test_kinds_keep_the_creation_order_whatever_the_order_asked() -> None:
    """Redemptions first, then stream state, then bonuses; unknown classes are left out."""
    assert [k.event for k in kinds_of([Raid, StreamOnline, RedemptionAdded, int])] == [
        RedemptionAdded,
        StreamOnline,
        Raid,
    ]


def test_auth_asks_the_broadcaster_for_every_scope_a_subscription_needs() -> None:
    """`loyaltybot auth --channel C` asks for BROADCASTER_SCOPES: each kind is covered."""
    for kind in KINDS:
        if kind.scopes:
            assert set(kind.scopes) & set(BROADCASTER_SCOPES), kind.type


# ---- which bonuses a channel needs ----------------------------------------------------------


def test_only_the_bonuses_switched_on_are_wanted() -> None:
    """A bonus of 0 is off and needs no subscription; any tier of subs turns subs on."""
    assert events_switched_on(ChannelSettings()) == frozenset()
    on = ChannelSettings(follow_bonus=5, sub_bonus_tier3=1, raid_bonus=2)
    assert events_switched_on(on) == {Follow, Subscribe, Raid}
    every = ChannelSettings(
        follow_bonus=1, sub_bonus_tier1=1, gift_bonus=1, cheer_bonus_per_100=1, raid_bonus=1
    )
    assert events_switched_on(every) == {Follow, Subscribe, SubscriptionGift, Cheer, Raid}


# ---- timing and close codes -----------------------------------------------------------------


def test_the_slack_is_a_few_seconds_and_never_more_than_half_the_window() -> None:
    """Twitch's windows (10..600 s) get 5 s more; the short ones of tests get half."""
    assert slack(10) == slack(30) == slack(600) == 5.0
    assert slack(1) == 0.5


def test_every_close_code_of_the_reference_is_explained() -> None:
    """4000..4007 each have their meaning for the operator; others say what they can."""
    assert sorted(CLOSE_CODES) == list(range(4000, 4008))
    assert describe_close(4003, "connection unused") == (
        "close 4003: Twitch closed an unused connection (no subscription within 10 s)"
        " (connection unused)"
    )
    assert describe_close(1006, "") == "close 1006: the connection was closed"
