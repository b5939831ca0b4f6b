"""Who the database knows in a channel, in little memory: user id -> stored login.

Every earning tick asks, of each viewer on the chatter list, "known, under this login?"
(then the tick credits them by id alone, in a grouped update, with no row object). For a
million viewers a dict of strings spends about 200 bytes a viewer on the answer. Here
Twitch's numeric ids are one sorted int64 column and the logins a fixed-width bytes
column beside it (Twitch logins are at most 25 ASCII characters): 33 bytes a viewer.
Anything else (an id that is not plain digits, a login that does not fit) sits in a
dict, and so do single changes until a few thousand are folded into the columns.

Made on the database's thread (``LoginBatch``) and merged on the event loop in one
vectorised step: the columns are never changed in place, so a reader on another thread
sees the old pair or the new one, not a mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
Logins = npt.NDArray[np.bytes_]
LOGIN = np.dtype("S25")  # Twitch: 4-25 characters, a-z, 0-9 and _
_CHUNK = 65_536
_FOLD_AT = 4096  # changes kept in the dict before they are folded into the columns, or
_FOLD_SHARE = 64  # one in 64 of the columns' size: a fold copies them, so it stays rare
_NO_IDS: Ids = np.empty(0, dtype=np.int64)
_NO_LOGINS: Logins = np.empty(0, dtype=LOGIN)


def numeric(user_id: str) -> bool:
    """Can this id live in the int64 column? (ASCII digits without a leading zero, at most
    18 of them: the number written back is the same id.)"""
    return (
        user_id.isdigit() and user_id.isascii() and not user_id.startswith("0")
        and len(user_id) <= 18
    )


def fits(login: str) -> bool:
    """Can this login live in the 25-byte column? (ASCII, at most 25, without NUL.)"""
    return len(login) <= 25 and login.isascii() and "\0" not in login


def _columns(pairs: Iterable[tuple[str, str]]) -> tuple[Ids, Logins, dict[str, str]]:
    """Sorted ids (the last pair of an id wins), their logins, and the other pairs (an id
    not ``numeric`` or a login that does not ``fits``); built in chunks so a million pairs
    never sit in one Python list."""
    id_parts: list[Ids] = []
    login_parts: list[Logins] = []
    odd: dict[str, str] = {}
    it = iter(pairs)
    while chunk := list(islice(it, _CHUNK)):
        ids: list[int] = []
        logins: list[str] = []
        for user_id, login in chunk:
            if numeric(user_id) and fits(login):
                ids.append(int(user_id))
                logins.append(login)
            else:
                odd[user_id] = login
        id_parts.append(np.array(ids, dtype=np.int64))
        login_parts.append(np.array(logins, dtype=LOGIN))
    all_ids = np.concatenate(id_parts) if id_parts else _NO_IDS
    if all_ids.size == 0:
        return _NO_IDS, _NO_LOGINS, odd
    order = np.argsort(all_ids, kind="stable")
    sorted_ids = all_ids[order]
    last = np.append(sorted_ids[1:] != sorted_ids[:-1], True)  # of equal ids, the last
    return sorted_ids[last], np.concatenate(login_parts)[order][last], odd


def _merge(
    base: tuple[Ids, Logins], new: tuple[Ids, Logins]
) -> tuple[Ids, Logins]:
    """``base`` with ``new`` on top (both sorted, unique): new copies, O(n + m)."""
    ids, logins = base
    new_ids, new_logins = new
    if new_ids.size == 0:
        return base
    at = np.searchsorted(ids, new_ids)
    inside = at < ids.size
    same = np.zeros(new_ids.size, dtype=bool)
    same[inside] = ids[at[inside]] == new_ids[inside]
    if same.any():
        logins = logins.copy()
        logins[at[same]] = new_logins[same]
    added = ~same
    return (
        np.insert(ids, at[added], new_ids[added]),
        np.insert(logins, at[added], new_logins[added]),
    )


def _lookup(columns: tuple[Ids, Logins], key: int) -> str | None:
    ids, logins = columns
    at = int(np.searchsorted(ids, key))
    if at < ids.size and ids[at] == key:
        return bytes(logins[at]).decode("ascii")
    return None


class LoginBatch(Mapping[str, str]):
    """user id -> login of many viewers at once (a tick's new ones, a channel's all), in
    columns; made where the rows are (the database's thread)."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        ids, logins, self.odd = _columns(pairs)
        self.columns = (ids, logins)

    @classmethod
    def of(cls, logins: Mapping[str, str]) -> LoginBatch:
        return cls(logins.items())

    def __len__(self) -> int:
        return int(self.columns[0].size) + len(self.odd)

    def __iter__(self) -> Iterator[str]:
        yield from self.odd
        yield from map(str, self.columns[0].tolist())

    def __getitem__(self, user_id: str) -> str:
        login = self.get(user_id)
        if login is None:
            raise KeyError(user_id)
        return login

    def get(self, user_id: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if user_id in self.odd:
            return self.odd[user_id]
        if numeric(user_id):
            found = _lookup(self.columns, int(user_id))
            if found is not None:
                return found
        return default


class KnownLogins(Mapping[str, str]):
    """user id -> the login stored for them, for one channel (see the module)."""

    def __init__(self, batch: LoginBatch | None = None) -> None:
        self._columns: tuple[Ids, Logins] = (_NO_IDS, _NO_LOGINS)
        self._odd: dict[str, str] = {}
        self._recent: dict[str, str] = {}  # single changes, newer than the columns
        if batch is not None:
            self.add_batch(batch)

    def __len__(self) -> int:
        recent = sum(1 for u in self._recent if self._stored(u) is None)
        return int(self._columns[0].size) + len(self._odd) + recent

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.get(user_id) is not None

    def __iter__(self) -> Iterator[str]:
        recent = self._recent.copy()
        yield from recent
        yield from (u for u in self._odd if u not in recent)
        yield from (u for u in map(str, self._columns[0].tolist()) if u not in recent)

    def __getitem__(self, user_id: str) -> str:
        login = self.get(user_id)
        if login is None:
            raise KeyError(user_id)
        return login

    def get(self, user_id: str, default: str | None = None) -> str | None:  # type: ignore[override]
        login = self._recent.get(user_id)
        if login is None:
            login = self._stored(user_id)
        return default if login is None else login

    def _stored(self, user_id: str) -> str | None:
        if user_id in self._odd:
            return self._odd[user_id]
        return _lookup(self._columns, int(user_id)) if numeric(user_id) else None

    # ---- changes (on the event loop, in commit order) ------------------------------------

    def __setitem__(self, user_id: str, login: str) -> None:
        self._recent[user_id] = login
        if len(self._recent) >= max(_FOLD_AT, self._columns[0].size // _FOLD_SHARE):
            self._fold()

    def update(self, logins: Mapping[str, str]) -> None:
        """Single changes (a chat, an event): kept aside until a few thousand are folded."""
        for user_id, login in logins.items():
            self[user_id] = login

    def add_batch(self, batch: LoginBatch) -> None:
        """A batch committed after every change held so far: it wins over them. A small
        one joins the single changes (a merge copies the columns); a big one is merged,
        columns first, then the older single changes go: a reader never sees neither."""
        if len(batch) < _FOLD_AT:
            self.update(batch)
            return
        self._install(batch)
        for user_id in [u for u in self._recent if batch.get(u) is not None]:
            del self._recent[user_id]

    def _fold(self) -> None:
        recent = self._recent
        self._install(LoginBatch(recent.items()))
        if self._recent is recent:
            self._recent = {}

    def _install(self, batch: LoginBatch) -> None:
        """Keep the columns and the odd dict apart: an id lives in one of them."""
        columns = _merge(self._columns, batch.columns)
        numbers = [int(u) for u in batch.odd if numeric(u)]
        if numbers:  # a numeric id whose new login does not fit the columns (never on Twitch)
            gone = np.isin(columns[0], np.array(numbers, dtype=np.int64))
            columns = (columns[0][~gone], columns[1][~gone])
        self._odd.update(batch.odd)
        self._columns = columns
        for user_id in [u for u in self._odd if u not in batch.odd and batch.get(u) is not None]:
            del self._odd[user_id]

    # ---- the chatter list ----------------------------------------------------------------

    def listed(self, user_ids: Sequence[str], logins: Sequence[str]) -> npt.NDArray[np.bool_]:
        """For one page of a chatter list: which of these are known under this login."""
        n = len(user_ids)
        ids, stored = self._columns
        found = np.zeros(n, dtype=bool)
        if n == 0:
            return found
        joined = "".join(user_ids)
        if joined.isdigit() and joined.isascii() and all(
            0 < len(u) <= 18 and u[0] != "0" for u in user_ids
        ):
            keys = np.array(user_ids, dtype=np.int64)
        else:
            keys = np.array([int(u) if numeric(u) else -1 for u in user_ids], dtype=np.int64)
        try:
            if max(map(len, logins)) > 25:
                raise ValueError("too long")
            wanted = np.array(logins, dtype=LOGIN)
        except (UnicodeEncodeError, ValueError):  # rare: such logins are never in the columns
            wanted = np.array([lg if fits(lg) else "" for lg in logins], dtype=LOGIN)
            keys[[not fits(lg) for lg in logins]] = -1
        if ids.size:
            at = np.searchsorted(ids, keys)
            inside = at < ids.size
            at[~inside] = 0
            found = inside & (ids[at] == keys) & (stored[at] == wanted)
        if self._recent or self._odd:
            for i, user_id in enumerate(user_ids):
                login = self._recent.get(user_id)
                if login is None:
                    login = self._odd.get(user_id)
                if login is not None:
                    found[i] = login == logins[i]
        return found

    def ids_of(self, logins: Iterable[str]) -> Ids:
        """The numeric ids stored under these logins (a scan: for a reload, not a tick)."""
        wanted = set(logins)
        ids, stored = self._columns
        columns = [lg for lg in wanted if fits(lg)]
        found: set[int] = set()
        if columns and ids.size:
            found.update(ids[np.isin(stored, np.array(columns, dtype=LOGIN))].tolist())
        for user_id, login in chain(self._odd.items(), self._recent.items()):  # newest last
            if numeric(user_id):
                (found.add if login in wanted else found.discard)(int(user_id))
        return np.array(sorted(found), dtype=np.int64)
