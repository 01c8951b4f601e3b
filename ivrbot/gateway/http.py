"""What every route shares: the gateway from the request, errors, bodies, auth checks."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivrbot.errors import request_error
from ivrbot.gateway.auth import AuthError, Token
from ivrbot.gateway.core import Gateway
from ivrbot.gateway.leg import SdpError
from ivrbot.gateway.sessions import Session
from ivrbot.gateway.switch import CallLeg, CallStateError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 256 * 1024
GATEWAY = web.AppKey("gateway", Gateway)


class ApiError(Exception):
    def __init__(self, message_id: str, *variables: str) -> None:
        super().__init__(message_id)
        self.message_id, self.variables = message_id, variables


def error_response(message_id: str, *variables: str) -> web.Response:
    status, body = request_error(message_id, *variables)
    return web.json_response(body, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.message_id, *exc.variables)
    except AuthError as exc:
        return error_response("POL0001", str(exc))
    except SdpError as exc:
        return error_response("SVC0002", f"sdp ({exc})")
    except CallStateError as exc:
        return error_response("SVC8501", exc.action)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response("SVC0001", "internal error (logged by the gateway)")


def gw(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError("SVC0002", f"body (larger than {MAX_BODY} bytes)")
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError("SVC0002", f"body (not valid JSON: {exc})") from None
    if not isinstance(body, dict):
        raise ApiError("SVC0002", "body (a JSON object is required)")
    return body


def bearer(request: web.Request) -> tuple[str, Token]:
    header = request.headers.get("Authorization", "")
    access = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = gw(request).tokens.check(access)
    return hashlib.sha256((access or "").encode()).hexdigest(), token


def own_session(request: web.Request) -> Session:
    """The session named in the path, if it belongs to the caller's token (else 404)."""
    digest, _ = bearer(request)
    session = gw(request).sessions.get(request.match_info["sid"])
    if session is None or session.token_digest != digest:
        raise ApiError("SVC8514", request.match_info["sid"])  # 404, like any unknown session
    return session


def own_call(request: web.Request) -> CallLeg:
    session = own_session(request)
    leg = session.legs.get(request.match_info["cid"])
    if leg is None:
        raise web.HTTPNotFound(text=f"no call {request.match_info['cid']} in this session")
    return leg
