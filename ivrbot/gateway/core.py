"""The gateway's state: settings, tokens, sessions and the call switch."""

from __future__ import annotations

from aiohttp import web

from ivrbot.config import Settings
from ivrbot.gateway.auth import TokenService
from ivrbot.gateway.sessions import SessionRegistry
from ivrbot.gateway.switch import Switch


class Gateway:
    """Everything the routes share: settings, tokens, sessions, the call switch."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenService(settings.token_ttl_s)
        self.sessions = SessionRegistry(settings.session_ttl_s)
        self.switch = Switch(self.sessions)
        self.websockets: set[web.WebSocketResponse] = set()

    async def close(self) -> None:
        await self.switch.close()
        for session in self.sessions:
            self.sessions.remove(session.id)
        for ws in list(self.websockets):
            await ws.close()
