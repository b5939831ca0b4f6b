"""An insertion-ordered set with cursor pagination that costs O(log n + page) per page.

Get Chatters and Get Broadcaster Subscriptions page through up to 100,000 entries;
a cursor is the insertion sequence number of the last entry handed out, so a page
never walks the entries before it, and entries added or removed between pages do not
shift the ones after the cursor (Twitch's lists behave the same way: they lag).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Generic, TypeVar

from sortedcontainers import SortedDict

K = TypeVar("K")
V = TypeVar("V")


class OrderedIndex(Generic[K, V]):
    __slots__ = ("_by_key", "_order", "_seq", "version")

    def __init__(self) -> None:
        self._seq = 0
        self.version = 0  # bumped on every change, for caches of derived figures
        self._by_key: dict[K, tuple[int, V]] = {}
        self._order = SortedDict()  # seq -> key

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[K]:
        return iter(self._order.values())

    def get(self, key: K) -> V | None:
        entry = self._by_key.get(key)
        return None if entry is None else entry[1]

    def items(self) -> Iterator[tuple[K, V]]:
        for key in self._order.values():
            yield key, self._by_key[key][1]

    def add(self, key: K, value: V) -> bool:
        """Insert at the end, or replace the value in place; True if the key is new."""
        self.version += 1
        entry = self._by_key.get(key)
        if entry is not None:
            self._by_key[key] = (entry[0], value)
            return False
        self._seq += 1
        self._by_key[key] = (self._seq, value)
        self._order[self._seq] = key
        return True

    def add_many(self, entries: Iterable[tuple[K, V]]) -> int:
        """Bulk insert (one sort instead of n inserts); returns how many were new."""
        self.version += 1
        fresh: dict[int, K] = {}
        by_key = self._by_key
        seq = self._seq
        for key, value in entries:
            entry = by_key.get(key)
            if entry is not None:
                by_key[key] = (entry[0], value)
                continue
            seq += 1
            by_key[key] = (seq, value)
            fresh[seq] = key
        self._seq = seq
        self._order.update(fresh)
        return len(fresh)

    def remove(self, key: K) -> bool:
        entry = self._by_key.pop(key, None)
        if entry is None:
            return False
        self.version += 1
        del self._order[entry[0]]
        return True

    def clear(self) -> None:
        self.version += 1
        self._by_key.clear()
        self._order.clear()

    def page(self, after: int, limit: int) -> tuple[list[tuple[K, V]], int | None]:
        """Up to ``limit`` entries inserted after sequence ``after``, and the next cursor."""
        keys = list(islice(self._order.irange(minimum=after, inclusive=(False, True)), limit + 1))
        more = len(keys) > limit
        keys = keys[:limit]
        rows = [(self._order[seq], self._by_key[self._order[seq]][1]) for seq in keys]
        return rows, (keys[-1] if more and keys else None)


def encode_cursor(position: int) -> str:
    """Opaque like Twitch's (base64 of a small JSON document)."""
    raw = json.dumps({"b": None, "a": {"Cursor": position}}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The position inside a cursor from ``encode_cursor``; None if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = doc["a"]["Cursor"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return position if isinstance(position, int) and position >= 0 else None
