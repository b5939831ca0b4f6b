"""Logging: structlog events, one per line, console on a TTY and JSON otherwise, secrets redacted.

Every record goes through the same processors, the standard library's included
(twitchio, aiohttp and asyncio log through it; Python warnings and uncaught exceptions
are routed there too), so ``format = "json"`` means every printed line is one JSON
object, and no secret reaches a log at any level. Redaction runs last, after tracebacks
and stack traces have been turned into text, so they are redacted too.

Redaction has two layers: secrets registered by value (``register_secret``: the
config's secrets at start, each new access/refresh token when it is obtained), and
token *shapes* that are caught even if nobody registered them (``PASS oauth:...``,
``Authorization: Bearer ...``/``OAuth ...``, ``access_token=...``, ``"refresh_token":
"..."``, ``token: <long string>``). Fields whose name says they hold a secret
(``token``, ``secret``, ``password``, ``authorization``...) are masked whatever they hold.

Logging is process-wide state in Python, so the redactor is too: one per process.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import quote

import structlog
from structlog.typing import EventDict, Processor

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

MASK = "***"

# Names of credential-bearing fields, in query strings, forms, JSON and Python reprs.
_CREDENTIAL_KEYS = (
    r"access_token|refresh_token|id_token|client_secret|device_code|"
    r"code|token|secret|password|passwd|session_secret|eventsub_secret"
)

# Shapes of credentials that must never be logged even if nobody registered them.
# Each alternative keeps its prefix (group 1..5) and masks what follows.
_TOKEN_SHAPES = re.compile(
    # IRC login: PASS oauth:<token>
    r"(oauth:)[A-Za-z0-9_\-]+"
    # Authorization headers: Bearer <token>, OAuth <token>
    r"|(\b(?:Bearer|OAuth)\s+)[A-Za-z0-9._~+/=\-]+"
    # query strings and forms: access_token=<token>&..., client_secret=...
    rf"|(\b(?:{_CREDENTIAL_KEYS})=)[^&\s\"'<>]+"
    # JSON and reprs: "access_token": "<token>", 'refresh_token': '<token>'
    rf"|([\"'](?:{_CREDENTIAL_KEYS})[\"']\s*:\s*[\"'])[^\"']+"
    # prose: "generated new token: <token>" (twitchio at info), "token <30 chars>"
    r"|(\btoken\b[\"']?\s*[:=]?\s*[\"']?)[A-Za-z0-9]{20,}",
    re.IGNORECASE,
)

# Event fields masked whatever their value (log.info("x", token=...) is a bug, not a leak).
_SECRET_FIELD = re.compile(
    r"(?:.*_)?(?:token|secret|password|passwd|authorization|cookie|credentials?)",
    re.IGNORECASE,
)
_SAFE_FIELDS = frozenset({"token_source", "token_kind", "token_owner", "user_code"})

MAX_SECRETS = 4096


class Redactor:
    """Replaces every registered secret, and anything shaped like a token, with ``***``."""

    def __init__(self) -> None:
        self._secrets: dict[str, None] = {}  # insertion-ordered, bounded
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        """Register secret values (without an ``oauth:`` prefix, and URL-encoded too)."""
        with self._lock:
            for secret in secrets:
                if not secret:
                    continue
                bare = secret.removeprefix("oauth:")
                for form in (bare, quote(bare, safe="")):
                    if len(form) >= 6:
                        self._secrets.pop(form, None)
                        self._secrets[form] = None
            while len(self._secrets) > MAX_SECRETS:
                del self._secrets[next(iter(self._secrets))]
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def redact_text(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _TOKEN_SHAPES.sub(_keep_prefix, text)

    def redact(self, value: Any) -> Any:
        """The value with every secret masked; unknown objects become their redacted repr."""
        if isinstance(value, str):
            return self.redact_text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {k: self._field(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact(v) for v in value]
        # A URL, an exception, a model: its text could carry a token.
        return self.redact_text(repr(value))

    def _field(self, key: str, value: Any) -> Any:
        if (
            value is not None
            and key not in _SAFE_FIELDS
            and _SECRET_FIELD.fullmatch(key)
            and not isinstance(value, bool)
        ):
            return MASK
        return self.redact(value)

    def __call__(self, logger: Any, method: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            event_dict[key] = self._field(key, value)
        return event_dict


def _keep_prefix(match: re.Match[str]) -> str:
    prefix = next((g for g in match.groups() if g is not None), "")
    return prefix + MASK


REDACTOR = Redactor()


def register_secret(*values: str) -> None:
    """Never log these values (a token obtained at run time, a secret read from a file)."""
    REDACTOR.add(*values)


def redact(text: str) -> str:
    """The text as it may be shown: for error messages that are not log events."""
    return REDACTOR.redact_text(text)


class _Renderer:
    """The final step: render, then make sure a non-TTY console line has no line breaks."""

    def __init__(self, inner: Processor, escape: bool) -> None:
        self._inner = inner
        self._escape = escape

    def __call__(self, logger: Any, method: str, event_dict: EventDict) -> Any:
        text = self._inner(logger, method, event_dict)
        if self._escape and isinstance(text, str):
            text = text.rstrip("\n").replace("\r", "\\r").replace("\n", "\\n")
        return text


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def configure(
    level: str = "info",
    fmt: str = "auto",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
    hooks: bool = True,
) -> None:
    """Route every log record of the process through structlog to ``stream`` (stderr).

    ``fmt``: ``json``, ``console``, or ``auto`` (console on a TTY, JSON otherwise, so
    JSON under systemd). ``secrets`` are registered with the redactor. With ``hooks``,
    Python warnings and uncaught exceptions (main thread and others) become log events.
    Safe to call again (e.g. the CLI, then the daemon): it replaces the previous setup.
    """
    stream = stream or sys.stderr
    REDACTOR.add(*secrets)
    tty = _is_tty(stream)
    as_json = fmt == "json" or (fmt == "auto" and not tty)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
        structlog.stdlib.ExtraAdder(),
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
    ]
    inner: Processor = (
        structlog.processors.JSONRenderer(default=repr)
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=tty, exception_formatter=structlog.dev.plain_traceback
        )
    )
    final: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
        REDACTOR,
        _Renderer(inner, escape=not as_json and not tty),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("loyaltybot")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)
    logging.captureWarnings(hooks)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    if hooks:
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def set_level(level: str) -> None:
    """Change the level at run time (SIGHUP applies ``log.level`` this way)."""
    root_level = _LEVELS[level]
    logging.getLogger().setLevel(root_level)
    # twitchio logs every raw IRC line at debug (the PASS line included: redacted anyway)
    # and aiohttp's access log is noisy; both stay at info unless asked for by name.
    logging.getLogger("twitchio").setLevel(max(root_level, logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(max(root_level, logging.INFO))


def bind(**fields: Any) -> None:
    """Bind context (command, request id, channel) to every later event of this task.

    asyncio copies the context into each task, so fields bound in a request handler or a
    command's task stay with it and do not leak into others.
    """
    structlog.contextvars.bind_contextvars(**fields)


def unbind(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """``with logs.bound(command="give", channel="alice"):`` binds for the block only."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("loyaltybot").critical("uncaught_exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    logging.getLogger("loyaltybot").critical(
        "uncaught_exception_in_thread",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"thread_name": args.thread.name if args.thread else None},
    )
