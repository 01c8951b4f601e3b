"""App-server routes: public configuration, tokens, user ids (and the OAuth and E911 routes).

``/tokens`` is the developer-hosted app server of docs/spec/rtc-api.md; it uses the gateway's own
OAuth provider (``ivrbot.wire.oauth``) with the configured client, in process:

- ``POST /tokens {app_scope, auth_code?}`` -> ``{access_token, refresh_token, expires_in,
  refresh_token_expires_in, token_type, scope}``. MOBILE_NUMBER needs ``auth_code`` (from the
  consent page) -> authorization_code grant; the others are client_credentials grants.
- ``POST /tokens {refresh_token}`` or ``PUT /tokens {refresh_token}`` -> a new pair; the old
  access and refresh tokens stop working, and sessions of the old token move to the new one.
- ``DELETE /tokens {token, token_type_hint?}`` -> 204; the pair the token belongs to is
  revoked (204 for an unknown token too, as RFC 7009 does).

Who may ask (``ivrbot.wire.access``): an app server with ``X-API-Key``, the operator with
HTTP Basic client credentials, or anyone in development mode; the auth code and the refresh
token are credentials of their own. Errors: wrong or missing fields 400 SVC0002/SVC0003
naming the field; no or wrong credentials, a bad auth code or refresh token 401 POL0001; too
many requests 429 (POL0001 body, Retry-After).

``PUT /RTC/v1/userIds/{userId}`` binds the token to a user id: VIRTUAL_NUMBER tokens to
``vtn:`` + 10 digits of the pool (a leading 1 is stripped), ACCOUNT_ID tokens to
``name@<domain>``; a MOBILE_NUMBER token is already bound to its number (PUTting that number
is a no-op). Malformed ids 400 SVC0003; well-formed ids that are not this gateway's (not in the
pool, another domain, another mobile number) 404 SVC8514; E911-only tokens 403 POL1009; an id
reserved for the bots, or held by another client's token, 403 POL1009.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiohttp import web

from ivrbot import __version__
from ivrbot.credentials import API_KEY_HEADER
from ivrbot.wire import e911, oauth
from ivrbot.wire.auth import SCOPES, AppScope, Issued, mobile_user_id
from ivrbot.wire.http import ApiError, bearer, gw, json_body, limit

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
TOKEN_HINTS = ("access_token", "refresh_token")


async def get_config(request: web.Request) -> web.Response:
    s = gw(request).settings
    access: dict[str, bool | str] = {"development_mode": s.development}
    if s.development:
        access["warning"] = (
            "development mode: tokens are issued to anyone without credentials and mobile "
            "codes are shown on the page; not for public use"
        )
    return web.json_response(
        {
            **access,
            "api_endpoint": s.base_url,
            "ewebrtc_uri": s.rtc_uri,
            "virtual_numbers_pool": gw(request).virtual_numbers,
            "ewebrtc_domain": s.domain,
            "app_tokens_url": "/tokens",
            "app_e911ids_url": "/e911ids",
            "authorize_uri": "/oauth/v4/authorize",
            "info": {
                "name": "ivrbot",
                "version": __version__,
                "tokens": "/tokens",
                "e911ids": "/e911ids",
                "rtc": s.rtc_uri,
                "oauth_token": "/oauth/v4/token",
                "scope_map": {k.value: v[1] for k, v in SCOPES.items()},
            },
        }
    )


def _tokens_response(request: web.Request, issued: Issued) -> web.Response:
    return web.json_response(issued.to_json(), headers=oauth.NO_STORE)


async def _refresh(request: web.Request, refresh_token: object) -> web.Response:
    if not isinstance(refresh_token, str) or not refresh_token:
        raise ApiError("SVC0002", "refresh_token (a non-empty string)")
    gateway = gw(request)
    issued = await gateway.tokens.refresh(refresh_token)  # the refresh token is the credential
    oauth.rebind_sessions(gateway, issued)
    return _tokens_response(request, issued)


async def post_tokens(request: web.Request) -> web.Response:
    limit(request, "token")
    body = await json_body(request)
    if "refresh_token" in body:
        return await _refresh(request, body["refresh_token"])
    raw = body.get("app_scope")
    try:
        scope = AppScope(raw) if isinstance(raw, str) else None
    except ValueError:
        scope = None
    if scope is None:
        raise ApiError("SVC0003", "app_scope", ", ".join(s.value for s in AppScope))
    gateway = gw(request)
    s = gateway.settings
    if scope is AppScope.MOBILE_NUMBER:  # the code (a verified number) is the credential
        code = body.get("auth_code")
        if not isinstance(code, str) or not code:
            raise ApiError(
                "SVC0002",
                "auth_code (MOBILE_NUMBER tokens need the code from the consent page at "
                "/oauth/v4/authorize)",
            )
        issued = await gateway.tokens.grant_authorization_code(s.client_id, code)
    else:
        client = await gateway.access.client_for(
            request.headers.get(API_KEY_HEADER), request.headers.get("Authorization", "")
        )
        issued = await gateway.tokens.grant_client_credentials(client, scope)
    return _tokens_response(request, issued)


async def put_tokens(request: web.Request) -> web.Response:
    limit(request, "token")
    body = await json_body(request)
    return await _refresh(request, body.get("refresh_token"))


async def delete_tokens(request: web.Request) -> web.Response:
    body = await json_body(request)
    token, hint = body.get("token"), body.get("token_type_hint")
    if not isinstance(token, str) or not token:
        raise ApiError("SVC0002", "token (the access or refresh token to revoke)")
    if hint is not None and hint not in TOKEN_HINTS:
        raise ApiError("SVC0003", "token_type_hint", ", ".join(TOKEN_HINTS))
    await gw(request).tokens.revoke(token)
    return web.Response(status=204)


def _virtual_number(user_id: str, pool: Sequence[str]) -> str:
    digits = user_id[4:] if user_id.startswith("vtn:") else ""
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10 or not digits.isdigit():
        raise ApiError("SVC0003", "userId", "vtn:<10 digits from the virtual number pool>")
    normalised = {n[1:] if len(n) == 11 and n.startswith("1") else n for n in pool}
    if digits not in normalised:
        raise ApiError("SVC8514", f"{user_id} (not in this gateway's virtual number pool)")
    return f"vtn:{digits}"


def _account_id(user_id: str, domain: str) -> str:
    name, at, rest = user_id.partition("@")
    if not at or not ACCOUNT_NAME.fullmatch(name) or not rest or "@" in rest:
        raise ApiError("SVC0003", "userId", f"<name>@{domain}")
    if rest.lower() != domain.lower():
        raise ApiError("SVC8514", f"{user_id} (account ids here are <name>@{domain})")
    return f"{name}@{domain}"


async def put_user_id(request: web.Request) -> web.Response:
    _, token = bearer(request)
    user_id = request.match_info["user_id"]
    gateway = gw(request)
    s = gateway.settings
    if token.app_scope is AppScope.MOBILE_NUMBER:
        try:
            same = mobile_user_id(user_id) == token.user_id
        except ValueError:
            same = False
        if not same:
            raise ApiError("SVC8514", f"{user_id} (this token is bound to its mobile number)")
        return web.Response(status=204)
    if token.app_scope is AppScope.VIRTUAL_NUMBER:
        uid, kind = _virtual_number(user_id, gateway.virtual_numbers), "virtual"
    elif token.app_scope is AppScope.ACCOUNT_ID:
        uid, kind = _account_id(user_id, s.domain), "account"
    else:
        raise ApiError("POL1009", "user id association")
    refusal = gateway.access.refusal(token, uid)
    if refusal is not None:
        raise ApiError("POL1009", refusal)
    await gateway.store.add_identity(uid, kind)
    await gateway.tokens.associate(token, uid)
    return web.Response(status=204)


def add_routes(app: web.Application, rtc: str) -> None:
    app.router.add_get("/config", get_config)
    app.router.add_post("/tokens", post_tokens)
    app.router.add_put("/tokens", put_tokens)
    app.router.add_delete("/tokens", delete_tokens)
    app.router.add_put(rtc + "/userIds/{user_id}", put_user_id)
    e911.add_routes(app)
    oauth.add_routes(app)
