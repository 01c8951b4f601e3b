"""The gateway's aiohttp application: the wire API of docs/spec/rtc-api.md."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ivrbot import web as web_pages
from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.config import Settings
from ivrbot.integrations import routes as integrations
from ivrbot.wire import (
    health,
    openapi,
    routes_auth,
    routes_calls,
    routes_conferences,
    routes_sessions,
)
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.http import GATEWAY, MAX_BODY, body_middleware, errors_middleware

log = logging.getLogger(__name__)


def make_app(settings: Settings | None = None, clock: Clock = REAL_CLOCK) -> web.Application:
    gateway = Gateway(settings or Settings(), clock)
    app = web.Application(
        middlewares=[errors_middleware, body_middleware], client_max_size=MAX_BODY
    )
    app[GATEWAY] = gateway
    rtc = gateway.settings.rtc_uri
    for routes in (routes_auth, routes_sessions, routes_calls, routes_conferences, openapi):
        routes.add_routes(app, rtc)
    health.add_routes(app, rtc)  # /health, /metrics
    integrations.add_routes(app)  # /ivrbot/calls, /ivrbot/webhooks (served by compose's bots)
    web_pages.add_routes(app)  # the softphone page and the browser Phone SDK

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        """Start-up (settings checked, tokens revoked, session expiry started) and, after
        the server has stopped, the store closed last."""
        for warning in gateway.settings.check_access():  # ConfigError: it does not start
            log.warning("%s", warning)
        await gateway.start()
        yield
        await gateway.close()

    async def end_calls(app: web.Application) -> None:
        await gateway.end_calls()  # before aiohttp waits for open connections (WebSockets)

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(end_calls)
    return app
