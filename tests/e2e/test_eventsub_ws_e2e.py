"""Channel points without a public address: EventSub over WebSocket (SPEC §6.1), with the
real daemon against the simulator's EventSub WebSocket server, from an empty database.

The streamer's setup is what an operator writes: a config file with no public URL, the
broadcaster's token, a reward the bot owns on Twitch. Viewers redeem on Twitch; Twitch
misbehaves the ways reference §7 allows (duplicates, silence, session_reconnect,
revocation, dropped connections); the books are audited after each scenario.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from loyaltybot.config import load_config
from loyaltybot.simulator import BOT_SCOPES, BROADCASTER_SCOPES, Simulator
from loyaltybot.simulator.eventsub_ws import WsDelivery, WsSession
from loyaltybot.simulator.server import REDEMPTION_ADD
from tests.e2e.conftest import CLIENT_ID, CLIENT_SECRET, RunningBot, StartBot, audit

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
REWARD = "Buy 100 cookies"
BASIC = {REDEMPTION_ADD, "stream.online", "stream.offline"}


def write_config(
    path: Path, sim: Simulator, *, broadcaster_token: str | None = None, channel: str = ""
) -> Path:
    """config.toml as an operator at home writes it: no public URL, no webhook secret."""
    bot_token = sim.issue_token("mybot", scopes=list(BOT_SCOPES))
    token = f'broadcaster_token = "{broadcaster_token}"\n' if broadcaster_token else ""
    secret = f'client_secret = "{CLIENT_SECRET}"\n'  # the dashboard's login needs it
    path.write_text(
        f'[database]\npath = "{path.parent / "bot.db"}"\n'
        f'[twitch]\nclient_id = "{CLIENT_ID}"\n{secret}'
        f'bot_login = "mybot"\nbot_token = "{bot_token}"\n'
        f'irc_url = "{sim.irc_url}"\napi_url = "{sim.api_url}"\nauth_url = "{sim.auth_url}"\n'
        f'eventsub_ws_url = "{sim.eventsub_ws_url}"\n'
        '[web]\nlisten = "127.0.0.1:0"\n'
        '[channels.alice]\ncurrency_name = "cookie"\ncurrency_name_plural = "cookies"\n'
        f"{token}{channel}"
        f'[[channels.alice.rewards]]\ntitle = "{REWARD}"\naction = "grant_points"\namount = 100\n'
    )
    return path


async def start(
    sim: Simulator, start_bot: StartBot, tmp_path: Path, *, channel: str = ""
) -> RunningBot:
    """The daemon with alice's token and the reward the bot owns, subscribed."""
    sim.add_reward("alice", REWARD, cost=500, client_id=CLIENT_ID)
    token = sim.issue_token("alice", scopes=list(BROADCASTER_SCOPES))
    path = write_config(tmp_path / "config.toml", sim, broadcaster_token=token, channel=channel)
    bot = await start_bot(config=load_config(path))
    await sim.eventsub_ws.wait_enabled(3, timeout=10)
    return bot


async def until(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not {what} within {within} s")


async def points(bot: RunningBot, login: str) -> int:
    record = await bot.daemon.bank.viewer("alice", login)
    return 0 if record is None else record.points


async def credited(bot: RunningBot, login: str, amount: int, within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if await points(bot, login) == amount:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{login} has {await points(bot, login)}, not {amount}")


async def ask(sim: Simulator, login: str, text: str) -> str:
    mark = len(sim.sent)
    await sim.say("alice", login, text)
    return (await sim.wait_for_reply("alice", contains=f"@{login}", after=mark)).text


async def metrics(bot: RunningBot) -> dict[str, float]:
    """The per-transport counters from /metrics, as an operator scrapes them."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{bot.daemon.web_url}/metrics") as response,
    ):
        text = await response.text()
    pattern = r'^loyaltybot_eventsub_transport_total\{transport="websocket",what="(\w+)"\} (\S+)$'
    return {what: float(value) for what, value in re.findall(pattern, text, re.M)}


def sent_over_websocket(sim: Simulator, redemption_id: str) -> list[WsDelivery]:
    """What the simulator sent (or withheld) on WebSocket sessions for this redemption."""
    return [
        d
        for d in sim.eventsub_ws.deliveries
        if d.message_type == "notification"
        and not d.duplicate
        and d.data["payload"]["event"].get("id") == redemption_id
    ]


def session_of(sim: Simulator) -> WsSession:
    [session] = sim.eventsub_ws.open_sessions()
    return session


def enabled_types(sim: Simulator, session: WsSession) -> set[str]:
    return {s.type for s in sim.eventsub_ws.subscriptions_of(session.id)}


async def audited(bot: RunningBot) -> None:
    if not bot.task.done():
        assert await bot.stop() == 0
    assert await audit(bot.config.database.path) == []


# ---- scenarios --------------------------------------------------------------------------------


async def test_subscribes_within_the_deadline_to_what_the_channel_needs(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """On the welcome, with alice's own token, inside Twitch's 10 s: redemptions, stream
    state, and of the bonuses only the follow bonus, the one switched on."""
    bot = await start(sim, start_bot, tmp_path, channel="follow_bonus = 25\n")
    await sim.eventsub_ws.wait_enabled(4, timeout=10)
    session = session_of(sim)
    subs = sim.eventsub_ws.subscriptions_of(session.id)
    assert {s.type for s in subs} == BASIC | {"channel.follow"}
    assert {s.user_id for s in subs} == {sim.user("alice").id}
    connected = _seconds(session.connected_at)
    assert all(_seconds(s.created_at) - connected < 10 for s in subs)
    await asyncio.sleep(0.5)
    assert not session.closed  # no 4003: the connection is in use
    state = bot.daemon.dispatcher.status.channel("alice")
    assert (state.transport, state.state) == ("websocket", "connected")
    assert state.session_id == session.id
    await sim.follow("alice", "fan")
    await credited(bot, "fan", 25)
    assert (await metrics(bot))["processed"] == 1
    await audited(bot)


async def test_a_redemption_is_credited_once_under_a_duplicate_delivery(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Twitch sends the same message twice (same id, same bytes): one credit, and the
    redemption is fulfilled on Twitch since the bot owns the reward."""
    bot = await start(sim, start_bot, tmp_path)
    redemption = await sim.redeem("alice", "bob", REWARD)
    await credited(bot, "bob", 100)
    [delivery] = [d for d in sim.eventsub_ws.deliveries if d.message_type == "notification"]
    again = await sim.eventsub_ws.resend(delivery.message_id)
    assert again.sent and again.message_id == delivery.message_id
    await until(lambda: bot.daemon.dispatcher.stats.duplicates == 1, "a duplicate")
    assert "you have 100 cookies" in await ask(sim, "bob", "!points")
    counts = await metrics(bot)
    assert (counts["processed"], counts["duplicates"]) == (1, 1)
    await until(
        lambda: any(u.redemption_id == redemption.id for u in sim.redemption_updates),
        "the redemption fulfilled on Twitch",
    )
    assert sim.channel("alice").redemptions[redemption.id].status == "FULFILLED"
    await audited(bot)


async def test_stream_online_starts_earning(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """The stream goes live: stream.online arrives over the WebSocket, and the next
    interval pays the viewers who are there."""
    bot = await start(sim, start_bot, tmp_path, channel="interval_minutes = 0.02\n")
    await sim.say("alice", "watcher", "hi!")
    await asyncio.sleep(1.5)  # a whole interval offline: nothing earned
    assert await points(bot, "watcher") == 0
    await sim.stream_online("alice")
    earning = next(f for f in bot.daemon.features if f.name == "earning")
    await until(lambda: earning.live("alice") is True, "live from EventSub")
    await sim.say("alice", "watcher", "pog")
    for _ in range(300):
        if await points(bot, "watcher") > 0:
            break
        await asyncio.sleep(0.02)
    assert await points(bot, "watcher") > 0
    state = bot.daemon.dispatcher.status.channel("alice")
    assert state.last_event is not None and state.last_event[0] == "stream.online"
    await audited(bot)


async def test_keepalive_silence_reconnects_subscribes_again_and_recovers(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Twitch goes silent (Pings still come): after the keepalive window the daemon opens
    a new session and subscribes again. A redemption sent into the silence is lost by
    Twitch, and fetched from Helix afterwards (credited once); the next one arrives live;
    the gap is on the dashboard's state and in /metrics."""
    sim.eventsub_ws.keepalive_bounds = (1, 1)  # a 1 s window (Twitch's is 10..600 s)
    sim.eventsub_ws.ping_interval = 0.3
    bot = await start(sim, start_bot, tmp_path)
    first = session_of(sim)
    sim.eventsub_ws.silence(first.id)  # Pings go on: they are no sign of life
    lost = await sim.redeem("alice", "bob", REWARD)
    assert [d.dropped for d in sent_over_websocket(sim, lost.id)] == [True]
    await sim.eventsub_ws.wait_closed(first.id, timeout=10)
    assert first.closed_by == "client" and first.pings_sent >= 2
    await until(lambda: any(s.id != first.id for s in sim.eventsub_ws.open_sessions()), "back")
    second = session_of(sim)
    await sim.eventsub_ws.wait_enabled(3, session_id=second.id, timeout=10)
    assert enabled_types(sim, second) == BASIC
    await credited(bot, "bob", 100)  # the lost one, fetched again
    await sim.redeem("alice", "carol", REWARD)
    await credited(bot, "carol", 100)  # the next one, live
    assert await points(bot, "bob") == 100
    state = bot.daemon.dispatcher.status.channel("alice")
    assert (state.reconnects, len(state.gaps)) == (1, 1)
    await until(lambda: state.gaps[0].recovered == 1, "the gap's recovery recorded")
    counts = await metrics(bot)
    assert (counts["reconnects"], counts["gaps"], counts["recovered"]) == (1, 1, 1)
    await audited(bot)


async def test_session_reconnect_with_an_event_between_is_credited_once(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """session_reconnect: the daemon opens the new URL; a redemption goes out on the old
    connection before the new welcome, and Twitch sends it again on the new one. One
    credit; no subscription created again; the old connection closed by the daemon."""
    bot = await start(sim, start_bot, tmp_path)
    old = session_of(sim)
    created = len(sim.eventsub_ws.subscriptions)
    reconnect = await sim.eventsub_ws.send_reconnect(old.id, hold_welcome=True)
    await reconnect.wait_connected()
    between = await sim.redeem("alice", "bob", REWARD)
    [delivery] = sent_over_websocket(sim, between.id)
    assert delivery.session_id == old.id and delivery.sent
    reconnect.release_welcome()
    new = await reconnect.wait_welcomed()
    resent = await sim.eventsub_ws.resend(delivery.message_id)
    assert resent.session_id == new.id  # the subscription moved with the welcome
    await sim.eventsub_ws.wait_closed(old.id, timeout=10)
    assert old.closed_by == "client"
    await credited(bot, "bob", 100)
    await until(lambda: bot.daemon.dispatcher.stats.duplicates == 1, "the duplicate")
    assert len(sim.eventsub_ws.subscriptions) == created
    assert enabled_types(sim, new) == BASIC
    await sim.redeem("alice", "bob", REWARD)
    await credited(bot, "bob", 200)
    state = bot.daemon.dispatcher.status.channel("alice")
    assert (state.session_id, state.session_reconnects, state.reconnects) == (new.id, 1, 0)
    assert not state.gaps
    await audited(bot)


async def test_a_revocation_is_shown_and_not_recreated_until_a_reload(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """Twitch revokes the follow subscription: logged, shown, counted; the bot keeps
    running; a new session after a dropped connection leaves it out; a reload brings it
    back."""
    bot = await start(sim, start_bot, tmp_path, channel="follow_bonus = 25\n")
    await sim.eventsub_ws.wait_enabled(4, timeout=10)
    first = session_of(sim)
    [follow] = [s for s in sim.eventsub_ws.subscriptions if s.type == "channel.follow"]
    with capture_logs() as logs:
        await sim.eventsub_ws.revoke(follow.id, "authorization_revoked")
        await until(lambda: bot.daemon.dispatcher.stats.revocations == 1, "the revocation")
    [line] = [e for e in logs if e["event"] == "eventsub_subscription_revoked"]
    assert (line["channel"], line["transport"], line["status"]) == (
        "alice",
        "websocket",
        "authorization_revoked",
    )
    state = bot.daemon.dispatcher.status.channel("alice")
    assert state.subscriptions["channel.follow"].status == "revoked"
    assert [(r.type, r.reason) for r in state.revocations] == [
        ("channel.follow", "authorization_revoked")
    ]
    assert "you have 0 cookies" in await ask(sim, "bob", "!points")  # still running

    await sim.eventsub_ws.drop(first.id)
    await until(lambda: any(s.id != first.id for s in sim.eventsub_ws.open_sessions()), "back")
    second = session_of(sim)
    await sim.eventsub_ws.wait_enabled(3, session_id=second.id, timeout=10)
    await asyncio.sleep(0.3)
    assert enabled_types(sim, second) == BASIC  # the revoked type stays away

    assert await bot.daemon.reload()  # what SIGHUP does
    await sim.eventsub_ws.wait_enabled(4, session_id=second.id, timeout=10)
    assert enabled_types(sim, second) == BASIC | {"channel.follow"}
    assert (await metrics(bot))["revocations"] == 1
    await audited(bot)


async def test_after_a_restart_a_redelivered_message_changes_nothing(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """A redemption is credited; the daemon restarts; Twitch delivers the same message id
    on the new session: nothing changes (the id was stored with the credit)."""
    bot = await start(sim, start_bot, tmp_path)
    await sim.redeem("alice", "bob", REWARD)
    await credited(bot, "bob", 100)
    [original] = [d for d in sim.eventsub_ws.deliveries if d.message_type == "notification"]
    assert await bot.stop() == 0

    again = await start_bot(config=bot.config)
    await until(lambda: len(sim.eventsub_ws.open_sessions()) == 1, "a new session")
    session = session_of(sim)
    await sim.eventsub_ws.wait_enabled(3, session_id=session.id, timeout=10)
    payload = original.data["payload"]
    [redelivered] = await sim.eventsub_ws.notify(
        REDEMPTION_ADD,
        payload["event"],
        message_id=original.message_id,
        timestamp=original.timestamp,
    )
    assert redelivered.sent and redelivered.session_id == session.id
    await until(lambda: again.daemon.dispatcher.stats.duplicates == 1, "the duplicate")
    assert "you have 100 cookies" in await ask(sim, "bob", "!points")
    await audited(again)


async def test_a_channel_without_a_token_gives_a_clear_message_and_keeps_chatting(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """No broadcaster token: check-config warns in one line (exit 0), start-up logs it
    naming the command, the dashboard state says so, and chat and earning go on."""
    path = write_config(tmp_path / "config.toml", sim)
    result = subprocess.run(
        [sys.executable, "-m", "loyaltybot", "check-config", "-c", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [warning] = result.stderr.strip().splitlines()
    assert "channels.alice: warning: #alice has no broadcaster token" in warning
    assert "`loyaltybot auth --channel alice`" in warning

    with capture_logs() as logs:
        bot = await start_bot(config=load_config(path))
        assert "you have 0 cookies" in await ask(sim, "bob", "!points")
    [line] = [e for e in logs if e["event"] == "eventsub_ws_channel_without_token"]
    assert line["channel"] == "alice"
    assert "loyaltybot auth --channel alice" in line["problem"]
    state = bot.daemon.dispatcher.status.channel("alice")
    assert state.state == "no token" and "auth --channel alice" in (state.problem or "")
    assert sim.eventsub_ws.sessions == {}  # never connected without a token
    await audited(bot)


async def test_a_token_without_the_redemption_scope_is_named_and_the_rest_works(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """alice authorised without channel-point scopes: the redemption subscription is
    refused (one line naming the scope and the command), stream state still arrives."""
    token = sim.issue_token("alice", scopes=["bits:read"])
    path = write_config(tmp_path / "config.toml", sim, broadcaster_token=token)
    with capture_logs() as logs:
        bot = await start_bot(config=load_config(path))
        await sim.eventsub_ws.wait_enabled(2, timeout=10)
        await until(
            lambda: REDEMPTION_ADD in bot.daemon.dispatcher.status.channel("alice").subscriptions,
            "the refusal recorded",
        )
    [refused] = [e for e in logs if e["event"] == "eventsub_ws_subscription_failed"]
    assert refused["channel"] == "alice" and refused["status"] == 403
    assert "lacks channel:read:redemptions or channel:manage:redemptions" in refused["reason"]
    assert "`loyaltybot auth --channel alice`" in refused["reason"]
    assert enabled_types(sim, session_of(sim)) == {"stream.online", "stream.offline"}
    state = bot.daemon.dispatcher.status.channel("alice")
    assert state.subscriptions[REDEMPTION_ADD].status == "failed"
    assert "you have 0 cookies" in await ask(sim, "bob", "!points")
    await audited(bot)


async def test_the_dashboard_shows_the_websocket_state(
    sim: Simulator, start_bot: StartBot, tmp_path: Path
) -> None:
    """The broadcaster logs in and opens the EventSub tab: transport, session,
    subscriptions with their status, the last event."""
    bot = await start(sim, start_bot, tmp_path)
    await sim.redeem("alice", "bob", REWARD)
    await credited(bot, "bob", 100)
    sim.oauth.login_as("alice")
    jar = aiohttp.CookieJar(unsafe=True)  # the session cookie of a 127.0.0.1 site
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{bot.daemon.web_url}/login") as response:
            assert response.status == 200
        async with http.get(f"{bot.daemon.web_url}/dashboard/alice/eventsub") as response:
            assert response.status == 200
            page = await response.text()
    assert "Transport: WebSocket" in page
    assert session_of(sim).id in page
    assert page.count('badge-reward">enabled<') == 3
    assert REDEMPTION_ADD in page and "Last event" in page
    await audited(bot)


def _seconds(stamp: str) -> float:
    from loyaltybot.eventsub.events import parse_timestamp

    return parse_timestamp(stamp)
