"""The operator CLI, run as a real process on a real database file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def make_config(tmp_path: Path, db: str = "bot.db", extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\npath = "{db}"\n[twitch]\nclient_id = "x"\nbot_login = "mybot"\n{extra}'
        '[channels.alice]\ncurrency_name = "cookie"\ncurrency_name_plural = "cookies"\n'
        "[channels.bob_tv]\n"
    )
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "loyaltybot", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


CSV = """user_id,username,points,watch_seconds,messages
101,alice_fan,1500,3600,42
102,Bob,20,60,1
103,carol,0,10,0
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return make_config(tmp_path)


def balances(db: Path, channel: str = "alice") -> dict[str, tuple[int, int, int]]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT v.login, v.points, v.watch_seconds, v.messages FROM viewers v"
        " JOIN channels c ON c.id = v.channel_id WHERE c.login = ?",
        (channel,),
    ).fetchall()
    conn.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_import_then_points_then_audit(config: Path, tmp_path: Path) -> None:
    """Import creates viewers; points add/remove/set go through the ledger; audit passes."""
    (tmp_path / "in.csv").write_text(CSV)
    result = cli(
        config, "import", "--channel", "alice", "--format", "csv", str(tmp_path / "in.csv")
    )
    assert result.returncode == 0, result.stderr
    assert "imported 3 of 3 rows" in result.stdout and "1,520 points" in result.stdout
    added = cli(config, "points", "add", "alice", "@BOB", "100", "--reason", "prize")
    assert added.returncode == 0 and "bob: 20 -> 120 cookies (+100)" in added.stdout
    removed = cli(config, "points", "remove", "alice", "bob", "121")
    assert removed.returncode == 1
    assert "balance is 120, less than 121; nothing changed" in removed.stderr
    assert cli(config, "points", "set", "alice", "carol", "0").returncode == 0
    assert cli(config, "points", "set", "alice", "carol", "7").returncode == 0
    audit = cli(config, "audit")
    assert audit.returncode == 0 and "audit ok: 3 viewer balances" in audit.stdout
    conn = sqlite3.connect(tmp_path / "bot.db")
    reasons = conn.execute("SELECT type, reason, actor FROM ledger WHERE type = 'add'").fetchall()
    conn.close()
    assert reasons[0][0:2] == ("add", "prize") and reasons[0][2].startswith("cli:")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_imported_twice_gives_same_balances_once(
    config: Path, tmp_path: Path, fmt: str
) -> None:
    """An export, imported twice into a fresh database, gives the same balances once."""
    (tmp_path / "in.csv").write_text(CSV)
    cli(config, "import", "--channel", "alice", "--format", "csv", str(tmp_path / "in.csv"))
    cli(config, "points", "add", "alice", "carol", "5")
    exported = cli(config, "export", "--channel", "alice", "--format", fmt)
    assert exported.returncode == 0
    export_file = tmp_path / f"export.{fmt}"
    export_file.write_text(exported.stdout)
    if fmt == "json":
        assert json.loads(exported.stdout)[0] == {
            "user_id": "101",
            "username": "alice_fan",
            "points": 1500,
            "watch_seconds": 3600,
            "messages": 42,
        }
    fresh = make_config(tmp_path / "fresh" if (tmp_path / "fresh").mkdir() is None else tmp_path)
    for attempt in range(2):
        result = cli(fresh, "import", "--channel", "alice", "--format", fmt, str(export_file))
        assert result.returncode == 0, result.stderr
        if attempt == 1:
            assert "imported 0 of 3 rows" in result.stdout
            assert "3 rows were already imported from this file" in result.stdout
    assert balances(tmp_path / "fresh" / "bot.db") == balances(tmp_path / "bot.db")
    assert cli(fresh, "audit").returncode == 0


@pytest.mark.parametrize(
    ("text", "fmt", "where"),
    [
        (CSV + "104,dave,12x,0,0\n", "csv", ":5: points '12x' is not a whole number"),
        (CSV + "105,not a login,1,0,0\n", "csv", ":5: username 'not a login'"),
        (CSV + "101,again,1,0,0\n", "csv", ":5: user_id 101 appears again (first on line 2)"),
        (CSV.replace("messages", "msgs"), "csv", ":1: missing column(s) messages"),
        (CSV + "106,erin,-4,0,0\n", "csv", ":5: points '-4'"),
        (
            '[\n {"user_id": "1", "username": "a", "points": 1, "watch_seconds": 0,'
            ' "messages": 0},\n {"user_id": "2", "username": "b", "points": 1.5,'
            ' "watch_seconds": 0, "messages": 0}\n]',
            "json",
            ":3: points 1.5",
        ),
        (
            '[\n {"user_id": "1", "username": "a", "points": 1, "watch_seconds": 0,\n',
            "json",
            ": not JSON",
        ),
        ("", "csv", "the file is empty"),
    ],
)
def test_malformed_import_names_the_line_and_imports_nothing(
    config: Path, tmp_path: Path, text: str, fmt: str, where: str
) -> None:
    """A malformed row names its line and nothing at all is imported."""
    path = tmp_path / f"bad.{fmt}"
    path.write_text(text)
    result = cli(config, "import", "--channel", "alice", "--format", fmt, str(path))
    assert result.returncode == 1
    assert where in result.stderr and "nothing was imported" in result.stderr
    assert balances(tmp_path / "bot.db") == {}


def test_dry_run_changes_nothing(config: Path, tmp_path: Path) -> None:
    """--dry-run reports what would change and writes nothing."""
    (tmp_path / "in.csv").write_text(CSV)
    result = cli(
        config,
        "import",
        "--channel",
        "alice",
        "--format",
        "csv",
        "--dry-run",
        str(tmp_path / "in.csv"),
    )
    assert result.returncode == 0 and "would import 3 of 3 rows" in result.stdout
    assert balances(tmp_path / "bot.db") == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("points", "add", "alice", "bob", "0"), "amount '0' must be at least 1"),
        (("points", "add", "alice", "bob", "1.5"), "must be a whole number"),
        (("points", "add", "nosuch", "bob", "5"), "unknown channel 'nosuch'"),
        (("points", "add", "alice", "no such", "5"), "'no such' is not a Twitch login"),
        (
            ("points", "add", "alice", "ghost", "5"),
            "ghost has never been seen in #alice, and Twitch cannot be asked",
        ),
        (("export", "--channel", "nosuch"), "unknown channel"),
        (("import", "--channel", "alice", "--format", "csv", "/nonexistent.csv"), "no such file"),
    ],
)
def test_user_mistakes_are_one_clear_line(
    config: Path, args: tuple[str, ...], message: str
) -> None:
    """Operator mistakes give one line on stderr and a non-zero exit, never a traceback."""
    cli(config, "migrate")
    result = cli(config, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_points_for_an_unseen_login_by_user_id_then_audit(config: Path, tmp_path: Path) -> None:
    """Without Twitch, the operator names a new viewer by id; the id must then match."""
    assert cli(config, "migrate").returncode == 0
    result = cli(config, "points", "add", "alice", "bob", "100", "--user-id", "4242")
    assert result.returncode == 0, result.stderr
    assert "#alice bob: 0 -> 100 cookies (+100)" in result.stdout
    assert balances(tmp_path / "bot.db") == {"bob": (100, 0, 0)}
    wrong = cli(config, "points", "add", "alice", "bob", "5", "--user-id", "999")
    assert wrong.returncode != 0 and "bob is user 4242 in #alice, not 999" in wrong.stderr
    bad = cli(config, "points", "add", "alice", "carol", "5", "--user-id", "12ab")
    assert bad.returncode != 0 and "is not a Twitch user id" in bad.stderr
    assert cli(config, "points", "remove", "alice", "bob", "30").returncode == 0
    assert balances(tmp_path / "bot.db") == {"bob": (70, 0, 0)}
    audit = cli(config, "audit")
    assert audit.returncode == 0 and "audit ok" in audit.stdout


def test_unseen_login_when_twitch_is_unreachable(tmp_path: Path) -> None:
    """A never-seen login with Twitch unreachable is a clear error that changes nothing."""
    config = make_config(
        tmp_path, extra='bot_token = "tok123456"\napi_url = "http://127.0.0.1:9"\n'
    )
    result = cli(config, "points", "add", "alice", "ghost", "5")
    assert result.returncode == 1
    assert "Twitch could not tell who that is" in result.stderr
    assert "tok123456" not in result.stderr
    assert balances(tmp_path / "bot.db") == {}


def test_audit_fails_on_tampering(config: Path, tmp_path: Path) -> None:
    """audit exits 1 and names the viewer when a balance no longer equals its history."""
    (tmp_path / "in.csv").write_text(CSV)
    cli(config, "import", "--channel", "alice", "--format", "csv", str(tmp_path / "in.csv"))
    conn = sqlite3.connect(tmp_path / "bot.db")
    conn.execute("UPDATE viewers SET points = points + 1 WHERE login = 'bob'")
    conn.commit()
    conn.close()
    result = cli(config, "audit", "--channel", "alice")
    assert result.returncode == 1
    assert "#alice bob (102): balance 21 != earned 0 + ledger 20" in result.stdout


def test_audit_needs_a_database(config: Path) -> None:
    """Reading commands do not create an empty database by accident."""
    result = cli(config, "audit")
    assert result.returncode == 1 and "no database at" in result.stderr


def test_backup_while_a_writer_runs(config: Path, tmp_path: Path) -> None:
    """backup makes a verified, consistent copy while another process writes."""
    (tmp_path / "in.csv").write_text(CSV)
    cli(config, "import", "--channel", "alice", "--format", "csv", str(tmp_path / "in.csv"))
    conn = sqlite3.connect(tmp_path / "bot.db")
    uid = conn.execute("SELECT user_id FROM viewers WHERE login = 'bob'").fetchone()[0]
    conn.close()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.workers.ledger_load",
            str(tmp_path / "bot.db"),
            "credit",
            "300",
            uid,
        ],
        cwd=ROOT,
    )
    result = cli(config, "backup", str(tmp_path))
    assert writer.wait(60) == 0
    assert result.returncode == 0 and "verified" in result.stdout
    [copy] = list(tmp_path.glob("loyaltybot-*.db"))
    copy_config = make_config(
        tmp_path / "c" if (tmp_path / "c").mkdir() is None else tmp_path, db=str(copy)
    )
    assert cli(copy_config, "audit").returncode == 0
    again = cli(config, "backup", str(copy))
    assert again.returncode == 1 and "exists" in again.stderr


def test_newer_schema_is_refused(config: Path, tmp_path: Path) -> None:
    """A database migrated by a newer loyaltybot is refused with a clear line, untouched."""
    assert cli(config, "migrate").returncode == 0
    conn = sqlite3.connect(tmp_path / "bot.db")
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 0)")
    conn.commit()
    conn.close()
    result = cli(config, "points", "add", "alice", "bob", "5")
    assert result.returncode == 1
    assert "schema version 999" in result.stderr and "upgrade loyaltybot" in result.stderr


def test_config_may_come_before_or_after_the_command(config: Path) -> None:
    """-c works before or after the sub-command."""
    before = subprocess.run(
        [sys.executable, "-m", "loyaltybot", "-c", str(config), "migrate"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert before.returncode == 0, before.stderr
    assert cli(config, "migrate").returncode == 0
