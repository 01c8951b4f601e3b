"""Running the gateway app on a host and port (port 0 picks a free one)."""

from __future__ import annotations

import errno
import socket

from aiohttp import web

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.config import ConfigError, Settings
from ivrbot.wire.app import make_app
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.http import GATEWAY
from ivrbot.wire.protocol import GatewayRunner


def listen_error(exc: OSError, host: str, port: int) -> ConfigError:
    """Why the gateway cannot listen on ``host``:``port``, as one line naming the setting."""
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"port {port} on {host} is already in use (another ivrbot run?): stop that "
            "program, or choose another port with --port or IVRBOT_PORT"
        )
    if exc.errno == errno.EACCES:
        return ConfigError(
            f"port {port} needs administrator rights: choose one from 1024 up "
            "(--port or IVRBOT_PORT)"
        )
    if exc.errno in (errno.EADDRNOTAVAIL, socket.EAI_NONAME, socket.EAI_AGAIN):
        return ConfigError(f"cannot listen on {host}: not an address of this machine "
                           "(--host or IVRBOT_HOST)")  # fmt: skip
    return ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def check_listen(host: str, port: int) -> None:
    """ConfigError at once if the gateway could not listen on ``host``:``port`` (checked
    before anything slow is loaded; the port is free again when this returns)."""
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does
                sock.bind(address)
    except OSError as exc:
        raise listen_error(exc, host, port) from None


class GatewayServer:
    def __init__(self, settings: Settings | None = None, clock: Clock = REAL_CLOCK) -> None:
        self.settings = settings or Settings()
        self.app = make_app(self.settings, clock)
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
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise listen_error(exc, self.settings.host, self.settings.port) from None
        if self.settings.port == 0:
            self.settings.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
