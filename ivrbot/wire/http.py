"""What every route shares: the gateway from the request, errors, bodies, auth checks."""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from ivrbot.core.call_state import CallStateError
from ivrbot.core.endpoints import SdpError
from ivrbot.core.handle import CallHandle
from ivrbot.core.merge import NoSuchConference
from ivrbot.core.sessions import Session
from ivrbot.credentials import API_KEY_HEADER
from ivrbot.errors import request_error
from ivrbot.wire.access import basic_credentials, known_api_key
from ivrbot.wire.auth import RTC_SCOPES, AuthError, GrantError, Token, digest
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.ratelimit import RateLimited

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 256 * 1024
GATEWAY = web.AppKey("gateway", Gateway)
# set only on a request made in this process (ivrbot.wire.in_process: a bot attached inside
# the gateway); no header or anything else from the network can set it
IN_PROCESS = web.RequestKey("in_process", bool)
TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token


class ApiError(Exception):
    def __init__(self, message_id: str, *variables: str, status: int | None = None) -> None:
        super().__init__(message_id)
        self.message_id, self.variables, self.status = message_id, variables, status


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
        return error_response(exc.message_id, *exc.variables, status=exc.status)
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
    except NoSuchConference as exc:
        return error_response("SVC0404", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_error_response(request, exc)
    except (ConnectionError, RequestPayloadError) as exc:
        if isinstance(exc, RequestPayloadError) or _closed(request):
            return client_gone(request, exc)
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response("SVC5000", "an internal error (logged by the gateway)")
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response("SVC5000", "an internal error (logged by the gateway)")


def _closed(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def client_gone(request: web.Request, exc: BaseException) -> web.Response:
    """A client that went away (or broke its own body) mid-request: one info line."""
    why = " ".join(str(exc).split()) or type(exc).__name__
    if _closed(request):
        log.info("%s %s: the client went away (%s)", request.method, request.path, why)
        response = web.Response(status=400)
    else:  # the connection is up: a body the parser refused (bad chunked encoding ...)
        log.info("%s %s: unreadable body (%s)", request.method, request.path, why)
        response = error_response("SVC0002", "body (unreadable: check its length and encoding)")
    response.force_close()
    return response


@web.middleware
async def body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check what every route takes as text (``x-`` headers and path parts must be UTF-8:
    400 naming them) and read every request body before the route runs, within the body
    timeout and size limit: 408 / 413 RequestErrors (the connection is closed), an unknown
    charset 415, a client that goes away one info line."""
    for name, value in request.headers.items():
        if name.lower().startswith("x-") and not _utf8(value):
            raise ApiError("SVC0002", f"{name} (the header is not valid UTF-8)")
    for name, value in request.match_info.items():
        if not _utf8(value):
            raise ApiError("SVC0002", f"{name} (the path is not valid UTF-8)")
    if request.body_exists:
        charset = request.charset
        if charset is not None and not _known_charset(charset):
            raise ApiError("SVC0002", f"Content-Type (unknown charset {charset!r})", status=415)
        timeout = gw(request).settings.body_timeout_s
        try:
            async with asyncio.timeout(timeout):
                await request.read()
        except TimeoutError:
            log.info("%s %s: body not received within %s s", request.method, request.path, timeout)
            response = error_response(
                "SVC0002", f"body (not received within {timeout:g} s)", status=408
            )
            response.force_close()
            return response
        except web.HTTPRequestEntityTooLarge:
            response = error_response("SVC0002", f"body (larger than {MAX_BODY} bytes)", status=413)
            response.force_close()
            return response
    return await handler(request)


def _utf8(text: str) -> bool:
    """False for text holding surrogates: aiohttp's stand-ins for bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _known_charset(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


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


JSON_TYPES = ("application/json", "text/plain", "application/octet-stream", "")
MAX_DEPTH = 32  # nesting of objects and arrays in a request body


def _json_type(content_type: str) -> bool:
    return content_type in JSON_TYPES or content_type.endswith("+json")


def _json_problem(body: Any) -> str | None:
    """What is wrong with a parsed body beyond its syntax: too deep, or a string that is not
    valid Unicode (an unpaired surrogate such as "\\ud800"). Iterative: no recursion."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "a string is not valid Unicode (an unpaired surrogate escape)"
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; 400 SVC0002 naming what is wrong (415 for a body that is
    declared as something else, 413 for one over MAX_BODY bytes)."""
    if not request.body_exists:
        return {}
    content_type = request.content_type
    if not _json_type(content_type):
        raise ApiError(
            "SVC0002",
            f"Content-Type ({content_type} is not accepted: send a JSON object with "
            "Content-Type: application/json)",
            status=415,
        )
    raw = await request.read()  # body_middleware read it already, within the body timeout
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError("SVC0002", f"body (nested deeper than {MAX_DEPTH} levels)") from None
    except UnicodeDecodeError as exc:
        raise ApiError("SVC0002", f"body (not valid JSON: not UTF-8: {exc.reason})") from None
    except ValueError as exc:  # JSONDecodeError, huge integers, NaN / Infinity
        raise ApiError("SVC0002", f"body (not valid JSON: {exc})") from None
    problem = _json_problem(body)
    if problem is not None:
        raise ApiError("SVC0002", f"body ({problem})")
    if not isinstance(body, dict):
        raise ApiError("SVC0002", "body (a JSON object is required)")
    return body


def limit(request: web.Request, bucket: str) -> None:
    """Take one request from this client's ``bucket`` (RateLimited -> 429 when empty). The
    gateway's own in-process bots (ivrbot.wire.in_process) are not limited."""
    if request.get(IN_PROCESS, False):
        return
    gw(request).limiter.take(bucket, request.remote or "-")


def bearer(request: web.Request, rtc: bool = True) -> tuple[str, Token]:
    """The caller's token digest and token: 401 POL0001 if missing, unknown, expired or
    revoked; with ``rtc`` (every /RTC/v1 route), 403 POL1009 unless it has a WEBRTC scope."""
    header = request.headers.get("Authorization", "")
    access = header[7:].strip() if header.lower().startswith("bearer ") else None
    if access and not TOKEN68.fullmatch(access):
        raise AuthError("malformed bearer token: send 'Authorization: Bearer <access_token>'")
    token = gw(request).tokens.check(access)
    if rtc and not token.has_scope(*RTC_SCOPES):
        raise ApiError("POL1009", f"WEBRTC (this token's scope is {token.scope})")
    return digest(access or ""), token


def own_session(request: web.Request) -> Session:
    """The session named in the path, if it belongs to the caller's token (else 404)."""
    token_digest, _ = bearer(request)
    session = gw(request).sessions.get(request.match_info["sid"])
    if session is not None and session.expires_at <= gw(request).clock.time():
        session = None  # expired: the expiry task ends its calls and removes it
    if session is None or session.token_digest != token_digest:
        raise ApiError("SVC8514", request.match_info["sid"])  # 404, like any unknown session
    return session


def own_call(request: web.Request) -> CallHandle:
    """The call named in the path, of the caller's session (here, or on a media worker)."""
    session = own_session(request)
    leg = session.calls.get(request.match_info["cid"])
    if leg is None:
        raise web.HTTPNotFound(text=f"no call {request.match_info['cid']} in this session")
    return leg


OPERATOR_CREDENTIALS = (
    f"the operator's credentials: an {API_KEY_HEADER} header (one of IVRBOT_API_KEYS), HTTP "
    "Basic client_id:client_secret (IVRBOT_CLIENT_ID, IVRBOT_CLIENT_SECRET) or a bearer token "
    "issued to them"
)


async def check_operator(request: web.Request) -> None:
    """The request carries the operator's credentials (the integrators' and campaign APIs):
    an API key, the OAuth client's id and secret, or a token issued to them. AuthError (401)
    or ApiError (403) otherwise, one line naming what to send."""
    gateway = gw(request)
    key = request.headers.get(API_KEY_HEADER)
    if key is not None:
        if known_api_key(gateway.settings, key):
            return
        raise AuthError(f"unknown API key in {API_KEY_HEADER} (give one of IVRBOT_API_KEYS)")
    header = request.headers.get("Authorization", "")
    pair = basic_credentials(header)
    if pair is not None:
        client = await gateway.tokens.verify_client(*pair)  # GrantError: 401
        if client != gateway.settings.client_id:
            raise ApiError("POL0001", f"{request.path} needs {OPERATOR_CREDENTIALS}", status=403)
        return
    if not header.lower().startswith("bearer "):
        raise AuthError(f"{request.path} needs {OPERATOR_CREDENTIALS}")
    token = gateway.tokens.check(header[7:].strip())
    if not gateway.tokens.is_operator(token):
        raise ApiError(
            "POL0001",
            f"this token is not the operator's: {request.path} needs {OPERATOR_CREDENTIALS}",
            status=403,
        )
