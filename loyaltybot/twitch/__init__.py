"""Twitch's HTTP APIs, in the core: OAuth, tokens and Helix.

What lives here: the OAuth client, the device flow and the app token (``oauth``), the
stored tokens' SQL (``token_store``), user and configured tokens with validation and
refresh (``tokens``), the typed Helix client (``helix``), and ``clients.TwitchClients``,
the one place that builds a Helix client for a role (app, bot, broadcaster, lookup).
What may not: chat, EventSub, HTTP serving, or any feature.
"""
