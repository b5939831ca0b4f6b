"""The web application factory: dashboard, public leaderboards, JSON API, health, metrics.

``make_app`` wires everything a handler needs into typed ``web.AppKey``s (see ``state``);
nothing is global. The middlewares, outermost first:

1. metrics: request latency by route template;
2. sessions: aiohttp-session with an encrypted cookie (HttpOnly, SameSite=Lax, Secure
   when the public URL is https);
3. errors: every failure becomes a clean page (HTML) or ``{"error": ...}`` (API), never a
   traceback; unexpected exceptions are logged with theirs;
4. CSRF: every POST must carry the session's token, except the EventSub webhook, which
   Twitch signs instead.

The EventSub route is added by the caller (``app.router.add_post(config.web.eventsub_path,
...)``) before the app starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from loyaltybot.clock import Clock, SystemClock
from loyaltybot.config import Config
from loyaltybot.db import Store, Tx
from loyaltybot.metrics import Metrics
from loyaltybot.points.bank import Bank
from loyaltybot.web import api, auth, dashboard
from loyaltybot.web.api import ApiError
from loyaltybot.web.auth import LoginFailed
from loyaltybot.web.pages import FILTERS, PageError, render
from loyaltybot.web.sessions import SESSION_STORAGE, session_middleware
from loyaltybot.web.state import (
    BANK,
    CLOCK,
    CONFIG,
    HEALTH,
    HTTP,
    METRICS,
    STATS,
    STORE,
    Health,
    LiveConfig,
    StatSource,
)

log = structlog.get_logger(__name__)

MAX_BODY = 256 * 1024  # forms and webhook bodies are a few KB
COOKIE_NAME = "loyaltybot_session"
STATIC_DIR = Path(__file__).parent / "static"

_MESSAGES = {
    400: "That request did not make sense to us.",
    403: "You may not do that.",
    404: "There is nothing here.",
    405: "That page does not take this kind of request.",
    413: "That was too much data for one request.",
    429: "Too many requests; try again in a moment.",
}

# Scripts and styles come only from /static (no inline code, no CDN).
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)


async def make_app(
    *,
    bank: Bank,
    config: Config,
    store: Store,
    health: Health,
    metrics: Metrics,
    clock: Clock | None = None,
    http: aiohttp.ClientSession | None = None,
    routes: Sequence[web.RouteDef] = (),
    nav: Sequence[tuple[str, str]] = (),
    stats: Sequence[StatSource] = (),
    templates: Sequence[Path] = (),
) -> web.Application:
    """Build the application. Async because the session key may come from the database.

    ``health()`` says whether chat is connected; ``http`` (optional) is the client used
    to talk to Twitch's OAuth endpoints, otherwise the app opens and closes its own. The
    features add ``routes`` (with their ``templates`` folders), dashboard tabs (``nav``:
    path under the channel, label) and figures on a channel's overview (``stats``).
    """
    secure = (config.web.public_url or "").startswith("https://")
    key = await session_key(store, config)
    app = web.Application(client_max_size=MAX_BODY)
    app[BANK] = bank
    app[STORE] = store
    app[CONFIG] = LiveConfig(config)
    app[METRICS] = metrics
    app[STATS] = tuple(stats)
    app[HEALTH] = health
    app[CLOCK] = clock or SystemClock()
    storage = EncryptedCookieStorage(
        key,
        cookie_name=COOKIE_NAME,
        max_age=auth.SESSION_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
    app[SESSION_STORAGE] = storage
    app.middlewares.extend(
        [
            _metrics_middleware(metrics),
            session_middleware(),
            _error_middleware(config.web.eventsub_path),
            _csrf_middleware(config.web.eventsub_path),
        ]
    )
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.ChoiceLoader(
            [
                jinja2.PackageLoader("loyaltybot.web", "templates"),
                jinja2.FileSystemLoader([str(folder) for folder in templates]),
            ]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(FILTERS)
    environment.globals["static"] = _static_url(app)
    environment.globals["nav_tabs"] = [("overview", "Overview"), *nav, ("settings", "Settings")]
    app.on_response_prepare.append(_security_headers)
    app.router.add_static("/static", STATIC_DIR, name="static", append_version=True)
    api.add_routes(app)
    app.router.add_get("/login", auth.login, name="login")
    app.router.add_get("/auth/callback", auth.callback)
    app.router.add_post("/logout", auth.logout)
    app.router.add_routes(dashboard.routes())
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_http_client(http))
    return app


def reload_config(app: web.Application, config: Config) -> None:
    """Apply a reloaded config.toml (admins, channels, settings owners) to a running app."""
    app[CONFIG].replace(config)


# ---- the session key ------------------------------------------------------------------


async def session_key(store: Store, config: Config) -> bytes:
    """32 bytes for the cookie cipher: derived from web.session_secret when set, else
    generated once and kept in the database so logins survive restarts."""
    if config.web.session_secret is not None:
        secret = config.web.session_secret.reveal().encode()
        return hashlib.sha256(b"loyaltybot session key\0" + secret).digest()

    def load_or_create(tx: Tx) -> bytes:
        tx.conn.execute(
            "INSERT INTO web_secrets (name, value, created_at) VALUES ('session_key', ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (secrets.token_bytes(32), tx.now_ms),
        )
        (value,) = tx.conn.execute(
            "SELECT value FROM web_secrets WHERE name = 'session_key'"
        ).fetchone()
        return bytes(value)

    return await store.write(load_or_create)


# ---- middlewares ----------------------------------------------------------------------


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _metrics_middleware(metrics: Metrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:  # browsers' dev tools show it; bench/web.py reads it
                elapsed = (time.perf_counter() - started) * 1000
                response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}"
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.http_request_duration.labels(
                request.method, _route_label(request), str(status)
            ).observe(time.perf_counter() - started)

    return middleware


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _error_middleware(webhook_path: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400 or request.path == webhook_path:
                raise
            return await _error_response(request, exc.status, _MESSAGES.get(exc.status))
        except PageError as exc:
            return await _error_response(request, exc.status, exc.message)
        except ApiError as exc:
            return web.json_response({"error": exc.message}, status=exc.status)
        except LoginFailed as exc:
            return await _error_response(request, exc.status, exc.reason, login_again=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("web_request_failed", method=request.method, path=request.path)
            return await _error_response(request, 500, None)

    return middleware


async def _error_response(
    request: web.Request, status: int, message: str | None, *, login_again: bool = False
) -> web.StreamResponse:
    text = message or (
        "Something went wrong on our side. It has been logged; try again in a moment."
        if status >= 500
        else "That did not work."
    )
    if _wants_json(request):
        return web.json_response({"error": text}, status=status)
    try:
        return await render(
            request,
            "error.html",
            {"status": status, "message": text, "login_again": login_again},
            status=status,
        )
    except Exception:  # the error page itself failed: plain text, still no traceback
        log.exception("error_page_failed", status=status)
        return web.Response(text=f"{status}: {text}", status=status)


def _csrf_middleware(webhook_path: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
        if unsafe and request.path != webhook_path and not await auth.csrf_ok(request):
            log.warning("csrf_refused", method=request.method, path=request.path)
            raise PageError(
                403,
                "This form has expired or did not come from this dashboard."
                " Reload the page and try again.",
            )
        return await handler(request)

    return middleware


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/c/"):
        # Public leaderboards may be embedded (OBS, stream tools).
        headers.setdefault("Content-Security-Policy", _CSP)
    else:
        headers.setdefault("Content-Security-Policy", _CSP + "; frame-ancestors 'none'")
        headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(("/dashboard", "/auth", "/login")):
        headers.setdefault("Cache-Control", "no-store")


def _static_url(app: web.Application) -> Callable[[str], str]:
    def url(filename: str) -> str:
        return str(app.router["static"].url_for(filename=filename))

    return url


def _http_client(
    given: aiohttp.ClientSession | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[HTTP] = given
            yield
            return
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            yield

    return context


# ---- serving --------------------------------------------------------------------------


@dataclass
class WebServer:
    """A running app on a real socket (daemon, demo, tests, bench)."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def apply(self, config: Config) -> None:
        """Apply a reloaded config.toml (admins, channels, settings owners)."""
        reload_config(self.app, config)

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_web(app: web.Application, host: str, port: int) -> WebServer:
    """Serve ``app`` on host:port (0 = an ephemeral port); ``close()`` stops it."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = int(runner.addresses[-1][1])
    return WebServer(runner, host, bound)
