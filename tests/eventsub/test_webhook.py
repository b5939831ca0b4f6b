"""The EventSub webhook over real HTTP on loopback, on a real SQLite file (SPEC §6)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from structlog.testing import capture_logs

from loyaltybot.clock import FakeClock
from loyaltybot.config import Secret
from loyaltybot.db import jobs, open_store
from loyaltybot.eventsub import subscriptions
from loyaltybot.eventsub.events import format_timestamp
from loyaltybot.points.bank import Bank
from loyaltybot.twitch.helix import Helix
from loyaltybot.twitch.oauth import AppToken
from tests.eventsub_support import (
    BROADCASTER_ID,
    CHANNEL,
    CLIENT_ID,
    SECRET,
    ForwardReceiver,
    HelixStandIn,
    MakeHarness,
    broadcaster,
    envelope,
    redemption,
    reward,
    signed,
    user,
)

pytest_plugins = ("tests.eventsub_fixtures",)  # helix, make_harness

REDEEM = "channel.channel_points_custom_reward_redemption.add"
GRANT = reward("Buy 100", "grant_points", amount=100)


async def test_challenge_is_answered_with_the_raw_challenge(make_harness: MakeHarness) -> None:
    """A verification request gets 200, text/plain, and exactly the challenge string."""
    harness = await make_harness()
    before = await harness.snapshot()
    body = json.dumps(
        {"challenge": "pogchamp-kappa-360noscope-vohiyo", **envelope("stream.online", {})}
    )
    request = signed(
        body.encode(),
        message_type="webhook_callback_verification",
        timestamp=format_timestamp(harness.clock.now()),
    )
    status, text, content_type = await harness.post(request)
    assert (status, text, content_type) == (200, "pogchamp-kappa-360noscope-vohiyo", "text/plain")
    assert await harness.snapshot() == before


async def test_forged_stale_future_malformed_and_oversized_requests_change_nothing(
    make_harness: MakeHarness,
) -> None:
    """Each bad request gets its 4xx and leaves balances, ledger and queues as they were."""
    harness = await make_harness([GRANT])
    await harness.rewards.set_owned(CHANNEL, [("reward-1", "Buy 100")])  # type: ignore[union-attr]
    before = await harness.snapshot()

    assert (await harness.redeem(1, "Buy 100", message_id="m1"))[0] == 204  # baseline works
    assert await harness.balance(1) == 100
    await harness.settle()
    before = await harness.snapshot()

    assert await harness.send(REDEEM, redemption(1, "Buy 100"), secret="wrong-secret-123") == 403
    assert await harness.send(REDEEM, redemption(1, "Buy 100"), age=601) == 403
    assert await harness.send(REDEEM, redemption(1, "Buy 100"), age=-400) == 403

    good = signed(
        json.dumps(envelope(REDEEM, redemption(1, "Buy 100"))).encode(),
        timestamp=format_timestamp(harness.clock.now()),
    )
    for name in ("Twitch-Eventsub-Message-Id", "Twitch-Eventsub-Message-Type"):
        headers = {k: v for k, v in good.headers.items() if k != name}
        assert (await harness.post(type(good)(headers, good.body)))[0] == 400
    no_signature = {
        k: v for k, v in good.headers.items() if k != "Twitch-Eventsub-Message-Signature"
    }
    assert (await harness.post(type(good)(no_signature, good.body)))[0] == 403
    tampered = good.body.replace(b'"user1"', b'"user2"')
    assert (await harness.post(type(good)(good.headers, tampered)))[0] == 403

    now = format_timestamp(harness.clock.now())
    for body in (b"{not json", b"[]", json.dumps(envelope(REDEEM, {"id": "x"})).encode()):
        assert (await harness.post(signed(body, timestamp=now)))[0] == 400
    huge = json.dumps(envelope(REDEEM, redemption(1, "Buy 100", user_input="x" * 70_000))).encode()
    assert (await harness.post(signed(huge, timestamp=now)))[0] == 413

    assert await harness.snapshot() == before
    assert harness.service is not None
    assert harness.dispatcher.stats.rejected == {403: 5, 400: 5, 413: 1}


async def test_oversized_body_without_content_length_is_refused(make_harness: MakeHarness) -> None:
    """A chunked body that grows past the limit is cut off with 413, not read whole."""
    harness = await make_harness([GRANT])
    before = await harness.snapshot()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 4096

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            harness.url, data=chunks(), headers={"Twitch-Eventsub-Message-Type": "notification"}
        ) as response,
    ):
        assert response.status == 413
    assert await harness.snapshot() == before


async def test_a_redemption_delivered_five_times_and_after_a_restart_has_one_effect(
    make_harness: MakeHarness,
) -> None:
    """5 concurrent deliveries, one after a restart, one under a new id: a single effect."""
    harness = await make_harness([GRANT])
    await harness.rewards.set_owned(CHANNEL, [("reward-1", "Buy 100")])  # type: ignore[union-attr]
    event = redemption(1, "Buy 100")
    body = json.dumps(envelope(REDEEM, event)).encode()
    request = signed(body, message_id="msg-once", timestamp=format_timestamp(harness.clock.now()))

    statuses = await asyncio.gather(*(harness.post(request) for _ in range(5)))
    assert [s[0] for s in statuses] == [204] * 5
    await harness.settle()
    assert await harness.balance(1) == 100

    await harness.restart()
    assert (await harness.post(request))[0] == 204
    assert await harness.send(REDEEM, event, message_id="another-id") == 204  # same redemption
    await harness.settle()

    assert await harness.balance(1) == 100
    rows = await harness.query("SELECT amount, type, ref FROM ledger")
    assert rows == [(100, "reward", f"redemption:{event['id']}")]
    assert harness.helix.status_updates() == [(event["id"], "FULFILLED")]
    assert harness.service is not None
    assert harness.dispatcher.stats.duplicates == 1


async def test_revocation_is_logged_and_keeps_state(make_harness: MakeHarness) -> None:
    """A revocation answers 204, is logged once with its reason, and touches no data."""
    harness = await make_harness([GRANT])
    await harness.redeem(1, "Buy 100")
    await harness.settle()
    before = await harness.snapshot()
    body = json.dumps(
        {
            "subscription": {
                **envelope("channel.follow", {})["subscription"],
                "status": "authorization_revoked",
            }
        }
    ).encode()
    request = signed(
        body, message_type="revocation", timestamp=format_timestamp(harness.clock.now())
    )
    with capture_logs() as logs:
        assert (await harness.post(request))[0] == 204
        assert (await harness.post(request))[0] == 204  # redelivered: not logged again
    revoked = [e for e in logs if e["event"] == "eventsub_subscription_revoked"]
    assert len(revoked) == 1
    assert (revoked[0]["status"], revoked[0]["subscription_type"]) == (
        "authorization_revoked",
        "channel.follow",
    )
    assert harness.service is not None
    assert list(harness.dispatcher.revoked) == ["f1c2a387-161a-49f9-a165-0f21d7a4e1c4"]
    after = await harness.snapshot()
    assert after[:2] == before[:2]
    assert after[3:] == before[3:]
    assert after[2] == before[2] + 1


async def test_stream_state_drives_the_live_listener(make_harness: MakeHarness) -> None:
    """online/offline reach the listener once each; a late, older message is ignored."""
    harness = await make_harness()
    online = {"id": "9001", **broadcaster(), "type": "live", "started_at": "2020-10-11T10:11:12Z"}
    assert await harness.send("stream.online", online, message_id="on-1", age=30) == 204
    assert await harness.send("stream.online", online, message_id="on-1", age=30) == 204
    assert await harness.send("stream.offline", broadcaster(), message_id="off-1", age=10) == 204
    assert await harness.send("stream.online", online, message_id="on-0", age=60) == 204  # older
    assert harness.live == [(CHANNEL, True), (CHANNEL, False)]
    assert harness.service is not None
    assert harness.stream.live(CHANNEL) is False
    [(twitch_id,)] = await harness.query("SELECT twitch_id FROM channels WHERE login = ?", CHANNEL)
    assert twitch_id == BROADCASTER_ID  # learned from the first event


async def test_events_for_unknown_channels_are_acknowledged_and_ignored(
    make_harness: MakeHarness,
) -> None:
    """A signed event for a channel we do not serve: 204, no balance moves."""
    harness = await make_harness([GRANT])
    event = redemption(1, "Buy 100")
    event.update(broadcaster("stranger", "999"))
    assert await harness.send(REDEEM, event) == 204
    assert await harness.balance(1) == 0
    assert await harness.query("SELECT count(*) FROM redemptions") == [(0,)]


async def test_the_answer_does_not_wait_for_slow_work(make_harness: MakeHarness) -> None:
    """The webhook answers before a slow forward has finished (it runs after the 2xx)."""
    receiver = ForwardReceiver(behaviour=["slow"], slow_seconds=0.5)
    await receiver.start()
    try:
        harness = await make_harness([reward("Ping", "forward", url=receiver.url, retries=0)])
        status, _ = await harness.redeem(1, "Ping")
        assert status == 204
        assert receiver.late == []
        await harness.settle()
        assert len(receiver.late) == 1
    finally:
        await receiver.close()


async def test_pending_work_survives_a_restart(make_harness: MakeHarness) -> None:
    """A status update Twitch refused before a restart is sent by the next process."""
    harness = await make_harness([GRANT], backoff=lambda attempts: 3600.0)
    await harness.rewards.set_owned(CHANNEL, [("reward-1", "Buy 100")])  # type: ignore[union-attr]
    harness.helix.fail["/channel_points/custom_rewards/redemptions"] = [503]
    _, redemption_id = await harness.redeem(1, "Buy 100")
    await harness.settle()  # one failed attempt; the next is an hour away
    [(attempts, state)] = await harness.query("SELECT attempts, state FROM pending_work")
    assert (attempts, state) == (1, "pending")

    await harness.restart()
    harness.clock.advance(3601)
    assert harness.service is not None
    assert harness.worker is not None
    harness.worker.wake()
    await harness.settle()
    assert harness.helix.status_updates() == [(redemption_id, "FULFILLED")] * 2  # 503, then ok
    assert await harness.query("SELECT count(*) FROM pending_work") == [(0,)]


async def test_work_that_keeps_failing_is_kept_as_dead(make_harness: MakeHarness) -> None:
    """Helix refusing for good (404) buries the status update as 'dead', visible, not lost."""
    harness = await make_harness([GRANT])
    await harness.rewards.set_owned(CHANNEL, [("reward-1", "Buy 100")])  # type: ignore[union-attr]
    harness.helix.fail["/channel_points/custom_rewards/redemptions"] = [404]
    await harness.redeem(1, "Buy 100")
    await harness.settle()
    rows = await harness.query("SELECT kind, state, last_error FROM pending_work")
    assert rows == [
        (
            "redemption_status",
            "dead",
            "PATCH /channel_points/custom_rewards/redemptions: stand-in fault",
        )
    ]
    assert await harness.balance(1) == 100  # the reward itself stands


# ---- subscriptions ----------------------------------------------------------------------------


def app_helix(session: aiohttp.ClientSession, stand_in: HelixStandIn) -> Helix:
    token = AppToken(session, stand_in.auth_url, CLIENT_ID, Secret("client-secret"))
    return Helix(session, stand_in.url, CLIENT_ID, token, attempts=1)


async def test_ensure_subscriptions_creates_the_missing_and_leaves_the_rest(
    make_harness: MakeHarness,
    helix: HelixStandIn,
) -> None:
    """Missing ones are created and verified, our dead one replaced, the rest left alone."""
    harness = await make_harness()
    mine = {"method": "webhook", "callback": harness.url}
    helix.subscriptions = [
        {
            "id": "healthy",
            "status": "enabled",
            "type": "stream.online",
            "version": "1",
            "condition": {"broadcaster_user_id": BROADCASTER_ID},
            "transport": mine,
        },
        {
            "id": "dead",
            "status": "authorization_revoked",
            "type": "channel.cheer",
            "version": "1",
            "condition": {"broadcaster_user_id": BROADCASTER_ID},
            "transport": mine,
        },
        {
            "id": "foreign",
            "status": "enabled",
            "type": "channel.cheer",
            "version": "1",
            "condition": {"broadcaster_user_id": BROADCASTER_ID},
            "transport": {"method": "webhook", "callback": "https://elsewhere.example/cb"},
        },
    ]
    async with aiohttp.ClientSession() as session:
        api = app_helix(session, helix)
        ids = await subscriptions.resolve_broadcasters(api, [CHANNEL, "nobody_here"])
        assert ids == {CHANNEL: BROADCASTER_ID}
        report = await subscriptions.ensure_subscriptions(
            api, callback=harness.url, secret=SECRET, broadcasters=ids
        )
        assert (report.present, len(report.created), report.replaced, report.failed) == (
            1,
            7,
            1,
            [],
        )
        await helix.verified()
        assert {s["status"] for s in helix.subscriptions} == {"enabled"}
        by_type = {(s["type"], s["transport"]["callback"]): s for s in helix.subscriptions}
        assert "dead" not in {s["id"] for s in helix.subscriptions}
        assert by_type[("channel.cheer", "https://elsewhere.example/cb")]["id"] == "foreign"
        follow = by_type[("channel.follow", harness.url)]
        assert follow["version"] == "2"
        assert follow["condition"] == {
            "broadcaster_user_id": BROADCASTER_ID,
            "moderator_user_id": BROADCASTER_ID,
        }
        raid = by_type[("channel.raid", harness.url)]
        assert raid["condition"] == {"to_broadcaster_user_id": BROADCASTER_ID}

        again = await subscriptions.ensure_subscriptions(
            api, callback=harness.url, secret=SECRET, broadcasters=ids
        )
        assert (again.present, again.created, again.replaced) == (8, [], 0)


async def test_a_refused_subscription_is_reported_and_the_rest_go_on(
    make_harness: MakeHarness,
    helix: HelixStandIn,
) -> None:
    """Twitch refusing one type (scope not granted) fails only that one."""
    harness = await make_harness()
    helix.fail["/eventsub/subscriptions"] = [0, 403]  # the list works, the first create fails
    async with aiohttp.ClientSession() as session:
        report = await subscriptions.ensure_subscriptions(
            app_helix(session, helix),
            callback=harness.url,
            secret=SECRET,
            broadcasters={CHANNEL: BROADCASTER_ID},
        )
    assert len(report.failed) == 1
    assert len(report.created) == 7
    assert report.failed[0][:2] == (CHANNEL, "channel.channel_points_custom_reward_redemption.add")
    assert subscriptions.describe(report)[0].startswith("#alice channel.channel_points")


async def test_broadcaster_ids_are_kept(make_harness: MakeHarness) -> None:
    """Ids given by the daemon are stored and route events after a restart."""
    harness = await make_harness([GRANT])
    assert harness.service is not None
    await harness.dispatcher.set_broadcaster_ids({CHANNEL: "4242"})
    await harness.restart()
    event = redemption(1, "Buy 100")
    event.update(broadcaster("renamed_alice", "4242"))  # the login no longer matches
    assert await harness.send(REDEEM, event, message_id=str(uuid.uuid4())) == 204
    assert await harness.balance(1) == 100


async def test_every_piece_of_work_runs_exactly_once(make_harness: MakeHarness) -> None:
    """Forty redemptions at once: forty status updates, none twice, none missing."""
    harness = await make_harness([GRANT])
    await harness.rewards.set_owned(CHANNEL, [("reward-1", "Buy 100")])  # type: ignore[union-attr]
    sent = await asyncio.gather(*(harness.redeem(n, "Buy 100") for n in range(40)))
    await harness.settle()
    assert sorted(harness.helix.status_updates()) == sorted((rid, "FULFILLED") for _, rid in sent)
    assert await harness.query("SELECT count(*) FROM pending_work") == [(0,)]


async def test_the_worker_never_runs_an_item_twice(db_path: Path, clock: FakeClock) -> None:
    """Each item runs once, even when it finishes while the worker reads what is due."""
    store = await open_store(db_path, clock=clock)
    runs: list[int] = []

    async def run(item: jobs.WorkItem) -> None:
        await asyncio.sleep((item.id % 7) / 2000)  # finishing at scattered moments
        runs.append(item.id)

    worker = jobs.Worker(store, clock, {"noop": jobs.WorkKind(run)}, concurrency=3)
    try:
        await Bank(store).ensure_channels([CHANNEL])
        worker.start()
        for _ in range(30):
            await asyncio.gather(
                *(store.write(lambda tx: jobs.enqueue(tx, "noop", 1, {})) for _ in range(20))
            )
            await asyncio.sleep(0.003)
        async with asyncio.timeout(10):
            await worker.wait_idle()
    finally:
        await worker.close()
        await store.close()
    assert len(runs) == 600
    assert len(set(runs)) == 600


async def test_a_failing_notification_spoils_none_of_its_neighbours(
    make_harness: MakeHarness,
) -> None:
    """One failing notification in a shared commit gets 500 and no trace; the rest apply."""
    harness = await make_harness([GRANT])
    assert harness.store is not None
    assert harness.bank is not None
    channel_id = harness.bank.channel_id(CHANNEL)
    await harness.store.write(
        lambda tx: tx.conn.execute(
            "INSERT INTO channel_settings (channel_id, key, value, owner, updated_at)"
            " VALUES (?, 'follow_bonus', '{broken', 'dashboard', 0)",
            (channel_id,),
        )
    )
    follow = {**user(9), **broadcaster()}

    async def redeem(n: int) -> int:
        return (await harness.redeem(n, "Buy 100"))[0]

    codes = await asyncio.gather(
        *(redeem(n) for n in range(5)),
        harness.send("channel.follow", follow, message_id="follow-1"),
        *(redeem(n) for n in range(5, 10)),
    )
    assert codes == [204] * 5 + [500] + [204] * 5
    assert [await harness.balance(n) for n in range(10)] == [100] * 10
    assert await harness.query(
        "SELECT count(*) FROM processed_events WHERE event_id = 'follow-1'"
    ) == [(0,)]
    await harness.store.write(
        lambda tx: tx.conn.execute("DELETE FROM channel_settings WHERE key = 'follow_bonus'")
    )
    assert await harness.send("channel.follow", follow, message_id="follow-1") == 204


async def test_pruning_forgets_only_what_can_no_longer_matter(make_harness: MakeHarness) -> None:
    """Pruning drops only old ids, spent cooldowns and month-old dead work; replays stay out."""
    harness = await make_harness([reward("Hi", "grant_points", amount=1, cooldown_seconds=60)])
    await harness.rewards.set_owned(CHANNEL, [("reward-1", "Hi")])  # type: ignore[union-attr]
    harness.helix.fail["/channel_points/custom_rewards/redemptions"] = [404]
    event = redemption(1, "Hi")
    assert await harness.send(REDEEM, event, message_id="old") == 204
    await harness.settle()
    assert await harness.query("SELECT state FROM pending_work") == [("dead",)]
    harness.clock.advance(8 * 24 * 3600)
    assert await harness.send(REDEEM, redemption(2, "Hi"), message_id="new") == 204
    await harness.settle()
    assert harness.service is not None
    await harness.prune()
    assert await harness.query("SELECT event_id FROM processed_events") == [("new",)]
    assert await harness.query("SELECT user_id FROM reward_cooldowns") == [("1002",)]
    assert await harness.query("SELECT count(*) FROM pending_work") == [(1,)]  # 8 days old
    harness.clock.advance(31 * 24 * 3600)
    await harness.prune()
    assert await harness.query("SELECT count(*) FROM pending_work") == [(0,)]
    assert await harness.send(REDEEM, event, message_id="old", age=8 * 24 * 3600) == 403
    assert await harness.balance(1) == 1


async def test_types_we_do_not_act_on_are_acknowledged(make_harness: MakeHarness) -> None:
    """A signed event of a type we do not act on: 204, logged as ignored, no balance moves."""
    harness = await make_harness()
    with capture_logs() as logs:
        assert await harness.send("channel.update", {**broadcaster(), "title": "x"}) == 204
    assert [e["subscription_type"] for e in logs if e["event"] == "eventsub_event_ignored"] == [
        "channel.update"
    ]
    assert await harness.query("SELECT count(*) FROM ledger") == [(0,)]
