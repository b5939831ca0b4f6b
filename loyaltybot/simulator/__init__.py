"""A local Twitch on loopback for the tests and ``loyaltybot demo``.

One aiohttp server plays chat (IRC over WebSocket at ``/irc``), Helix (``/helix``),
OAuth (``/oauth2``), the EventSub webhook sender and EventSub over WebSocket
(``/eventsub/ws``, ``sim.eventsub_ws_url``)::

    sim = Simulator(client_id="sim-client-id", client_secret="sim-client-secret")
    await sim.start(host="127.0.0.1", port=0)
    sim.irc_url / sim.api_url / sim.auth_url

    sim.add_channel("alice", bot_login="mybot", bot_role="moderator")
    token = sim.issue_token("mybot", scopes=[...])
    await sim.say("alice", "bob", "!points")
    reply = await sim.wait_for_reply("alice", contains="bob")
    sim.rate_report()

Modules: ``world`` (users, channels, roles, tokens), ``irc`` and ``ircproto`` (chat),
``ratelimit`` (Twitch's send limits), ``helix``, ``oauth``, ``eventsub`` (signing
sender), ``eventsub_ws`` (WebSocket sessions and the controls to test a client's
keepalive, reconnect and revocation handling: ``sim.eventsub_ws``) and ``payloads``
(event bodies), ``faults``, ``crowd`` (simulated viewers),
``scenario`` (the demo world), ``twitchio_patch`` (point twitchio at the simulator),
``server`` (the ``Simulator``).
"""

from loyaltybot.simulator.crowd import Crowd, CrowdStats
from loyaltybot.simulator.eventsub import Delivery, NoSubscription, Subscription, sign_message
from loyaltybot.simulator.eventsub_ws import (
    EventSubWs,
    WsDelivery,
    WsReconnect,
    WsSession,
    WsSubscription,
)
from loyaltybot.simulator.helix import RedemptionUpdate
from loyaltybot.simulator.irc import ChatMessage, ClientLine, DroppedMessage, SentMessage
from loyaltybot.simulator.ratelimit import RateViolation
from loyaltybot.simulator.scenario import DemoWorld, populate_demo
from loyaltybot.simulator.server import BOT_SCOPES, BROADCASTER_SCOPES, Simulator
from loyaltybot.simulator.twitchio_patch import patch_twitchio
from loyaltybot.simulator.world import SimChannel, SimRedemption, SimReward, SimUser

__all__ = [
    "BOT_SCOPES",
    "BROADCASTER_SCOPES",
    "ChatMessage",
    "ClientLine",
    "Crowd",
    "CrowdStats",
    "Delivery",
    "DemoWorld",
    "DroppedMessage",
    "EventSubWs",
    "NoSubscription",
    "RateViolation",
    "RedemptionUpdate",
    "SentMessage",
    "SimChannel",
    "SimRedemption",
    "SimReward",
    "SimUser",
    "Simulator",
    "Subscription",
    "WsDelivery",
    "WsReconnect",
    "WsSession",
    "WsSubscription",
    "patch_twitchio",
    "populate_demo",
    "sign_message",
]
