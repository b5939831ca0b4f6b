"""JSON responses and Twitch's error bodies, shared by the Helix and OAuth faces."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web
from multidict import MultiMapping


class HelixError(Exception):
    """Rendered as Helix does: ``{"error": <reason>, "status": <code>, "message": <text>}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def helix_error_response(status: int, message: str) -> web.Response:
    return json_response({"error": reason(status), "status": status, "message": message}, status)


def int_param(query: MultiMapping[str], name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter, or a 400 naming it.

    Given twice, the last one counts: twitchio's paginator prepends its own ``first=100``
    to a route's ``first``.
    """
    values = query.getall(name, [])
    raw = values[-1] if values else ""
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise HelixError(
            400, f'The parameter "{name}" was malformed: the value must be between {low} and {high}'
        )
    return value


def require(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise HelixError(400, f'Missing required parameter "{name}"')
    return value
