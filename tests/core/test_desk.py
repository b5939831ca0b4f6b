"""The desk commits a burst in groups: a refused request changes nothing and costs the
others nothing; a failed transaction fails its whole group and the desk goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from loyaltybot.clock import FakeClock
from loyaltybot.db import Store, Tx
from loyaltybot.db.desk import Desk, each_in_savepoint


def note(tx: Tx, word: str) -> str:
    tx.conn.execute("CREATE TABLE IF NOT EXISTS notes (word TEXT NOT NULL)")
    tx.conn.execute("INSERT INTO notes (word) VALUES (?)", (word,))
    if word.startswith("bad"):
        raise ValueError(word)  # after its write: the savepoint must undo it
    return word.upper()


def group(tx: Tx, words: Sequence[str]) -> list[str | Exception]:
    if "boom" in words:
        raise RuntimeError("the transaction failed")
    return each_in_savepoint(tx, "note", words, lambda w: note(tx, w))


async def written(store: Store) -> list[str]:
    rows = await store.read(lambda c: c.execute("SELECT word FROM notes ORDER BY 1").fetchall())
    return [w for (w,) in rows]


async def test_a_burst_is_a_few_transactions_and_a_refusal_undoes_only_itself(
    store: Store, clock: FakeClock
) -> None:
    desk: Desk[str, str] = Desk(store, clock, group, name="notes", max_group=10)
    words = [f"w{i:02d}" for i in range(30)] + ["bad1"]
    results = await asyncio.gather(*(desk.submit(w) for w in words), return_exceptions=True)
    assert results[:30] == [w.upper() for w in words[:30]]
    assert isinstance(results[30], ValueError)
    assert await written(store) == sorted(words[:30])  # bad1's insert was undone
    assert desk.stats.groups <= 4 and desk.stats.committed == 30


async def test_a_failed_transaction_fails_its_group_only(store: Store, clock: FakeClock) -> None:
    desk: Desk[str, str] = Desk(store, clock, group, name="notes", max_group=2)
    first = asyncio.gather(desk.submit("a"), desk.submit("boom"), return_exceptions=True)
    later = asyncio.ensure_future(desk.submit("c"))
    assert [type(r) for r in await first] == [RuntimeError, RuntimeError]
    assert await later == "C"
    assert await written(store) == ["c"]
    await desk.close()


async def test_a_request_whose_caller_gave_up_still_stands(store: Store, clock: FakeClock) -> None:
    desk: Desk[str, str] = Desk(store, clock, group, name="notes", max_group=10)
    gone = asyncio.ensure_future(desk.submit("kept"))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await desk.close()
    assert await written(store) == ["kept"] and desk.stats.committed == 1
