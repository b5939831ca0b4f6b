"""Clients of Twitch's HTTP APIs (Helix, OAuth) and EventSub helpers."""
