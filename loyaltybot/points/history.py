"""Read-only SQL behind the dashboard pages; each function runs inside ``store.read``.

Pages use keyset pagination (``WHERE (sort, user_id) after the cursor``), so page 2,000
costs what page 1 costs. There is deliberately no index on the columns viewers are sorted
by (points, watch time, messages, last seen): every earning tick rewrites them for every
present viewer, and a scan-and-sort of 100,000 rows takes ~20 ms (bench/web.py), inside
a page's budget. A login-prefix search uses the login index when the prefix is selective
and a plain scan when it matches a large part of the channel (measured: an index walk
over most of the table costs three times the scan).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

PAGE_SIZE = 50

# sort key in the URL -> (column, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "points": ("points", True),
    "watch": ("watch_seconds", True),
    "messages": ("messages", True),
    "last_seen": ("last_seen", True),
    "name": ("login", False),
}

_INDEX_SHARE = 0.25  # above this share of the channel, scan instead of walking the index


@dataclass(frozen=True, slots=True)
class ViewerRow:
    user_id: str
    login: str
    display_name: str
    points: int
    watch_seconds: int
    messages: int
    last_seen: int
    earning_enabled: bool


@dataclass(frozen=True, slots=True)
class ViewerPage:
    rows: list[ViewerRow]
    matching: int  # viewers matching the search (all of the channel's without one)
    next_cursor: str | None


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """'ab' -> ('ab', 'ac'): the login range a prefix covers (logins are [a-z0-9_])."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def encode_cursor(value: int | str, user_id: str) -> str:
    return f"{value}~{user_id}"


def decode_cursor(cursor: str, numeric: bool) -> tuple[int | str, str] | None:
    """None for a cursor that was not made here (a hand-edited URL starts over)."""
    value, sep, user_id = cursor.rpartition("~")
    if not sep or not user_id or len(cursor) > 200:
        return None
    if numeric:
        try:
            return int(value), user_id
        except ValueError:
            return None
    return value, user_id


def list_viewers(
    conn: sqlite3.Connection,
    channel_id: int,
    *,
    sort: str = "points",
    prefix: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> ViewerPage:
    column, descending = SORTS[sort]
    where = ["channel_id = ?"]
    args: list[object] = [channel_id]
    (total,) = conn.execute(
        "SELECT count(*) FROM viewers WHERE channel_id = ?", (channel_id,)
    ).fetchone()
    matching = total
    if prefix:
        low, high = prefix_bounds(prefix)
        (matching,) = conn.execute(
            "SELECT count(*) FROM viewers WHERE channel_id = ? AND login >= ? AND login < ?",
            (channel_id, low, high),
        ).fetchone()
        # A unary + keeps SQLite off the login index when the prefix matches most rows.
        use_index = column == "login" or matching <= total * _INDEX_SHARE
        login = "login" if use_index else "+login"
        where.append(f"{login} >= ? AND {login} < ?")
        args += [low, high]
    after = decode_cursor(cursor, column != "login") if cursor else None
    if after is not None:
        value, user_id = after
        op = "<" if descending else ">"
        where.append(f"({column} {op} ? OR ({column} = ? AND user_id > ?))")
        args += [value, value, user_id]
    order = f"{column} {'DESC' if descending else 'ASC'}, user_id ASC"
    rows = conn.execute(
        "SELECT user_id, login, display_name, points, watch_seconds, messages, last_seen,"
        f" earning_enabled FROM viewers WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
        (*args, limit + 1),
    ).fetchall()
    page = [
        ViewerRow(
            user_id=r[0],
            login=r[1],
            display_name=r[2],
            points=r[3],
            watch_seconds=r[4],
            messages=r[5],
            last_seen=r[6],
            earning_enabled=bool(r[7]),
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(getattr(last, _ATTR[column]), last.user_id)
    return ViewerPage(page, int(matching), next_cursor)


_ATTR = {
    "points": "points",
    "watch_seconds": "watch_seconds",
    "messages": "messages",
    "last_seen": "last_seen",
    "login": "login",
}


def display_names(
    conn: sqlite3.Connection, channel_id: int, user_ids: Sequence[str]
) -> dict[str, str]:
    if not user_ids:
        return {}
    marks = ",".join("?" * len(user_ids))
    return dict(
        conn.execute(
            "SELECT user_id, display_name FROM viewers"
            f" WHERE channel_id = ? AND user_id IN ({marks})",
            (channel_id, *user_ids),
        ).fetchall()
    )


def channel_counts(conn: sqlite3.Connection, channel_id: int) -> tuple[int, int]:
    """(viewers, points held by all of them)."""
    viewers, points = conn.execute(
        "SELECT count(*), coalesce(sum(points), 0) FROM viewers WHERE channel_id = ?",
        (channel_id,),
    ).fetchone()
    return int(viewers), int(points)


# ---- the ledger -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: int
    created_at: int
    user_id: str
    login: str
    display_name: str
    amount: int
    requested: int | None
    balance_after: int
    type: str
    reason: str | None
    related_user_id: str | None
    related_login: str | None
    actor: str | None
    ref: str | None


@dataclass(frozen=True)
class LedgerFilter:
    user_id: str | None = None
    types: tuple[str, ...] = ()
    since_ms: int | None = None  # inclusive
    until_ms: int | None = None  # exclusive


def ledger_page(
    conn: sqlite3.Connection,
    channel_id: int,
    filters: LedgerFilter = LedgerFilter(),
    *,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[LedgerRow], int | None]:
    """Newest first; returns the rows and the id to continue before (None at the end)."""
    where = ["l.channel_id = ?"]
    args: list[object] = [channel_id]
    if filters.user_id is not None:
        where.append("l.user_id = ?")
        args.append(filters.user_id)
    if filters.types:
        where.append(f"l.type IN ({','.join('?' * len(filters.types))})")
        args += filters.types
    if filters.since_ms is not None:
        where.append("l.created_at >= ?")
        args.append(filters.since_ms)
    if filters.until_ms is not None:
        where.append("l.created_at < ?")
        args.append(filters.until_ms)
    if before_id is not None:
        where.append("l.id < ?")
        args.append(before_id)
    rows = conn.execute(
        "SELECT l.id, l.created_at, l.user_id, v.login, v.display_name, l.amount, l.requested,"
        " l.balance_after, l.type, l.reason, l.related_user_id, r.login, l.actor, l.ref"
        " FROM ledger AS l"
        " JOIN viewers AS v ON v.channel_id = l.channel_id AND v.user_id = l.user_id"
        " LEFT JOIN viewers AS r ON r.channel_id = l.channel_id AND r.user_id = l.related_user_id"
        f" WHERE {' AND '.join(where)} ORDER BY l.id DESC LIMIT ?",
        (*args, limit + 1),
    ).fetchall()
    page = [LedgerRow(*r) for r in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)


def login_history(conn: sqlite3.Connection, user_id: str) -> list[tuple[str, int]]:
    """Logins this user had before, most recent first: (login, replaced at ms)."""
    return [
        (str(login), int(until))
        for login, until in conn.execute(
            "SELECT login, until FROM login_history WHERE user_id = ? ORDER BY until DESC",
            (user_id,),
        )
    ]
