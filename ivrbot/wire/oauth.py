"""The gateway as its own OAuth 2 provider: token endpoint, consent page, revocation.

- ``POST /oauth/v4/token`` (form-encoded; client_id/client_secret in the body or HTTP Basic):
  ``grant_type=client_credentials&scope=WEBRTC,EMERGENCYSERVICES`` (the scope string of an app
  scope, or the app scope's name), ``grant_type=authorization_code&code=..[&redirect_uri=..]``
  (a MOBILE_NUMBER token whose user id is the number bound on the consent page),
  ``grant_type=refresh_token&refresh_token=..`` (a new pair; the old pair stops working).
  Errors follow RFC 6749 section 5.2: ``{error, error_description}``, 400 (401 for a bad
  client).
- ``GET /oauth/v4/authorize?client_id&redirect_uri&scope&state[&response_type=code]``: a
  consent page asking for the mobile number. ``client_id`` defaults to the app server's own
  client. ``redirect_uri`` must match ``IVRBOT_REDIRECT_URIS`` (default: any port and path on
  http://127.0.0.1 and http://localhost); a bad client or redirect URI gets an error page,
  never a redirect. ``POST`` (the form: ``mobile_number``, or ``msisdn``, with the parameters
  above and ``decision=allow|deny``) sends a verification code to the number (see
  ``ivrbot.wire.verify``: the operator's verifier; in development mode the code is shown on
  the page) and asks for it; posting the right code (``verification``, ``otp``) binds the
  number to a one-time authorization code (valid ``IVRBOT_AUTH_CODE_TTL`` s) and redirects to
  ``redirect_uri?code=..&state=..``; "deny" redirects with ``error=access_denied``. Without
  a configured verifier (outside development mode) no number can be bound.
- ``POST /oauth/v4/revoke`` (RFC 7009): ``token[&token_type_hint]`` with client
  authentication; revokes the pair the token belongs to; 200 even for an unknown token.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from aiohttp import web
from yarl import URL

from ivrbot.wire.auth import SCOPES, AppScope, GrantError, Issued, app_scope_for, mobile_user_id
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.http import gw, limit
from ivrbot.wire.verify import VerifyError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MOBILE_SCOPE = SCOPES[AppScope.MOBILE_NUMBER][1]


def oauth_error(error: str, description: str, status: int | None = None) -> web.Response:
    status = status or (401 if error == "invalid_client" else 400)
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="ivrbot"'
    return web.json_response(
        {"error": error, "error_description": description}, status=status, headers=headers
    )


def rebind_sessions(gateway: Gateway, issued: Issued) -> None:
    """After a refresh, the sessions of the old access token belong to the new one."""
    if issued.replaces:
        for session in gateway.sessions:
            if session.token_digest == issued.replaces:
                session.token_digest = issued.token.access_digest


async def _form(request: web.Request) -> dict[str, str]:
    try:
        data = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise GrantError("invalid_request", "request body too large") from None
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. multipart without a boundary
        raise GrantError("invalid_request", f"unreadable form body: {exc}") from None
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _client_credentials(request: web.Request, form: dict[str, str]) -> tuple[str, str]:
    """From HTTP Basic (RFC 6749 section 2.3.1: form-encoded id and secret) or the body."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise GrantError("invalid_client", "malformed HTTP Basic credentials") from None
        login, sep, password = decoded.partition(":")
        if not sep:
            raise GrantError("invalid_client", "malformed HTTP Basic credentials")
        return unquote_plus(login), unquote_plus(password)
    return form.get("client_id", ""), form.get("client_secret", "")


async def post_token(request: web.Request) -> web.Response:
    limit(request, "oauth")
    gateway = gw(request)
    tokens = gateway.tokens
    try:
        form = await _form(request)
        client_id = await tokens.verify_client(*_client_credentials(request, form))
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            try:
                app_scope = app_scope_for(form.get("scope", ""))
            except ValueError as exc:
                raise GrantError("invalid_scope", str(exc)) from None
            issued = await tokens.grant_client_credentials(client_id, app_scope)
        elif grant == "authorization_code":
            if not form.get("code"):
                raise GrantError("invalid_request", "code is required")
            issued = await tokens.grant_authorization_code(
                client_id, form["code"], form.get("redirect_uri")
            )
        elif grant == "refresh_token":
            if not form.get("refresh_token"):
                raise GrantError("invalid_request", "refresh_token is required")
            issued = await tokens.refresh(form["refresh_token"], client_id)
            rebind_sessions(gateway, issued)
        else:
            raise GrantError(
                "unsupported_grant_type",
                "grant_type is one of client_credentials, authorization_code, refresh_token",
            )
    except GrantError as exc:
        return oauth_error(exc.error, exc.description)
    return web.json_response(issued.to_json(), headers=NO_STORE)


async def post_revoke(request: web.Request) -> web.Response:
    limit(request, "oauth")
    tokens = gw(request).tokens
    try:
        form = await _form(request)
        client_id = await tokens.verify_client(*_client_credentials(request, form))
        if not form.get("token"):
            raise GrantError("invalid_request", "token is required")
    except GrantError as exc:
        return oauth_error(exc.error, exc.description)
    await tokens.revoke(form["token"], client_id)
    return web.Response(status=200, headers=NO_STORE)


# consent page ----------------------------------------------------------------------------
def redirect_allowed(uri: str, allowed: Sequence[str]) -> bool:
    """Whether ``uri`` is under one of the allowed bases (same scheme and host; the base's
    port and path, if it has them)."""
    try:
        u = urlsplit(uri)
        port = u.port
    except ValueError:
        return False
    if u.scheme not in ("http", "https") or not u.hostname or u.fragment or u.username:
        return False
    for base in allowed:
        try:
            b = urlsplit(base)
            base_port = b.port
        except ValueError:
            continue
        if (b.scheme, b.hostname) != (u.scheme, u.hostname):
            continue
        if base_port is not None and base_port != port:
            continue
        prefix = b.path.rstrip("/")
        if prefix and u.path != prefix and not u.path.startswith(prefix + "/"):
            continue
        return True
    return False


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ivrbot: allow calling</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;max-width:28em;margin:3em auto;padding:0 1em}}
label,input,button{{display:block;margin:.5em 0}}input{{font-size:1.2em;padding:.3em}}
.error{{color:#b00}}button{{font-size:1em;padding:.4em 1em;display:inline-block}}</style>
</head><body>
<h1>Allow calling with your number</h1>
<p>The application <b>{client}</b> asks to place and receive calls as your mobile number
(scope {scope}).</p>
{error}
<form method="post" action="/oauth/v4/authorize">
<input type="hidden" name="client_id" value="{client}">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="scope" value="{scope}">
<input type="hidden" name="state" value="{state}">
<label for="mobile_number">Mobile number</label>
<input id="mobile_number" name="mobile_number" type="tel" autocomplete="tel"
 placeholder="425 555 0100" value="{number}" required>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form></body></html>
"""
PAGE_HEADERS = {
    **NO_STORE,
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _page(params: dict[str, str], error: str = "", status: int = 200) -> web.Response:
    return _html(PAGE, params, error, status)


def _html(page: str, params: dict[str, str], error: str, status: int, **extra: str) -> web.Response:
    """A consent page: ``page`` filled with the escaped consent fields, ``error`` and
    ``extra`` (already escaped)."""
    esc = {k: html.escape(params.get(k, ""), quote=True) for k in PAGE_FIELDS}
    body = page.format(
        client=esc["client_id"],
        redirect_uri=esc["redirect_uri"],
        scope=esc["scope"],
        state=esc["state"],
        number=esc["mobile_number"],
        error=f'<p class="error">{html.escape(error)}</p>' if error else "",
        **extra,
    )
    return web.Response(text=body, status=status, content_type="text/html", headers=PAGE_HEADERS)


CODE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ivrbot: confirm your number</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;max-width:28em;margin:3em auto;padding:0 1em}}
label,input,button{{display:block;margin:.5em 0}}input{{font-size:1.2em;padding:.3em}}
.error{{color:#b00}}.dev{{background:#fec;padding:.5em}}</style>
</head><body>
<h1>Confirm your number</h1>
<p>We sent a code to <b>{number}</b>. Enter it to allow <b>{client}</b> to call as this
number.</p>
{dev}{error}
<form method="post" action="/oauth/v4/authorize">
<input type="hidden" name="client_id" value="{client}">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="scope" value="{scope}">
<input type="hidden" name="state" value="{state}">
<input type="hidden" name="mobile_number" value="{number}">
<input type="hidden" name="verification" value="{verification}">
<label for="otp">Code</label>
<input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit" name="decision" value="allow">Confirm</button>
</form></body></html>
"""
DEV_CODE = (
    '<p class="dev">Development mode: nothing was sent; the code is '
    '<b id="dev-code">{code}</b>. A public gateway sends it with its operator\'s verifier.</p>'
)


def _code_page(
    params: dict[str, str],
    verification: str,
    dev_code: str = "",
    error: str = "",
    status: int = 200,
) -> web.Response:
    return _html(
        CODE_PAGE, params, error, status,
        verification=html.escape(verification, quote=True),
        dev=DEV_CODE.format(code=html.escape(dev_code)) if dev_code else "",
    )  # fmt: skip


def _error_page(message: str) -> web.Response:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>ivrbot: authorization error</title></head><body><h1>Cannot authorize</h1>"
        f"<p>{html.escape(message)}</p></body></html>"
    )
    return web.Response(text=body, status=400, content_type="text/html", headers=PAGE_HEADERS)


PAGE_FIELDS = ("client_id", "redirect_uri", "scope", "state", "mobile_number")


async def _consent_params(request: web.Request, raw: Any) -> dict[str, str] | web.Response:
    """The checked request parameters, or an error page (never a redirect) if they are bad."""
    gateway = gw(request)
    names = (*PAGE_FIELDS, "response_type", "decision", "verification", "otp")
    params = {k: raw.get(k, "") for k in names}
    params = {k: v if isinstance(v, str) else "" for k, v in params.items()}
    if not params["mobile_number"] and isinstance(raw.get("msisdn"), str):
        params["mobile_number"] = raw["msisdn"]  # the name the carrier's form used
    params["client_id"] = params["client_id"] or gateway.settings.client_id
    params["scope"] = params["scope"] or MOBILE_SCOPE
    client = params["client_id"]
    if client != gateway.settings.client_id and not await gateway.store.client_secret_hash(client):
        return _error_page(f"unknown client_id {client!r}")
    if not params["redirect_uri"]:
        return _error_page("redirect_uri is required")
    if not redirect_allowed(params["redirect_uri"], gateway.settings.redirect_uris):
        allowed = ", ".join(gateway.settings.redirect_uris)
        return _error_page(
            f"redirect_uri {params['redirect_uri']!r} is not allowed (allowed: {allowed}; "
            "set IVRBOT_REDIRECT_URIS)"
        )
    if params["response_type"] not in ("", "code"):
        return _error_page("response_type must be 'code'")
    try:
        scope = app_scope_for(params["scope"])
    except ValueError as exc:
        return _error_page(str(exc))
    if scope is not AppScope.MOBILE_NUMBER:
        return _error_page(f"the consent page is for mobile numbers (scope {MOBILE_SCOPE})")
    return params


def _redirect(params: dict[str, str], **query: str) -> web.Response:
    if params["state"]:
        query["state"] = params["state"]
    location = URL(params["redirect_uri"]).update_query(query)
    return web.Response(status=302, headers={"Location": str(location), **NO_STORE})


async def get_authorize(request: web.Request) -> web.Response:
    params = await _consent_params(request, request.query)
    if isinstance(params, web.Response):
        return params
    return _page(params)


async def post_authorize(request: web.Request) -> web.Response:
    limit(request, "oauth")
    try:
        form = await _form(request)
    except GrantError as exc:
        return _error_page(exc.description)
    params = await _consent_params(request, form)
    if isinstance(params, web.Response):
        return params
    if params["decision"] == "deny":
        return _redirect(params, error="access_denied")
    try:
        number = mobile_user_id(params["mobile_number"])
    except ValueError as exc:
        return _page(params, str(exc), status=400)
    gateway = gw(request)
    verifications = gateway.verifications
    consent = (params["client_id"], params["redirect_uri"], params["scope"])
    if not params["verification"]:  # first step: send a code to the number
        try:
            vid, otp = await verifications.start(number, consent)
        except VerifyError as exc:
            return _page(params, str(exc), status=400)
        shown = otp if getattr(verifications.verifier, "shows_code", False) else ""
        return _code_page(params, vid, dev_code=shown)
    try:  # second step: the code that was sent proves the number
        number = verifications.confirm(params["verification"], params["otp"], consent)
    except VerifyError as exc:
        if verifications.is_pending(params["verification"]):  # a wrong code: try again
            return _code_page(params, params["verification"], error=str(exc), status=400)
        return _page(params, str(exc), status=400)  # gone: ask for a new code
    code = await gateway.tokens.new_auth_code(
        params["client_id"], number, params["redirect_uri"], params["scope"]
    )
    return _redirect(params, code=code)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/oauth/v4/token", post_token)
    app.router.add_get("/oauth/v4/authorize", get_authorize)
    app.router.add_post("/oauth/v4/authorize", post_authorize)
    app.router.add_post("/oauth/v4/revoke", post_revoke)
