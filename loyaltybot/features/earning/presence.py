"""Presence (SPEC §4): who is in a channel now, and who chatted this interval, in memory.

Fed by chat, IRC JOIN/PART and the chatter list (Helix); no database write per chat
message (DESIGN invariant 5): message counts are kept here and written with the tick.

Memory is bounded (``max_present`` viewers per channel, 5,000,000 unless configured), far
above any real channel, and never silently: a viewer left out is counted, a few are
named, and the tick logs it, /metrics and the channel's overview show it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from loyaltybot.points.known import KnownLogins
from loyaltybot.points.ledger import NO_IDS, Presence
from loyaltybot.points.standings import Ids
from loyaltybot.points.viewers import Viewer

Mask = npt.NDArray[np.bool_]

MAX_PRESENT = 5_000_000  # viewers remembered per channel (config: earning.max_present)
SAMPLE = 10  # logins named when viewers are left out


@dataclass(slots=True)
class _Active:
    login: str
    display_name: str
    messages: int


@dataclass
class ChannelPresence:
    """Who is in one channel now and who chatted during the current interval."""

    chatters: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (login, name)
    known: Ids = field(default_factory=lambda: NO_IDS)  # listed, known under that login
    logins: KnownLogins = field(default_factory=KnownLogins)  # the database's, for ``known``
    active: dict[str, _Active] = field(default_factory=dict)  # chatted this interval
    joined: set[str] = field(default_factory=set)  # logins seen by IRC JOIN, not PARTed
    ids: dict[str, str] = field(default_factory=dict)  # login -> user id, learned
    names: dict[str, str] = field(default_factory=dict)  # user id -> display name, learned
    subscribers: set[str] = field(default_factory=set)
    excluded: frozenset[str] = frozenset()
    chatters_fresh: bool = False  # the list came from Helix for this interval
    left_out: int = 0  # chatters and JOINs not tracked this interval: the bound was reached
    left_out_logins: list[str] = field(default_factory=list)  # the first few of them
    list_left_out: int = 0  # of the latest chatter list (replaced with each list)
    list_left_logins: list[str] = field(default_factory=list)

    def leave_out(self, login: str) -> None:
        self.left_out += 1
        if len(self.left_out_logins) < SAMPLE:
            self.left_out_logins.append(login)


@dataclass(frozen=True, slots=True)
class LeftOut:
    """Viewers an interval could not track, for the tick's warning."""

    count: int
    logins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Interval:
    """One interval's presence, taken from the tracker: the chatter list (never changed in
    place: a new list replaces it), who chatted (swapped out), resolved JOINs, and copies
    of the subscribers. ``known`` are the listed viewers the database knew under the same
    login, as numbers (``logins`` names them when asked).

    Iterating it gives each present viewer once, never an excluded one, except ``known``:
    the tick credits those by id (whoever the iteration names is not among them)."""

    chatters: Mapping[str, tuple[str, str]]
    active: Mapping[str, _Active]
    joined: Sequence[tuple[str, str, str]]  # (user id, login, name), without a chatter list
    excluded: frozenset[str]
    subscribers: set[str]
    known: Ids = field(default_factory=lambda: NO_IDS)
    logins: Mapping[str, str] = field(default_factory=dict)

    def entries(self) -> Iterator[tuple[str, str, str, int]]:
        """(user id, login, display name, messages) of everyone: the known ones too (with
        no display name: the stored one stays), the rest of the list or the JOINs, chat."""
        active, excluded, logins = self.active, self.excluded, self.logins
        for key in self.known.tolist():
            uid = str(key)
            login = logins.get(uid)
            if uid not in active and login is not None and login not in excluded:
                yield uid, login, "", 0
        yield from self._others()

    def _others(self) -> Iterator[tuple[str, str, str, int]]:
        active, excluded = self.active, self.excluded
        listed: set[str] = set()
        for uid, (login, name) in self.chatters.items():
            if uid not in active and login not in excluded:
                yield uid, login, name, 0
        for uid, login, name in self.joined:
            if uid not in active and uid not in listed and login not in excluded:
                listed.add(uid)
                yield uid, login, name, 0
        for uid, seen in active.items():
            if seen.login not in excluded:
                yield uid, seen.login, seen.display_name, seen.messages

    def chatted(self) -> list[Presence]:
        """Only those who chatted (an offline interval records their messages)."""
        subs = self.subscribers
        return [
            Presence(uid, seen.login, seen.display_name, uid in subs, seen.messages)
            for uid, seen in self.active.items()
            if seen.login not in self.excluded
        ]

    def __iter__(self) -> Iterator[Presence]:
        """Everyone but ``known`` (see the class)."""
        subs = self.subscribers
        for uid, login, name, count in self._others():
            yield Presence(uid, login, name, uid in subs, count)


class PresenceTracker:
    """In-memory presence for every channel; fed by chat, JOIN/PART and Helix."""

    def __init__(self, max_present: int = MAX_PRESENT) -> None:
        self._channels: dict[str, ChannelPresence] = {}
        self.max_present = max_present

    def channel(self, channel: str) -> ChannelPresence:
        return self._channels.setdefault(channel, ChannelPresence())

    def forget(self, channel: str) -> None:
        self._channels.pop(channel, None)

    def set_excluded(self, channel: str, logins: Iterable[str]) -> None:
        state = self.channel(channel)
        state.excluded = frozenset(logins)
        if state.known.size and state.excluded:  # a reload excluded someone listed
            gone = state.logins.ids_of(state.excluded)
            state.known = state.known[~np.isin(state.known, gone)]

    def set_known(self, channel: str, logins: KnownLogins) -> None:
        """The database's user id -> login (the bank keeps it): a chatter list's known
        viewers are then kept as numbers."""
        self.channel(channel).logins = logins

    def listed_filter(self, channel: str) -> Callable[[list[str], list[str]], Mask]:
        """For ``get_chatters``: which viewers of a page to keep as numbers only (known
        under the same login, and not excluded)."""
        state = self.channel(channel)

        def listed(user_ids: list[str], logins: list[str]) -> Mask:
            found = state.logins.listed(user_ids, logins)
            if state.excluded:
                for i, login in enumerate(logins):
                    if login in state.excluded:
                        found[i] = False
            return found

        return listed

    def message(self, channel: str, viewer: Viewer, *, subscriber: bool) -> None:
        """A chat message: present, active this interval, subscriber status from badges."""
        state = self.channel(channel)
        if viewer.login in state.excluded:
            return
        entry = state.active.get(viewer.user_id)
        if entry is None:
            if len(state.active) >= self.max_present:
                state.leave_out(viewer.login)
                return
            state.active[viewer.user_id] = _Active(viewer.login, viewer.display_name, 1)
        else:
            entry.login, entry.display_name = viewer.login, viewer.display_name
            entry.messages += 1
        if viewer.login in state.joined:  # a JOIN-only login no more
            self._learn(state, viewer.user_id, viewer.login, viewer.display_name)
        if subscriber:
            state.subscribers.add(viewer.user_id)
        else:
            state.subscribers.discard(viewer.user_id)

    def join(self, channel: str, login: str) -> None:
        state = self.channel(channel)
        if login in state.excluded or login in state.joined:
            return
        if len(state.joined) < self.max_present:
            state.joined.add(login)
        else:
            state.leave_out(login)

    def part(self, channel: str, login: str) -> None:
        self.channel(channel).joined.discard(login)

    def set_chatters(
        self,
        channel: str,
        chatters: Mapping[str, tuple[str, str]],
        *,
        known: Ids = NO_IDS,
        listed: int = 0,
        beyond: Sequence[str] = (),
    ) -> None:
        """The chatter list for this interval: user id -> (login, display name), and the
        ``known`` ones as numbers (see ``listed_filter``); ``listed`` says how many Twitch
        listed when that is more than were read (the bound), and ``beyond`` names the
        first few of those not read.

        A viewer listed again with the same login and name keeps the tuple held from
        before, so the one just decoded is freed instead of kept twice."""
        state = self.channel(channel)
        old, excluded = state.chatters, state.excluded
        bound = self.max_present
        read = len(chatters) + known.size
        left = max(0, known.size - bound)
        named: list[str] = []
        if left:
            for key in known[bound:bound + SAMPLE].tolist():
                named.append(state.logins.get(str(key)) or str(key))
            known = known[:bound]
        kept: dict[str, tuple[str, str]] = {}
        room = bound - known.size
        for uid, pair in chatters.items():
            login = pair[0]
            if len(kept) >= room:
                left += 1
                if len(named) < SAMPLE:
                    named.append(login)
                continue
            if login in excluded:
                continue
            previous = old.get(uid)
            kept[uid] = previous if previous == pair else pair
        state.chatters = kept
        state.known = known
        state.chatters_fresh = True
        state.list_left_out = left + max(0, listed - read)  # unread ones: counted
        state.list_left_logins = (named + list(beyond))[:SAMPLE]

    def drop_chatters(self, channel: str) -> None:
        """The chatter list cannot be read any more: count chat and JOIN, not the last list."""
        state = self.channel(channel)
        state.chatters, state.known = {}, NO_IDS
        state.chatters_fresh = False

    def set_subscribers(self, channel: str, user_ids: Iterable[str]) -> None:
        self.channel(channel).subscribers = set(user_ids)

    def learn(self, channel: str, pairs: Mapping[str, str]) -> None:
        """login -> user id pairs known elsewhere (the database), to resolve JOIN-only logins."""
        state = self.channel(channel)
        for user_id, login in pairs.items():
            state.ids.setdefault(login, user_id)

    def learn_viewers(self, channel: str, seen: Sequence[Viewer]) -> None:
        """Viewers first sight just wrote: JOIN-only logins now have their ids (only
        those: first sight also writes a whole chatter list, which needs no resolving)."""
        state = self.channel(channel)
        for viewer in seen:
            if viewer.login in state.joined:
                self._learn(state, viewer.user_id, viewer.login, viewer.display_name)

    def _learn(self, state: ChannelPresence, user_id: str, login: str, name: str) -> None:
        if len(state.ids) < self.max_present or login in state.ids:
            state.ids[login] = user_id
            if name != login:
                state.names[user_id] = name

    def listing(self, channel: str) -> bool:
        """Has this interval a chatter list (then JOINs are not counted)?"""
        return self.channel(channel).chatters_fresh

    def unresolved_joins(self, channel: str) -> list[str]:
        state = self.channel(channel)
        return [login for login in state.joined if login not in state.ids]

    def present(self, channel: str) -> list[Viewer]:
        """Everyone present right now (for ``!addpoints all``)."""
        return [Viewer(uid, login, name) for uid, login, name, _ in self._entries(channel)]

    def _entries(self, channel: str) -> Iterator[tuple[str, str, str, int]]:
        return self._snapshot(channel).entries()

    def _snapshot(self, channel: str, *, take: bool = False) -> Interval:
        state = self.channel(channel)
        joined: list[tuple[str, str, str]] = []
        if not (state.chatters_fresh or state.chatters or state.known.size):  # JOINs, then
            for login in state.joined:
                joined_id = state.ids.get(login)
                if joined_id is not None:
                    joined.append((joined_id, login, state.names.get(joined_id, login)))
        active = state.active
        if take:
            state.active = {}
            state.chatters_fresh = False
        return Interval(state.chatters, active, joined, state.excluded, set(state.subscribers),
                        state.known, state.logins)

    def take(self, channel: str) -> Interval:
        """Who was present this interval, as a snapshot the tick reads on the database's
        thread (a million viewers are not turned into rows on the event loop); starts the
        next interval."""
        return self._snapshot(channel, take=True)


    def take_left_out(self, channel: str) -> LeftOut:
        """Who could not be tracked since the last call (the tick asks once an interval)."""
        state = self.channel(channel)
        logins = (*state.list_left_logins, *state.left_out_logins)[:SAMPLE]
        left = LeftOut(state.list_left_out + state.left_out, logins)
        state.left_out, state.left_out_logins = 0, []
        state.list_left_out, state.list_left_logins = 0, []
        return left
