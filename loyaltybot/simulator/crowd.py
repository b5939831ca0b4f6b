"""Simulated viewers: a seeded, deterministic crowd that joins, chats, uses commands and leaves.

The N-th event of a crowd depends only on its seed and its parameters, never on timing:
``step(n)`` produces the same chat as running the loop until n messages went out. The
loop only decides *when*: ``rate`` messages per second in total, sent in one frame per
tick (500/s costs a few percent of one core here). Present viewers are in Get
Chatters. Now and then a present viewer redeems a reward (if the channel has enabled
rewards and a redemption.add subscription is enabled) or follows (if channel.follow is
subscribed); those use a second random stream so chat stays reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from loyaltybot.simulator.world import SimUser, SubInfo

if TYPE_CHECKING:
    from loyaltybot.simulator.server import Simulator

log = structlog.get_logger(__name__)

REDEMPTION_ADD = "channel.channel_points_custom_reward_redemption.add"

# Safe words: twitchio's positional parser misreads a line whose second-to-last word is
# an IRC command (PING, JOIN...), which real chat can contain but a demo should not.
_WORDS = (
    "hello", "hi", "hey", "lol", "nice", "gg", "wp", "what", "is", "this", "game", "today",
    "stream", "music", "chat", "love", "it", "let's", "go", "clutch", "wow", "omg", "no", "way",
    "yes", "maybe", "later", "again", "first", "time", "here", "from", "the", "a", "and", "so",
    "very", "good", "bad", "play", "boss", "fight", "run", "win", "lose", "hype", "cozy", "vibes",
)  # fmt: skip
_EMOTES = ("Kappa", "LUL", "PogChamp", "Keepo", "4Head", "SeemsGood", "HeyGuys", "VoHiYo")
_BAD_AMOUNTS = ("abc", "-5", "0", "1.5", "1e5", "99999999999999999999")
_INPUTS = ("hi!", "play the next song", "option a", "option b", "more cowbell", "")


@dataclass(slots=True)
class CrowdStats:
    messages: int = 0
    joins: int = 0
    parts: int = 0
    redemptions: int = 0
    follows: int = 0
    commands: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class CrowdEvent:
    kind: str  # "message" | "join" | "part"
    user: SimUser
    text: str = ""


class Crowd:
    def __init__(
        self,
        sim: Simulator,
        channel: str,
        *,
        viewers: int = 200,
        rate: float = 5.0,
        seed: int = 0,
        prefix: str | None = None,
        present: float = 0.6,
        churn: float = 0.02,
        mods: float = 0.02,
        vips: float = 0.03,
        subscribers: float = 0.2,
        redeem_every: float = 20.0,
        follow_every: float = 45.0,
        tick: float = 0.02,
    ) -> None:
        if viewers < 2:
            raise ValueError("a crowd needs at least 2 viewers")
        self.sim = sim
        self.channel = sim.channel(channel)
        self.viewers = viewers
        self.rate = rate
        self.seed = seed
        self.prefix = prefix or f"{self.channel.login}_viewer"
        self.present_share = present
        self.churn = churn
        self.mod_share, self.vip_share, self.sub_share = mods, vips, subscribers
        self.redeem_every = redeem_every
        self.follow_every = follow_every
        self.tick = tick
        self.stats = CrowdStats()
        # Shop items viewers may !buy; with any, some lines are !shop, !buy and !level
        # (none: the chat stays exactly what it was for a seed).
        self.shop_items: tuple[str, ...] = ()
        self.tickets = False  # viewers enter giveaways: !ticket, !join, !giveaway
        self.games = False  # viewers bet on contests and play: !bet, !gamble, !duel, !heist
        self.users: list[SimUser] = []
        self.mods: set[str] = set()
        self._rng = random.Random(seed)
        self._side = random.Random(seed + 1_000_003)
        self._present: list[SimUser] = []
        self._present_at: dict[str, int] = {}
        self._absent: list[SimUser] = []
        self._absent_at: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._populated = False

    # ---- set-up ------------------------------------------------------------------------

    def populate(self) -> None:
        """Create the viewers, give some roles, and make ``present`` of them join (once)."""
        if self._populated:
            return
        self._populated = True
        rng = self._rng
        self.users = self.sim.add_users(self.viewers, self.prefix)
        chan = self.channel
        pool = list(self.users)
        n_mods = max(1, round(self.viewers * self.mod_share))
        n_vips = round(self.viewers * self.vip_share)
        picked = rng.sample(pool, n_mods + n_vips)
        self.mods = {u.id for u in picked[:n_mods]}
        chan.mods.update(self.mods)
        chan.vips.update(u.id for u in picked[n_mods:])
        subs = []
        for user in pool:
            if rng.random() < self.sub_share:
                tier = rng.choices(("1000", "2000", "3000"), (85, 10, 5))[0]
                subs.append((user.id, SubInfo(tier, rng.randint(1, 36))))
        chan.subs.add_many(subs)
        order = list(pool)
        rng.shuffle(order)
        cut = round(self.viewers * self.present_share)
        for user in order[:cut]:
            _push(self._present, self._present_at, user)
        for user in order[cut:]:
            _push(self._absent, self._absent_at, user)
        self.sim.irc.join_users(chan.login, self._present)
        self.stats.joins += cut

    # ---- deterministic events ---------------------------------------------------------

    def next_events(self, messages: int) -> list[CrowdEvent]:
        """The next events holding ``messages`` chat messages (plus joins and leaves)."""
        self.populate()
        rng = self._rng
        events: list[CrowdEvent] = []
        target = round(self.viewers * self.present_share)
        made = 0
        while made < messages:
            if not self._present or rng.random() < self.churn:
                joining = len(self._present) < target or rng.random() < 0.5
                if (joining or len(self._present) <= 2) and self._absent:
                    user = _pop_random(rng, self._absent, self._absent_at)
                    _push(self._present, self._present_at, user)
                    events.append(CrowdEvent("join", user))
                elif self._present:
                    user = _pop_random(rng, self._present, self._present_at)
                    _push(self._absent, self._absent_at, user)
                    events.append(CrowdEvent("part", user))
                continue
            user = self._present[rng.randrange(len(self._present))]
            events.append(CrowdEvent("message", user, self._text(user)))
            made += 1
        return events

    def _other(self, user: SimUser) -> SimUser:
        rng = self._rng
        for _ in range(4):
            other = self._present[rng.randrange(len(self._present))]
            if other.id != user.id:
                return other
        return self.users[(self.users.index(user) + 1) % len(self.users)]

    def _text(self, user: SimUser) -> str:
        rng = self._rng
        roll = rng.random()
        if user.id in self.mods and roll < 0.05:
            if rng.random() < 0.1:
                return f"!addpoints all {rng.randint(1, 20)}"
            return f"!addpoints @{self._other(user).login} {rng.randint(10, 500)}"
        if roll < 0.14:
            if rng.random() < 0.2:
                return f"!points @{self._other(user).login}"
            return "!points"
        if roll < 0.22:
            amount = rng.choice(_BAD_AMOUNTS) if rng.random() < 0.05 else str(rng.randint(1, 50))
            return f"!give @{self._other(user).login} {amount}"
        if roll < 0.27:
            return "!watchtime"
        if roll < 0.30:
            return rng.choice(("!leaderboard", "!top"))
        if self.shop_items and roll < 0.36:
            return self._spend()
        if self.tickets and roll < 0.44:
            return rng.choice(("!ticket", "!ticket", f"!ticket {rng.randint(1, 6)}",
                               "!ticket max", "!join", "!giveaway"))  # fmt: skip
        if self.games and roll < 0.52:
            return self._play(user)
        words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.25:
            words.insert(rng.randrange(len(words) + 1), rng.choice(_EMOTES))
        return " ".join(words)

    def _play(self, user: SimUser) -> str:
        """A bet on the contest (if one runs), or a game: gamble, slots, a heist, a duel."""
        rng = self._rng
        roll = rng.random()
        if roll < 0.45:
            return f"!bet {rng.randint(1, 3)} {rng.randint(1, 60)}" if roll > 0.05 else "!contest"
        if roll < 0.65:
            return f"!gamble {rng.choice(('10', '25', 'half', '10%', str(rng.randint(1, 40))))}"
        if roll < 0.8:
            return f"!slots {rng.randint(1, 30)}"
        if roll < 0.92:
            return f"!heist {rng.randint(5, 50)}"
        if roll < 0.97:
            return f"!duel @{self._other(user).login} {rng.randint(5, 40)}"
        return rng.choice(("!accept", "!deny"))

    def _spend(self) -> str:
        """!shop, !level, or !buy (now and then an item that does not exist)."""
        rng = self._rng
        roll = rng.random()
        if roll < 0.25:
            return "!shop"
        if roll < 0.45:
            return "!level"
        item = rng.choice(self.shop_items) if rng.random() < 0.95 else "unicorn"
        return f"!buy {item} {rng.choice(_INPUTS[:-1])}"

    def apply(self, events: list[CrowdEvent]) -> None:
        """Put events into the simulator: messages batched into one frame per run."""
        irc = self.sim.irc
        name = self.channel.login
        batch: list[tuple[SimUser, str]] = []
        for event in events:
            if event.kind == "message":
                batch.append((event.user, event.text))
                if event.text.startswith("!"):
                    self.stats.commands[event.text.split(" ", 1)[0]] += 1
                continue
            if batch:
                self.stats.messages += irc.say_many(name, batch)
                batch = []
            if event.kind == "join":
                irc.join_users(name, [event.user])
                self.stats.joins += 1
            else:
                irc.part_users(name, [event.user])
                self.stats.parts += 1
        if batch:
            self.stats.messages += irc.say_many(name, batch)

    async def step(self, messages: int) -> list[CrowdEvent]:
        """Send the next events with ``messages`` messages right away; returns them."""
        events = self.next_events(messages)
        self.apply(events)
        return events

    @property
    def present(self) -> list[SimUser]:
        return list(self._present)

    # ---- running -----------------------------------------------------------------------

    async def start(self) -> None:
        self.populate()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
            self.sim.on_close(self.stop)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = 0
        next_redeem = start + self.redeem_every
        next_follow = start + self.follow_every
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            due = int((now - start) * self.rate) - done
            if due > max(1.0, self.rate):  # more than a second behind: skip, don't burst
                done += due - int(max(1.0, self.rate))
                due = int(max(1.0, self.rate))
            if due > 0:
                self.apply(self.next_events(due))
                done += due
            if now >= next_redeem:
                next_redeem = now + self.redeem_every
                self._maybe_redeem()
            if now >= next_follow:
                next_follow = now + self.follow_every
                self._maybe_follow()

    def _subscribed(self, kind: str) -> bool:
        """Someone listens for this event of the channel, over a webhook or a WebSocket."""
        listening = [
            *((s.type, s.status, s.condition) for s in self.sim.eventsub.subscriptions),
            *((s.type, s.status, s.condition) for s in self.sim.eventsub_ws.subscriptions),
        ]
        return any(
            sub_type == kind
            and status == "enabled"
            and condition.get("broadcaster_user_id") == self.channel.id
            for sub_type, status, condition in listening
        )

    def _maybe_redeem(self) -> None:
        rewards = [r for r in self.channel.rewards.values() if r.is_enabled and not r.is_paused]
        if not rewards or not self._present or not self._subscribed(REDEMPTION_ADD):
            return
        side = self._side
        reward = side.choice(rewards)
        user = side.choice(self._present)
        text = side.choice(_INPUTS[:-1]) if reward.is_user_input_required else side.choice(_INPUTS)
        self.stats.redemptions += 1
        self.sim.eventsub.spawn(self.sim.redeem(self.channel.login, user, reward.id, text))

    def _maybe_follow(self) -> None:
        if not self._present or not self._subscribed("channel.follow"):
            return
        user = self._side.choice(self._present)
        self.stats.follows += 1
        self.sim.eventsub.spawn(self.sim.follow(self.channel.login, user))


def _push(items: list[SimUser], index: dict[str, int], user: SimUser) -> None:
    index[user.id] = len(items)
    items.append(user)


def _pop_random(rng: random.Random, items: list[SimUser], index: dict[str, int]) -> SimUser:
    """Remove and return a random element in O(1) (swap with the last)."""
    i = rng.randrange(len(items))
    user = items[i]
    last = items.pop()
    del index[user.id]
    if last.id != user.id:
        items[i] = last
        index[last.id] = i
    return user
