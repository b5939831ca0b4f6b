"""Reward actions end to end: signed redemptions over real HTTP to the real app, a real
SQLite file, a Helix stand-in recording status updates, a local forward receiver."""

from __future__ import annotations

import argparse
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from loyaltybot.actions import text
from loyaltybot.chat.message import ChatMessage, Roles
from loyaltybot.chat.registry import CommandHandler
from loyaltybot.clock import FakeClock
from loyaltybot.config import Secret
from loyaltybot.db import open_store
from loyaltybot.eventsub import subscriptions
from loyaltybot.features.rewards import cli as cli_rewards
from loyaltybot.features.rewards import rules
from loyaltybot.features.rewards.service import NotQueued, Status, UnknownRedemption
from loyaltybot.features.votes.commands import votes_chat_command, votes_command
from loyaltybot.features.wallet.commands import WalletCommands
from loyaltybot.points.amounts import MAX_POINTS
from loyaltybot.points.ledger import EntryType
from loyaltybot.points.viewers import Viewer
from loyaltybot.settings import ChannelSettings
from loyaltybot.simulator import BROADCASTER_SCOPES, Simulator
from loyaltybot.twitch.helix import Helix
from loyaltybot.twitch.oauth import AppToken
from tests.conftest import viewer
from tests.eventsub_support import (
    CHANNEL,
    SECRET,
    ForwardReceiver,
    Harness,
    HelixStandIn,
    MakeHarness,
    reward,
)

pytest_plugins = ("tests.eventsub_fixtures",)  # helix, make_harness


async def own(harness: Harness, title: str, reward_id: str = "reward-1") -> None:
    assert harness.rewards is not None
    await harness.rewards.set_owned(CHANNEL, [(reward_id, title)])


async def give(harness: Harness, n: int, amount: int) -> None:
    assert harness.bank is not None
    await harness.bank.credit(CHANNEL, viewer(n), amount, kind=EntryType.ADD)


async def status_of(harness: Harness, redemption_id: str) -> tuple[str, str]:
    [(status, outcome)] = await harness.query(
        "SELECT status, outcome FROM redemptions WHERE redemption_id = ?", redemption_id
    )
    return status, outcome


# ---- grant_points, cost, cooldown ----------------------------------------------------------


async def test_grant_points_credits_and_fulfils_an_owned_reward(make_harness: MakeHarness) -> None:
    """grant_points: the amount arrives through the ledger and Twitch hears FULFILLED."""
    harness = await make_harness([reward("Buy 100", "grant_points", amount=100)])
    await own(harness, "Buy 100")
    status, rid = await harness.redeem(1, "buy 100")  # titles match case-insensitively
    assert status == 204
    await harness.settle()
    assert await harness.balance(1) == 100
    assert await harness.query("SELECT type, amount FROM ledger") == [("reward", 100)]
    assert harness.helix.status_updates() == [(rid, "FULFILLED")]
    assert await status_of(harness, rid) == ("fulfilled", "granted")


async def test_rewards_the_bot_does_not_own_are_never_marked(make_harness: MakeHarness) -> None:
    """Without ownership the effect happens but Twitch's status is left alone."""
    harness = await make_harness([reward("Buy 100", "grant_points", amount=100)])
    await harness.redeem(1, "Buy 100")
    await harness.settle()
    assert await harness.balance(1) == 100
    assert harness.helix.status_updates() == []


async def test_a_cost_is_debited_and_a_shortfall_cancels_so_twitch_refunds(
    make_harness: MakeHarness,
) -> None:
    """Enough points: the cost is a ledger row. Too few: CANCELED on Twitch, nothing taken."""
    harness = await make_harness([reward("Hydrate", "chat", message="{user} drinks", cost=50)])
    await own(harness, "Hydrate")
    await give(harness, 1, 70)
    _, paid = await harness.redeem(1, "Hydrate")
    _, short = await harness.redeem(1, "Hydrate")
    await harness.settle()
    assert await harness.balance(1) == 20
    assert await harness.query("SELECT type, amount FROM ledger ORDER BY id") == [
        ("add", 70),
        ("cost", -50),
    ]
    assert harness.helix.status_updates() == [(paid, "FULFILLED"), (short, "CANCELED")]
    assert await status_of(harness, short) == ("canceled", "insufficient_points")
    assert harness.chat.texts() == [
        "User1 drinks",
        "@User1, Hydrate costs 50 points and you have 20. Your channel points were refunded.",
    ]


async def test_a_grant_that_cannot_apply_is_canceled(make_harness: MakeHarness) -> None:
    """grant_points on a balance already at the maximum: canceled, nothing written."""
    harness = await make_harness([reward("More", "grant_points", amount=5)])
    await own(harness, "More")
    assert harness.bank is not None
    await harness.bank.set_balance(CHANNEL, viewer(1), MAX_POINTS)
    _, rid = await harness.redeem(1, "More")
    await harness.settle()
    assert await harness.balance(1) == MAX_POINTS
    assert await harness.query("SELECT type FROM ledger") == [("set",)]
    assert await status_of(harness, rid) == ("canceled", "balance_full")
    assert harness.helix.status_updates() == [(rid, "CANCELED")]
    assert harness.chat.texts() == [
        "@User1, your points are at the maximum. Your channel points were refunded."
    ]


async def test_per_user_cooldown(make_harness: MakeHarness) -> None:
    """Inside the cooldown a redemption is canceled; others and later ones are not."""
    harness = await make_harness([reward("Hi", "grant_points", amount=1, cooldown_seconds=60)])
    await own(harness, "Hi")
    _, first = await harness.redeem(1, "Hi")
    _, again = await harness.redeem(1, "Hi")
    _, other = await harness.redeem(2, "Hi")
    harness.clock.advance(61)
    _, later = await harness.redeem(1, "Hi")
    await harness.settle()
    assert (await harness.balance(1), await harness.balance(2)) == (2, 1)
    assert await status_of(harness, again) == ("canceled", "cooldown")
    assert dict(harness.helix.status_updates()) == {
        first: "FULFILLED",
        again: "CANCELED",
        other: "FULFILLED",
        later: "FULFILLED",
    }
    assert "try again in 60 s" in harness.chat.texts()[0]


async def test_unmatched_redemptions_are_logged_and_left_alone(make_harness: MakeHarness) -> None:
    """A reward nobody configured: logged, recorded, no points, no status update."""
    harness = await make_harness([reward("Buy 100", "grant_points", amount=100)])
    await own(harness, "Mystery")
    with capture_logs() as logs:
        _, rid = await harness.redeem(1, "Mystery")
    await harness.settle()
    assert [e["reward"] for e in logs if e["event"] == "redemption_unmatched"] == ["Mystery"]
    assert await status_of(harness, rid) == ("unmatched", "no_matching_reward")
    assert harness.helix.status_updates() == []
    assert await harness.query("SELECT count(*) FROM ledger") == [(0,)]


async def test_a_reward_with_an_id_matches_by_id_only(make_harness: MakeHarness) -> None:
    """``id`` in the config wins over the title: a same-titled other reward does not match."""
    harness = await make_harness([reward("Buy", "grant_points", amount=7, id="abc")])
    _, by_title = await harness.redeem(1, "Buy", reward_id="other")
    _, by_id = await harness.redeem(1, "Renamed on Twitch", reward_id="abc")
    assert await status_of(harness, by_title) == ("unmatched", "no_matching_reward")
    assert await status_of(harness, by_id) == ("fulfilled", "granted")
    assert await harness.balance(1) == 7


async def test_skip_queue_redemptions_cannot_be_canceled(make_harness: MakeHarness) -> None:
    """A redemption Twitch already fulfilled (skip-queue reward) is never PATCHed."""
    harness = await make_harness([reward("Pricey", "chat", message="x", cost=5)])
    await own(harness, "Pricey")
    _, rid = await harness.redeem(1, "Pricey", status="fulfilled")
    await harness.settle()
    assert await status_of(harness, rid) == ("canceled", "insufficient_points")
    assert harness.helix.status_updates() == []
    assert "refunded" not in harness.chat.texts()[0]


# ---- chat ----------------------------------------------------------------------------------


async def test_chat_template_treats_input_as_text(make_harness: MakeHarness) -> None:
    """{user} {input} {reward} {balance} are filled once; input is never interpreted."""
    harness = await make_harness(
        [
            reward("Say", "chat", message="{user} used {reward}: {input} ({balance} pts) {nope}"),
            reward("Echo", "chat", message="{input}"),
        ]
    )
    await give(harness, 1, 1234)
    await harness.redeem(1, "Say", user_input="hi {balance} {user.__class__}\r\nPRIVMSG #x :pwn")
    await harness.redeem(1, "Echo", user_input="/ban alice")
    await harness.redeem(1, "Echo", user_input=".timeout alice 600")
    await harness.redeem(1, "Echo", user_input="x" * 300)
    await harness.settle()
    texts = harness.chat.texts()
    assert texts[0] == (
        "User1 used Say: hi {balance} {user.__class__} PRIVMSG #x :pwn (1,234 pts) {nope}"
    )
    assert texts[1:3] == ["ban alice", "timeout alice 600"]
    assert texts[3] == "x" * text.MAX_INPUT_CHARS


def test_render_and_clean_rules() -> None:
    """The pure rules: one-pass substitution, control characters, leading commands, length."""
    values = {"user": "Bob", "input": "{reward}", "reward": "R", "balance": "5"}
    assert text.render("{input}/{reward}", values) == "{reward}/R"
    assert text.render("{0}{user!r}{}", values) == "{0}{user!r}{}"
    assert text.clean_text("a\x00b\u202ec\n\td  e") == "a b c d e"
    assert text.chat_line(" /./me hi") == "me hi"
    assert len(text.chat_line("y" * 2000)) == 500
    assert rules.normalize_option("  ＴＥＴＲＩＳ \n") == "tetris"
    assert rules.normalize_option(" \u200b ") is None
    assert text.format_wait(0.2) == "1 s"
    assert text.format_wait(600) == "10 min"
    assert text.format_wait(7300) == "2 h 2 min"


async def test_chat_lines_that_cannot_leave_expire(make_harness: MakeHarness) -> None:
    """With chat down, a reward's line waits; two minutes later it is expired, not sent."""
    harness = await make_harness([reward("Say", "chat", message="hello")], backoff=lambda a: 60.0)
    harness.chat.accept = False
    await harness.redeem(1, "Say")
    await harness.settle()
    assert await harness.query("SELECT state, attempts FROM pending_work") == [("pending", 1)]
    harness.clock.advance(121)
    harness.chat.accept = True
    assert harness.service is not None
    assert harness.worker is not None
    harness.worker.wake()
    await harness.settle()
    assert await harness.query("SELECT state FROM pending_work") == [("expired",)]
    assert harness.chat.lines == []


# ---- title ---------------------------------------------------------------------------------


async def test_title_unlocks_and_the_latest_is_shown(make_harness: MakeHarness) -> None:
    """title: title_of gives the most recently unlocked title of that viewer only."""
    harness = await make_harness(
        [
            reward("Operator", "title", unlocks="Operator"),
            reward("Legend", "title", unlocks="Legend"),
        ]
    )
    assert harness.rewards is not None
    assert await harness.rewards.title_of(CHANNEL, viewer(1).user_id) is None
    await harness.redeem(1, "Operator")
    assert await harness.rewards.title_of(CHANNEL, viewer(1).user_id) == "Operator"
    harness.clock.advance(1)
    await harness.redeem(1, "Legend")
    assert await harness.rewards.title_of(CHANNEL, viewer(1).user_id) == "Legend"
    assert await harness.rewards.title_of(CHANNEL, viewer(2).user_id) is None


# ---- vote ----------------------------------------------------------------------------------


async def test_votes_are_normalised_tallied_shown_and_reset(make_harness: MakeHarness) -> None:
    """vote: 'Tetris' and ' tetris ' count as one option; !votes shows it; only mods reset."""
    harness = await make_harness([reward("Next game", "vote")])
    await own(harness, "Next game")
    for n, choice in [(1, "Tetris"), (2, " tetris "), (3, "DOOM"), (4, "tetris")]:
        await harness.redeem(n, "Next game", user_input=choice)
    _, empty = await harness.redeem(5, "Next game", user_input="   ")
    await harness.settle()
    assert harness.rewards is not None
    [poll] = await harness.votes.tally(CHANNEL)
    assert (poll.title, poll.options, poll.total) == ("Next game", (("tetris", 3), ("doom", 1)), 4)
    assert await status_of(harness, empty) == ("canceled", "invalid_vote")
    assert harness.helix.status_updates()[-1] == (empty, "CANCELED")

    show = await votes_command(harness.votes, CHANNEL, "", is_moderator=False)
    assert show == "Next game: tetris 3, doom 1"
    refused = await votes_command(harness.votes, CHANNEL, "reset", is_moderator=False)
    assert refused == "Only moderators can reset the votes."
    assert await harness.votes.tally(CHANNEL) != []
    assert (
        await votes_command(harness.votes, CHANNEL, "RESET", is_moderator=True)
        == "Votes reset."
    )
    assert (
        await votes_command(harness.votes, CHANNEL, "", is_moderator=False)
        == "No votes yet."
    )


async def test_a_full_poll_refuses_new_options(make_harness: MakeHarness) -> None:
    """At most 50 options per poll: a 51st is canceled, an existing one still counts."""
    harness = await make_harness([reward("Pick", "vote")])
    for n in range(rules.MAX_OPTIONS_PER_POLL):
        await harness.redeem(n, "Pick", user_input=f"option {n}")
    _, extra = await harness.redeem(99, "Pick", user_input="one too many")
    _, known = await harness.redeem(98, "Pick", user_input="OPTION 7")
    assert await status_of(harness, extra) == ("canceled", "poll_full")
    assert await status_of(harness, known) == ("fulfilled", "voted")


# ---- queue ---------------------------------------------------------------------------------


async def test_queue_approve_fulfils_and_reject_cancels_and_refunds(
    make_harness: MakeHarness,
) -> None:
    """queue: approve -> FULFILLED, reject -> CANCELED + refund; no second decision."""
    harness = await make_harness(
        [reward("Song", "queue", cost=30, message="@{user}, playing {input} now")]
    )
    await own(harness, "Song")
    await give(harness, 1, 100)
    _, first = await harness.redeem(1, "Song", user_input="Never Gonna")
    harness.clock.advance(1)
    _, second = await harness.redeem(1, "Song", user_input="Sandstorm")
    await harness.settle()
    assert harness.rewards is not None
    queue = await harness.rewards.list_queue(CHANNEL)
    assert [(r.redemption_id, r.user_input, r.loyalty_cost) for r in queue] == [
        (first, "Never Gonna", 30),
        (second, "Sandstorm", 30),
    ]
    assert await harness.balance(1) == 40
    assert harness.helix.status_updates() == []

    approved = await harness.rewards.approve(CHANNEL, first, "dashboard:alice")
    rejected = await harness.rewards.reject(CHANNEL, second, "dashboard:alice")
    await harness.settle()
    assert (approved.status, approved.twitch_status) == (Status.FULFILLED, "FULFILLED")
    assert (rejected.status, rejected.refunded, rejected.twitch_status) == (
        Status.CANCELED,
        30,
        "CANCELED",
    )
    assert harness.helix.status_updates() == [(first, "FULFILLED"), (second, "CANCELED")]
    assert await harness.balance(1) == 70
    assert await harness.query("SELECT type, amount, actor FROM ledger WHERE type = 'refund'") == [
        ("refund", 30, "dashboard:alice")
    ]
    assert await harness.rewards.list_queue(CHANNEL) == []
    assert harness.chat.texts() == [
        "@User1, playing Never Gonna now",
        "@User1, Song was not accepted. Refunded: 30 points and your channel points.",
    ]
    with pytest.raises(NotQueued):
        await harness.rewards.reject(CHANNEL, first, "dashboard:alice")
    with pytest.raises(UnknownRedemption):
        await harness.rewards.approve(CHANNEL, "no-such-id", "dashboard:alice")
    assert await harness.balance(1) == 70


# ---- forward -------------------------------------------------------------------------------


async def test_forward_retries_until_delivered(make_harness: MakeHarness) -> None:
    """forward: two 500s, then delivered as JSON; the redemption is then FULFILLED."""
    receiver = ForwardReceiver(behaviour=["500", "500"])
    await receiver.start()
    try:
        harness = await make_harness(
            [reward("Ping", "forward", url=receiver.url, retries=3, cost=5, message="sent {input}")]
        )
        await own(harness, "Ping")
        await give(harness, 1, 5)
        _, rid = await harness.redeem(1, "Ping", user_input="hello")
        await harness.settle()
    finally:
        await receiver.close()
    assert receiver.attempts == 3
    [body] = receiver.received
    assert body["id"] == rid
    assert body["user_login"] == "user1"
    assert body["user_input"] == "hello"
    assert body["reward"]["title"] == "Ping"
    assert body["loyalty_cost"] == 5
    assert await status_of(harness, rid) == ("fulfilled", "forwarded")
    assert harness.helix.status_updates() == [(rid, "FULFILLED")]
    assert harness.chat.texts() == ["sent hello"]
    assert await harness.balance(1) == 0


async def test_forward_that_times_out_every_time_cancels_and_refunds(
    make_harness: MakeHarness,
) -> None:
    """forward: each attempt times out; after the retries it is CANCELED and refunded."""
    receiver = ForwardReceiver(behaviour=["slow", "slow"], slow_seconds=0.5)
    await receiver.start()
    try:
        harness = await make_harness(
            [reward("Ping", "forward", url=receiver.url, retries=1, timeout_seconds=0.1, cost=5)]
        )
        await own(harness, "Ping")
        await give(harness, 1, 5)
        _, rid = await harness.redeem(1, "Ping")
        await harness.settle()
    finally:
        await receiver.close()
    assert receiver.attempts == 2
    assert receiver.received == []
    assert await status_of(harness, rid) == ("canceled", "forward_failed")
    assert harness.helix.status_updates() == [(rid, "CANCELED")]
    assert await harness.balance(1) == 5
    assert await harness.query(
        "SELECT type, amount FROM ledger WHERE type <> 'add' ORDER BY id"
    ) == [("cost", -5), ("refund", 5)]
    assert await harness.query("SELECT state FROM pending_work") == [("dead",)]
    assert harness.chat.texts() == [
        "@User1, Ping could not be delivered. Refunded: 5 points and your channel points."
    ]


# ---- loyaltybot rewards sync ---------------------------------------------------------------


def write_config(tmp_path: Path, db_path: Path, helix_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\npath = "{db_path}"\n'
        f'[twitch]\nclient_id = "test-client-id"\nbot_login = "mybot"\napi_url = "{helix_url}"\n'
        f'[channels.{CHANNEL}]\nbroadcaster_token = "broadcaster-token"\n'
        f'[[channels.{CHANNEL}.rewards]]\ntitle = "Buy 100"\naction = "grant_points"\n'
        "amount = 100\n"
        f'[[channels.{CHANNEL}.rewards]]\ntitle = "Next game"\naction = "vote"\ntwitch_cost = 50\n'
        f'[[channels.{CHANNEL}.rewards]]\ntitle = "Existing"\naction = "chat"\nmessage = "hi"\n'
        f'[[channels.{CHANNEL}.rewards]]\ntitle = "Hand Made"\naction = "chat"\nmessage = "hi"\n'
    )
    return path


async def test_rewards_sync_creates_what_is_missing_and_records_ownership(
    tmp_path: Path,
    db_path: Path,
    helix: HelixStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sync creates what is missing, reports hand-made clashes, records what we own."""
    helix.rewards = [{"id": "existing-id", "title": "Existing", "cost": 10, "prompt": ""}]
    helix.foreign_titles = {"hand made"}
    config = write_config(tmp_path, db_path, helix.url)
    code = await cli_rewards.cmd_rewards(argparse.Namespace(config=str(config), channel=None))
    out = capsys.readouterr().out
    assert code == 1
    assert "'Existing' is already ours (id existing-id)" in out
    assert "could not create 'Hand Made'" in out
    assert "Twitch dashboard" in out
    created = [r.body for r in helix.requests if r.method == "POST"]
    assert [(c["title"], c["cost"], c["is_user_input_required"]) for c in created] == [
        ("Buy 100", 1000, False),
        ("Next game", 50, True),
        ("Hand Made", 1000, False),
    ]
    assert all(not c["should_redemptions_skip_request_queue"] for c in created)
    store = await open_store(db_path)
    try:
        owned = await store.read(
            lambda c: sorted(t for (t,) in c.execute("SELECT title FROM owned_rewards"))
        )
    finally:
        await store.close()
    assert owned == ["Buy 100", "Existing", "Next game"]

    helix.token_owner = "someone_else"
    helix.users["someone_else"] = "555"
    assert await cli_rewards.cmd_rewards(argparse.Namespace(config=str(config), channel=None)) == 1
    assert "belongs to someone_else" in capsys.readouterr().out


# ---- the whole flow against the simulator ------------------------------------------------------


async def test_rewards_end_to_end_against_the_simulator(
    tmp_path: Path, db_path: Path, clock: FakeClock, make_harness: MakeHarness
) -> None:
    """Against the simulator: sync, verified subscriptions, one effect, right statuses."""
    sim = Simulator(clock=clock)
    await sim.start()
    try:
        sim.add_channel(CHANNEL, bot_login="mybot", bot_role="moderator")
        token = sim.issue_token(CHANNEL, scopes=BROADCASTER_SCOPES)
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\npath = "{db_path}"\n'
            f'[twitch]\nclient_id = "{sim.client_id}"\nbot_login = "mybot"\n'
            f'api_url = "{sim.api_url}"\nauth_url = "{sim.auth_url}"\n'
            f'[channels.{CHANNEL}]\nbroadcaster_token = "{token}"\n'
            f'[[channels.{CHANNEL}.rewards]]\ntitle = "Buy 100"\naction = "grant_points"\n'
            "amount = 100\n"
            f'[[channels.{CHANNEL}.rewards]]\ntitle = "Song"\naction = "queue"\ncost = 10\n'
        )
        args = argparse.Namespace(config=str(config), channel=None)
        assert await cli_rewards.cmd_rewards(args) == 0
        harness = await make_harness(
            [
                reward("Buy 100", "grant_points", amount=100),
                reward("Song", "queue", cost=10),
            ],
            api_url=sim.api_url,
            client_id=sim.client_id,
            broadcaster_token=token,
        )
        async with aiohttp.ClientSession() as session:
            app = Helix(
                session,
                sim.api_url,
                sim.client_id,
                AppToken(session, sim.auth_url, sim.client_id, Secret(sim.client_secret)),
            )
            ids = await subscriptions.resolve_broadcasters(app, [CHANNEL])
            report = await subscriptions.ensure_subscriptions(
                app, callback=harness.url, secret=SECRET, broadcasters=ids
            )
        assert report.failed == []
        assert len(report.created) == 8
        await sim.eventsub.wait_enabled(count=8)

        granted = await sim.redeem(CHANNEL, "bob", "Buy 100")
        assert [d.status for d in granted.deliveries] == [204]
        await sim.eventsub.redeliver(granted.deliveries[0].message_id)
        bob = sim.user("bob")
        rows = await harness.query("SELECT points FROM viewers WHERE user_id = ?", bob.id)
        assert rows == [(100,)]
        rejected = await sim.redeem(CHANNEL, "bob", "Song", "Sandstorm")
        clock.advance(1)
        approved = await sim.redeem(CHANNEL, "bob", "Song", "Darude")
        assert harness.rewards is not None
        queue = await harness.rewards.list_queue(CHANNEL)
        assert [r.user_input for r in queue] == ["Sandstorm", "Darude"]
        await harness.rewards.reject(CHANNEL, rejected.id, "dashboard:alice")
        await harness.rewards.approve(CHANNEL, approved.id, "dashboard:alice")
        await harness.settle()
    finally:
        await sim.close()
    updates = {(u.redemption_id, u.status, u.accepted) for u in sim.redemption_updates}
    assert updates == {
        (granted.id, "FULFILLED", True),
        (rejected.id, "CANCELED", True),
        (approved.id, "FULFILLED", True),
    }
    assert len(sim.redemption_updates) == 3
    rows = await harness.query("SELECT points FROM viewers WHERE user_id = ?", bob.id)
    assert rows == [(100 - 10,)]  # the rejected song's cost came back


# ---- chat: !votes and the title !points shows ----------------------------------------------------


class NobodyPresent:
    def present(self, channel: str) -> list[Viewer]:
        return []


async def test_votes_and_titles_in_chat(make_harness: MakeHarness) -> None:
    """Real chat handler: !votes shows, mods alone reset, !points shows the unlocked title."""
    harness = await make_harness(
        [reward("Next game", "vote"), reward("Operator", "title", unlocks="Operator")]
    )
    await harness.redeem(1, "Next game", user_input="Tetris")
    await harness.redeem(1, "Operator")
    assert harness.bank is not None
    assert harness.rewards is not None
    assert harness.store is not None
    titles = harness.rewards

    async def title_badge(channel: str, user_id: str) -> str | None:  # as the daemon wires it
        title = await titles.title_of(channel, user_id)
        return f"title: {title}" if title else None

    handler = CommandHandler(
        harness.bank,
        settings_for=lambda channel: ChannelSettings(),
        clock=harness.clock,
        bot_login="mybot",
        commands=WalletCommands(NobodyPresent().present, [title_badge]).commands(),
    )
    handler.register(votes_chat_command(harness.votes))

    async def say(n: int, text: str, *, mod: bool = False) -> str:
        message = ChatMessage(
            CHANNEL, viewer(n), Roles(moderator=mod), text, None, harness.clock.monotonic()
        )
        [reply] = await handler.handle(message)
        return reply.text

    assert await say(2, "!votes") == "@user2, Next game: tetris 1"
    assert "!votes" in await say(3, "!votes reset")
    assert await harness.votes.tally(CHANNEL) != []
    assert await say(4, "!votes reset", mod=True) == "@user4, Votes reset."
    assert await harness.votes.tally(CHANNEL) == []
    assert (await say(1, "!points")).endswith("title: Operator")
