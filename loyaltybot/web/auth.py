"""Log in with Twitch (OAuth authorization code flow), who may manage what, and CSRF.

The dashboard asks Twitch for no scope at all: it only needs to know who the visitor is.
``/login`` sends the browser to ``{auth_url}/authorize`` with a random ``state`` kept in
the (encrypted) session; ``/auth/callback`` checks that state, trades the code for a
token, asks ``{auth_url}/validate`` for the login and user id, and forgets the token.

A channel's broadcaster and its ``admins`` (config.toml) may manage it; nobody else
sees anything of it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import structlog
from aiohttp import web
from aiohttp_session import Session

from loyaltybot.config import Config
from loyaltybot.web.sessions import get_session, new_session
from loyaltybot.web.state import CONFIG, HTTP

log = structlog.get_logger(__name__)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE = 7 * 24 * 3600  # a week; then Twitch is asked again
_TWITCH_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class User:
    """Who is logged in, as Twitch's /validate said."""

    user_id: str
    login: str


class LoginFailed(Exception):
    """The login could not complete; ``reason`` is fit to show the visitor."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# ---- who may manage what (pure) -------------------------------------------------------


def may_manage(config: Config, login: str, channel: str) -> bool:
    """The broadcaster and the channel's admins, nobody else."""
    settings = config.channels.get(channel)
    return settings is not None and (login == channel or login in settings.admins)


def managed_channels(config: Config, login: str) -> list[str]:
    return sorted(c for c in config.channels if may_manage(config, login, c))


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 0x20 for ch in target)
    ):
        return "/dashboard"
    return target


# ---- sessions -------------------------------------------------------------------------


async def current_user(request: web.Request) -> User | None:
    session = await get_session(request)
    user_id, login = session.get("uid"), session.get("login")
    if isinstance(user_id, str) and isinstance(login, str):
        return User(user_id, login)
    return None


def csrf_token(session: Session) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def csrf_ok(request: web.Request) -> bool:
    """The request carries the session's token (form field or header), compared in
    constant time."""
    session = await get_session(request)
    expected = session.get("csrf")
    if not isinstance(expected, str):
        return False
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def flash(session: Session, message: str, kind: str = "ok") -> None:
    """A one-time notice shown on the next page (kept short: it rides in the cookie)."""
    notes: list[Any] = list(session.get("flash", []))[-4:]
    notes.append([kind, message[:300]])
    session["flash"] = notes


def take_flashes(session: Session) -> list[tuple[str, str]]:
    notes = session.pop("flash", None) if "flash" in session else None
    if not isinstance(notes, list):
        return []
    return [(str(kind), str(text)) for kind, text in notes]


# ---- the OAuth dance ------------------------------------------------------------------


def _redirect_uri(request: web.Request, config: Config) -> str:
    """Where Twitch sends the visitor back: public_url when it is set (behind a proxy
    the request's own URL is the internal one), else the URL the visitor used."""
    base = config.web.public_url or str(request.url.origin())
    return base.rstrip("/") + "/auth/callback"


async def login(request: web.Request) -> web.StreamResponse:
    """GET /login: off to Twitch, remembering a fresh state and where to come back."""
    config = request.app[CONFIG].current
    if config.twitch.client_secret is None:
        raise LoginFailed(
            "Logging in needs twitch.client_secret in config.toml; ask the operator.", 503
        )
    session = await get_session(request)
    state = secrets.token_urlsafe(32)
    session["oauth_state"] = state
    session["oauth_next"] = safe_next(request.query.get("next"))
    query = urlencode(
        {
            "client_id": config.twitch.client_id,
            "redirect_uri": _redirect_uri(request, config),
            "response_type": "code",
            "scope": "",
            "state": state,
        }
    )
    raise web.HTTPFound(f"{config.twitch.auth_url}/authorize?{query}")


async def callback(request: web.Request) -> web.StreamResponse:
    """GET /auth/callback: check the state, learn who this is, start the session."""
    config = request.app[CONFIG].current
    session = await get_session(request)
    expected = session.pop("oauth_state", None)
    next_path = safe_next(session.pop("oauth_next", None))
    state = request.query.get("state", "")
    if not isinstance(expected, str) or not hmac.compare_digest(state.encode(), expected.encode()):
        log.warning("dashboard_login_refused", reason="state_mismatch")
        raise LoginFailed("This login link has expired or was not started here. Try again.")
    if "error" in request.query:
        log.info("dashboard_login_refused", reason=request.query.get("error", "")[:50])
        raise LoginFailed("Twitch did not approve the login.")
    code = request.query.get("code", "")
    if not code or len(code) > 512:
        raise LoginFailed("Twitch sent no authorization code. Try again.")
    user = await _identify(request, config, code)
    session = await new_session(request)  # a fresh session: nothing carried over
    session["uid"] = user.user_id
    session["login"] = user.login
    csrf_token(session)
    log.info("dashboard_login", login=user.login, user_id=user.user_id)
    if next_path == "/dashboard":
        managed = managed_channels(config, user.login)
        if len(managed) == 1:
            next_path = f"/dashboard/{managed[0]}"
    raise web.HTTPFound(next_path)


async def _identify(request: web.Request, config: Config, code: str) -> User:
    """Trade the code for a token, ask /validate who it belongs to, drop the token."""
    secret = config.twitch.client_secret
    if secret is None:
        raise LoginFailed("Logging in needs twitch.client_secret in config.toml.", 503)
    http = request.app[HTTP]
    auth_url = config.twitch.auth_url
    form = {
        "client_id": config.twitch.client_id,
        "client_secret": secret.reveal(),
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": _redirect_uri(request, config),
    }
    try:
        async with http.post(f"{auth_url}/token", data=form, timeout=_TWITCH_TIMEOUT) as resp:
            body = await resp.json(content_type=None)
            token = body.get("access_token") if isinstance(body, dict) else None
            if resp.status != 200 or not isinstance(token, str):
                log.warning("dashboard_login_failed", step="token", status=resp.status)
                raise LoginFailed("Twitch did not accept the login. Try again.")
        headers = {"Authorization": f"OAuth {token}"}
        async with http.get(
            f"{auth_url}/validate", headers=headers, timeout=_TWITCH_TIMEOUT
        ) as resp:
            info = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(info, dict):
                log.warning("dashboard_login_failed", step="validate", status=resp.status)
                raise LoginFailed("Twitch did not confirm who you are. Try again.")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("dashboard_login_failed", step="network", error=type(exc).__name__)
        raise LoginFailed("Could not reach Twitch. Try again in a moment.", 502) from None
    user_id, login_name = info.get("user_id"), info.get("login")
    if info.get("client_id") != config.twitch.client_id:
        log.warning("dashboard_login_failed", step="validate", reason="client_id")
        raise LoginFailed("Twitch issued that login to another application.")
    if not isinstance(user_id, str) or not isinstance(login_name, str) or not user_id:
        raise LoginFailed("Twitch did not say who you are. Try again.")
    return User(user_id, login_name.lower())


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout (CSRF-checked like every POST): forget the session."""
    session = await get_session(request)
    who = session.get("login")
    session.invalidate()
    if who:
        log.info("dashboard_logout", login=who)
    raise web.HTTPSeeOther("/")
