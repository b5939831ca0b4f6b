"""What ``check-config`` warns about without failing: things a valid file still lacks.

Over EventSub WebSocket (SPEC §6.1) each channel's events arrive on a connection made with
that broadcaster's own token, from the file or stored by ``loyaltybot auth --channel C``.
A channel without one keeps chat and earning, but gets no channel points, stream state or
event bonuses; the operator hears it here, one line per channel, naming the command that
fixes it. The database is only read, and only if it exists: checking a file creates
nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator

from loyaltybot.config import Config
from loyaltybot.twitch.token_store import StoredToken, load_token
from loyaltybot.twitch.tokens import BROADCASTER_SCOPES

_Lookup = Callable[[str], StoredToken | None]


def config_warnings(config: Config) -> list[str]:
    """One line per warning, each starting with the file and the key it is about."""
    if config.eventsub_transport != "websocket":
        return []
    lines = []
    with _stored_tokens(config) as stored:
        for channel, settings in config.channels.items():
            where = f"{config.path}: channels.{channel}: warning:"
            fix = f"`loyaltybot auth --channel {channel}`"
            if settings.broadcaster_token is not None:
                continue  # its scopes are only known to Twitch: start-up checks them
            token = stored(channel)
            if token is None:
                lines.append(
                    f"{where} #{channel} has no broadcaster token, so channel points, stream"
                    f" online/offline and event bonuses cannot arrive over EventSub WebSocket;"
                    f" run {fix} (chat and earning work without it)"
                )
                continue
            missing = [s for s in BROADCASTER_SCOPES if s not in token.scopes]
            if missing:
                lines.append(
                    f"{where} the stored token of #{channel} lacks {', '.join(missing)};"
                    f" run {fix} again"
                )
    return lines


@contextlib.contextmanager
def _stored_tokens(config: Config) -> Iterator[_Lookup]:
    """``lookup(login)``: the token ``auth`` stored, read-only; None without a database."""
    path = config.database.path
    if not path.exists():
        yield lambda login: None
        return
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:

        def lookup(login: str) -> StoredToken | None:
            try:
                return load_token(conn, login)
            except sqlite3.DatabaseError:  # an older schema, or not our database
                return None

        yield lookup
    finally:
        conn.close()
