"""``GET /sip/status``: registrations, trunks and active SIP calls as JSON (what
``ivrbot sip status`` prints). Answered to loopback clients only: it names the PBX and
trunk addresses."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from ivrbot.endpoints.sip.connector import SipConnector

STATUS_PATH = "/sip/status"


def add_routes(app: web.Application, connector: SipConnector) -> None:
    async def status(request: web.Request) -> web.Response:
        remote = request.remote or ""
        try:
            local = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            local = False
        if not local:
            raise web.HTTPForbidden(text="the SIP status is only given to this machine")
        return web.json_response(connector.status())

    app.router.add_get(STATUS_PATH, status)
