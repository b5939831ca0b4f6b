"""Imports from other bots: StreamElements, Streamlabs Chatbot and PhantomBot.

Other bots key viewers by login, so each login is resolved to a Twitch user id through
Helix Get Users (100 per request). Then every row goes through the same path as our own
format (``exchange.apply``): one ledger row of type ``import`` per viewer, all rows in
one transaction, or none.

What is recognised (header names are matched case-insensitively, ignoring spaces,
underscores, dashes and dots; other columns are ignored; the first alias present wins):

==================  ==========================================  ==============================
format              file                                        columns (aliases)
==================  ==========================================  ==============================
``streamelements``  CSV, or the JSON of the API's                login: ``username``/``user``/
                    ``/kappa/v2/points/{channel}/top`` and        ``name``/``login``; points:
                    ``/alltime`` (``{"users": [...]}``) or a      ``points``/``current``;
                    JSON list of such objects                    watch time: ``watchtime``/
                                                                 ``minutes`` (minutes)
``streamlabs``      Streamlabs Chatbot's currency export         login: ``name``/``username``/
                    (Excel: save the sheet as CSV), usually      ``user``/``viewer``; points:
                    ``Name,Rank,Points,Hours``                   ``points``/``currency``;
                                                                 watch time: ``hours`` (decimal,
                                                                 ``.`` or ``,``) or ``minutes``
``phantombot``      ``phantombot.db`` itself (SQLite: tables     login: ``variable``/
                    ``phantombot_points`` and                    ``username``/``user``/``name``;
                    ``phantombot_time``), or a CSV dump of the   points: ``value``/``points``;
                    points table (``section,variable,value``)    watch time: ``time``/
                                                                 ``seconds`` (seconds)
==================  ==========================================  ==============================

CSV files may use ``,``, ``;`` or tabs (Excel in many locales writes ``;``), UTF-8 (with
or without BOM), UTF-16 (Excel's "Unicode text") or Windows-1252. Points are whole
numbers (``1234``, ``1,234`` and ``1234.0`` are accepted). An Excel workbook is refused
with a hint to save it as CSV.

Malformed input stops everything, naming its line: a missing column, a login that cannot
be a Twitch login, a points value that is not a whole number from 0 to 2^53-1, a login
listed twice.

Logins Twitch does not know (renamed, deleted or banned accounts, common in old exports)
do not stop the import: they are skipped and listed with their lines, because refusing
the whole file for them would make most real exports impossible to import.

Re-running is safe: each viewer's balance is imported at most once per channel and
source bot (the key is ``import:<format>:<channel id>`` + user id). Importing the same
file again, a corrected copy, or a newer export changes nothing for viewers imported
before; only viewers not imported yet (say, a login fixed by hand) are added.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loyaltybot.points import exchange
from loyaltybot.points.amounts import MAX_POINTS, format_points
from loyaltybot.points.exchange import ImportFileError, ImportReport, ImportRow, Row
from loyaltybot.points.viewers import normalize_login

if TYPE_CHECKING:
    from loyaltybot.twitch.helix import Helix

FORMATS = ("streamelements", "streamlabs", "phantombot")
MAX_ERRORS_SHOWN = 20

_SQLITE_MAGIC = b"SQLite format 3\x00"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One viewer as the other bot knew them: by login."""

    line: int
    login: str
    points: int
    watch_seconds: int


@dataclass(frozen=True, slots=True)
class Columns:
    """Which header names mean what, per format, in order of preference."""

    login: tuple[str, ...]
    points: tuple[str, ...]
    hours: tuple[str, ...] = ()
    minutes: tuple[str, ...] = ()
    seconds: tuple[str, ...] = ()


COLUMNS = {
    "streamelements": Columns(
        login=("username", "user", "name", "login"),
        points=("points", "current", "currentpoints"),
        minutes=("watchtime", "minutes", "watchtimeminutes"),
    ),
    "streamlabs": Columns(
        login=("name", "username", "user", "viewer"),
        points=("points", "currency"),
        hours=("hours",),
        minutes=("minutes",),
    ),
    "phantombot": Columns(
        login=("variable", "username", "user", "name"),
        points=("value", "points"),
        seconds=("time", "seconds", "timeseconds"),
    ),
}


# ---- reading files ---------------------------------------------------------------------------


def parse_file(path: Path, fmt: str) -> list[SourceRow]:
    """Read and check a file in one of FORMATS.

    Raises:
        ImportFileError: the first problem, with its line (0 for the file as a whole).
        OSError: the file cannot be read.
    """
    if path.stat().st_size > exchange.MAX_FILE_BYTES:
        raise ImportFileError(0, f"larger than {exchange.MAX_FILE_BYTES // 2**20} MiB")
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(_SQLITE_MAGIC):
        if fmt != "phantombot":
            raise ImportFileError(
                0, "this is a SQLite database; if it is PhantomBot's, use --format phantombot"
            )
        return parse_phantombot_db(path)
    return parse(path.read_bytes(), fmt)


def parse(data: bytes, fmt: str) -> list[SourceRow]:
    """Parse an export's bytes (CSV, or JSON for StreamElements). Raises ImportFileError."""
    if fmt not in COLUMNS:
        raise ValueError(f"unknown format {fmt!r}")
    if data.startswith(_ZIP_MAGIC):
        raise ImportFileError(
            0, "this is an Excel workbook: open it, save the sheet as CSV (UTF-8) and import that"
        )
    if data.startswith(_SQLITE_MAGIC):
        raise ImportFileError(0, "this is a SQLite database, not a CSV export")
    text = _decode(data)
    stripped = text.lstrip()
    if not stripped:
        raise ImportFileError(0, "the file is empty")
    if stripped[0] in "[{":
        if fmt != "streamelements":
            raise ImportFileError(1, "this looks like JSON; this format is read from CSV")
        rows = _parse_streamelements_json(text)
    else:
        rows = _parse_csv(text, COLUMNS[fmt])
    return _unique(rows)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ImportFileError(0, "not valid UTF-16 text") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")  # Excel's "CSV" on Windows
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name.strip().lstrip("\ufeff").lower())


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _pick(header: Sequence[str], aliases: Sequence[str]) -> int | None:
    for alias in aliases:
        if alias in header:
            return header.index(alias)
    return None


def _parse_csv(text: str, columns: Columns) -> list[SourceRow]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        raw_header = next(reader)
        while not any(cell.strip() for cell in raw_header):
            raw_header = next(reader)
    except StopIteration:
        raise ImportFileError(0, "the file is empty") from None
    except csv.Error as exc:
        raise ImportFileError(1, f"not CSV: {exc}") from None
    header_line = reader.line_num
    header = [_key(h) for h in raw_header]
    login_at = _pick(header, columns.login)
    points_at = _pick(header, columns.points)
    if login_at is None or points_at is None:
        wanted = []
        if login_at is None:
            wanted.append(f"a login column ({'/'.join(columns.login)})")
        if points_at is None:
            wanted.append(f"a points column ({'/'.join(columns.points)})")
        found = ", ".join(h.strip() for h in raw_header) or "nothing"
        raise ImportFileError(header_line, f"missing {' and '.join(wanted)}; found: {found}")
    time_at: tuple[int, int] | None = None  # (column, seconds per unit)
    for aliases, unit in ((columns.hours, 3600), (columns.minutes, 60), (columns.seconds, 1)):
        at = _pick(header, aliases)
        if at is not None and time_at is None:
            time_at = (at, unit)
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) <= max(login_at, points_at):
                raise ImportFileError(
                    line, f"{len(values)} fields, expected at least {max(login_at, points_at) + 1}"
                )
            watch = 0
            if time_at is not None:
                at, unit = time_at
                watch = _duration(
                    values[at] if at < len(values) else "", unit, raw_header[at], line
                )
            rows.append(
                SourceRow(
                    line,
                    _login(values[login_at], line),
                    _points(values[points_at], raw_header[points_at].strip(), line),
                    watch,
                )
            )
    except csv.Error as exc:
        raise ImportFileError(reader.line_num, f"not CSV: {exc}") from None
    return rows


def _parse_streamelements_json(text: str) -> list[SourceRow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(exc.lineno, f"not JSON: {exc.msg}") from None
    if isinstance(document, dict):
        users = document.get("users")
        if not isinstance(users, list):
            raise ImportFileError(
                1, 'expected {"users": [...]} (StreamElements\' points API) or a list of users'
            )
        match = re.search(r'"users"\s*:\s*\[', text)
        start = match.end() - 1 if match else 0
    elif isinstance(document, list):
        start = text.index("[")
    else:
        raise ImportFileError(1, "expected a JSON list of users")
    rows = []
    for line, item in _array_items(text, start):
        if not isinstance(item, dict):
            raise ImportFileError(line, "each user must be an object")
        keys = {_key(str(k)): k for k in item}
        columns = COLUMNS["streamelements"]
        login_key = next((keys[a] for a in columns.login if a in keys), None)
        points_key = next((keys[a] for a in columns.points if a in keys), None)
        if login_key is None or points_key is None:
            raise ImportFileError(line, 'each user needs "username" and "points"')
        minutes_key = next((keys[a] for a in columns.minutes if a in keys), None)
        watch = _duration(item[minutes_key], 60, minutes_key, line) if minutes_key else 0
        login_value = item[login_key]
        if not isinstance(login_value, str):
            raise ImportFileError(line, f"{login_key} must be a string")
        rows.append(
            SourceRow(
                line, _login(login_value, line), _points(item[points_key], points_key, line), watch
            )
        )
    return rows


def _array_items(text: str, start: int) -> Iterator[tuple[int, Any]]:
    """The items of the (already validated) JSON array at ``start``, each with its line."""
    decoder = json.JSONDecoder()
    pos = _skip(text, start + 1)
    if text[pos] == "]":
        return
    while True:
        item, end = decoder.raw_decode(text, pos)
        yield text.count("\n", 0, pos) + 1, item
        pos = _skip(text, end)
        if text[pos] == "]":
            return
        pos = _skip(text, pos + 1)  # the comma


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def parse_phantombot_db(path: Path) -> list[SourceRow]:
    """Points (and watch time) straight from PhantomBot's SQLite database, read-only.

    Rows are named by table and rowid in errors, since a database has no lines.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise ImportFileError(0, f"cannot open the database: {exc}") from None
    try:
        tables = {
            name.lower(): name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        points_table = tables.get("phantombot_points")
        if points_table is None:
            raise ImportFileError(0, "no phantombot_points table: is this PhantomBot's database?")
        points: dict[str, tuple[int, int]] = {}  # login -> (rowid, points)
        for rowid, variable, value in conn.execute(
            f'SELECT rowid, variable, value FROM "{points_table}" ORDER BY rowid'
        ):
            where = f"{points_table} row {rowid}"
            login = _db_login(variable, where)
            if login in points:
                raise ImportFileError(0, f"{where}: {login} appears twice")
            points[login] = (rowid, _points(_db_text(value), f"{where} value", 0))
        seconds: dict[str, int] = {}
        time_table = tables.get("phantombot_time")
        if time_table is not None:
            for rowid, variable, value in conn.execute(
                f'SELECT rowid, variable, value FROM "{time_table}" ORDER BY rowid'
            ):
                where = f"{time_table} row {rowid}"
                seconds[_db_login(variable, where)] = _duration(
                    _db_text(value), 1, f"{where} value", 0
                )
    except sqlite3.Error as exc:
        raise ImportFileError(0, f"cannot read the database: {exc}") from None
    finally:
        conn.close()
    # A database has no lines: rows carry line 0 and errors name the table and rowid.
    rows = [
        SourceRow(0, login, amount, seconds.get(login, 0)) for login, (_, amount) in points.items()
    ]
    rows += [SourceRow(0, login, 0, s) for login, s in seconds.items() if login not in points and s]
    return rows


def _db_text(value: object) -> str:
    return "" if value is None else str(value)


def _db_login(value: object, where: str) -> str:
    login = normalize_login(_db_text(value))
    if login is None:
        raise ImportFileError(0, f"{where}: {_db_text(value)!r} is not a Twitch login")
    return login


# ---- values ----------------------------------------------------------------------------------


def _login(text: str, line: int) -> str:
    login = normalize_login(text)
    if login is None:
        raise ImportFileError(line, f"{text.strip()!r} is not a Twitch login")
    return login


_WHOLE = re.compile(r"[0-9]{1,16}|[0-9]{1,3}(?:,[0-9]{3}){1,5}|[0-9]{1,16}\.0+")


def _points(value: object, name: str, line: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number: int | None = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip().replace(",", "").split(".")[0])
    else:
        number = None
    if number is None or not 0 <= number <= MAX_POINTS:
        shown = value.strip() if isinstance(value, str) else value
        raise ImportFileError(
            line, f"{name} {shown!r} is not a whole number from 0 to {MAX_POINTS:,}"
        )
    return number


_DECIMAL = re.compile(r"[0-9]{1,12}(?:[.,][0-9]{1,9})?")


def _duration(value: object, unit: int, name: str, line: int) -> int:
    """Watch time in seconds from hours, minutes or seconds; empty means 0."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        amount = float(value)
    elif isinstance(value, str) and not value.strip():
        return 0
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        amount = float(value.strip().replace(",", "."))
    else:
        shown = value.strip() if isinstance(value, str) else value
        raise ImportFileError(line, f"{name.strip()} {shown!r} is not a number of {_UNITS[unit]}")
    seconds = round(amount * unit)
    if seconds > MAX_POINTS:
        raise ImportFileError(line, f"{name.strip()} {value!r} is too large")
    return seconds


_UNITS = {3600: "hours", 60: "minutes", 1: "seconds"}


def _unique(rows: list[SourceRow]) -> list[SourceRow]:
    first: dict[str, int] = {}
    for row in rows:
        seen = first.setdefault(row.login, row.line)
        if seen != row.line:
            raise ImportFileError(row.line, f"{row.login} appears again (first on line {seen})")
    return rows


# ---- resolving and applying ------------------------------------------------------------------


@dataclass
class Resolution:
    rows: list[ImportRow] = field(default_factory=list)
    unknown: list[SourceRow] = field(default_factory=list)


async def resolve(helix: Helix, rows: Sequence[SourceRow]) -> Resolution:
    """Twitch user ids for the logins (Helix Get Users, 100 per request); unknown ones apart.

    Raises:
        HelixError: Twitch could not be asked.
    """
    users = await helix.get_users(logins=[r.login for r in rows])
    by_login = {u.login.lower(): u for u in users}
    result = Resolution()
    for row in rows:
        user = by_login.get(row.login)
        if user is None:
            result.unknown.append(row)
        else:
            result.rows.append(
                ImportRow(
                    row.line, Row(user.id, user.login.lower(), row.points, row.watch_seconds, 0)
                )
            )
    return result


def import_key(fmt: str, channel_id: int) -> str:
    """What makes an import idempotent: a viewer is imported once per channel and source bot."""
    return f"{fmt}:{channel_id}"


def render(
    report: ImportReport,
    unknown: Sequence[SourceRow],
    *,
    channel: str,
    fmt: str,
    dry_run: bool,
    format_points: Callable[[int], str] = format_points,
) -> list[str]:
    """The summary the operator reads: what changed (or would), what was skipped and why."""
    verb = "would import" if dry_run else "imported"
    todo = report.rows - report.already_imported
    lines = [
        f"{verb} {todo:,} viewers into #{channel}: {format_points(report.points)} points,"
        f" {report.new_viewers:,} new viewers"
    ]
    if report.already_imported:
        lines.append(
            f"{report.already_imported:,} viewers were already imported from {fmt} into"
            f" #{channel} before: left unchanged"
        )
    if unknown:
        shown = ", ".join(
            f"{r.login} (line {r.line})" if r.line else r.login for r in unknown[:MAX_ERRORS_SHOWN]
        )
        more = (
            f" and {len(unknown) - MAX_ERRORS_SHOWN:,} more"
            if len(unknown) > MAX_ERRORS_SHOWN
            else ""
        )
        lines.append(
            f"skipped {len(unknown):,} logins Twitch does not know (renamed or deleted accounts):"
            f" {shown}{more}"
        )
    if report.imported_before_from_other_files:
        names = report.imported_before_from_other_files
        shown = ", ".join(names[:10]) + (
            f" and {len(names) - 10:,} more" if len(names) > 10 else ""
        )
        lines.append(
            f"note: these viewers already had points imported from another source: {shown}"
        )
    return lines
