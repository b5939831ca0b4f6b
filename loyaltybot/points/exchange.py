"""Export and import of balances (our own csv/json; other bots' formats build on this).

An import is all or nothing: the whole file is parsed and checked first, and a malformed
row names its line and stops everything. Each imported balance is a ledger row of type
``import``. Re-running the same file changes nothing: every row is recorded under the
file's content digest, in the same transaction as its effect.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from loyaltybot.db import Tx
from loyaltybot.points import ledger, viewers
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.errors import BalanceTooHigh
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer

COLUMNS = ("user_id", "username", "points", "watch_seconds", "messages")
MAX_FILE_BYTES = 256 * 1024 * 1024
_USER_ID = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class Row:
    user_id: str
    username: str
    points: int
    watch_seconds: int
    messages: int


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    row: Row


class ImportFileError(Exception):
    """A malformed import file. ``line`` is 0 for the file as a whole."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


# ---- export -----------------------------------------------------------------------------


def export_rows(conn: sqlite3.Connection, channel_id: int) -> list[Row]:
    return [
        Row(*r)
        for r in conn.execute(
            "SELECT user_id, login, points, watch_seconds, messages FROM viewers"
            " WHERE channel_id = ? ORDER BY points DESC, user_id",
            (channel_id,),
        )
    ]


def render(rows: Iterable[Row], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=1) + "\n"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow((r.user_id, r.username, r.points, r.watch_seconds, r.messages))
    return out.getvalue()


# ---- parsing ----------------------------------------------------------------------------


def parse(text: str, fmt: str) -> list[ImportRow]:
    """Parse our own csv or json export.

    Raises:
        ImportFileError: the first problem, with its line.
    """
    rows = _parse_json(text) if fmt == "json" else _parse_csv(text)
    seen: dict[str, int] = {}
    for item in rows:
        first = seen.setdefault(item.row.user_id, item.line)
        if first != item.line:
            raise ImportFileError(
                item.line, f"user_id {item.row.user_id} appears again (first on line {first})"
            )
    return rows


def _parse_csv(text: str) -> list[ImportRow]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(0, "the file is empty") from None
    except csv.Error as exc:
        raise ImportFileError(1, f"not CSV: {exc}") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise ImportFileError(1, "; ".join(parts) + f" (expected: {','.join(COLUMNS)})")
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise ImportFileError(line, f"{len(values)} fields, expected {len(header)}")
            rows.append(ImportRow(line, _row(dict(zip(header, values, strict=True)), line)))
    except csv.Error as exc:
        raise ImportFileError(reader.line_num, f"not CSV: {exc}") from None
    return rows


def _parse_json(text: str) -> list[ImportRow]:
    """A JSON array of objects, read item by item so each error can name its line."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise ImportFileError(_line(text, pos), "expected a JSON array of objects")
    pos = _skip_ws(text, pos + 1)
    rows: list[ImportRow] = []
    if pos < len(text) and text[pos] == "]":
        return rows
    while True:
        line = _line(text, pos)
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ImportFileError(exc.lineno, f"not JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise ImportFileError(line, "each item must be an object")
        unknown = [k for k in item if k not in COLUMNS]
        if unknown:
            raise ImportFileError(line, f"unknown key(s) {', '.join(map(str, unknown))}")
        rows.append(ImportRow(line, _row(item, line)))
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            break
        raise ImportFileError(_line(text, pos), "expected ',' or ']' after an item")
    if _skip_ws(text, pos + 1) != len(text):
        raise ImportFileError(_line(text, pos + 1), "unexpected text after the array")
    return rows


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n\ufeff":
        pos += 1
    return pos


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _row(item: dict[str, object], line: int) -> Row:
    missing = [c for c in COLUMNS if c not in item]
    if missing:
        raise ImportFileError(line, f"missing {', '.join(missing)}")
    user_id = _text(item["user_id"]).strip()
    if not _USER_ID.fullmatch(user_id):
        raise ImportFileError(line, f"user_id {user_id!r} is not a Twitch user id (digits)")
    username = viewers.normalize_login(_text(item["username"]))
    if username is None:
        raise ImportFileError(line, f"username {_text(item['username'])!r} is not a Twitch login")
    return Row(
        user_id,
        username,
        _count(item["points"], "points", line),
        _count(item["watch_seconds"], "watch_seconds", line),
        _count(item["messages"], "messages", line),
    )


def _text(value: object) -> str:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _count(value: object, name: str, line: int) -> int:
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,16}\s*", value):
        number = int(value)
    else:
        number = None
    if number is None or not 0 <= number <= MAX_POINTS:
        raise ImportFileError(
            line, f"{name} {value!r} is not a whole number from 0 to {MAX_POINTS:,}"
        )
    return number


def digest(rows: Sequence[ImportRow]) -> str:
    """The file's identity: its rows, not its bytes (line endings or key order don't count)."""
    canonical = json.dumps(sorted(list(asdict(r.row).values()) for r in rows))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


# ---- applying ---------------------------------------------------------------------------


@dataclass
class ImportReport:
    rows: int = 0
    new_viewers: int = 0
    points: int = 0
    already_imported: int = 0
    imported_before_from_other_files: list[str] = field(default_factory=list)


def apply(
    tx_or_conn: Tx | sqlite3.Connection,
    channel_id: int,
    rows: Sequence[ImportRow],
    file_digest: str,
    *,
    source: str = "loyaltybot",
    dry_run: bool = False,
) -> ImportReport:
    """Import every row not imported from this file before; with ``dry_run`` only count.

    Run with a Tx (writer, one transaction) to import, or a read connection to preview.
    """
    conn = tx_or_conn.conn if isinstance(tx_or_conn, Tx) else tx_or_conn
    report = ImportReport(rows=len(rows))
    event_source = f"import:{file_digest}"
    for item in rows:
        row = item.row
        done = conn.execute(
            "SELECT 1 FROM processed_events WHERE source = ? AND event_id = ?",
            (event_source, row.user_id),
        ).fetchone()
        if done:
            report.already_imported += 1
            continue
        existing = viewers.by_user_id(conn, channel_id, row.user_id)
        if existing is None:
            report.new_viewers += 1
        elif conn.execute(
            "SELECT 1 FROM ledger WHERE channel_id = ? AND user_id = ? AND type = 'import' LIMIT 1",
            (channel_id, row.user_id),
        ).fetchone():
            report.imported_before_from_other_files.append(row.username)
        report.points += row.points
        if dry_run or not isinstance(tx_or_conn, Tx):
            continue
        tx = tx_or_conn
        tx.conn.execute(
            "INSERT INTO processed_events (source, event_id, processed_at) VALUES (?, ?, ?)",
            (event_source, row.user_id, tx.now_ms),
        )
        viewer = Viewer(row.user_id, row.username, row.username)
        if row.points:
            try:
                ledger.credit(
                    tx,
                    channel_id,
                    viewer,
                    row.points,
                    kind=EntryType.IMPORT,
                    reason=f"import from {source}",
                    actor="cli",
                    ref=f"import:{file_digest}:{row.user_id}",
                )
            except BalanceTooHigh as exc:
                raise ImportFileError(
                    item.line, f"{row.username}'s balance {exc.balance:,} is already at the maximum"
                ) from None
        else:
            viewers.upsert(tx.conn, channel_id, viewer, tx.now_ms)
        if row.watch_seconds or row.messages:
            tx.conn.execute(
                "UPDATE viewers SET watch_seconds = watch_seconds + ?, messages = messages + ?"
                " WHERE channel_id = ? AND user_id = ?",
                (row.watch_seconds, row.messages, channel_id, row.user_id),
            )
    return report
