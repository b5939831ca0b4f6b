"""The web server: dashboard, public leaderboards, JSON API, health and metrics.

Build it with ``loyaltybot.web.app.make_app``; see that module for what it needs.
"""
