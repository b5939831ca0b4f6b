"""The web, the edge: the aiohttp application the dashboard and public pages live in.

What lives here: the app factory (``app.make_app``), login with Twitch (``auth``),
sessions and CSRF, who may see a channel's pages (``access``), rendering and the base
layout (``pages``, ``templates/``), the dashboard's own pages (channels, overview,
settings), and the public index, health and metrics (``api``). What may not: any
feature. Features add their routes, tabs and templates through the composition root.
"""
