"""The games settings form: validated with the config's own model, so the dashboard and
check-config accept the same values; a key config.toml writes cannot be changed here."""

from __future__ import annotations

from multidict import MultiDict

from loyaltybot.config import GamesConfig
from loyaltybot.features.games.views import parse_form, typed_of

CURRENT = GamesConfig.model_validate({"enabled": ["gamble"], "max_bet": 500})


def form(**changes: object) -> MultiDict[str]:
    """The form as the page shows it, with ``changes`` typed in (enabled: a list)."""
    typed = {**typed_of(CURRENT), **changes}
    items: list[tuple[str, str]] = []
    for key, value in typed.items():
        if key == "enabled":
            items += [("enabled", game) for game in value]  # type: ignore[attr-defined]
        else:
            items.append((key, str(value)))
    return MultiDict(items)


def test_an_unchanged_form_changes_nothing() -> None:
    """Submitting the page as shown saves nothing."""
    parsed = parse_form(form(), CURRENT, frozenset())
    assert (parsed.errors, parsed.changes) == ({}, {})


def test_changes_are_read_as_the_config_reads_them() -> None:
    """Checkboxes, symbols separated by spaces or commas, amounts with separators."""
    parsed = parse_form(form(enabled=["gamble", "heist"], slots_symbols="A, B C",
                             max_bet="1,000", heist_payout_multiplier="2.5"),
                        CURRENT, frozenset())  # fmt: skip
    assert parsed.errors == {}
    assert parsed.changes == {"enabled": ("gamble", "heist"), "slots_symbols": ("A", "B", "C"),
                              "max_bet": 1000, "heist_payout_multiplier": 2.5}  # fmt: skip


def test_bad_values_are_named_in_the_config_words() -> None:
    """Out of range, not a number, too few symbols, max below min: each its phrase;
    nothing is changed."""
    parsed = parse_form(form(gamble_win_at="0", heist_join_seconds="soon", slots_symbols="A",
                             min_bet="10", max_bet="5", cooldown_seconds="-1"),
                        CURRENT, frozenset())  # fmt: skip
    assert parsed.changes == {}
    assert parsed.errors["gamble_win_at"] == "must be >= 1"
    assert parsed.errors["heist_join_seconds"] == "must be a number"
    assert parsed.errors["slots_symbols"] == "must have from 2 to 10 entries"
    assert parsed.errors["cooldown_seconds"] == "must be >= 0"
    again = parse_form(form(min_bet="10", max_bet="5"), CURRENT, frozenset())
    assert again.errors == {"max_bet": "must be >= min_bet"}


def test_the_file_keys_are_read_only() -> None:
    """A forged form changing a key the file writes is refused; the disabled inputs of
    the page (not submitted) are fine."""
    typed = form(max_bet="900")
    parsed = parse_form(typed, CURRENT, frozenset({"max_bet"}))
    assert parsed.errors == {"max_bet": "is set in config.toml; change it there"}
    del typed["max_bet"]
    assert parse_form(typed, CURRENT, frozenset({"max_bet"})).errors == {}
