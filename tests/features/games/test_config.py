"""``[channels.C.games]`` in config.toml: check-config names every bad key with its full path
(the games' one schema), and the commented example in the repository validates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

BAD = """
[twitch]
client_id = "x"
bot_login = "mybot"
[channels.alice.games]
enabled = ["gamble", "poker"]
gamble_win_at = 101
slots_symbols = ["Kappa", "Kappa"]
heist_join_seconds = 0
heist_payout_multiplier = -1
roulette = true
"""


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loyaltybot", "check-config", "-c", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip


def test_check_config_names_each_bad_games_key(tmp_path: Path) -> None:
    """One line per problem, each with its dotted key path; exit 2; no traceback."""
    path = tmp_path / "config.toml"
    path.write_text(BAD)
    done = check_config(path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = {line.split(": ", 2)[1]: line.split(": ", 2)[2]
             for line in done.stderr.splitlines() if line.startswith(str(path))}  # fmt: skip
    assert lines == {
        "channels.alice.games.enabled[1]": "must be one of 'gamble', 'slots', 'duel' or 'heist'",
        "channels.alice.games.gamble_win_at": "must be <= 100",
        "channels.alice.games.slots_symbols[1]": "appears twice",
        "channels.alice.games.heist_join_seconds": "must be >= 1",
        "channels.alice.games.heist_payout_multiplier": "must be >= 0",
        "channels.alice.games.roulette": "unknown key",
    }


def test_the_commented_example_validates(tmp_path: Path) -> None:
    """config.toml's games table, uncommented, passes check-config as written."""
    text = (ROOT / "config.toml").read_text()
    head, _, games = text.partition("# [channels.alice.games]")
    table = "\n".join(line[2:] for line in games.splitlines() if line.startswith("# "))
    path = tmp_path / "config.toml"
    path.write_text(head + "[channels.alice.games]\n" + table + "\n")
    done = check_config(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "enabled" in table and "heist_cooldown_seconds" in table
