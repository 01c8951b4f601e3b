"""App-server routes: public configuration, tokens, user ids."""

from __future__ import annotations

from aiohttp import web

from ivrbot import __version__
from ivrbot.gateway.auth import SCOPES, AppScope
from ivrbot.gateway.http import ApiError, bearer, gw, json_body


async def get_config(request: web.Request) -> web.Response:
    s = gw(request).settings
    return web.json_response(
        {
            "api_endpoint": s.base_url,
            "ewebrtc_uri": s.rtc_uri,
            "virtual_numbers_pool": s.virtual_numbers,
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
                "scope_map": {k.value: v[1] for k, v in SCOPES.items()},
            },
        }
    )


async def post_tokens(request: web.Request) -> web.Response:
    body = await json_body(request)
    raw = body.get("app_scope")
    try:
        scope = AppScope(str(raw))
    except ValueError:
        valid = ", ".join(s.value for s in AppScope)
        raise ApiError("SVC0003", "app_scope", valid) from None
    access, token = gw(request).tokens.issue(scope)
    return web.json_response(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": gw(request).settings.token_ttl_s,
            "scope": token.scope,
        }
    )


async def put_user_id(request: web.Request) -> web.Response:
    _, token = bearer(request)
    user_id = request.match_info["user_id"]
    s = gw(request).settings
    if token.app_scope is AppScope.VIRTUAL_NUMBER:
        if not user_id.startswith("vtn:") or user_id[4:] not in s.virtual_numbers:
            raise ApiError("SVC0003", "userId", f"vtn:<number from the pool of {s.domain}>")
    elif token.app_scope is AppScope.ACCOUNT_ID:
        name, _, domain = user_id.partition("@")
        if not name or domain != s.domain or "@" in domain:
            raise ApiError("SVC0003", "userId", f"<name>@{s.domain}")
    else:
        raise ApiError("POL1009", "user id association")
    token.user_id = user_id
    return web.Response(status=204)


def add_routes(app: web.Application, rtc: str) -> None:
    app.router.add_get("/config", get_config)
    app.router.add_post("/tokens", post_tokens)
    app.router.add_put(rtc + "/userIds/{user_id}", put_user_id)
