"""Viewer titles: unlocked by a reward's or an item's ``title`` action; ``!points`` shows
the one unlocked most recently. The ``viewer_titles`` table is read and written here only."""

from __future__ import annotations

import sqlite3

from loyaltybot.db import Tx
from loyaltybot.points import viewers
from loyaltybot.points.viewers import Viewer


def unlock(tx: Tx, channel_id: int, viewer: Viewer, title: str, source: str) -> None:
    """Give ``viewer`` the title (again: it becomes their latest). ``source`` says what
    unlocked it: a redemption id, or ``purchase:<id>``."""
    viewers.upsert(tx.conn, channel_id, viewer, tx.now_ms)
    tx.conn.execute(
        "INSERT INTO viewer_titles (channel_id, user_id, title, unlocked_at, redemption_id)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, user_id, title) DO UPDATE SET"
        " unlocked_at = excluded.unlocked_at, redemption_id = excluded.redemption_id",
        (channel_id, viewer.user_id, title, tx.now_ms, source),
    )


def latest(conn: sqlite3.Connection, channel_id: int, user_id: str) -> str | None:
    """The title the viewer unlocked most recently, or None."""
    row = conn.execute(
        "SELECT title FROM viewer_titles WHERE channel_id = ? AND user_id = ?"
        " ORDER BY unlocked_at DESC, title LIMIT 1",
        (channel_id, user_id),
    ).fetchone()
    return None if row is None else str(row[0])
