"""Sessions: aiohttp-session's encrypted cookie storage, kept under typed request keys.

aiohttp-session's own middleware stores itself under plain string keys, which aiohttp
3.14 warns about on every request; this module does the same small job (load lazily,
save when changed) with ``web.RequestKey``s. Encryption, expiry and the cookie itself
are the library's ``EncryptedCookieStorage``.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp_session import AbstractStorage, Session

SESSION_STORAGE = web.AppKey[AbstractStorage]("session_storage")
_SESSION = web.RequestKey[Session]("session")


async def get_session(request: web.Request) -> Session:
    """The visitor's session, loaded from the cookie on first use in this request."""
    session = request.get(_SESSION)
    if session is None:
        session = await request.app[SESSION_STORAGE].load_session(request)
        request[_SESSION] = session
    return session


async def new_session(request: web.Request) -> Session:
    """Replace the session with an empty one (on login: nothing carries over)."""
    session = await request.app[SESSION_STORAGE].new_session()
    session.changed()
    request[_SESSION] = session
    return session


def session_middleware() -> Middleware:
    """Write the cookie back when the handler changed the session, also on redirects."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        raised: web.HTTPException | None = None
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            raised = exc
            response = exc
        session = request.get(_SESSION)
        # ``_changed`` is how aiohttp-session itself decides; it has no public accessor.
        if session is not None and session._changed and not response.prepared:
            await request.app[SESSION_STORAGE].save_session(request, response, session)
        if raised is not None:
            raise raised
        return response

    return middleware
