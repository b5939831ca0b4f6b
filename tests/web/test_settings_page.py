"""The settings page: validated form, file-owned keys read-only, errors keep what was typed."""

from __future__ import annotations

import json
import re

from aiohttp import web
from aiohttp.test_utils import TestClient

from loyaltybot import settings
from loyaltybot.db import Store
from loyaltybot.points.bank import Bank
from tests.web.conftest import Twitch, csrf_of, login, page

Client = TestClient[web.Request, web.Application]


def shown_form(html: str) -> dict[str, str]:
    """The fields the page would submit: enabled text inputs and ticked checkboxes."""
    form = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or " disabled" in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag and " checked" not in tag:
            continue
        form[name[1]] = value[1] if value else ""
    return form


async def stored_rows(store: Store, bank: Bank) -> dict[str, tuple[str, str, str | None]]:
    channel_id = bank.channel_id("alice")
    rows = await store.read(
        lambda c: c.execute(
            "SELECT key, value, owner, updated_by FROM channel_settings WHERE channel_id = ?",
            (channel_id,),
        ).fetchall()
    )
    return {key: (value, owner, by) for key, value, owner, by in rows}


async def test_file_owned_settings_are_read_only_with_the_reason(
    client: Client, twitch: Twitch
) -> None:
    """Keys config.toml sets are disabled and say why; the others are editable."""
    await login(client, twitch, "alice")
    html = await page(client, "/dashboard/alice/settings")
    assert re.search(r'<input [^>]*name="points_per_interval"[^>]*disabled', html)
    assert re.search(r'<input [^>]*name="currency_name"[^>]*disabled', html)
    assert not re.search(r'<input [^>]*name="active_bonus"[^>]*disabled', html)
    assert html.count("Set in the config file") == 3  # currency names and points_per_interval


async def test_saving_stores_only_what_changed_as_the_dashboard(
    client: Client, twitch: Twitch, store: Store, bank: Bank
) -> None:
    """A valid form stores the changed keys, owned by the dashboard, with who changed them."""
    await login(client, twitch, "alice_mod")
    html = await page(client, "/dashboard/alice/settings")
    form = shown_form(html) | {"active_bonus": "3", "interval_minutes": "2.5"}
    response = await client.post("/dashboard/alice/settings", data=form)
    assert response.status == 200
    assert response.url.path == "/dashboard/alice/settings"
    assert "Saved: chat bonus, interval" in await response.text()
    rows = await stored_rows(store, bank)
    assert rows["active_bonus"] == ("3", "dashboard", "dashboard:alice_mod")
    assert rows["interval_minutes"] == ("2.5", "dashboard", "dashboard:alice_mod")
    assert "give_max" not in rows  # unchanged keys are not written
    loaded = await store.read(lambda c: settings.load(c, bank.channel_id("alice")))
    assert loaded.values.active_bonus == 3
    assert loaded.values.interval_minutes == 2.5
    again = await client.post("/dashboard/alice/settings", data=form)
    assert "Nothing changed" in await again.text()


async def test_invalid_form_changes_nothing_and_keeps_what_was_typed(
    client: Client, twitch: Twitch, store: Store, bank: Bank
) -> None:
    """Errors are shown per field, the typed text stays in the boxes, nothing is stored."""
    await login(client, twitch, "alice")
    html = await page(client, "/dashboard/alice/settings")
    before = await stored_rows(store, bank)
    form = shown_form(html) | {"active_bonus": "lots", "give_max": "0", "gift_bonus": "7"}
    response = await client.post("/dashboard/alice/settings", data=form)
    assert response.status == 400
    text = await response.text()
    assert "Nothing was saved" in text
    assert "must be a whole number, like 10" in text
    assert "must be at least 1" in text
    assert 'value="lots"' in text
    assert 'value="7"' in text
    assert await stored_rows(store, bank) == before


async def test_forged_change_of_a_file_owned_key_is_refused(
    client: Client, twitch: Twitch, store: Store, bank: Bank
) -> None:
    """Posting a value for a key config.toml owns is an error, not a silent change."""
    await login(client, twitch, "alice")
    html = await page(client, "/dashboard/alice/settings")
    form = shown_form(html) | {"points_per_interval": "500"}
    response = await client.post("/dashboard/alice/settings", data=form)
    assert response.status == 400
    assert "is set in config.toml" in await response.text()
    rows = await stored_rows(store, bank)
    assert rows["points_per_interval"][:2] == (json.dumps(10), "file")
    assert csrf_of(html)
