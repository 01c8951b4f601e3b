"""Session life: refresh before expiry, expiry, gateway loss and return."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivrbot.config import Settings
from ivrbot.errors import PhoneException
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.wire.server import GatewayServer


async def logged_in(url: str, events: list[str]) -> Phone:
    phone = Phone(url)
    for name in ("session:ready", "session:expired", "gateway:unreachable", "connectivity:on",
                 "connectivity:off", "session:disconnected"):  # fmt: skip
        phone.on(name, lambda _p, n=name: events.append(n))
    await phone.login(token=await fetch_token(url), user_id="pat@ivrbot.local")
    return phone


class Link:
    """A TCP proxy between the Phone and the gateway that the test can cut and restore."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.contract
async def test_gateway_loss_and_return_are_reported(gateway: GatewayServer) -> None:
    link = Link(gateway.settings.port)
    await link.up()
    events: list[str] = []
    phone = await logged_in(f"http://127.0.0.1:{link.port}", events)
    session_id = phone.session_id
    await link.down()
    async with asyncio.timeout(5):
        while "connectivity:off" not in events:
            await asyncio.sleep(0.05)
    assert events[:3] == ["session:ready", "connectivity:off", "gateway:unreachable"]
    with pytest.raises(PhoneException) as offline:  # methods refuse while offline
        await phone.dial("5550001000")
    assert offline.value.error.error_code == "0002"
    await asyncio.sleep(1.5)  # the Phone keeps retrying while the link is down
    await link.up()
    try:
        async with asyncio.timeout(5):
            while "connectivity:on" not in events:
                await asyncio.sleep(0.05)
        assert phone.session_id == session_id and phone.online
        assert "session:expired" not in events
    finally:
        await phone.close()


@pytest.mark.contract
async def test_session_that_vanishes_is_reported_as_expired(gateway: GatewayServer) -> None:
    events: list[str] = []
    phone = await logged_in(gateway.url, events)
    session = next(iter(gateway.gateway.sessions))
    await gateway.gateway.switch.end_session(session)
    gateway.gateway.sessions.remove(session.id)  # what expiry does on the gateway
    async with asyncio.timeout(5):
        while "session:expired" not in events:
            await asyncio.sleep(0.05)
    assert not phone.logged_in
    await phone.close()


@pytest.mark.e2e
async def test_refresh_keeps_a_short_session_alive() -> None:
    server = GatewayServer(Settings(port=0, session_ttl_s=2, db=":memory:"))
    url = await server.start()
    events: list[str] = []
    refreshes: list[Any] = []
    phone = await logged_in(url, events)
    real = phone.transport.request

    async def counting(method: str, path: str, *a: Any, **k: Any) -> Any:
        if method == "PUT" and path == phone.session_path:
            refreshes.append(path)
        return await real(method, path, *a, **k)

    phone.transport.request = counting  # type: ignore[method-assign]
    await asyncio.sleep(3.5)
    assert len(refreshes) >= 2 and phone.logged_in and "session:expired" not in events
    await phone.close()
    await server.stop()


@pytest.mark.contract
async def test_a_login_that_failed_while_the_gateway_was_down_can_be_tried_again(
    gateway: GatewayServer,
) -> None:
    link = Link(gateway.settings.port)
    await link.up()
    token = await fetch_token(gateway.url)
    await link.down()
    phone = Phone(f"http://127.0.0.1:{link.port}")
    with pytest.raises(PhoneException):
        await phone.login(token=token, user_id="pat@ivrbot.local")
    await link.up()
    try:
        await phone.login(token=token, user_id="pat@ivrbot.local")
        assert phone.logged_in
    finally:
        await phone.close()
        await link.down()


@pytest.mark.e2e
async def test_a_call_whose_events_come_before_the_dial_reply_still_connects(
    gateway: GatewayServer,
) -> None:
    """The gateway sends the early answer (ringback) on the event channel while the reply
    to the dial may still be on its way: the Phone keeps such events until it knows the
    call's id, instead of dropping them (the call would never connect)."""
    events: list[str] = []
    caller = await logged_in(gateway.url, events)
    callee = Phone(gateway.url, name="callee")
    await callee.login(token=await fetch_token(gateway.url), user_id="sam@ivrbot.local")
    callee.on("call:incoming", lambda _: asyncio.ensure_future(callee.answer()))
    seen: list[str] = []
    for name in ("call:ringback-provided", "call:connected"):
        caller.on(name, lambda _p, n=name: seen.append(n))
    real = caller.transport.request

    async def slow_reply(method: str, path: str, *a: Any, **k: Any) -> Any:
        response = await real(method, path, *a, **k)
        if method == "POST" and path.endswith("/calls"):
            await asyncio.sleep(0.5)  # the channel's events overtake the reply
        return response

    caller.transport.request = slow_reply  # type: ignore[method-assign]
    try:
        await caller.dial("sam@ivrbot.local")
        async with asyncio.timeout(10):
            while "call:connected" not in seen:
                await asyncio.sleep(0.05)
        assert seen == ["call:ringback-provided", "call:connected"]
    finally:
        await caller.close()
        await callee.close()


@pytest.mark.contract
async def test_after_an_outage_that_cost_the_session_the_phone_can_log_in_again(
    gateway: GatewayServer,
) -> None:
    link = Link(gateway.settings.port)
    await link.up()
    events: list[str] = []
    phone = await logged_in(f"http://127.0.0.1:{link.port}", events)
    token = phone.transport.token
    await link.down()
    try:
        async with asyncio.timeout(5):
            while "connectivity:off" not in events:
                await asyncio.sleep(0.05)
        session = next(iter(gateway.gateway.sessions))
        await gateway.gateway.switch.end_session(session)
        gateway.gateway.sessions.remove(session.id)  # expired while the link was down
        await link.up()
        async with asyncio.timeout(5):
            while "session:expired" not in events:
                await asyncio.sleep(0.05)
        assert not phone.logged_in
        await phone.login(token=token, user_id="pat@ivrbot.local")
        assert phone.logged_in and phone.online
    finally:
        await phone.close()
        await link.down()
