"""Numbered SQL migrations in loyaltybot/db/migrations/NNNN_name.sql.

Each applies in its own transaction whose first statement records it, so two processes
starting at once cannot apply one twice: the loser's INSERT fails and it rolls back.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

from loyaltybot.points.errors import SchemaTooNew

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in (resources.files("loyaltybot.db") / "migrations").iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return set()
    return {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations")}


def current_version(conn: sqlite3.Connection) -> int:
    return max(applied_versions(conn), default=0)


def migrate(conn: sqlite3.Connection, now_ms: int) -> list[Migration]:
    """Apply every missing migration; return the ones this call applied.

    Raises:
        SchemaTooNew: the database was written by a newer loyaltybot.
    """
    migrations = available()
    check_version(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    have = applied_versions(conn)
    applied = []
    for migration in migrations:
        if migration.version in have:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now_ms),
            )
        except sqlite3.IntegrityError:
            _rollback(conn)  # another process applied it first
            continue
        try:
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        applied.append(migration)
    return applied


def split_statements(sql: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole (SQLite's own tokenizer
    decides where a statement ends), so each can run inside our transaction."""
    statements, buffer = [], ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \n\t;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:60]!r}")
    return statements


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def check_version(conn: sqlite3.Connection) -> None:
    """Refuse a database that a newer loyaltybot migrated, without changing anything."""
    known = {m.version for m in available()}
    unknown = applied_versions(conn) - known
    if unknown:
        raise SchemaTooNew(max(unknown), max(known, default=0))
