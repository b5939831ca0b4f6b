"""The simulator's EventSub WebSocket against a client nobody here wrote: pyTwitchAPI.

pyTwitchAPI's ``EventSubWebsocket`` runs its socket in a thread with its own event loop
and blocks while it starts and stops, so those calls run on a worker thread while this
loop keeps serving the simulator. It hands callbacks to ``callback_loop`` from its thread
with a plain ``create_task``, which does not wake this loop: ``until`` polls. It never
closes its thread's event loop; the test waits for that thread and collects the loop
itself, so the ResourceWarning is raised (and ignored) here rather than at the end of the
whole run.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from twitchAPI.eventsub.websocket import EventSubWebsocket
from twitchAPI.object.eventsub import (
    ChannelPointsCustomRewardRedemptionAddEvent,
    StreamOnlineEvent,
)
from twitchAPI.twitch import Twitch
from twitchAPI.type import AuthScope

from loyaltybot.simulator import Simulator

REDEMPTION_ADD = "channel.channel_points_custom_reward_redemption.add"

pytestmark = pytest.mark.filterwarnings(
    # pyTwitchAPI 4.x leaves its socket thread's event loop (and its self-pipe) unclosed.
    "ignore:unclosed:ResourceWarning"
)


async def until(done: Callable[[], object], within: float = 10.0) -> None:
    """Poll: pyTwitchAPI's callbacks land on this loop without waking it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not done():
        if loop.time() > deadline:
            raise TimeoutError("pyTwitchAPI did not get there in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator()
    await sim.start()
    sim.add_channel("alice")
    sim.add_reward("alice", "Hydrate", cost=100, prompt="drink water", client_id=sim.client_id)
    yield sim
    await sim.close()


async def test_pytwitchapi_subscribes_receives_reconnects_and_sees_revocation(
    sim: Simulator,
) -> None:
    """Connect, subscribe, get a redemption; follow a session_reconnect and get stream.online
    on the new connection; get a revocation through ``revocation_handler``."""
    threads = set(threading.enumerate())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pytwitchapi-calls") as calls:
        await run_pytwitchapi(sim, calls)
    for thread in set(threading.enumerate()) - threads:  # pyTwitchAPI's socket thread
        thread.join(5.0)
        assert not thread.is_alive()
    gc.collect()


async def run_pytwitchapi(sim: Simulator, calls: ThreadPoolExecutor) -> None:
    loop = asyncio.get_running_loop()
    alice = sim.user("alice")
    token = sim.issue_token("alice", scopes=["channel:read:redemptions"])
    info = sim.token_info(token)
    assert info is not None
    twitch = await Twitch(
        sim.client_id,
        sim.client_secret,
        authenticate_app=False,
        base_url=sim.api_url + "/",
        auth_base_url=sim.auth_url + "/",
    )
    await twitch.set_user_authentication(
        token, [AuthScope.CHANNEL_READ_REDEMPTIONS], info.refresh_token
    )
    redemptions: list[ChannelPointsCustomRewardRedemptionAddEvent] = []
    onlines: list[StreamOnlineEvent] = []
    revocations: list[dict[str, Any]] = []

    async def on_redemption(event: ChannelPointsCustomRewardRedemptionAddEvent) -> None:
        redemptions.append(event)

    async def on_online(event: StreamOnlineEvent) -> None:
        onlines.append(event)

    async def on_revocation(payload: dict[str, Any]) -> None:
        revocations.append(payload)

    eventsub = EventSubWebsocket(
        twitch,
        connection_url=sim.eventsub_ws_url,
        subscription_url=sim.api_url + "/",
        callback_loop=loop,
        revocation_handler=on_revocation,
    )
    ctl = sim.eventsub_ws
    await loop.run_in_executor(calls, eventsub.start)  # returns once the welcome was read
    try:
        (first,) = await ctl.wait_session()
        # The ids come back in the 202s: pyTwitchAPI drops events for ids it has not read
        # yet (reference §7.7), so nothing is sent before both calls have returned.
        redemption_sub = await eventsub.listen_channel_points_custom_reward_redemption_add(
            alice.id, on_redemption
        )
        online_sub = await eventsub.listen_stream_online(alice.id, on_online)
        subs = await ctl.wait_enabled(2, session_id=first.id)
        assert {s.id for s in subs} == {redemption_sub, online_sub}
        assert {s.user_id for s in subs} == {alice.id}

        redemption = await sim.redeem("alice", "fan", "Hydrate", "pogchamp")
        await until(lambda: redemptions)
        got = redemptions[0]
        assert (got.event.id, got.event.user_login, got.event.user_input) == (
            redemption.id,
            "fan",
            "pogchamp",
        )
        assert (got.event.reward.title, got.event.reward.cost) == ("Hydrate", 100)
        assert got.subscription.id == redemption_sub

        reconnect = await ctl.send_reconnect(first.id)
        second = await reconnect.wait_welcomed(timeout=10.0)
        old = await ctl.wait_closed(first.id, timeout=10.0)  # closed by pyTwitchAPI itself
        assert (old.closed_by, old.close_code) == ("client", 1000)
        await until(
            lambda: eventsub.active_session is not None and eventsub.active_session.id == second.id
        )
        assert {s.id for s in ctl.subscriptions_of(second.id)} == {redemption_sub, online_sub}
        await sim.stream_online("alice")
        await until(lambda: onlines)
        (online,) = onlines
        assert online.event.broadcaster_user_id == alice.id
        (delivered,) = [d for d in ctl.deliveries if d.subscription_type == "stream.online"]
        assert delivered.session_id == second.id

        revoked = await ctl.revoke(redemption_sub, "authorization_revoked")
        assert revoked is not None and revoked.sent
        await until(lambda: revocations)
        (revocation,) = revocations
        assert revocation["subscription"]["id"] == redemption_sub
        assert revocation["subscription"]["status"] == "authorization_revoked"
        await sim.redeem("alice", "fan", "Hydrate")
        notified = [d for d in ctl.deliveries if d.subscription_type == REDEMPTION_ADD]
        assert [d.message_type for d in notified] == ["notification", "revocation"]
        assert not [s for s in ctl.sessions.values() if s.close_code == 4004]
    finally:
        await loop.run_in_executor(calls, asyncio.run, eventsub.stop())
        await twitch.close()
