"""Replaying one session's recording (tests/contract/recording.py) to a Python Phone on a
scripted transport (no gateway, in-process media): the application's calls are made at
their recorded places, every request the Phone sends must be the recorded one (method,
path, the headers that say what it asks, the body's parts), and replies and events come in
the recorded order. The Phone is one in the gateway's process (as the recording's was): the
transport hands it the gateway's end of each call's media by object (:class:`GatewayEnd`),
and SDP in the recording (``<offer>``, ``<answer>``) becomes what the gateway's local leg
sends (:func:`~ivrbot.endpoints.local.local_link.local_sdp`).

phone.js gets the same recording in Chromium (replay.js, test_replay_phone_js.py)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ivrbot.endpoints.local.local_link import LocalLink, local_sdp
from ivrbot.media.tracks import OutboundAudio
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import EventSource, LinkSource, Response
from tests.contract.recording import ASKS, Expectation
from tests.contract.scenarios import within
from tests.phone.fake_transport import FakeEvents

SESSION = "/RTC/v1/sessions/session"
STEP_S = 5.0  # a recorded step the Phone does not take by then: the replay fails


def resolve(value: Any) -> Any:
    """The recording's names as ids: ``{session}`` -> ``session``, ``{call-1}`` -> ``call-1``."""
    if isinstance(value, str):
        return re.sub(r"\{((?:session|call|conference|mod)(?:-\d+)?)\}", r"\1", value)
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


class GatewayEnd:
    """The gateway's end of each call's in-process media, as the gateway's ``LocalLeg`` is:
    a link per call or conference, made when the Phone first asks for it (by the call's
    resource, :meth:`~ivrbot.phone.transport_local.LocalTransport.link_for`), the gateway's
    end plugged in."""

    def __init__(self) -> None:
        self.links: dict[str, LocalLink] = {}  # by the call's path

    def link_for(self, resource: str) -> LocalLink | None:
        link = self.links.get(resource)
        if link is None:
            link = self.links[resource] = LocalLink(f"replay {resource}")
            link.attach("gateway", OutboundAudio(), lambda frame: None, lambda key: None)
        return link

    def close(self) -> None:
        for link in self.links.values():
            link.close()


class ReplayTransport:
    """A transport that plays a recording's replies and events and checks the requests."""

    def __init__(self, links: LinkSource) -> None:
        self.token: str | None = None
        self.links: LinkSource | None = links  # the gateway's media links, by object
        self.events = FakeEvents()
        self.requests: asyncio.Queue[tuple[str, str, Any, dict[str, str]]] = asyncio.Queue()
        self.replies: asyncio.Queue[Response] = asyncio.Queue()
        self.scripted = False  # False: logging in or closing (not in the recording)

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        if not self.scripted:
            location = {"Location": SESSION} if path == "/RTC/v1/sessions" else {}
            return Response(201 if location else 204, location, None)
        self.requests.put_nowait((method, path, body, dict(headers or {})))
        return await self.replies.get()

    async def open_events(self, session_path: str) -> EventSource:
        return self.events

    async def close(self) -> None:
        await self.events.close()


async def settle() -> None:
    """Let the Phone run until it waits on the transport again."""
    for _ in range(20):
        await asyncio.sleep(0)


async def replay(wire: list[dict[str, Any]], name: str = "replay") -> dict[str, Any]:
    """Play ``wire`` to a new in-process Phone: what it told the application (the
    recording's ``expect``)."""
    gateway = GatewayEnd()
    transport = ReplayTransport(gateway)
    phone = Phone("http://gateway.invalid", name=name, transport=transport)
    expect = Expectation(phone)
    async with within(f"{name} to log in", STEP_S):
        await phone.login(token="replay")
    transport.scripted = True
    doing: list[asyncio.Task[Any]] = []
    try:
        for step in wire:
            if "do" in step:
                call = getattr(phone, step["do"])(*step.get("args", []))
                doing.append(asyncio.ensure_future(call))
            elif "send" in step:
                async with within(f"{name} to send {step['send']}", STEP_S):
                    method, path, body, headers = await transport.requests.get()
                asks = {k: v for k, v in headers.items() if k in ASKS}
                want = resolve(step)
                got = {"send": [method, path], **({"headers": asks} if asks else {})}
                if isinstance(body, dict) and body:
                    got["body"] = sorted(body)
                assert got == want, f"the Phone sent {got}, the recording {want}"
            elif "reply" in step:
                headers = resolve(step.get("headers", {}))
                transport.replies.put_nowait(Response(step["reply"], headers, None))
            else:
                obj = resolve(step["event"])
                if obj.get("sdp") in ("<offer>", "<answer>"):
                    obj["sdp"] = local_sdp()
                async with within(f"{name} to handle {obj.get('state')}", STEP_S):
                    await transport.events.deliver(obj)
            await settle()
        async with within(f"{name}'s methods to return", STEP_S):
            await asyncio.gather(*doing)
        await settle()
    finally:
        transport.scripted = False
        async with within(f"{name}'s Phone to close", STEP_S):
            await phone.close()
        gateway.close()
    return expect.to_dict()
