"""Dashboard forms as pure functions: what a person typed in, values or errors out."""

from __future__ import annotations

from loyaltybot.settings import ChannelSettings, StoredSettings
from loyaltybot.web import forms


def stored(owners: dict[str, str] | None = None, **values: object) -> StoredSettings:
    return StoredSettings(ChannelSettings.model_validate(values), owners or {})  # type: ignore[arg-type]


def full_form(settings: StoredSettings, **typed: str) -> dict[str, str]:
    """The form as the page sends it: every dashboard-owned field, checkboxes only when on."""
    form = {}
    for key, value in settings.values.model_dump().items():
        if settings.owner(key) == "file":
            continue
        if forms.is_bool(key):
            if value:
                form[key] = "true"
        else:
            form[key] = forms.display_value(value)
    form.update(typed)
    return form


def test_unchanged_form_changes_nothing() -> None:
    """Sending the page back as shown is valid and has no changes."""
    current = stored()
    result = forms.parse_settings(full_form(current), current)
    assert result.ok
    assert result.changes == {}


def test_typed_strings_become_typed_values() -> None:
    """Form strings are read like config values: ints, floats, a checkbox, grouped digits."""
    current = stored()
    form = full_form(
        current,
        points_per_interval=" 25 ",
        interval_minutes="2.5",
        enable_offline="true",
        give_max="2,000",
    )
    result = forms.parse_settings(form, current)
    assert result.ok, result.errors
    assert result.changes == {
        "points_per_interval": 25,
        "interval_minutes": 2.5,
        "enable_offline": True,
        "give_max": 2000,
    }


def test_unticked_checkbox_means_off() -> None:
    """A checkbox the browser does not send is false."""
    current = stored(enable_offline=True)
    form = full_form(current)
    del form["enable_offline"]
    assert forms.parse_settings(form, current).changes == {"enable_offline": False}


def test_bad_values_are_reported_per_field_and_keep_what_was_typed() -> None:
    """Each bad field gets one clear phrase; nothing is returned to store."""
    current = stored()
    form = full_form(
        current,
        points_per_interval="ten",
        interval_minutes="0",
        currency_name="two words",
        subscriber_multiplier="1e999",
    )
    result = forms.parse_settings(form, current)
    assert not result.ok
    assert result.changes == {}
    assert result.errors == {
        "points_per_interval": "must be a whole number, like 10",
        "interval_minutes": "must be more than 0",
        "currency_name": "must be one word: letters, digits or _, at most 25",
        "subscriber_multiplier": "must be at most 100",
    }
    assert result.typed["points_per_interval"] == "ten"
    assert result.typed["currency_name"] == "two words"


def test_file_owned_values_cannot_change_through_the_form() -> None:
    """A forged form that changes a file-owned key is refused; sending it unchanged is fine."""
    current = stored({"points_per_interval": "file"}, points_per_interval=10)
    ok = forms.parse_settings(full_form(current, points_per_interval="10"), current)
    assert ok.ok
    assert ok.changes == {}
    forged = forms.parse_settings(full_form(current, points_per_interval="999"), current)
    assert forged.errors == {"points_per_interval": "is set in config.toml; change it there"}


def test_missing_field_is_an_error_not_a_default() -> None:
    """A form without a dashboard-owned text field (stale page) is refused, not reset."""
    current = stored()
    form = full_form(current)
    del form["give_max"]
    assert "give_max" in forms.parse_settings(form, current).errors


def test_adjustment_needs_direction_amount_and_reason() -> None:
    """Amounts are read exactly as chat reads them; a reason is required and bounded."""
    good = forms.parse_adjustment({"direction": "add", "amount": "1,500", "reason": " prize  won "})
    assert good.value == forms.Adjustment("add", 1500, "prize won")
    bad = forms.parse_adjustment({"direction": "steal", "amount": "-5", "reason": "x" * 201})
    assert bad.value is None
    assert bad.errors == {
        "direction": "choose add or remove",
        "amount": "must be positive",
        "reason": "at most 200 characters",
    }
    for amount in ("0", "1.5", "1e5", "abc", "99999999999999999999"):
        assert (
            "amount"
            in forms.parse_adjustment({"direction": "add", "amount": amount, "reason": "r"}).errors
        )
    assert forms.parse_adjustment({"direction": "add", "amount": "5", "reason": " "}).errors == {
        "reason": "say why, for the log"
    }
