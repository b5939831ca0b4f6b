"""`loyaltybot demo`, as a new user runs it (for a few seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_demo_shows_a_live_bot_and_balances_growing() -> None:
    """The demo prints its URLs, the bot answers simulated viewers, ticks pay, redemptions
    are handled, audit passes."""
    result = subprocess.run(
        [sys.executable, "-m", "loyaltybot", "demo", "--seconds", "14", "--port", "0"],
        capture_output=True, text=True, cwd=ROOT, timeout=80, check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "/login" in out and "/c/alice/leaderboard" in out
    assert "<mybot> @" in out  # the bot answered someone
    ticks = [line for line in out.splitlines() if line.startswith("== tick ")]
    assert any("== tick 2:" in line for line in ticks), ticks
    assert ' redeemed "' in out  # a simulated redemption and what became of it
    assert "Giveaway #1 is open:" in out  # a moderator runs giveaways; viewers type !ticket
    assert "Contest #1 is open:" in out  # and contests; viewers type !bet and play games
    assert "audit: ok" in out
    assert "Traceback" not in out + result.stderr
