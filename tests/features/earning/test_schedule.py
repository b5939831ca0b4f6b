"""When the chatter list is read: at the tick for a small channel, ahead of it for a big one."""

from __future__ import annotations

import pytest

from loyaltybot.features.earning.rules import collect_lead


@pytest.mark.parametrize(
    ("last", "interval", "lead"),
    [(0.05, 300.0, 0.0), (0.2, 3.0, 0.0), (2.0, 300.0, 3.5), (100.0, 120.0, 60.0)],
)
def test_a_big_list_is_read_ahead_of_the_tick(last: float, interval: float, lead: float) -> None:
    """Small channels read their list at the tick; big ones start early, at most half an
    interval ahead."""
    assert collect_lead(last, interval) == pytest.approx(lead)
