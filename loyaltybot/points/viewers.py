"""Who a viewer is: a Twitch user id, with the login and display name last seen.

Logins are matched exactly (case-insensitive, an optional leading @), never by
substring: ``!give bob 5`` must not pay ``bobby``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

_LOGIN = re.compile(r"[a-z0-9_]{1,25}")


def normalize_login(text: str) -> str | None:
    """'@Bob' -> 'bob'; None when the text cannot be a Twitch login."""
    login = text.strip().removeprefix("@").lower()
    return login if _LOGIN.fullmatch(login) else None


def is_login(text: str) -> bool:
    return _LOGIN.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Viewer:
    """The identity the ledger needs to create or update a viewer's row."""

    user_id: str
    login: str
    display_name: str

    @property
    def name(self) -> str:
        return self.display_name or self.login


@dataclass(frozen=True, slots=True)
class ViewerRecord:
    channel_id: int
    user_id: str
    login: str
    display_name: str
    points: int
    earned_total: int
    watch_seconds: int
    messages: int
    subscriber: bool
    earning_enabled: bool
    first_seen: int
    last_seen: int

    @property
    def identity(self) -> Viewer:
        return Viewer(self.user_id, self.login, self.display_name)


_COLUMNS = (
    "channel_id, user_id, login, display_name, points, earned_total, watch_seconds,"
    " messages, subscriber, earning_enabled, first_seen, last_seen"
)


def _record(row: tuple[object, ...] | None) -> ViewerRecord | None:
    if row is None:
        return None
    values = list(row)
    values[8] = bool(values[8])
    values[9] = bool(values[9])
    return ViewerRecord(*values)  # type: ignore[arg-type]


def by_login(conn: sqlite3.Connection, channel_id: int, login: str) -> ViewerRecord | None:
    """The viewer who holds ``login`` now (the most recently seen, if two ever did)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM viewers WHERE channel_id = ? AND login = ?"
        " ORDER BY last_seen DESC LIMIT 1",
        (channel_id, login),
    ).fetchone()
    return _record(row)


def by_user_id(conn: sqlite3.Connection, channel_id: int, user_id: str) -> ViewerRecord | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM viewers WHERE channel_id = ? AND user_id = ?",
        (channel_id, user_id),
    ).fetchone()
    return _record(row)


def upsert(conn: sqlite3.Connection, channel_id: int, viewer: Viewer, now_ms: int) -> None:
    """Create the viewer's row, or follow a rename (the trigger keeps the old login). An
    empty display name (a viewer known only by id and login) keeps the stored one."""
    conn.execute(
        "INSERT INTO viewers (channel_id, user_id, login, display_name, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (channel_id, user_id) DO UPDATE SET"
        "  login = excluded.login,"
        "  display_name = coalesce(nullif(excluded.display_name, ''), display_name),"
        "  last_seen = max(last_seen, excluded.last_seen)"
        " WHERE login <> excluded.login"
        "  OR (excluded.display_name <> '' AND display_name <> excluded.display_name)",
        (channel_id, viewer.user_id, viewer.login, viewer.display_name, now_ms, now_ms),
    )


_INSERT_SEEN = """
INSERT INTO viewers (channel_id, user_id, login, display_name, first_seen, last_seen)
SELECT :channel, j.value ->> 0, j.value ->> 1, j.value ->> 2, :now, :now
FROM json_each(:rows) AS j WHERE true
ON CONFLICT (channel_id, user_id) DO UPDATE SET
    login = excluded.login, display_name = excluded.display_name,
    last_seen = max(last_seen, excluded.last_seen)
WHERE login <> excluded.login
"""


def insert_seen(
    conn: sqlite3.Connection, channel_id: int, seen: Sequence[Viewer], now_ms: int
) -> None:
    """First sight of many viewers in one statement: new rows with 0 points, renames
    followed (the trigger keeps the old login); a known viewer is left as it is."""
    rows = json.dumps([[v.user_id, v.login, v.display_name] for v in seen])
    conn.execute(_INSERT_SEEN, {"channel": channel_id, "now": now_ms, "rows": rows})


def logins_known(
    conn: sqlite3.Connection, channel_id: int, logins: Sequence[str]
) -> dict[str, str]:
    """login -> user id, for the logins this channel has a row for."""
    return dict(
        conn.execute(
            "SELECT login, user_id FROM viewers WHERE channel_id = ?"
            " AND login IN (SELECT value FROM json_each(?))",
            (channel_id, json.dumps(list(logins))),
        ).fetchall()
    )


def subscriber_ids(conn: sqlite3.Connection, channel_id: int) -> list[str]:
    return [
        user_id
        for (user_id,) in conn.execute(
            "SELECT user_id FROM viewers WHERE channel_id = ? AND subscriber = 1", (channel_id,)
        )
    ]


def logins_of(
    conn: sqlite3.Connection, channel_id: int, user_ids: Sequence[str]
) -> dict[str, str]:
    """user id -> login, for these viewers of the channel."""
    return dict(
        conn.execute(
            "SELECT user_id, login FROM viewers WHERE channel_id = ?"
            " AND user_id IN (SELECT value FROM json_each(?))",
            (channel_id, json.dumps(list(user_ids))),
        ).fetchall()
    )
