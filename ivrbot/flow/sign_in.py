"""How a bot's Phones reach the gateway and log in as the flow's number: in the gateway's
own process through its routes in memory (:class:`~ivrbot.phone.transport_local.
LocalTransport`: no socket, media as frames), elsewhere over HTTP and WebRTC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivrbot.credentials import Credentials
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import request_token
from ivrbot.phone.transport_local import LocalTransport

if TYPE_CHECKING:
    from ivrbot.wire.gateway import Gateway


class SignIn:
    """Makes a bot's Phones and logs them in with the operator's credentials (only its
    tokens may log in as a flow's reserved number)."""

    def __init__(
        self, gateway_url: str, credentials: Credentials, gateway: Gateway | None = None
    ) -> None:
        self.gateway_url = gateway_url
        self.credentials = credentials
        self.gateway = gateway  # the gateway of this process, when the bot runs inside it

    @property
    def in_process(self) -> bool:
        return self.gateway is not None

    def phone(self, name: str, hold_audio: str | None = None) -> Phone:
        """A new Phone (not logged in yet: subscribe to its events first)."""
        routes = self.gateway.in_process if self.gateway is not None else None
        if self.gateway is not None and routes is None:
            raise ValueError("this gateway serves no in-process clients (built by make_app?)")
        transport = LocalTransport(routes) if routes is not None else None
        return Phone(self.gateway_url, name=name, transport=transport, hold_audio=hold_audio)

    async def login(self, phone: Phone, user_id: str) -> None:
        token = await request_token(phone.transport, "VIRTUAL_NUMBER", self.credentials)
        await phone.login(token=token, user_id=user_id)
