"""What every route shares: the gateway from the request, errors, bodies, auth checks."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivrbot.errors import request_error
from ivrbot.gateway.auth import RTC_SCOPES, AuthError, GrantError, Token, digest
from ivrbot.gateway.core import Gateway
from ivrbot.gateway.leg import SdpError
from ivrbot.gateway.ratelimit import RateLimited
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


def error_response(message_id: str, *variables: str, status: int | None = None) -> web.Response:
    code, body = request_error(message_id, *variables)
    return web.json_response(body, status=status or code)


def rate_limited_response(exc: RateLimited) -> web.Response:
    wait = exc.retry_after_s
    text = f"rate limit: too many {exc.bucket} requests from this address; retry in {wait} s"
    response = error_response("POL0001", text, status=429)
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.message_id, *exc.variables)
    except AuthError as exc:
        return error_response("POL0001", str(exc))
    except GrantError as exc:
        return error_response("POL0001", exc.description)
    except RateLimited as exc:
        return rate_limited_response(exc)
    except SdpError as exc:
        return error_response("SVC0002", f"sdp ({exc})")
    except CallStateError as exc:
        return error_response("SVC8501", exc.action)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_error_response(request, exc)
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response("SVC5000", "an internal error (logged by the gateway)")


def http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (unknown path or method, a resource that is gone) as JSON
    RequestError bodies: a historical client takes a plain-text 404 for an expired session."""
    text = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else request.path
    if exc.status == 404:
        response = error_response("SVC0404", text)
    elif exc.status == 405:
        response = error_response("SVC0405", request.method, request.path)
    elif exc.status >= 500:
        response = error_response("SVC5000", text, status=exc.status)
    else:
        response = error_response("SVC0001", text, status=exc.status)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in exc.headers:
            response.headers[header] = exc.headers[header]
    return response


def gw(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError("SVC0002", f"body (larger than {MAX_BODY} bytes)")
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError("SVC0002", f"body (not valid JSON: {exc})") from None
    except web.HTTPRequestEntityTooLarge:
        raise ApiError("SVC0002", f"body (larger than {MAX_BODY} bytes)") from None
    if not isinstance(body, dict):
        raise ApiError("SVC0002", "body (a JSON object is required)")
    return body


def limit(request: web.Request, bucket: str) -> None:
    """Take one request from this client's ``bucket`` (RateLimited -> 429 when empty)."""
    gw(request).limiter.take(bucket, request.remote or "-")


def bearer(request: web.Request, rtc: bool = True) -> tuple[str, Token]:
    """The caller's token digest and token: 401 POL0001 if missing, unknown, expired or
    revoked; with ``rtc`` (every /RTC/v1 route), 403 POL1009 unless it has a WEBRTC scope."""
    header = request.headers.get("Authorization", "")
    access = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = gw(request).tokens.check(access)
    if rtc and not token.has_scope(*RTC_SCOPES):
        raise ApiError("POL1009", f"WEBRTC (this token's scope is {token.scope})")
    return digest(access or ""), token


def own_session(request: web.Request) -> Session:
    """The session named in the path, if it belongs to the caller's token (else 404)."""
    token_digest, _ = bearer(request)
    session = gw(request).sessions.get(request.match_info["sid"])
    if session is not None and session.expires_at <= time.time():
        session = None  # expired: the expiry task ends its calls and removes it
    if session is None or session.token_digest != token_digest:
        raise ApiError("SVC8514", request.match_info["sid"])  # 404, like any unknown session
    return session


def own_call(request: web.Request) -> CallLeg:
    session = own_session(request)
    leg = session.legs.get(request.match_info["cid"])
    if leg is None:
        raise web.HTTPNotFound(text=f"no call {request.match_info['cid']} in this session")
    return leg
