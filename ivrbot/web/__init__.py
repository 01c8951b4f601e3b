"""The gateway's web pages: the dashboard, the softphone and the browser Phone SDK
(``static/phone.js``).

:func:`add_routes` serves

- ``/`` and ``/dashboard``: the operator's dashboard and its API (:mod:`ivrbot.web.dashboard`);

- ``/softphone``: the softphone page (log in, dial, keypad, answer, hold, mute, calls);
- ``/static/...``: its files, among them ``/static/phone.js``, the JavaScript twin of
  :class:`ivrbot.phone.phone.Phone` (an ES module, no build step).

Browsers cannot set an ``Authorization`` header on a WebSocket, so the event channel's
WebSocket also accepts the bearer token as the ``access_token`` query parameter (RFC 6750,
section 2.3); :func:`websocket_token` turns it into the header the gateway checks.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from ivrbot.web import dashboard
from ivrbot.web.dashboard import PATHS as DASHBOARD_PATHS

STATIC_DIR = Path(__file__).parent / "static"
SOFTPHONE_PATH = "/softphone"
STATIC_PREFIX = "/static"
# the page routes (not API routes: the OpenAPI document leaves them out)
WEB_PATHS = frozenset({SOFTPHONE_PATH, *DASHBOARD_PATHS})
_WEBSOCKET_PATH = re.compile(r"/sessions/[^/]+/websockets/[^/]+$")


async def softphone(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "softphone.html", headers={"Cache-Control": "no-cache"})


@web.middleware
async def websocket_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``?access_token=`` on the event channel's WebSocket upgrade -> ``Authorization``."""
    token = request.query.get("access_token")
    if (
        token
        and "Authorization" not in request.headers
        and request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and _WEBSOCKET_PATH.search(request.path)
    ):
        headers = request.headers.copy()
        headers["Authorization"] = f"Bearer {token}"
        request = request.clone(headers=headers)
    return await handler(request)


def add_routes(app: web.Application) -> None:
    """Serve the softphone at ``/softphone``, its files under ``/static/``, the dashboard."""
    app.middlewares.append(websocket_token)
    app.router.add_get(SOFTPHONE_PATH, softphone)
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, append_version=False)
    dashboard.add_routes(app)
