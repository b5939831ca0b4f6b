"""The contest pages' pure parts: the open form reads what a moderator typed as the chat
command does, and names each bad field in one phrase; the JSON shows pools and ratios."""

from __future__ import annotations

import pytest

from loyaltybot.features.contests.service import Contest, Option
from loyaltybot.features.contests.views import as_json, parse_open
from loyaltybot.settings import ChannelSettings

SETTINGS = ChannelSettings(contest_close_after_seconds=30)


def test_a_good_form_opens_with_the_typed_closing_time() -> None:
    """Options one per line (blank lines ignored); the closing time as typed."""
    form = parse_open({"question": " Who wins? ", "options": "Red\n\n Blue \n",
                       "close_after": "45"}, SETTINGS)  # fmt: skip
    assert form.errors == {} and form.spec is not None
    assert (form.spec.question, form.spec.options, form.close_after) == (
        "Who wins?", ("Red", "Blue"), 45.0)


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"question": "", "options": "a\nb"}, "question", "the question is empty"),
        ({"question": "Q" * 201, "options": "a\nb"}, "question", "too long"),
        ({"question": "a | b", "options": "a\nb"}, "question", "must not contain |"),
        ({"question": "Q", "options": "a"}, "options", "2 to 10 options, 1 given"),
        ({"question": "Q", "options": "\n".join("abcdefghijk")}, "options", "11 given"),
        ({"question": "Q", "options": "a\nA"}, "options", "option 2 is the same as option 1"),
        ({"question": "Q", "options": "a|b\nc"}, "options", "must not contain |"),
        ({"question": "Q", "options": "a\nb", "close_after": "-1"}, "close_after", "from 0"),
        ({"question": "Q", "options": "a\nb", "close_after": "nan"}, "close_after", "from 0"),
        ({"question": "Q", "options": "a\nb", "close_after": "1e9"}, "close_after", "86,400"),
        ({"question": "Q", "options": "a\nb", "close_after": "soon"}, "close_after", "seconds"),
    ],
)
def test_bad_fields_are_named_and_nothing_opens(form: dict[str, str], field: str,
                                                words: str) -> None:  # fmt: skip
    """Each bad field gets one phrase, and no contest is made of the form."""
    parsed = parse_open(form, SETTINGS)
    assert parsed.spec is None
    assert words in parsed.errors[field], parsed.errors


def test_the_json_shows_pools_and_ratios() -> None:
    """Each option's pool, bettors and ratio; an open contest past its closing time reads
    as closed before the timer gets to it."""
    contest = Contest(7, 1, 9, "Q", (Option(1, "a", 300, 2), Option(2, "b", 100, 1)), "open",
                      1, 100, 5_000, None, None, None, None, "mod", 0, None, None, None, 400)
    body = as_json(contest, "alice", now_ms=1_000)
    assert (body["id"], body["state"], body["pool"], body["bettors"], body["closes_in"]) == (
        7, "open", 400, 3, 4)
    assert [(o["number"], o["pool"], o["ratio"]) for o in body["options"]] == [
        (1, 300, "1:1.33"), (2, 100, "1:4.00")]
    assert as_json(contest, "alice", now_ms=5_000)["state"] == "closed"
    assert as_json(None, "alice", 0) == {"id": None, "state": "none", "channel": "alice"}
