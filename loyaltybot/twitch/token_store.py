"""The stored Twitch tokens (table ``twitch_tokens``, migration 0003): their SQL.

Sync functions for ``Store.read`` / ``Store.write``; the repr of a token never shows it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from loyaltybot.db import Tx


@dataclass(frozen=True, slots=True)
class StoredToken:
    """One row of ``twitch_tokens``; the repr never shows the tokens."""

    login: str
    user_id: str
    client_id: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scopes: frozenset[str]
    expires_at: int | None  # ms since the epoch
    obtained_at: int
    refreshed_at: int
    validated_at: int | None = None



_COLUMNS = (
    "login, user_id, client_id, access_token, refresh_token, scopes, expires_at,"
    " obtained_at, refreshed_at, validated_at"
)


def load_token(conn: sqlite3.Connection, login: str) -> StoredToken | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM twitch_tokens WHERE login = ?", (login,)).fetchone()
    if row is None:
        return None
    return StoredToken(
        login=row[0],
        user_id=row[1],
        client_id=row[2],
        access_token=row[3],
        refresh_token=row[4],
        scopes=frozenset(row[5].split()),
        expires_at=row[6],
        obtained_at=row[7],
        refreshed_at=row[8],
        validated_at=row[9],
    )


def save_token(tx: Tx, token: StoredToken) -> None:
    tx.conn.execute(
        f"INSERT INTO twitch_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (login) DO UPDATE SET user_id = excluded.user_id,"
        " client_id = excluded.client_id, access_token = excluded.access_token,"
        " refresh_token = excluded.refresh_token, scopes = excluded.scopes,"
        " expires_at = excluded.expires_at, obtained_at = excluded.obtained_at,"
        " refreshed_at = excluded.refreshed_at, validated_at = excluded.validated_at",
        (
            token.login,
            token.user_id,
            token.client_id,
            token.access_token,
            token.refresh_token,
            " ".join(sorted(token.scopes)),
            token.expires_at,
            token.obtained_at,
            token.refreshed_at,
            token.validated_at,
        ),
    )


def stored_logins(conn: sqlite3.Connection) -> list[str]:
    return [login for (login,) in conn.execute("SELECT login FROM twitch_tokens ORDER BY login")]


