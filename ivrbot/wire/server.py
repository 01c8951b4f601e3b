"""Running the gateway app on a host and port (port 0 picks a free one)."""

from __future__ import annotations

import errno
import socket
from dataclasses import replace

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


def _free_port_socket(host: str) -> socket.socket:
    """A socket listening on a free port of ``host`` (ConfigError naming the setting)."""
    try:
        family = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, 0), family=family)
    except OSError as exc:
        raise listen_error(exc, host, 0) from None


class GatewayServer:
    """The gateway app on ``settings.host`` and ``settings.port``. Port 0 takes a free port
    at once: ``self.settings`` names it (settings never change once the gateway is made)."""

    def __init__(self, settings: Settings | None = None, clock: Clock = REAL_CLOCK) -> None:
        settings = settings or Settings()
        self._socket: socket.socket | None = None  # the free port's, until the site has it
        if settings.port == 0:
            self._socket = _free_port_socket(settings.host)
            settings = replace(settings, port=self._socket.getsockname()[1])
        self.settings = settings
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
            self._close_socket()
            raise
        site: web.BaseSite
        if self._socket is not None:
            site = web.SockSite(self._runner, self._socket)
        else:
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise listen_error(exc, self.settings.host, self.settings.port) from None
        return self.url

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._close_socket()
