"""id.twitch.tv at ``/oauth2``: validate, token grants, device code flow, authorize, revoke.

Grants: client_credentials (app token), refresh_token (a new access *and* refresh
token; the old refresh token stops working), authorization_code (from ``/authorize``)
and the device code grant (``authorization_pending`` until ``approve_device``).
Parameters are read from the query string and the form body alike, as twitchio puts
them in the query string and other clients in the body.

``/authorize`` approves as ``login_as(login)``; with nobody set it shows a small page
listing users to click (what the demo uses). ``/activate`` is the device flow's
verification page, likewise a list of users.
"""

from __future__ import annotations

import html
import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from multidict import MultiDict

from loyaltybot.clock import Clock
from loyaltybot.simulator.httputil import json_response
from loyaltybot.simulator.world import ClientApp, SimUser, Token, World, random_token

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(slots=True)
class AuthCode:
    client_id: str
    redirect_uri: str
    user: SimUser
    scopes: tuple[str, ...]
    expires_at: float


@dataclass(slots=True)
class DeviceGrant:
    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    approved_by: SimUser | None = None
    denied: bool = False


def _error(status: int, message: str) -> web.Response:
    return json_response({"status": status, "message": message}, status)


class OAuth:
    def __init__(self, world: World, clock: Clock) -> None:
        self.world = world
        self.clock = clock
        self.device_interval = 5
        self.device_expires_in = 1800
        self.user_token_expires_in = 14400
        self.app_token_expires_in = 5_011_271
        self.base_url = ""  # set by the server once it listens
        self._login_as: str | None = None
        self.codes: dict[str, AuthCode] = {}
        self.devices: dict[str, DeviceGrant] = {}  # by device code

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/oauth2/validate", self.validate),
            web.post("/oauth2/token", self.token),
            web.post("/oauth2/device", self.device),
            web.post("/oauth2/revoke", self.revoke),
            web.get("/oauth2/authorize", self.authorize),
            web.get("/activate", self.activate_page),
            web.post("/activate", self.activate),
        ]

    # ---- control ---------------------------------------------------------------------------

    def login_as(self, login: str | None) -> None:
        """Who ``/authorize`` approves as; None shows the chooser page instead."""
        self._login_as = self.world.user(login).login if login is not None else None

    def approve_device(self, user_code: str, login: str) -> DeviceGrant:
        grant = self._by_user_code(user_code)
        grant.approved_by = self.world.user(login)
        return grant

    def deny_device(self, user_code: str) -> None:
        self._by_user_code(user_code).denied = True

    def _by_user_code(self, user_code: str) -> DeviceGrant:
        code = user_code.strip().upper()
        for grant in self.devices.values():
            if grant.user_code == code:
                return grant
        raise KeyError(f"no pending device authorization with user code {user_code!r}")

    # ---- endpoints -------------------------------------------------------------------------

    async def validate(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if not value.strip() or scheme.lower() not in ("oauth", "bearer"):
            return _error(401, "missing authorization token")
        token = self.world.valid_token(value.strip())
        if token is None:
            return _error(401, "invalid access token")
        body: dict[str, Any] = {"client_id": token.client_id}
        if token.user is not None:
            body["login"] = token.user.login
        body["scopes"] = list(token.scopes)
        if token.user is not None:
            body["user_id"] = token.user.id
        body["expires_in"] = max(0, int(token.expires_at - self.clock.now()))
        return json_response(body)

    async def _params(self, request: web.Request) -> MultiDict[str]:
        params: MultiDict[str] = MultiDict(request.query)
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params.add(key, value)
        return params

    def _client(self, params: MultiDict[str]) -> ClientApp | None:
        return self.world.clients.get(params.get("client_id", ""))

    async def token(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        grant = params.get("grant_type", "")
        client = self._client(params)
        if client is None:
            return _error(400, "invalid client")
        secret = params.get("client_secret")
        if secret is not None and not secrets.compare_digest(secret, client.client_secret):
            return _error(403, "invalid client secret")
        if grant == "client_credentials":
            if secret is None:
                return _error(400, "missing client secret")
            token = self.world.issue_token(
                None, (), client_id=client.client_id, expires_in=self.app_token_expires_in
            )
            return json_response(
                {
                    "access_token": token.value,
                    "expires_in": self._expires(token),
                    "token_type": "bearer",
                }
            )
        if grant == "refresh_token":
            return self._refresh(params, client, secret)
        if grant == "authorization_code":
            return self._exchange_code(params, client, secret)
        if grant == DEVICE_GRANT:
            return self._device_token(params, client)
        return _error(400, "unsupported grant type")

    def _expires(self, token: Token) -> int:
        return max(0, int(token.expires_at - self.clock.now()))

    def _user_token_body(self, token: Token) -> web.Response:
        return json_response(
            {
                "access_token": token.value,
                "expires_in": self._expires(token),
                "refresh_token": token.refresh_token,
                "scope": list(token.scopes),
                "token_type": "bearer",
            }
        )

    def _refresh(
        self, params: MultiDict[str], client: ClientApp, secret: str | None
    ) -> web.Response:
        old = self.world.refresh_tokens.get(params.get("refresh_token", ""))
        if old is None or old.client_id != client.client_id or old.user is None:
            return json_response(
                {"error": "Bad Request", "status": 400, "message": "Invalid refresh token"}, 400
            )
        if secret is None and not old.via_device:
            return _error(400, "missing client secret")
        del self.world.refresh_tokens[params["refresh_token"]]
        token = self.world.issue_token(
            old.user.login,
            old.scopes,
            client_id=client.client_id,
            expires_in=self.user_token_expires_in,
            via_device=old.via_device,
        )
        return self._user_token_body(token)

    def _exchange_code(
        self, params: MultiDict[str], client: ClientApp, secret: str | None
    ) -> web.Response:
        if secret is None:
            return _error(400, "missing client secret")
        code = self.codes.pop(params.get("code", ""), None)
        if code is None or code.client_id != client.client_id or code.expires_at < self.clock.now():
            return _error(400, "Invalid authorization code")
        if params.get("redirect_uri") != code.redirect_uri:
            return _error(400, "Parameter redirect_uri does not match registered URI")
        token = self.world.issue_token(
            code.user.login,
            code.scopes,
            client_id=client.client_id,
            expires_in=self.user_token_expires_in,
        )
        return self._user_token_body(token)

    def _device_token(self, params: MultiDict[str], client: ClientApp) -> web.Response:
        grant = self.devices.get(params.get("device_code", ""))
        if grant is None or grant.client_id != client.client_id:
            return _error(400, "invalid device code")
        if grant.expires_at < self.clock.now():
            del self.devices[grant.device_code]
            return _error(400, "expired device code")
        if grant.denied:
            del self.devices[grant.device_code]
            return _error(400, "authorization denied")
        if grant.approved_by is None:
            return _error(400, "authorization_pending")
        del self.devices[grant.device_code]
        token = self.world.issue_token(
            grant.approved_by.login,
            grant.scopes,
            client_id=client.client_id,
            expires_in=self.user_token_expires_in,
            via_device=True,
        )
        return self._user_token_body(token)

    async def device(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        client = self._client(params)
        if client is None:
            return _error(400, "invalid client")
        scopes = tuple(params.get("scopes", params.get("scope", "")).split())
        user_code = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
        grant = DeviceGrant(
            device_code=random_token(40),
            user_code=user_code,
            client_id=client.client_id,
            scopes=scopes,
            expires_at=self.clock.now() + self.device_expires_in,
        )
        self.devices[grant.device_code] = grant
        return json_response(
            {
                "device_code": grant.device_code,
                "expires_in": self.device_expires_in,
                "interval": self.device_interval,
                "user_code": user_code,
                "verification_uri": f"{self.base_url}/activate?public=true&device-code={user_code}",
            }
        )

    async def revoke(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        client = self._client(params)
        token = self.world.tokens.get(params.get("token", ""))
        if client is None:
            return _error(400, "invalid client")
        if (
            token is None
            or token.client_id != client.client_id
            or not self.world.revoke_token(token.value)
        ):
            return _error(400, "Invalid token")
        return web.Response(status=200)

    # ---- browser pages -------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        client = self.world.clients.get(q.get("client_id", ""))
        if client is None:
            return _error(400, "invalid client")
        redirect_uri = q.get("redirect_uri", "")
        if not _redirect_allowed(client, redirect_uri):
            return _error(400, "Parameter redirect_uri does not match registered URI")
        if q.get("response_type", "code") != "code":
            return _error(400, "unsupported response_type (only code is simulated)")
        state = q.get("state")
        if q.get("deny"):
            extra = {"error": "access_denied", "error_description": "The user denied you access"}
            raise web.HTTPFound(_with_query(redirect_uri, {**extra, **_state(state)}))
        login = q.get("login") or self._login_as
        if login is None:
            return self._chooser(request)
        user = self.world.users.get(login.lower())
        if user is None:
            return _error(400, f"no simulated user {login}")
        scopes = tuple(q.get("scope", "").split())
        code = random_token(30)
        self.codes[code] = AuthCode(
            client.client_id, redirect_uri, user, scopes, self.clock.now() + 600
        )
        params = {"code": code, "scope": " ".join(scopes), **_state(state)}
        raise web.HTTPFound(_with_query(redirect_uri, params))

    def _candidates(self, limit: int = 30) -> list[SimUser]:
        """Broadcasters, bots and moderators first, then other users."""
        picked: dict[str, SimUser] = {}
        for channel in self.world.channels.values():
            picked.setdefault(channel.broadcaster.id, channel.broadcaster)
            for uid in sorted(channel.mods):
                picked.setdefault(uid, self.world.users_by_id[uid])
        for user in self.world.users.values():
            if len(picked) >= limit:
                break
            picked.setdefault(user.id, user)
        return list(picked.values())[:limit]

    def _chooser(self, request: web.Request) -> web.Response:
        items = []
        for user in self._candidates():
            query = MultiDict(request.query)
            query["login"] = user.login
            href = html.escape(f"{request.path}?{urlencode(list(query.items()))}")
            items.append(f'<li><a href="{href}">{html.escape(user.display_name)}</a></li>')
        deny = MultiDict(request.query)
        deny["deny"] = "1"
        deny_href = html.escape(f"{request.path}?{urlencode(list(deny.items()))}")
        page = (
            "<!doctype html><title>Simulated Twitch: log in</title>"
            "<h1>Simulated Twitch</h1><p>Log in as:</p>"
            f'<ul>{"".join(items)}</ul><p><a href="{deny_href}">Deny</a></p>'
        )
        return web.Response(text=page, content_type="text/html")

    async def activate_page(self, request: web.Request) -> web.Response:
        code = html.escape(request.query.get("device-code", ""))
        options = "".join(
            f'<option value="{html.escape(u.login)}">{html.escape(u.display_name)}</option>'
            for u in self._candidates()
        )
        page = (
            "<!doctype html><title>Simulated Twitch: activate</title><h1>Activate a device</h1>"
            '<form method="post" action="/activate">'
            f'<label>Code <input name="user_code" value="{code}"></label> '
            f'<label>as <select name="login">{options}</select></label> '
            '<button type="submit">Authorize</button></form>'
        )
        return web.Response(text=page, content_type="text/html")

    async def activate(self, request: web.Request) -> web.Response:
        form = await request.post()
        user_code, login = str(form.get("user_code", "")), str(form.get("login", ""))
        try:
            user = self.approve_device(user_code, login).approved_by
        except KeyError as exc:
            return web.Response(text=str(exc), status=400, content_type="text/plain")
        who = user.login if user is not None else login
        return web.Response(
            text=f"Device authorized as {who}. You may close this page.", content_type="text/plain"
        )


def _state(state: str | None) -> dict[str, str]:
    return {"state": state} if state is not None else {}


def _with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


def _redirect_allowed(client: ClientApp, uri: str) -> bool:
    if client.redirect_uris:
        return uri in client.redirect_uris
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and (parts.hostname or "") in _LOOPBACK
