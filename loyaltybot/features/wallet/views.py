"""The wallet's pages: viewers (search, sort, adjust with a reason), a viewer's history,
the leaderboard, the transaction log with its CSV download, and the public leaderboard
with its JSON API (SPEC §7). Every balance change goes through the bank (the ledger),
named ``dashboard:<login>``.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from aiohttp import web

from loyaltybot.points import history as queries
from loyaltybot.points import viewers
from loyaltybot.points.errors import (
    AlreadyApplied,
    BalanceTooHigh,
    InsufficientPoints,
    UnknownChannel,
)
from loyaltybot.points.ledger import EntryType
from loyaltybot.web import forms
from loyaltybot.web.access import (
    Access,
    context,
    int_param,
    public_base,
    require_access,
    stored_settings,
)
from loyaltybot.web.api import API_MAX_LIMIT, PAGE_MAX_LIMIT, ApiError, query_limit
from loyaltybot.web.auth import flash
from loyaltybot.web.pages import PageError, now_ms, render, render_public, timestamp
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import BANK, CONFIG, METRICS

log = structlog.get_logger(__name__)

_NONCE = re.compile(r"[A-Za-z0-9_\-]{16,64}")
_USER_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")


# ---- viewers --------------------------------------------------------------------------


Column = tuple[str, Callable[[str, queries.ViewerRow], str | None]]
"""A column other features add to the viewers page (title, (channel, viewer) -> cell);
a cell of None everywhere on the page leaves the column out ("" shows as a dash)."""


async def viewers_page(request: web.Request, columns: Sequence[Column] = ()) -> web.StreamResponse:
    """GET /dashboard/{channel}/viewers?q=prefix&sort=points&after=cursor."""
    access = await require_access(request)
    query = request.query
    sort = query.get("sort", "points")
    if sort not in queries.SORTS:
        sort = "points"
    raw_q = query.get("q", "").strip()
    prefix = viewers.normalize_login(raw_q) if raw_q else None
    error = None
    if raw_q and prefix is None:
        error = "Search by the start of a login: letters, digits and _ only."
    cursor = query.get("after") or None
    page = queries.ViewerPage([], 0, None)
    if error is None:
        page = await request.app[BANK].viewer_page(
            access.channel, sort=sort, prefix=prefix, cursor=cursor
        )
    bank = request.app[BANK]
    ranks = {row.user_id: await bank.rank(access.channel, row.user_id) for row in page.rows}
    extra = []
    for title, cell in columns:
        cells = {row.user_id: cell(access.channel, row) for row in page.rows}
        if any(value is not None for value in cells.values()):
            extra.append((title, cells))

    def link(**changes: str | None) -> str:
        params = {"q": raw_q, "sort": sort, **changes}
        return "?" + urlencode({k: v for k, v in params.items() if v})

    page_context = context(
        access,
        "viewers",
        page=page,
        ranks=ranks,
        columns=extra,
        q=raw_q,
        sort=sort,
        sorts=list(queries.SORTS),
        error=error,
        first_link=link() if cursor else None,
        next_link=link(after=page.next_cursor) if page.next_cursor else None,
        sort_link=lambda s: link(sort=s),
    )
    return await render(request, "wallet/viewers.html", page_context, status=400 if error else 200)


async def viewer_page(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/viewers/{user_id}: balance, history, adjust form."""
    access = await require_access(request)
    return await _render_viewer(request, access, {}, {})


async def _render_viewer(
    request: web.Request,
    access: Access,
    typed: dict[str, str],
    errors: dict[str, str],
) -> web.Response:
    user_id = request.match_info["user_id"]
    bank = request.app[BANK]
    record = await _viewer(request, access, user_id)
    before = int_param(request.query.get("before"))
    filters = queries.LedgerFilter(user_id=user_id)
    rows, next_before = await bank.ledger_page(access.channel, filters, before_id=before)
    history = await bank.login_history(user_id)
    stored = await stored_settings(request, access.channel_id)
    page_context = context(
        access,
        "viewers",
        viewer=record,
        rank=await bank.rank(access.channel, user_id),
        excluded=record.login in bank.excluded(access.channel),
        rows=rows,
        next_before=next_before,
        paged=before is not None,
        history=history,
        currency=stored.values.currency_name_plural,
        typed=typed,
        errors=errors,
        nonce=secrets.token_urlsafe(16),
    )
    return await render(request, "wallet/viewer.html", page_context, status=400 if errors else 200)


async def adjust_points(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/{channel}/viewers/{user_id}/adjust: add or remove, with a reason.

    The form carries a one-time nonce used as the ledger ``ref``: a form sent twice
    (double click, reload) changes the balance once.
    """
    access = await require_access(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    parsed = forms.parse_adjustment(form)
    user_id = request.match_info["user_id"]
    bank = request.app[BANK]
    record = await _viewer(request, access, user_id)
    nonce = form.get("nonce", "")
    if parsed.value is None or not _NONCE.fullmatch(nonce):
        errors = parsed.errors or {"amount": "the form is incomplete; reload the page"}
        return await _render_viewer(request, access, parsed.typed, errors)
    adjustment = parsed.value
    stored = await stored_settings(request, access.channel_id)
    currency = stored.values.currency
    session = await get_session(request)
    ref = f"dashboard:{nonce}"
    try:
        if adjustment.direction == "add":
            change = await bank.credit(
                access.channel,
                record.identity,
                adjustment.amount,
                kind=EntryType.ADD,
                reason=adjustment.reason,
                actor=access.actor,
                ref=ref,
            )
        else:
            change = await bank.debit(
                access.channel,
                record.identity,
                adjustment.amount,
                kind=EntryType.REMOVE,
                reason=adjustment.reason,
                actor=access.actor,
                ref=ref,
            )
    except InsufficientPoints as exc:
        message = (
            f"{record.login} has only {exc.balance:,} {currency(exc.balance)}; nothing was removed"
        )
        return await _render_viewer(request, access, parsed.typed, {"amount": message})
    except BalanceTooHigh:
        message = f"{record.login}'s balance is already at the maximum; nothing was added"
        return await _render_viewer(request, access, parsed.typed, {"amount": message})
    except AlreadyApplied:
        flash(session, "That change was already made (the form was sent twice).", "info")
        raise web.HTTPSeeOther(_viewer_path(access, user_id)) from None
    applied = abs(change.applied)
    if change.applied > 0:
        request.app[METRICS].points_credited.labels(access.channel, "dashboard").inc(applied)
    verb = "Added" if change.applied > 0 else "Removed"
    where = "to" if change.applied > 0 else "from"
    note = f" (only {applied:,} fit under the maximum)" if change.clamped else ""
    flash(
        session,
        f"{verb} {applied:,} {currency(applied)} {where} {record.login}{note}."
        f" Balance: {change.balance:,}.",
    )
    log.info(
        "points_adjusted",
        channel=access.channel,
        by=access.user.login,
        viewer=record.login,
        amount=change.applied,
    )
    raise web.HTTPSeeOther(_viewer_path(access, user_id))


async def _viewer(request: web.Request, access: Access, user_id: str) -> viewers.ViewerRecord:
    record = None
    if _USER_ID.fullmatch(user_id):
        record = await request.app[BANK].viewer_by_id(access.channel, user_id)
    if record is None:
        raise PageError(404, "This channel has no viewer with that id.")
    return record


def _viewer_path(access: Access, user_id: str) -> str:
    return f"/dashboard/{access.channel}/viewers/{quote(user_id, safe='')}"


# ---- leaderboard ----------------------------------------------------------------------

LEADERBOARD_PAGE = 50


async def leaderboard(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/leaderboard?page=N (in-memory standings)."""
    access = await require_access(request)
    bank = request.app[BANK]
    ranked = await bank.ranked_count(access.channel)
    pages = max(1, -(-ranked // LEADERBOARD_PAGE))
    page = min(max(1, int_param(request.query.get("page")) or 1), pages)
    top = await bank.top(access.channel, LEADERBOARD_PAGE, (page - 1) * LEADERBOARD_PAGE)
    names = await bank.display_names(access.channel, [s.user_id for s in top])
    stored = await stored_settings(request, access.channel_id)
    page_context = context(
        access,
        "leaderboard",
        rows=top,
        names=names,
        ranked=ranked,
        page=page,
        pages=pages,
        currency=stored.values.currency_name_plural,
        public_url=public_base(request),
    )
    return await render(request, "wallet/leaderboard.html", page_context)


# ---- transactions ---------------------------------------------------------------------

TYPES = [str(t) for t in EntryType]


@dataclass(frozen=True)
class _LogQuery:
    filters: queries.LedgerFilter
    typed: dict[str, str]
    errors: dict[str, str]


async def _log_query(request: web.Request, access: Access) -> _LogQuery:
    q = request.query
    typed = {k: q.get(k, "").strip() for k in ("type", "viewer", "from", "to")}
    errors: dict[str, str] = {}
    types: tuple[str, ...] = ()
    if typed["type"]:
        if typed["type"] in TYPES:
            types = (typed["type"],)
        else:
            errors["type"] = "choose a type from the list"
    user_id = None
    if typed["viewer"]:
        login = viewers.normalize_login(typed["viewer"])
        record = await request.app[BANK].viewer(access.channel, login) if login else None
        if record is None:
            errors["viewer"] = "no viewer of this channel has that login"
        else:
            user_id = record.user_id
    since = _date(typed["from"], errors, "from")
    until = _date(typed["to"], errors, "to")
    if since is not None and until is not None and until < since:
        errors["to"] = "must not be before the start date"
    filters = queries.LedgerFilter(
        user_id=user_id,
        types=types,
        since_ms=None if since is None else _ms(since),
        until_ms=None if until is None else _ms(until + timedelta(days=1)),
    )
    return _LogQuery(filters, typed, errors)


def _date(raw: str, errors: dict[str, str], key: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        errors[key] = "must be a date like 2025-01-31"
        return None


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


async def transactions(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/transactions?type=&viewer=&from=&to=&before=."""
    access = await require_access(request)
    log_query = await _log_query(request, access)
    rows: list[queries.LedgerRow] = []
    next_before = None
    before = int_param(request.query.get("before"))
    if not log_query.errors:
        rows, next_before = await request.app[BANK].ledger_page(
            access.channel, log_query.filters, before_id=before
        )
    filters = {k: v for k, v in log_query.typed.items() if v}
    page_context = context(
        access,
        "transactions",
        rows=rows,
        types=TYPES,
        typed=log_query.typed,
        errors=log_query.errors,
        next_link="?" + urlencode({**filters, "before": next_before}) if next_before else None,
        first_link="?" + urlencode(filters) if before is not None else None,
        csv_link="transactions.csv" + ("?" + urlencode(filters) if filters else ""),
    )
    return await render(
        request, "wallet/transactions.html", page_context, status=400 if log_query.errors else 200
    )


CSV_HEADER = (
    "id",
    "time_utc",
    "user_id",
    "username",
    "type",
    "amount",
    "balance_after",
    "reason",
    "related_user_id",
    "related_username",
    "actor",
    "ref",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str | None) -> str:
    """Text cells that a spreadsheet would run as a formula get a leading quote."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


async def transactions_csv(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/transactions.csv: the filtered log, streamed in chunks
    (each chunk its own short read, so a long export never holds the reader)."""
    access = await require_access(request)
    log_query = await _log_query(request, access)
    if log_query.errors:
        problems = "; ".join(f"{k}: {v}" for k, v in log_query.errors.items())
        raise PageError(400, f"Fix the filters first ({problems}).")
    stamp = datetime.fromtimestamp(now_ms(request) / 1000, UTC).strftime("%Y%m%d")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": (
                f'attachment; filename="{access.channel}-transactions-{stamp}.csv"'
            ),
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    before: int | None = None
    bank = request.app[BANK]
    while True:
        rows, before = await bank.ledger_page(
            access.channel, log_query.filters, before_id=before, limit=2000
        )
        for row in rows:
            writer.writerow(
                (
                    row.id,
                    timestamp(row.created_at).removesuffix(" UTC"),
                    row.user_id,
                    row.login,
                    row.type,
                    row.amount,
                    row.balance_after,
                    _cell(row.reason),
                    row.related_user_id or "",
                    row.related_login or "",
                    _cell(row.actor),
                    _cell(row.ref),
                )
            )
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        if before is None:
            break
    await response.write_eof()
    return response


# ---- public: the leaderboard page (an OBS browser source) and its JSON ----------------


async def leaderboard_json(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/channels/{channel}/leaderboard?limit=N (1..100, default 10)."""
    channel = request.match_info["channel"]
    if channel not in request.app[CONFIG].current.channels:
        raise ApiError(404, f"no channel named {channel[:25]!r} here")
    limit = query_limit(request.query.get("limit"), 10, API_MAX_LIMIT)
    if limit is None:
        raise ApiError(400, f"limit must be a whole number from 1 to {API_MAX_LIMIT}")
    try:
        top = await request.app[BANK].top(channel, limit)
    except UnknownChannel:
        raise ApiError(404, f"no channel named {channel!r} here") from None
    body = [
        {"rank": s.rank, "user_id": s.user_id, "username": s.login, "points": s.points} for s in top
    ]
    return web.json_response(
        body,
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"},
    )


async def leaderboard_page(request: web.Request) -> web.StreamResponse:
    """GET /c/{channel}/leaderboard: public; ``?overlay=1`` is the OBS browser source
    (transparent, no chrome), refreshed every ``refresh`` seconds (default 15)."""
    channel = request.match_info["channel"]
    if channel not in request.app[CONFIG].current.channels:
        raise PageError(404, "There is no leaderboard for that channel here.")
    limit = query_limit(request.query.get("limit"), 10, PAGE_MAX_LIMIT)
    if limit is None:
        raise PageError(400, f"limit must be a whole number from 1 to {PAGE_MAX_LIMIT}.")
    refresh = query_limit(request.query.get("refresh"), 15, 3600)
    if refresh is None or refresh < 2:
        raise PageError(400, "refresh must be a whole number of seconds from 2 to 3600.")
    overlay = request.query.get("overlay", "") in ("1", "true", "yes")
    bank = request.app[BANK]
    try:
        top = await bank.top(channel, limit)
        channel_id = bank.channel_id(channel)
    except UnknownChannel:
        raise PageError(404, "There is no leaderboard for that channel here.") from None
    values = (await stored_settings(request, channel_id)).values
    context: dict[str, Any] = {
        "channel": channel,
        "rows": top,
        "limit": limit,
        "overlay": overlay,
        "refresh": refresh,
        "currency": values.currency_name_plural,
        "api_url": f"/api/v1/channels/{channel}/leaderboard?limit={limit}",
    }
    response = render_public(request, "wallet/public_leaderboard.html", context)
    response.headers["Cache-Control"] = "no-cache"
    return response


def routes(columns: Sequence[Column] = ()) -> list[web.RouteDef]:
    return [
        web.get("/dashboard/{channel}/viewers", partial(viewers_page, columns=columns)),
        web.get("/dashboard/{channel}/viewers/{user_id}", viewer_page),
        web.post("/dashboard/{channel}/viewers/{user_id}/adjust", adjust_points),
        web.get("/dashboard/{channel}/leaderboard", leaderboard),
        web.get("/dashboard/{channel}/transactions", transactions),
        web.get("/dashboard/{channel}/transactions.csv", transactions_csv),
        web.get("/api/v1/channels/{channel}/leaderboard", leaderboard_json),
        web.get("/c/{channel}/leaderboard", leaderboard_page, name="public_leaderboard"),
    ]
