"""The dashboard: pages a channel's broadcaster and admins use to run it (SPEC §7).

Every handler starts with ``_access``: who is logged in and whether they may manage the
channel in the URL. Nobody else gets anything of a channel but a 403/404 page. Balance
changes go through the bank (the ledger), named ``dashboard:<login>``; settings through
``settings.apply_dashboard``. Forms are validated in ``forms``; a refused form is shown
again with what was typed and one clear message per field.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from aiohttp import web

from loyaltybot import settings
from loyaltybot.db import Tx
from loyaltybot.points import viewers
from loyaltybot.points.errors import (
    AlreadyApplied,
    BalanceTooHigh,
    InsufficientPoints,
    LoyaltyError,
    UnknownChannel,
)
from loyaltybot.points.ledger import EntryType
from loyaltybot.rewards import NotQueued, UnknownRedemption
from loyaltybot.settings import SETTING_KEYS, FileOwned, StoredSettings
from loyaltybot.web import forms, queries
from loyaltybot.web.auth import User, current_user, flash, managed_channels, may_manage
from loyaltybot.web.pages import PageError, now_ms, render, timestamp
from loyaltybot.web.sessions import get_session
from loyaltybot.web.state import BANK, CONFIG, HOOKS, METRICS, STORE

log = structlog.get_logger(__name__)

_NONCE = re.compile(r"[A-Za-z0-9_\-]{16,64}")
_REDEMPTION_ID = re.compile(r"[A-Za-z0-9_\-]{1,100}")
_USER_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")


@dataclass(frozen=True)
class Access:
    user: User
    channel: str
    channel_id: int

    @property
    def actor(self) -> str:
        return f"dashboard:{self.user.login}"


async def _require_user(request: web.Request) -> User:
    user = await current_user(request)
    if user is None:
        if request.method == "GET":
            raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
        raise PageError(403, "Your session has ended. Log in again.")
    return user


async def _access(request: web.Request) -> Access:
    user = await _require_user(request)
    channel = request.match_info["channel"]
    config = request.app[CONFIG].current
    if channel not in config.channels:
        raise PageError(404, "There is no such channel here.")
    if not may_manage(config, user.login, channel):
        log.warning("dashboard_access_denied", login=user.login, channel=channel)
        raise PageError(
            403,
            f"Only #{channel}'s broadcaster and the admins in config.toml can manage it."
            f" You are logged in as {user.login}.",
        )
    try:
        channel_id = request.app[BANK].channel_id(channel)
    except UnknownChannel:
        raise PageError(404, "There is no such channel here.") from None
    return Access(user, channel, channel_id)


async def _settings(request: web.Request, channel_id: int) -> StoredSettings:
    return await request.app[STORE].read(lambda conn: settings.load(conn, channel_id))


def _context(access: Access, tab: str, **extra: Any) -> dict[str, Any]:
    return {"channel": access.channel, "tab": tab, **extra}


# ---- channels and overview ------------------------------------------------------------


async def channels(request: web.Request) -> web.StreamResponse:
    """GET /dashboard: the channels this account may manage."""
    user = await _require_user(request)
    config = request.app[CONFIG].current
    bank, store = request.app[BANK], request.app[STORE]
    cards = []
    for channel in managed_channels(config, user.login):
        try:
            channel_id = bank.channel_id(channel)
        except UnknownChannel:
            continue
        count, held = await store.read(
            lambda conn, cid=channel_id: queries.channel_counts(conn, cid)  # type: ignore[misc]
        )
        cards.append({"channel": channel, "viewers": count, "points": held})
    return await render(request, "channels.html", {"cards": cards, "tab": "channels"})


async def overview(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}: the channel at a glance."""
    access = await _access(request)
    bank, store = request.app[BANK], request.app[STORE]
    count, held = await store.read(lambda conn: queries.channel_counts(conn, access.channel_id))
    stored = await _settings(request, access.channel_id)
    top = await bank.top(access.channel, 5)
    ranked = await bank.ranked_count(access.channel)
    recent, _ = await store.read(lambda conn: queries.ledger_page(conn, access.channel_id, limit=8))
    hooks = request.app[HOOKS]
    queued = None
    if hooks is not None and _has_action(request, access.channel, "queue"):
        queued = len(await hooks.list_queue(access.channel))
    context = _context(
        access,
        "overview",
        viewers=count,
        held=held,
        ranked=ranked,
        top=top,
        recent=recent,
        values=stored.values,
        queued=queued,
        public_url=_public_base(request),
    )
    return await render(request, "overview.html", context)


def _public_base(request: web.Request) -> str:
    config = request.app[CONFIG].current
    return (config.web.public_url or str(request.url.origin())).rstrip("/")


# ---- settings -------------------------------------------------------------------------


def _settings_fields(stored: StoredSettings, typed: dict[str, str]) -> list[dict[str, Any]]:
    fields = []
    for key in SETTING_KEYS:
        info = forms.field_info(key)
        value = getattr(stored.values, key)
        fields.append(
            {
                "key": key,
                "info": info,
                "bool": forms.is_bool(key),
                "value": typed.get(key, forms.display_value(value)),
                "checked": (typed[key] == "true") if key in typed else bool(value),
                "file": stored.owner(key) == "file",
            }
        )
    return fields


async def settings_page(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/settings."""
    access = await _access(request)
    stored = await _settings(request, access.channel_id)
    return await _render_settings(request, access, stored, {}, {})


async def _render_settings(
    request: web.Request,
    access: Access,
    stored: StoredSettings,
    typed: dict[str, str],
    errors: dict[str, str],
) -> web.Response:
    fields = _settings_fields(stored, typed)
    groups = [(g, [f for f in fields if f["info"].group == g]) for g in forms.GROUPS]
    context = _context(
        access,
        "settings",
        groups=[(g, fs) for g, fs in groups if fs],
        errors=errors,
        file_path=str(request.app[CONFIG].current.path),
    )
    return await render(request, "settings.html", context, status=400 if errors else 200)


async def settings_save(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/{channel}/settings: validate everything, store what changed."""
    access = await _access(request)
    stored = await _settings(request, access.channel_id)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    result = forms.parse_settings(form, stored)
    if not result.ok:
        return await _render_settings(request, access, stored, result.typed, result.errors)
    session = await get_session(request)
    if not result.changes:
        flash(session, "Nothing changed.", "info")
        raise web.HTTPSeeOther(request.path)

    def apply(tx: Tx) -> None:
        settings.apply_dashboard(tx, access.channel_id, result.changes, access.actor)

    try:
        await request.app[STORE].write(apply)
    except FileOwned as exc:
        errors = dict.fromkeys(exc.keys, "is set in config.toml; change it there")
        stored = await _settings(request, access.channel_id)
        return await _render_settings(request, access, stored, result.typed, errors)
    log.info(
        "settings_changed",
        channel=access.channel,
        by=access.user.login,
        keys=sorted(result.changes),
    )
    names = ", ".join(forms.field_info(k).label.lower() for k in sorted(result.changes))
    flash(session, f"Saved: {names}. New values apply from the next earning interval.")
    raise web.HTTPSeeOther(request.path)


# ---- viewers --------------------------------------------------------------------------


async def viewers_page(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/viewers?q=prefix&sort=points&after=cursor."""
    access = await _access(request)
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
        await request.app[BANK].first_sight.settle()  # a viewer seen a moment ago is listed
        page = await request.app[STORE].read(
            lambda conn: queries.list_viewers(
                conn, access.channel_id, sort=sort, prefix=prefix, cursor=cursor
            )
        )
    bank = request.app[BANK]
    ranks = {row.user_id: await bank.rank(access.channel, row.user_id) for row in page.rows}

    def link(**changes: str | None) -> str:
        params = {"q": raw_q, "sort": sort, **changes}
        return "?" + urlencode({k: v for k, v in params.items() if v})

    context = _context(
        access,
        "viewers",
        page=page,
        ranks=ranks,
        q=raw_q,
        sort=sort,
        sorts=list(queries.SORTS),
        error=error,
        first_link=link() if cursor else None,
        next_link=link(after=page.next_cursor) if page.next_cursor else None,
        sort_link=lambda s: link(sort=s),
    )
    return await render(request, "viewers.html", context, status=400 if error else 200)


async def viewer_page(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/viewers/{user_id}: balance, history, adjust form."""
    access = await _access(request)
    return await _render_viewer(request, access, {}, {})


async def _render_viewer(
    request: web.Request,
    access: Access,
    typed: dict[str, str],
    errors: dict[str, str],
) -> web.Response:
    user_id = request.match_info["user_id"]
    bank, store = request.app[BANK], request.app[STORE]
    record = await _viewer(request, access, user_id)
    before = _int_param(request.query.get("before"))
    filters = queries.LedgerFilter(user_id=user_id)
    rows, next_before = await store.read(
        lambda conn: queries.ledger_page(conn, access.channel_id, filters, before_id=before)
    )
    history = await store.read(lambda conn: queries.login_history(conn, user_id))
    stored = await _settings(request, access.channel_id)
    context = _context(
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
    return await render(request, "viewer.html", context, status=400 if errors else 200)


async def adjust_points(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/{channel}/viewers/{user_id}/adjust: add or remove, with a reason.

    The form carries a one-time nonce used as the ledger ``ref``: a form sent twice
    (double click, reload) changes the balance once.
    """
    access = await _access(request)
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
    stored = await _settings(request, access.channel_id)
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


def _int_param(raw: str | None) -> int | None:
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


# ---- leaderboard ----------------------------------------------------------------------

LEADERBOARD_PAGE = 50


async def leaderboard(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/leaderboard?page=N (in-memory standings)."""
    access = await _access(request)
    bank = request.app[BANK]
    ranked = await bank.ranked_count(access.channel)
    pages = max(1, -(-ranked // LEADERBOARD_PAGE))
    page = min(max(1, _int_param(request.query.get("page")) or 1), pages)
    top = await bank.top(access.channel, LEADERBOARD_PAGE, (page - 1) * LEADERBOARD_PAGE)
    names = await request.app[STORE].read(
        lambda conn: queries.display_names(conn, access.channel_id, [s.user_id for s in top])
    )
    stored = await _settings(request, access.channel_id)
    context = _context(
        access,
        "leaderboard",
        rows=top,
        names=names,
        ranked=ranked,
        page=page,
        pages=pages,
        currency=stored.values.currency_name_plural,
        public_url=_public_base(request),
    )
    return await render(request, "leaderboard.html", context)


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
    access = await _access(request)
    log_query = await _log_query(request, access)
    rows: list[queries.LedgerRow] = []
    next_before = None
    before = _int_param(request.query.get("before"))
    if not log_query.errors:
        rows, next_before = await request.app[STORE].read(
            lambda conn: queries.ledger_page(
                conn, access.channel_id, log_query.filters, before_id=before
            )
        )
    filters = {k: v for k, v in log_query.typed.items() if v}
    context = _context(
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
        request, "transactions.html", context, status=400 if log_query.errors else 200
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
    access = await _access(request)
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
    store = request.app[STORE]
    while True:
        rows, before = await store.read(
            lambda conn, b=before: queries.ledger_page(  # type: ignore[misc]
                conn, access.channel_id, log_query.filters, before_id=b, limit=2000
            )
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


# ---- redemption queue and votes -------------------------------------------------------


def _has_action(request: web.Request, channel: str, action: str) -> bool:
    rewards = request.app[CONFIG].current.channels[channel].rewards
    return any(r.action == action for r in rewards)


async def queue(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/queue: redemptions waiting for approval, oldest first."""
    access = await _access(request)
    hooks = request.app[HOOKS]
    items = await hooks.list_queue(access.channel) if hooks is not None else None
    context = _context(
        access,
        "queue",
        items=items,
        configured=_has_action(request, access.channel, "queue"),
    )
    return await render(request, "queue.html", context)


async def decide(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/{channel}/queue/{redemption_id}/{approve|reject}."""
    access = await _access(request)
    decision = request.match_info["decision"]
    redemption_id = request.match_info["redemption_id"]
    hooks = request.app[HOOKS]
    if hooks is None or decision not in ("approve", "reject"):
        raise PageError(404, "The redemption queue is not available here.")
    if not _REDEMPTION_ID.fullmatch(redemption_id):
        raise PageError(404, "There is no such redemption.")
    session = await get_session(request)
    try:
        if decision == "approve":
            await hooks.approve(access.channel, redemption_id, access.actor)
        else:
            await hooks.reject(access.channel, redemption_id, access.actor)
    except NotQueued as exc:
        flash(session, f"Someone already decided that one: it is {exc.status} now.", "info")
    except UnknownRedemption:
        flash(session, "There is no such redemption in this channel.", "error")
    except LoyaltyError as exc:
        flash(session, f"Could not {decision} it: {exc}", "error")
    else:
        log.info(
            "redemption_decided",
            channel=access.channel,
            by=access.user.login,
            redemption_id=redemption_id,
            decision=decision,
        )
        flash(
            session,
            "Approved." if decision == "approve" else "Rejected; the points go back to the viewer.",
        )
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/queue")


async def votes(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/{channel}/votes: the tally of each vote reward."""
    access = await _access(request)
    hooks = request.app[HOOKS]
    polls = None
    if hooks is not None:
        polls = []
        for poll in await hooks.tally(access.channel):
            total = sum(count for _, count in poll.options)
            polls.append(
                {
                    "title": poll.title,
                    "total": total,
                    "options": [
                        (option, count, round(100 * count / total) if total else 0)
                        for option, count in poll.options
                    ],
                }
            )
    context = _context(
        access, "votes", polls=polls, configured=_has_action(request, access.channel, "vote")
    )
    return await render(request, "votes.html", context)


async def votes_reset(request: web.Request) -> web.StreamResponse:
    """POST /dashboard/{channel}/votes/reset: clear every tally of the channel."""
    access = await _access(request)
    hooks = request.app[HOOKS]
    if hooks is None:
        raise PageError(404, "Votes are not available here.")
    removed = await hooks.reset_votes(access.channel)
    log.info("votes_reset", channel=access.channel, by=access.user.login, options=removed)
    flash(await get_session(request), "Votes reset: every tally starts from zero.")
    raise web.HTTPSeeOther(f"/dashboard/{access.channel}/votes")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/dashboard", channels, name="channels")
    r.add_get("/dashboard/{channel}", overview)
    r.add_get("/dashboard/{channel}/settings", settings_page)
    r.add_post("/dashboard/{channel}/settings", settings_save)
    r.add_get("/dashboard/{channel}/viewers", viewers_page)
    r.add_get("/dashboard/{channel}/viewers/{user_id}", viewer_page)
    r.add_post("/dashboard/{channel}/viewers/{user_id}/adjust", adjust_points)
    r.add_get("/dashboard/{channel}/leaderboard", leaderboard)
    r.add_get("/dashboard/{channel}/transactions", transactions)
    r.add_get("/dashboard/{channel}/transactions.csv", transactions_csv)
    r.add_get("/dashboard/{channel}/queue", queue)
    r.add_post("/dashboard/{channel}/queue/{redemption_id}/{decision}", decide)
    r.add_get("/dashboard/{channel}/votes", votes)
    r.add_post("/dashboard/{channel}/votes/reset", votes_reset)
