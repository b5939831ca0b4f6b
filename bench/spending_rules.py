"""Spending rules benchmark: the pure decisions of SPEC §10, one JSON line per workload.

    .venv/bin/python bench/spending_rules.py             # 5 repetitions each
    .venv/bin/python bench/spending_rules.py --reps 9

No database and no asyncio: these are the functions the services call inside (or just
before) their transactions, so their time adds to a command's latency.

``giveaway_draw``   ``draw()`` among 100,000 entrants holding 1,000,000 tickets (every
    10th a subscriber with luck 1.5), n = 1 and n = 10 winners, from scratch: sort into
    the canonical order, weights, cumulative table, picks. ``order`` says how the entries
    arrive: ``shuffled`` (worst case) or ``canonical`` (as a query ordered by
    ``length(user_id), user_id`` would return them; Python's sort is then linear).
``giveaway_draw_continue``  the 11th winner after 10: replays the first 10 picks.
``contest_settle``  ``settle()`` of 100,000 bets on 3 options (one row per viewer, as the
    service keeps totals) and of 150,000 rows for the same viewers (top-ups, the general
    path). Target: 1 s for the whole settlement; the pure part should be about 0.1 s.
``heist``           ``heist()`` of a 10,000-player crew (rolls drawn beforehand).

Each line: ``seconds`` is the median of ``--reps`` runs, ``min_seconds`` the fastest;
``target_seconds`` and ``met`` where the brief sets a target.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loyaltybot.features.contests.rules import Bet, settle  # noqa: E402
from loyaltybot.features.games.rules import heist, heist_rolls  # noqa: E402
from loyaltybot.features.giveaways.rules import (  # noqa: E402
    Entry,
    draw,
    new_seed,
    order_key,
)


def timed(fn: Callable[[], object], reps: int) -> tuple[list[float], object]:
    times = []
    result: object = None
    for _ in range(reps):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def emit(workload: str, n: int, times: list[float], target: float | None = None,
         **extra: object) -> None:
    median = statistics.median(times)
    line: dict[str, object] = {"impl": "loyaltybot", "workload": workload, "n": n,
                               "seconds": round(median, 6), "min_seconds": round(min(times), 6),
                               "reps": len(times), **extra}
    if target is not None:
        line["target_seconds"] = target
        line["met"] = median <= target
    print(json.dumps(line), flush=True)


def giveaway_entries(rng: random.Random, entrants: int, tickets: int) -> list[Entry]:
    """Twitch-like ids (8 to 10 digits), every entrant at least one ticket."""
    ids = rng.sample(range(10_000_000, 2_000_000_000), entrants)
    counts = [1] * entrants
    for _ in range(tickets - entrants):
        counts[rng.randrange(entrants)] += 1
    return [Entry(str(uid), count, 1.5 if i % 10 == 0 else 1.0)
            for i, (uid, count) in enumerate(zip(ids, counts, strict=True))]


def bench_giveaways(reps: int) -> None:
    rng = random.Random(42)
    entries = giveaway_entries(rng, 100_000, 1_000_000)
    canonical = sorted(entries, key=lambda e: order_key(e.user_id))
    seed = new_seed()
    gc.freeze()
    for order, rows in (("shuffled", entries), ("canonical", canonical)):
        for n in (1, 10):
            times, result = timed(lambda rows=rows, n=n: draw(seed, rows, n), reps)
            emit("giveaway_draw", len(rows), times, 0.2, winners=n, order=order,
                 tickets=sum(e.tickets for e in rows),
                 random_numbers_used=getattr(result, "position", None))
    first = draw(seed, entries, 10).winners
    times, _ = timed(lambda: draw(seed, entries, 1, already_won=first), reps)
    emit("giveaway_draw_continue", len(entries), times, 0.2, winners=1, already_won=10,
         order="shuffled")


def bench_contest(reps: int) -> None:
    rng = random.Random(7)
    viewers = 100_000
    bets = [Bet(str(100_000_000 + i), rng.randint(1, 3), rng.randint(1, 100_000), i)
            for i in range(viewers)]
    topups = [Bet(b.user_id, b.option, rng.randint(1, 1000), viewers + i)
              for i, b in enumerate(rng.sample(bets, 50_000))]
    gc.freeze()
    for shape, rows in (("one_row_per_viewer", bets), ("with_topups", bets + topups)):
        times, result = timed(lambda rows=rows: settle(rows, 2), reps)
        paid = getattr(result, "paid_out", None)
        pool = getattr(result, "pool", None)
        emit("contest_settle", len(rows), times, 1.0, shape=shape, viewers=viewers,
             winners=len(getattr(result, "payouts", {})),
             extra_points=getattr(result, "extra_points", None), pool=pool,
             payouts_equal_pool=paid == pool)


def bench_heist(reps: int) -> None:
    rng = random.Random(3)
    players = 10_000
    crew = [(str(100_000_000 + i), rng.randint(1, 100_000)) for i in range(players)]
    rolls = heist_rolls(players)
    gc.freeze()
    times, result = timed(lambda: heist(crew, rolls, 2, 50, 1.7), reps)
    emit("heist", players, times, survivors=getattr(result, "survivors", None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions; the median is shown")
    args = parser.parse_args()
    bench_giveaways(args.reps)
    bench_contest(args.reps)
    bench_heist(args.reps)


if __name__ == "__main__":
    main()
