"""Replaying one session's recording (tests/contract/recording.py) to a Python Phone on a
scripted transport (no gateway, in-process media): the application's calls are made at
their recorded places, every request the Phone sends must be the recorded one (method,
path, the headers that say what it asks, the body's parts), and replies and events come in
the recorded order. The gateway's end of the media is a local link per call, so SDP in the
recording (``<offer>``, ``<answer>``) becomes a real in-process offer or answer.

phone.js gets the same recording in Chromium (replay.js, test_replay_phone_js.py)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ivrbot.endpoints.local.local_link import LocalLink
from ivrbot.media.tracks import OutboundAudio
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import EventSource, Response
from tests.contract.recording import ASKS, Expectation
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
    """The gateway's end of each call's in-process media: it takes the Phone's offers and
    answers them, and offers what the recording's events offer."""

    def __init__(self) -> None:
        self.links: dict[str, LocalLink] = {}  # by the call's path
        self.placing: LocalLink | None = None  # offered in a POST whose reply is to come

    def _join(self, link: LocalLink) -> None:
        if link.gateway is None:
            link.attach("gateway", OutboundAudio(), lambda frame: None, lambda key: None)

    def took(self, path: str, body: Any) -> None:
        """The Phone sent ``body`` to ``path``: an offer (or answer) naming its link."""
        parts = body.values() if isinstance(body, dict) else []
        sdp = next((p["sdp"] for p in parts if isinstance(p, dict) and "sdp" in p), None)
        link = LocalLink.find(sdp)
        if link is None:
            return
        self._join(link)
        if path.endswith(("/calls", "/conferences")):
            self.placing = link
        else:
            self.links[path] = link

    def placed(self, location: str) -> None:
        if self.placing is not None:
            self.links[location], self.placing = self.placing, None

    def sdp(self, path: str, state: str) -> str:
        link = self.links.get(path)
        if link is None:  # the far end's first offer: a new link, the gateway's end in
            link = self.links[path] = LocalLink(f"replay {path}")
            self._join(link)
        return link.sdp()

    def close(self) -> None:
        for link in self.links.values():
            link.close()


class ReplayTransport:
    """A transport that plays a recording's replies and events and checks the requests."""

    def __init__(self) -> None:
        self.token: str | None = None
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
    transport = ReplayTransport()
    gateway = GatewayEnd()
    phone = Phone("http://gateway.invalid", name=name, in_process=True, transport=transport)
    expect = Expectation(phone)
    await phone.login(token="replay")
    transport.scripted = True
    doing: list[asyncio.Task[Any]] = []
    try:
        for step in wire:
            if "do" in step:
                call = getattr(phone, step["do"])(*step.get("args", []))
                doing.append(asyncio.ensure_future(call))
            elif "send" in step:
                async with asyncio.timeout(STEP_S):
                    method, path, body, headers = await transport.requests.get()
                asks = {k: v for k, v in headers.items() if k in ASKS}
                want = resolve(step)
                got = {"send": [method, path], **({"headers": asks} if asks else {})}
                if isinstance(body, dict) and body:
                    got["body"] = sorted(body)
                assert got == want, f"the Phone sent {got}, the recording {want}"
                gateway.took(path, body)
            elif "reply" in step:
                headers = resolve(step.get("headers", {}))
                if "Location" in headers:
                    gateway.placed(headers["Location"])
                transport.replies.put_nowait(Response(step["reply"], headers, None))
            else:
                obj = resolve(step["event"])
                if obj.get("sdp") in ("<offer>", "<answer>"):
                    obj["sdp"] = gateway.sdp(obj["resourceURL"], obj["state"])
                async with asyncio.timeout(STEP_S):
                    await transport.events.deliver(obj)
            await settle()
        async with asyncio.timeout(STEP_S):
            await asyncio.gather(*doing)
        await settle()
    finally:
        transport.scripted = False
        await phone.close()
        gateway.close()
    return expect.to_dict()
