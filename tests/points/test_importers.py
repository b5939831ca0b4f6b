"""Imports from StreamElements, Streamlabs Chatbot and PhantomBot (loyaltybot/importers.py).

Twitch is the simulator on loopback: it knows the sample files' viewers (not
``gone_user``), refuses a Get Users request with more than 100 logins, and records each
Helix request, so the tests can see how logins were batched.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from loyaltybot.config import Secret
from loyaltybot.db import Store, open_store
from loyaltybot.points import importers
from loyaltybot.points.bank import Bank
from loyaltybot.points.exchange import ImportFileError
from loyaltybot.points.importers import SourceRow
from loyaltybot.simulator import Simulator
from loyaltybot.twitch.helix import Helix, HelixError
from loyaltybot.twitch.oauth import StaticToken

DATA = Path(__file__).resolve().parents[1] / "data" / "imports"
CHANNEL = "alice"
USERS = {"viewer_one": "501", "viewer_two": "502", "viewer_three": "503", "viewer_four": "504"}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    twitch = Simulator()
    await twitch.start()
    twitch.add_user("mybot")
    for login, user_id in USERS.items():
        twitch.add_user(login, user_id=user_id)
    yield twitch
    await twitch.close()


def user_batches(sim: Simulator) -> list[int]:
    """How many logins each Get Users request asked for."""
    return [
        len(parse_qs(urlsplit(path).query).get("login", []))
        for _, method, path in sim.helix.requests
        if method == "GET" and urlsplit(path).path == "/helix/users"
    ]


@pytest.fixture
async def helix(sim: Simulator) -> AsyncIterator[Helix]:
    token = StaticToken(Secret(sim.issue_token("mybot")))
    async with aiohttp.ClientSession() as session:
        yield Helix(session, sim.api_url, sim.client_id, token)


async def run_import(
    bank: Bank, helix: Helix, path: Path, fmt: str, *, dry_run: bool = False
) -> tuple[importers.ImportReport, importers.Resolution]:
    rows = importers.parse_file(path, fmt)
    resolution = await importers.resolve(helix, rows)
    key = importers.import_key(fmt, bank.channel_id(CHANNEL))
    report = await bank.import_rows(CHANNEL, resolution.rows, key, source=fmt, dry_run=dry_run)
    return report, resolution


async def balances(store: Store) -> dict[str, tuple[int, int]]:
    """login -> (points, watch_seconds) for #alice."""

    def run(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
        return {
            login: (points, watch)
            for login, points, watch in conn.execute(
                "SELECT v.login, v.points, v.watch_seconds FROM viewers v"
                " JOIN channels c ON c.id = v.channel_id WHERE c.login = ?",
                (CHANNEL,),
            )
        }

    return await store.read(run)


async def ledger_rows(store: Store) -> list[tuple[str, str, int, str]]:
    return await store.read(
        lambda c: c.execute(
            "SELECT type, user_id, amount, reason FROM ledger ORDER BY id"
        ).fetchall()
    )


# ---- each format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        (
            "streamelements.json",
            "streamelements",
            {"viewer_one": (1500, 0), "viewer_two": (740, 0), "viewer_three": (25, 5400),
             "viewer_four": (0, 0)},
        ),
        (
            "streamelements.csv",
            "streamelements",
            {"viewer_one": (1500, 36000), "viewer_two": (740, 2700)},
        ),
        (
            "streamlabs.csv",
            "streamlabs",
            {"viewer_one": (1200, 37800), "viewer_two": (1000, 7200), "viewer_three": (7, 0)},
        ),
        (
            "streamlabs_semicolon.csv",
            "streamlabs",
            {"viewer_one": (1200, 37800), "viewer_two": (1000, 7200)},
        ),
        (
            "phantombot.csv",
            "phantombot",
            {"viewer_one": (880, 0), "viewer_two": (12000, 0), "viewer_three": (0, 0)},
        ),
    ],
)  # fmt: skip
async def test_each_format_imports_balances_and_watch_time(
    bank: Bank, helix: Helix, name: str, fmt: str, expected: dict[str, tuple[int, int]]
) -> None:
    """Each sample sets the right points and watch time, as `import` ledger rows; audit holds."""
    report, resolution = await run_import(bank, helix, DATA / name, fmt)
    assert await balances(bank.store) == expected
    assert report.points == sum(points for points, _ in expected.values())
    assert report.new_viewers == len(expected)
    rows = await ledger_rows(bank.store)
    assert {(kind, reason) for kind, _, _, reason in rows} == {("import", f"import from {fmt}")}
    assert sorted(amount for *_, amount, _ in rows) == sorted(p for p, _ in expected.values() if p)
    assert await bank.audit(CHANNEL) == []
    assert [u.login for u in resolution.unknown] == (
        ["gone_user"] if "gone_user" in (DATA / name).read_text() else []
    )


async def test_phantombot_database_is_read_directly(
    bank: Bank, helix: Helix, tmp_path: Path
) -> None:
    """PhantomBot's own SQLite file: points from phantombot_points, seconds from phantombot_time."""
    path = tmp_path / "phantombot.db"
    pb = sqlite3.connect(path)
    pb.executescript(
        "CREATE TABLE phantombot_points (section TEXT, variable TEXT, value TEXT,"
        " PRIMARY KEY (section, variable));"
        "CREATE TABLE phantombot_time (section TEXT, variable TEXT, value TEXT,"
        " PRIMARY KEY (section, variable));"
        "INSERT INTO phantombot_points VALUES ('', 'viewer_one', '880'), ('', 'viewer_two', '5'),"
        " ('', 'gone_user', '9');"
        "INSERT INTO phantombot_time VALUES ('', 'viewer_one', '7200'), ('', 'viewer_four', '60');"
    )
    pb.commit()
    pb.close()
    before = path.read_bytes()
    _, resolution = await run_import(bank, helix, path, "phantombot")
    assert await balances(bank.store) == {
        "viewer_one": (880, 7200),
        "viewer_two": (5, 0),
        "viewer_four": (0, 60),
    }
    assert [u.login for u in resolution.unknown] == ["gone_user"]
    assert path.read_bytes() == before  # opened read-only
    assert await bank.audit(CHANNEL) == []


async def test_phantombot_database_needs_the_phantombot_format(tmp_path: Path) -> None:
    """A SQLite file given as another format is refused with a hint."""
    path = tmp_path / "x.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ImportFileError, match="use --format phantombot"):
        importers.parse_file(path, "streamlabs")
    with pytest.raises(ImportFileError, match="no phantombot_points table"):
        importers.parse_file(path, "phantombot")


# ---- malformed input: named line, nothing imported -------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "line", "message"),
    [
        ("streamelements_bad.json", "streamelements", 5, "points 12.5 is not a whole number"),
        ("streamlabs_bad.csv", "streamlabs", 4, "Points '-5' is not a whole number"),
        ("streamlabs_duplicate.csv", "streamlabs", 4, "viewer_one appears again (first on line 2)"),
        ("phantombot_bad.csv", "phantombot", 3, "'viewer two' is not a Twitch login"),
        ("wrong_columns.csv", "streamlabs", 1, "missing a points column (points/currency)"),
        ("streamelements.json", "streamlabs", 1, "this looks like JSON"),
    ],
)
async def test_malformed_rows_name_their_line(name: str, fmt: str, line: int, message: str) -> None:
    """The first problem stops the parse with its line number."""
    with pytest.raises(ImportFileError) as caught:
        importers.parse_file(DATA / name, fmt)
    assert caught.value.line == line
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04rest-of-a-zip", "Excel workbook: open it, save the sheet as CSV"),
        (b"", "the file is empty"),
        (b"Name,Rank,Points,Hours\nviewer_one,x,5,soon\n", "Hours 'soon' is not a number of hours"),
        (
            b"Name,Rank,Points,Hours\nviewer_one,x,99999999999999999,1\n",
            "is not a whole number from 0",
        ),
        (b'{"users": "nope"}', 'expected {"users": [...]}'),
    ],
)
def test_other_bad_files_are_refused(data: bytes, message: str) -> None:
    """Workbooks, empty files, bad durations, huge numbers and odd JSON get a clear message."""
    fmt = "streamelements" if data.startswith(b"{") else "streamlabs"
    with pytest.raises(ImportFileError, match=message.replace("[", r"\[").replace("{", r"\{")):
        importers.parse(data, fmt)


def test_encodings_excel_writes_are_read() -> None:
    """UTF-16 (Excel's Unicode text, tab-separated) and Windows-1252 CSV both parse."""
    text = "Name\tRank\tPoints\tHours\r\nviewer_one\tRégulier\t1200\t1,5\r\n"
    for data in (text.encode("utf-16"), text.encode("cp1252")):
        assert importers.parse(data, "streamlabs") == [SourceRow(2, "viewer_one", 1200, 5400)]


async def test_cli_malformed_file_imports_nothing(tmp_path: Path, sim: Simulator) -> None:
    """Through the CLI a bad row prints `file:line: ...; nothing was imported`, exit 1."""
    config = write_config(tmp_path, sim)
    code, out, err = await cli(config, "import", "--channel", CHANNEL, "--format", "streamlabs",
                               str(DATA / "streamlabs_bad.csv"))  # fmt: skip
    assert code == 1
    assert out == ""
    assert err.strip() == (
        f"loyaltybot: {DATA / 'streamlabs_bad.csv'}:4: Points '-5' is not a whole number"
        " from 0 to 9,007,199,254,740,991; nothing was imported"
    )
    assert user_batches(sim) == []
    assert not (tmp_path / "loyaltybot.db").exists() or await cli_balances(tmp_path) == {}


# ---- unknown logins, dry run, re-import ------------------------------------------------------


async def test_unknown_logins_are_skipped_and_listed(bank: Bank, helix: Helix) -> None:
    """Logins Twitch does not know are left out, listed with their lines; the rest imports."""
    report, resolution = await run_import(bank, helix, DATA / "streamlabs.csv", "streamlabs")
    assert resolution.unknown == [SourceRow(4, "gone_user", 50, 900)]
    lines = importers.render(
        report,
        resolution.unknown,
        channel=CHANNEL,
        fmt="streamlabs",
        dry_run=False,
        format_points=str,
    )
    assert lines[0] == "imported 3 viewers into #alice: 2207 points, 3 new viewers"
    assert lines[1] == (
        "skipped 1 logins Twitch does not know (renamed or deleted accounts): gone_user (line 4)"
    )


async def test_dry_run_changes_nothing(bank: Bank, helix: Helix) -> None:
    """--dry-run reports what would change and writes nothing."""
    report, _ = await run_import(
        bank, helix, DATA / "streamelements.json", "streamelements", dry_run=True
    )
    assert (report.rows, report.points, report.new_viewers) == (4, 2265, 4)
    assert await balances(bank.store) == {}
    assert await ledger_rows(bank.store) == []


async def test_reimport_changes_nothing_even_from_a_newer_export(
    bank: Bank, helix: Helix, tmp_path: Path
) -> None:
    """The same file again, or an edited one, never imports a viewer twice; new ones come in."""
    await run_import(bank, helix, DATA / "phantombot.csv", "phantombot")
    before = await balances(bank.store)
    report, _ = await run_import(bank, helix, DATA / "phantombot.csv", "phantombot")
    assert report.already_imported == 3
    assert report.points == 0
    assert await balances(bank.store) == before

    edited = tmp_path / "edited.csv"
    edited.write_text("section,variable,value\n,viewer_one,999999\n,viewer_four,40\n", "utf-8")
    report, _ = await run_import(bank, helix, edited, "phantombot")
    assert (report.already_imported, report.points) == (1, 40)
    after = await balances(bank.store)
    assert after["viewer_one"] == before["viewer_one"]
    assert after["viewer_four"] == (40, 0)
    # another bot's export of the same viewer is a separate source: imported once from it
    report, _ = await run_import(bank, helix, DATA / "streamlabs_semicolon.csv", "streamlabs")
    assert report.already_imported == 0
    assert report.imported_before_from_other_files == ["viewer_one", "viewer_two"]
    assert await bank.audit(CHANNEL) == []


async def test_logins_are_resolved_100_at_a_time(sim: Simulator, helix: Helix) -> None:
    """250 logins cost three Get Users requests of at most 100 each."""
    for n in range(250):
        sim.add_user(f"bulk{n}", user_id=str(10_000 + n))
    rows = [SourceRow(n + 2, f"bulk{n}", n, 0) for n in range(250)]
    resolution = await importers.resolve(helix, rows)
    assert user_batches(sim) == [100, 100, 50]
    assert len(resolution.rows) == 250
    assert resolution.rows[7].row.user_id == "10007"


async def test_twitch_unreachable_imports_nothing(bank: Bank) -> None:
    """If Helix cannot be asked, resolve() raises and nothing is written."""
    async with aiohttp.ClientSession() as session:
        helix = Helix(
            session, "http://127.0.0.1:9/helix", "c", StaticToken(Secret("t" * 30)), attempts=1
        )
        with pytest.raises(HelixError, match="cannot reach"):
            await importers.resolve(helix, [SourceRow(2, "viewer_one", 5, 0)])
    assert await balances(bank.store) == {}


# ---- the command line, end to end ------------------------------------------------------------


def write_config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[database]
path = "loyaltybot.db"

[twitch]
client_id = "{sim.client_id}"
client_secret = "{sim.client_secret}"
bot_login = "mybot"
api_url = "{sim.api_url}"
auth_url = "{sim.auth_url}"

[channels.alice]
""",
        "utf-8",
    )
    return path


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loyaltybot", *args, "-c", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_balances(tmp_path: Path) -> dict[str, tuple[int, int]]:
    store = await open_store(tmp_path / "loyaltybot.db")
    try:
        return await balances(store)
    finally:
        await store.close()


async def test_cli_import_dry_run_then_import_then_again(tmp_path: Path, sim: Simulator) -> None:
    """`loyaltybot import --format streamelements`: dry run, real run, re-run; audit passes."""
    config = write_config(tmp_path, sim)
    file = str(DATA / "streamelements.json")
    args = ("import", "--channel", CHANNEL, "--format", "streamelements", file)

    code, out, err = await cli(config, *args, "--dry-run")
    assert code == 0, err
    assert out.splitlines()[0] == "would import 4 viewers into #alice: 2,265 points, 4 new viewers"
    assert "gone_user (line 6)" in out
    assert await cli_balances(tmp_path) == {}

    code, out, err = await cli(config, *args)
    assert code == 0, err
    assert out.splitlines()[0] == "imported 4 viewers into #alice: 2,265 points, 4 new viewers"
    first = await cli_balances(tmp_path)
    assert first["viewer_one"] == (1500, 0)

    code, out, err = await cli(config, *args)
    assert code == 0, err
    assert out.splitlines()[0] == "imported 0 viewers into #alice: 0 points, 0 new viewers"
    assert "4 viewers were already imported from streamelements into #alice before" in out
    assert await cli_balances(tmp_path) == first

    code, out, err = await cli(config, "audit", "--channel", CHANNEL)
    assert code == 0, err


async def test_cli_own_formats_still_work(tmp_path: Path, sim: Simulator) -> None:
    """--format csv still goes to our own importer (exchange.py), untouched by this module."""
    config = write_config(tmp_path, sim)
    own = tmp_path / "own.csv"
    own.write_text("user_id,username,points,watch_seconds,messages\n77,someone,12,0,0\n", "utf-8")
    code, _, err = await cli(config, "import", "--channel", CHANNEL, "--format", "csv", str(own))
    assert code == 0, err
    assert await cli_balances(tmp_path) == {"someone": (12, 0)}
    assert user_batches(sim) == []
