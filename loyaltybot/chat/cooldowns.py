"""Cooldowns: "not again until" per key, on an injected clock, in bounded memory.

A busy channel sees tens of thousands of chatters; every one who types a command leaves
an entry. Entries are dropped once they expire, and the map never holds more than
``max_entries`` (when full, the oldest entry is forgotten: at worst someone gets one reply
early, which is better than memory that grows for months).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from loyaltybot.clock import Clock

DEFAULT_MAX_ENTRIES = 100_000


class Cooldowns:
    def __init__(self, clock: Clock, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max = max_entries
        self._until: OrderedDict[Hashable, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def remaining(self, key: Hashable) -> float:
        """Seconds until ``key`` may act again; 0.0 when it may act now."""
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - self._clock.monotonic()
        if left <= 0:
            del self._until[key]
            return 0.0
        return left

    def start(self, key: Hashable, seconds: float) -> None:
        """``key`` may not act again for ``seconds`` (0 or less: no cooldown)."""
        if seconds <= 0:
            self._until.pop(key, None)
            return
        now = self._clock.monotonic()
        self._until[key] = now + seconds
        self._until.move_to_end(key)
        self._prune(now)

    def try_start(self, key: Hashable, seconds: float) -> float:
        """Start the cooldown if it is not running. Returns 0.0 if started, else the
        seconds still to wait (and changes nothing)."""
        left = self.remaining(key)
        if left <= 0:
            self.start(key, seconds)
        return left

    def clear(self, key: Hashable) -> None:
        self._until.pop(key, None)

    def _prune(self, now: float) -> None:
        # Entries are kept in the order they were last started, so the expired ones
        # gather at the front; stop at the first that still runs.
        while self._until:
            key, until = next(iter(self._until.items()))
            if until > now and len(self._until) <= self._max:
                break
            del self._until[key]
