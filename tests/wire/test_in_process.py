"""A client in the gateway's own process (a bot attached inside it) goes through the same
routes as one on the network, without a socket; only a request made in the process gets
in-process media, and nothing a remote client sends can claim it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ivrbot.credentials import Credentials
from ivrbot.endpoints.local.local_leg import LocalLeg
from ivrbot.endpoints.local.local_link import local_sdp
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import request_token
from ivrbot.phone.transport_local import LocalTransport
from ivrbot.wire.in_process import InProcessWire
from ivrbot.wire.server import GatewayServer
from tests.wire.wire import RTC, call, message_id, new_token, running

pytestmark = pytest.mark.contract

SESSION = {"session": {"mediaType": "dtls-srtp", "ice": "true", "services": ["ip_voice_call"]}}


@pytest.fixture
async def gwc(tmp_path: Path) -> AsyncIterator[tuple[GatewayServer, aiohttp.ClientSession]]:
    async with running(tmp_path / "gateway.db", rate_limit=0.001, rate_burst=2) as pair:
        yield pair


def routes(server: GatewayServer) -> InProcessWire:
    assert server.gateway.in_process is not None
    return server.gateway.in_process


async def test_a_remote_client_cannot_claim_in_process_media(
    gwc: tuple[GatewayServer, aiohttp.ClientSession],
) -> None:
    server, client = gwc
    access = (await new_token(client, "ACCOUNT_ID"))["access_token"]
    await call(client, "PUT", f"{RTC}/userIds/mallory@ivrbot.local", access)
    # what an in-process bot once sent (the old process-key header and SDP marker)
    status, _, headers = await call(
        client, "POST", f"{RTC}/sessions", access,
        headers={"x-ivrbot-local": "0" * 32}, json=SESSION,
    )  # fmt: skip
    assert status == 201
    session = server.gateway.sessions.get(headers["Location"].rsplit("/", 1)[-1])
    assert session is not None and not session.local
    sdp = local_sdp().replace("m=audio", f"a=x-ivrbot-local:{'0' * 32}\r\nm=audio")
    body = {"call": {"calledParty": "tel:+15550001000", "sdp": sdp}}
    status, body, _ = await call(client, "POST", f"{session.path}/calls", access, json=body)
    assert status == 400 and message_id(body) == "SVC0002"  # not WebRTC: refused, not local
    assert not any(isinstance(c.endpoint, LocalLeg) for c in session.calls.values())


async def test_an_in_process_client_runs_the_same_routes_without_a_socket(
    gwc: tuple[GatewayServer, aiohttp.ClientSession],
) -> None:
    server, _ = gwc
    wire = routes(server)
    status, _, body = await wire.request("POST", f"{RTC}/sessions", SESSION)
    assert status == 401 and message_id(body) == "POL0001"  # the routes' own checks
    status, _, body = await wire.request("POST", "/tokens", {"app_scope": 7})
    assert status == 400 and message_id(body) == "SVC0003"  # app_scope: not a valid value
    transport = LocalTransport(wire)
    token = await request_token(transport, "ACCOUNT_ID", Credentials.from_env())
    transport.token = token
    resp = await transport.request("PUT", f"{RTC}/userIds/bot@ivrbot.local")
    assert resp.status == 204
    for _ in range(4):  # past the rate limit's burst of 2: in-process clients are not limited
        resp = await transport.request("POST", f"{RTC}/sessions", SESSION)
        assert resp.status == 201, resp.body
    session = server.gateway.sessions.get(resp.headers["Location"].rsplit("/", 1)[-1])
    assert session is not None and session.local  # its calls' media: frames in process
    assert wire.endpoint_at(f"{session.path}/calls/nope", token) is None
    assert wire.session(session.path, "another token") is None


async def test_in_process_phones_call_each_other_with_the_gateway_s_links(
    gwc: tuple[GatewayServer, aiohttp.ClientSession],
) -> None:
    """Login, the event channel read from the session's EventChannel (no WebSocket), a call
    whose two ends get the gateway's own link objects, hang-up and logout."""
    server, _ = gwc
    wire = routes(server)
    phones = {name: Phone(server.url, name=name, transport=LocalTransport(wire))
              for name in ("ann", "bob")}  # fmt: skip
    seen: dict[str, list[str]] = {name: [] for name in phones}
    for name, phone in phones.items():
        for event in ("call:incoming", "call:connected", "call:disconnected"):
            phone.on(event, lambda _, name=name, event=event: seen[name].append(event))
        token = await request_token(phone.transport, "ACCOUNT_ID", Credentials.from_env())
        await phone.login(token=token, user_id=f"{name}@ivrbot.local")
    ann, bob = phones["ann"], phones["bob"]
    out = await ann.dial("bob@ivrbot.local")
    async with asyncio.timeout(5):
        while "call:incoming" not in seen["bob"]:
            await asyncio.sleep(0.01)
    inc = await bob.answer()
    async with asyncio.timeout(5):
        while not all("call:connected" in seen[n] for n in phones):
            await asyncio.sleep(0.01)
    assert not server.gateway.websockets  # no WebSocket was opened
    (call,) = server.gateway.switch.calls.values()
    assert call.caller is not None and call.callee is not None
    for phone_call, leg in ((out, call.caller.leg), (inc, call.callee.leg)):
        assert isinstance(leg, LocalLeg) and phone_call.media is not None
        assert getattr(phone_call.media, "link", None) is leg.link  # by object
    await ann.hangup()
    async with asyncio.timeout(5):
        while "call:disconnected" not in seen["bob"]:
            await asyncio.sleep(0.01)
    assert call.caller.leg.link.closed.is_set() and call.callee.leg.link.closed.is_set()
    for phone in phones.values():
        await phone.close()
    assert len(server.gateway.sessions) == 0
