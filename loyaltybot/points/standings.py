"""Ranks and leaderboards of one channel, kept in memory as columns of numbers.

SQLite can only count the viewers above someone (O(rank): 1.3 ms at 100,000 viewers),
and an index on points would be rewritten for every present viewer at every earning
tick. Here a channel's ranked viewers are two aligned numpy arrays, user ids (as
integers, sorted) and points, so that

- a rank is one vectorised count of the points above (about 0.5 ms at 1,000,000 viewers,
  O(log n) with the sorted copy that a leaderboard request leaves behind);
- an earning tick that credits a million viewers the same amount is one vectorised
  addition (``add``), not a million updates of a sorted structure;
- memory is 17 bytes per ranked viewer, not a tuple, two dict entries and a sorted-list
  slot each.

The bank keeps it exact: it applies each committed balance change in commit order
(``update``, ``add``, ``set_many``), and rebuilds it when another process (the CLI) has
written. Twitch user ids are digits; any other id (a test's, an import's) gets a stable
negative stand-in number. Logins are not kept here: the bank names the top entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
Keys = Ids | Sequence[str]  # sorted numeric user ids, or the ids as written when not digits


def sorted_keys(user_ids: Sequence[str]) -> Keys:
    """User ids as sorted integers, ready for ``Standings.add`` (made on the database's
    thread, so the event loop only merges); the strings as given if one is not digits."""
    try:
        keys = np.fromiter(map(int, user_ids), dtype=np.int64, count=len(user_ids))
    except ValueError:
        return user_ids
    keys.sort()
    return keys


@dataclass(frozen=True, slots=True)
class Located:
    """Where credited viewers sit in the ranks, found on another thread (the database's,
    during the tick): good while the ranks hold the same id column (nobody was inserted
    or removed since), so the event loop only adds."""

    ids: Ids  # the id column they were found in
    at: npt.NDArray[np.intp]  # positions of the ranked ones
    new: Ids  # keys not ranked yet


@dataclass(frozen=True, slots=True)
class Standing:
    rank: int
    user_id: str
    login: str
    points: int


class Standings:
    """Viewers with points > 0, minus the excluded logins (ignored users, broadcaster, bot)."""

    def __init__(
        self, rows: Iterable[tuple[str, str, int]] = (), excluded: frozenset[str] = frozenset()
    ) -> None:
        self.excluded = excluded
        self._odd: dict[str, int] = {}  # non-numeric user id -> its negative stand-in
        self._odd_back: dict[int, str] = {}
        keys: list[int] = []
        values: list[int] = []
        for user_id, login, points in rows:
            if points > 0 and login not in excluded:
                keys.append(self._key(user_id))
                values.append(points)
        ids = np.array(keys, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self._ids: Ids = ids[order]
        self._pts: Ids = np.array(values, dtype=np.int64)[order]
        self._descending: Ids | None = None  # -points, sorted, while nothing changed
        self._order: npt.NDArray[np.intp] | None = None  # leaderboard order, likewise

    # ---- reading ------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._ids.size)

    def points(self, user_id: str) -> int | None:
        at = self._find(self._key(user_id))
        return None if at is None else int(self._pts[at])

    def rank(self, user_id: str) -> int | None:
        """1 + the number of viewers with more points (ties share a rank); None if unranked."""
        points = self.points(user_id)
        return None if points is None else self._rank_of(points)

    def max_points(self) -> int:
        return int(self._pts.max()) if self._pts.size else 0

    def top(self, limit: int, offset: int = 0) -> list[Standing]:
        """Most points first; ties by user id. ``login`` is left empty (the bank names them)."""
        return [Standing(rank, user_id, "", points) for rank, user_id, points in
                self.top_entries(limit, offset)]

    def top_entries(self, limit: int, offset: int = 0) -> list[tuple[int, str, int]]:
        """(rank, user id, points) of one page of the leaderboard."""
        if limit <= 0 or offset >= self._ids.size:
            return []
        end = min(self._ids.size, offset + limit)
        if self._order is None and end <= 1000:  # a small top: partition, no full sort
            picked = self._top_indices(end)
        else:
            if self._order is None:
                self._order = np.lexsort((self._ids, -self._pts))
            picked = self._order[:end]
        chosen = picked[offset:end]
        return [
            (self._rank_of(int(self._pts[i])), self._user_id(int(self._ids[i])), int(self._pts[i]))
            for i in chosen
        ]

    # ---- changes --------------------------------------------------------------------------

    def update(self, user_id: str, login: str, points: int) -> None:
        """One viewer's balance is now ``points`` (0 or an excluded login: unranked)."""
        key = self._key(user_id)
        at = self._find(key)
        ranked = points > 0 and login not in self.excluded
        if at is not None:
            if ranked:
                if self._pts[at] == points:
                    return
                self._pts[at] = points
            else:
                self._ids = np.delete(self._ids, at)
                self._pts = np.delete(self._pts, at)
        elif ranked:
            where = int(np.searchsorted(self._ids, key))
            self._ids = np.insert(self._ids, where, key)
            self._pts = np.insert(self._pts, where, points)
        else:
            return
        self._changed()

    def locate(self, keys: Ids) -> Located:
        """Where these sorted keys are (safe on another thread: it reads the id column
        once, and numpy's search lets the event loop run meanwhile)."""
        ids = self._ids
        at = np.searchsorted(ids, keys)
        inside = at < ids.size
        found = np.zeros(keys.size, dtype=bool)
        found[inside] = ids[at[inside]] == keys[inside]
        return Located(ids, at[found], keys[~found])

    def add(
        self, user_ids: Ids, amount: int, *, presorted: bool = False,
        located: Located | None = None,
    ) -> None:
        """Credit ``amount`` to each of these viewers (numeric ids), all known to be ranked
        after it: the common case of an earning tick. ``located`` (from ``locate``, if
        still good) leaves only the addition to do."""
        if amount <= 0 or user_ids.size == 0:
            return
        if located is None or located.ids is not self._ids:
            located = self.locate(user_ids if presorted else np.sort(user_ids))
        self._pts[located.at] += amount
        if located.new.size:
            self._merge(located.new, np.full(located.new.size, amount, dtype=np.int64))
        self._changed()

    def add_all(self, user_ids: Keys, amount: int, located: Located | None = None) -> None:
        """``add`` for ``sorted_keys`` (or user ids as strings, when they are not digits)."""
        if amount <= 0 or len(user_ids) == 0:
            return
        if isinstance(user_ids, np.ndarray):
            self.add(user_ids, amount, presorted=True, located=located)
            return
        keys = np.fromiter(map(self._key, user_ids), dtype=np.int64, count=len(user_ids))
        self.add(keys, amount)

    # ---- internals ------------------------------------------------------------------------

    def _key(self, user_id: str) -> int:
        if user_id.isdigit() and len(user_id) <= 18:
            return int(user_id)
        key = self._odd.get(user_id)
        if key is None:
            key = -1 - len(self._odd)
            self._odd[user_id] = key
            self._odd_back[key] = user_id
        return key

    def _user_id(self, key: int) -> str:
        return self._odd_back[key] if key < 0 else str(key)

    def _find(self, key: int) -> int | None:
        at = int(np.searchsorted(self._ids, key))
        if at < self._ids.size and self._ids[at] == key:
            return at
        return None

    def _rank_of(self, points: int) -> int:
        if self._descending is not None:  # how many have more: a binary search
            return int(np.searchsorted(self._descending, -points, side="left")) + 1
        return int(np.count_nonzero(self._pts > points)) + 1

    def _top_indices(self, count: int) -> npt.NDArray[np.intp]:
        size = self._ids.size
        if count < size:
            cut = np.argpartition(-self._pts, count - 1)[:count]
            threshold = int(self._pts[cut].min())
            cut = np.flatnonzero(self._pts >= threshold)  # every tie of the last one
        else:
            cut = np.arange(size)
        order = np.lexsort((self._ids[cut], -self._pts[cut]))
        if self._descending is None:  # the pages that follow ask for ranks too
            self._descending = np.sort(-self._pts)
        return cut[order][:count]

    def _merge(self, keys: Ids, points: Ids) -> None:
        ids = np.concatenate((self._ids, keys))
        pts = np.concatenate((self._pts, points))
        order = np.argsort(ids, kind="stable")
        self._ids, self._pts = ids[order], pts[order]

    def _changed(self) -> None:
        self._descending = None
        self._order = None

