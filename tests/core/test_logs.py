"""Logging (SPEC §8): one event per line, JSON means JSON for every record, secrets never shown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from twitchio.websocket import WSConnection

from loyaltybot import logs

TOKEN = "yfvzjqb705z12hrhy1zkwa9xt7v662"  # shaped like a Twitch token
SECRET = "s3cret-client-value-42"


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put back what configure() changes process-wide, so tests stay independent."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {n: logging.getLogger(n).level for n in ("twitchio", "aiohttp.access")}
    hooks = sys.excepthook, threading.excepthook
    showwarning = warnings.showwarning
    structlog_config = structlog.get_config()
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for name, lvl in named.items():
        logging.getLogger(name).setLevel(lvl)
    sys.excepthook, threading.excepthook = hooks
    logging.captureWarnings(False)
    warnings.showwarning = showwarning
    structlog.configure(**structlog_config)
    structlog.contextvars.clear_contextvars()


def json_lines(out: io.StringIO) -> list[dict[str, Any]]:
    """Every line must parse as one JSON object; return them."""
    lines = out.getvalue().splitlines()
    assert lines, "nothing was logged"
    events = []
    for line in lines:
        event = json.loads(line)
        assert isinstance(event, dict), line
        events.append(event)
    return events


def test_json_format_makes_every_line_json_including_library_records() -> None:
    """Our events, library records, warnings and tracebacks: each one JSON object on one line."""
    out = io.StringIO()
    logs.configure("debug", "json", stream=out)
    log = structlog.get_logger("loyaltybot.test")
    log.info("points_transferred", sender="bob", amount=5)
    logging.getLogger("aiohttp.server").error("Error handling request from %s", "127.0.0.1")
    logging.getLogger("twitchio.websocket").info("ACTION: JOIN:: %s", "alice")
    logging.getLogger("asyncio").warning("Executing %s took %.3f seconds", "<Task>", 0.2)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("handler_failed")
        logging.getLogger("aiohttp.web").exception("stdlib traceback")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("something is deprecated", UserWarning, stacklevel=1)
    try:
        raise RuntimeError("nobody caught me")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    thread = threading.Thread(target=lambda: 1 / 0, name="worker")
    thread.start()
    thread.join()

    events = json_lines(out)
    names = [e["event"] for e in events]
    assert names[0] == "points_transferred"
    assert events[0]["sender"] == "bob"
    assert events[0]["amount"] == 5
    assert events[0]["level"] == "info"
    assert events[0]["logger"] == "loyaltybot.test"
    assert "timestamp" in events[0]
    assert "Error handling request from 127.0.0.1" in names
    assert "ACTION: JOIN:: alice" in names
    assert "Executing <Task> took 0.200 seconds" in names
    tracebacks = [e for e in events if "exception" in e]
    assert len(tracebacks) == 4  # two logged, the uncaught one, the thread's
    assert all("Traceback (most recent call last)" in e["exception"] for e in tracebacks)
    assert any("ValueError: boom\nsecond line" in e["exception"] for e in tracebacks)
    assert any("something is deprecated" in n for n in names)
    assert "uncaught_exception" in names
    assert "uncaught_exception_in_thread" in names
    assert len(events) == 9


async def test_twitchio_debug_pass_line_is_redacted() -> None:
    """twitchio's debug line `> PASS oauth:<token>` is logged redacted; the real token is sent."""
    received: list[str] = []

    async def irc(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            received.append(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/irc", irc)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    out = io.StringIO()
    logs.configure("debug", "json", stream=out)
    logging.getLogger("twitchio").setLevel(logging.DEBUG)  # as if an operator turned it on
    try:
        async with aiohttp.ClientSession() as session:
            connection = WSConnection(
                loop=asyncio.get_running_loop(), heartbeat=None, client=None, token=TOKEN
            )
            connection.nick = "mybot"
            connection._websocket = await session.ws_connect(f"http://127.0.0.1:{port}/irc")
            await connection.authenticate([])
            await connection._websocket.close()
    finally:
        await runner.cleanup()

    assert any(TOKEN in line for line in received), "twitchio did not send the token"
    text = out.getvalue()
    assert TOKEN not in text
    events = json_lines(out)
    sent = [e["event"] for e in events if e["logger"] == "twitchio.websocket"]
    assert sent[:2] == [" > PASS oauth:***", " > NICK mybot"]


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_registered_secrets_are_redacted_at_every_level(level: str) -> None:
    """A registered secret is masked in messages, fields, nested values, %-args and tracebacks."""
    out = io.StringIO()
    logs.configure("debug", "json", stream=out, secrets=[SECRET, f"oauth:{TOKEN}"])
    log = structlog.get_logger("loyaltybot.test")
    stdlib = logging.getLogger("loyaltybot.stdlib")
    method = getattr(log, level)
    method(f"event with {SECRET}", detail=f"x{SECRET}y", nested={"list": [TOKEN, 1]})
    getattr(stdlib, level)("stdlib %s and %r", SECRET, {"k": TOKEN})
    try:
        raise RuntimeError(f"failed with {TOKEN} and {SECRET}")
    except RuntimeError:
        log.log(logs._LEVELS[level], "with_traceback", exc_info=True)
        stdlib.log(logs._LEVELS[level], "stdlib traceback", exc_info=True)

    text = out.getvalue()
    assert SECRET not in text
    assert TOKEN not in text
    events = json_lines(out)
    assert len(events) == 4
    assert events[0]["event"] == "event with ***"
    assert events[0]["detail"] == "x***y"
    assert events[0]["nested"] == {"list": ["***", 1]}
    assert "RuntimeError: failed with *** and ***" in events[2]["exception"]
    assert "RuntimeError: failed with *** and ***" in events[3]["exception"]


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (f"> PASS oauth:{TOKEN}", "> PASS oauth:***"),
        (f"Authorization: Bearer {TOKEN}", "Authorization: Bearer ***"),
        (f"Authorization: OAuth {TOKEN}", "Authorization: OAuth ***"),
        (
            f"POST /oauth2/token?grant_type=refresh_token&refresh_token={TOKEN}%3D&client_id=abc",
            "POST /oauth2/token?grant_type=refresh_token&refresh_token=***&client_id=abc",
        ),
        (f"client_secret={TOKEN} device_code={TOKEN}", "client_secret=*** device_code=***"),
        (
            f'{{"access_token": "{TOKEN}", "expires_in": 3600}}',
            '{"access_token": "***", "expires_in": 3600}',
        ),
        (f"{{'refresh_token': '{TOKEN}'}}", "{'refresh_token': '***'}"),
        (
            f"Invalid or no token found, generated new token: {TOKEN}",
            "Invalid or no token found, generated new token: ***",
        ),
        ("GET /auth/callback?code=abc123def&state=xyz", "GET /auth/callback?code=***&state=xyz"),
        ("user_code=ABCDEFGH expires_in=1800", "user_code=ABCDEFGH expires_in=1800"),
        ("token refresh failed: HTTP 400", "token refresh failed: HTTP 400"),
    ],
)
def test_token_shapes_are_redacted_without_registration(line: str, shown: str) -> None:
    """Credentials nobody registered are masked by their shape; harmless text is left alone."""
    out = io.StringIO()
    logs.configure("debug", "json", stream=out)
    logging.getLogger("aiohttp.client").info(line)
    assert json_lines(out)[0]["event"] == shown


def test_fields_named_like_secrets_are_masked_and_objects_are_redacted() -> None:
    """`token=`/`client_secret=` fields are masked whatever they hold; URL objects are redacted."""
    out = io.StringIO()
    logs.configure("info", "json", stream=out)
    from yarl import URL

    structlog.get_logger().info(
        "token_refreshed",
        token="plain-looking",
        client_secret="abc",
        has_token=True,
        user_code="WDJB-MJHT",
        url=URL(f"http://x/oauth2/token?refresh_token={TOKEN}"),
        error=ValueError(f"bad answer: access_token={TOKEN}"),
    )
    event = json_lines(out)[0]
    assert event["token"] == "***"
    assert event["client_secret"] == "***"
    assert event["has_token"] is True
    assert event["user_code"] == "WDJB-MJHT"
    assert TOKEN not in event["url"]
    assert "refresh_token=***" in event["url"]
    assert event["error"] == "ValueError('bad answer: access_token=***')"


def test_url_encoded_and_prefixed_forms_of_a_secret_are_redacted() -> None:
    """A refresh token with '=' or '%' is also masked where it appears URL-encoded."""
    out = io.StringIO()
    refresh = "eyJfMzUtNDU0OC4MWYwLTQ5MDY5ODY4NGNlMSJ9%asdfasdf="
    logs.configure("info", "json", stream=out)
    logs.register_secret(refresh)
    structlog.get_logger().info(
        "sent", body="grant=x&other=eyJfMzUtNDU0OC4MWYwLTQ5MDY5ODY4NGNlMSJ9%25asdfasdf%3D"
    )
    structlog.get_logger().info("raw", text=f"refresh is {refresh}")
    text = out.getvalue()
    assert "eyJfMzUt" not in text
    assert [e.get("body") or e.get("text") for e in json_lines(out)] == [
        "grant=x&other=***",
        "refresh is ***",
    ]


def test_console_format_off_a_tty_keeps_one_event_per_line() -> None:
    """Forced console output to a pipe (journald) escapes line breaks, tracebacks included."""
    out = io.StringIO()
    logs.configure("info", "console", stream=out)
    log = structlog.get_logger()
    log.info("first", note="a\nb")
    try:
        raise KeyError(SECRET)
    except KeyError:
        log.exception("second")
    logging.getLogger("aiohttp.server").warning("third\nline")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "first" in lines[0]
    assert "a\\nb" in lines[0]
    assert "Traceback (most recent call last)" in lines[1]
    assert "third\\nline" in lines[2]
    assert "\x1b[" not in out.getvalue()  # no colours off a TTY


def test_auto_format_is_console_on_a_tty_and_json_otherwise() -> None:
    """`auto` picks JSON for a pipe (systemd) and the console renderer for a terminal."""
    pipe = io.StringIO()
    logs.configure("info", "auto", stream=pipe)
    structlog.get_logger().info("hello", n=1)
    assert json_lines(pipe)[0]["event"] == "hello"

    tty = TtyStream()
    logs.configure("info", "auto", stream=tty)
    structlog.get_logger().info("hello", n=1)
    text = re.sub(r"\x1b\[[0-9;]*m", "", tty.getvalue())
    assert "hello" in text
    assert "n=1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


async def test_bind_adds_context_to_events_of_this_task_only() -> None:
    """bind() context reaches later events of the task (stdlib records too), not other tasks."""
    out = io.StringIO()
    logs.configure("info", "json", stream=out)
    log = structlog.get_logger()

    async def command(name: str, channel: str) -> None:
        logs.bind(command=name, channel=channel)
        await asyncio.sleep(0)
        log.info("command_handled")
        logging.getLogger("aiohttp.client").info("library record")

    await asyncio.gather(command("give", "alice"), command("points", "bob_tv"))
    with logs.bound(request_id="r-1"):
        log.info("inside")
    log.info("outside")

    events = json_lines(out)
    handled = {(e["command"], e["channel"]) for e in events if e["event"] == "command_handled"}
    assert handled == {("give", "alice"), ("points", "bob_tv")}
    library = [e for e in events if e["event"] == "library record"]
    assert {(e["command"], e["channel"]) for e in library} == handled
    inside = next(e for e in events if e["event"] == "inside")
    outside = next(e for e in events if e["event"] == "outside")
    assert inside["request_id"] == "r-1"
    assert "request_id" not in outside
    assert "command" not in outside


def test_set_level_changes_what_is_printed() -> None:
    """Debug events are dropped at info and shown after set_level('debug') (SIGHUP's log.level)."""
    out = io.StringIO()
    logs.configure("info", "json", stream=out)
    log = structlog.get_logger()
    log.debug("hidden")
    log.info("shown")
    logs.set_level("debug")
    log.debug("now_shown")
    assert [e["event"] for e in json_lines(out)] == ["shown", "now_shown"]
    assert logging.getLogger("twitchio").getEffectiveLevel() == logging.INFO
