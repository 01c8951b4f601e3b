"""Running the gateway app on a host and port (port 0 picks a free one)."""

from __future__ import annotations

from aiohttp import web

from ivrbot.config import ConfigError, Settings
from ivrbot.gateway.app import make_app
from ivrbot.gateway.core import Gateway
from ivrbot.gateway.http import GATEWAY
from ivrbot.gateway.protocol import GatewayRunner


class GatewayServer:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.app = make_app(self.settings)
        self._runner: web.AppRunner | None = None

    @property
    def gateway(self) -> Gateway:
        return self.app[GATEWAY]

    @property
    def url(self) -> str:
        return self.settings.base_url

    async def start(self) -> str:
        """Listen; ConfigError (one line naming the setting) if the access settings are
        unsafe (see Settings.check_access), before anything listens."""
        s = self.settings
        self._runner = GatewayRunner(
            self.app,
            header_timeout=s.header_timeout_s,
            keepalive_timeout=s.keepalive_timeout_s,
            access_log=s.access_log,
        )
        try:
            await self._runner.setup()
        except ConfigError:
            await self.gateway.store.close()
            self._runner = None
            raise
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        if self.settings.port == 0:
            self.settings.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
