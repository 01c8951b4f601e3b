"""The call scenarios of the contract lane, played by real Phones on a real gateway (in-process
media: frames in the process, no peer, no codec) and recorded one session each
(:mod:`tests.contract.recording`). Every scenario ends with every call ended."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from tests.contract.recording import SESSION_EVENTS, Expectation, RecordingTransport

WAIT_S = 10.0


class Party:
    """A Phone on the gateway whose session is recorded once the scenario starts."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.transport = RecordingTransport(url)
        self.phone = Phone(url, name=name, in_process=True, transport=self.transport)
        self.expect = Expectation(self.phone)
        self.seen: list[str] = []
        for event in SESSION_EVENTS:
            self.phone.on(event, lambda _, event=event: self.seen.append(event))

    async def login(self, url: str) -> None:
        token = await fetch_token(url, "ACCOUNT_ID", in_process=True)
        await self.phone.login(token=token, user_id=f"{self.name}@ivrbot.local")
        self.transport.start()
        self.expect.events.clear()

    async def do(self, method: str, *args: Any) -> Any:
        """Call the Phone's ``method``, as an application would (recorded)."""
        self.transport.do(method, *args)
        result: Awaitable[Any] = getattr(self.phone, method)(*args)
        return await result

    async def wait(self, event: str, count: int = 1) -> None:
        async with asyncio.timeout(WAIT_S):
            while self.seen.count(event) < count:
                await asyncio.sleep(0.01)

    async def ended(self) -> None:
        """Until none of its calls is live."""
        async with asyncio.timeout(WAIT_S):
            while self.phone.calls:
                await asyncio.sleep(0.01)

    def recording(self) -> dict[str, Any]:
        return {
            "wire": self.transport.entries,
            "expect": self.expect.to_dict(),
        }


async def connected(caller: Party, callee: Party) -> None:
    await caller.do("dial", f"{callee.name}@ivrbot.local")
    await callee.wait("call:incoming")
    await callee.do("answer")
    await caller.wait("call:connected")
    await callee.wait("call:connected")


async def answered(caller: Party, callee: Party) -> None:
    """An incoming call answered, then hung up by the caller."""
    await connected(caller, callee)
    await caller.do("hangup")
    await callee.wait("call:disconnected")


async def rejected(caller: Party, callee: Party) -> None:
    """The callee turns the call down while it rings."""
    await caller.do("dial", f"{callee.name}@ivrbot.local")
    await callee.wait("call:incoming")
    await callee.do("reject")
    await caller.wait("call:rejected")


async def canceled(caller: Party, callee: Party) -> None:
    """The caller gives up while the call rings."""
    await caller.do("dial", f"{callee.name}@ivrbot.local")
    await callee.wait("call:incoming")
    await caller.do("cancel")
    await callee.wait("call:canceled")


async def hold_resume(caller: Party, callee: Party) -> None:
    """The caller holds the call and resumes it; the callee hangs up."""
    await connected(caller, callee)
    await caller.do("hold")
    await caller.do("resume")
    await callee.do("hangup")
    await caller.wait("call:disconnected")


async def modification_accepted(caller: Party, callee: Party) -> None:
    """The caller asks for video; the callee accepts."""
    await connected(caller, callee)
    await caller.do("upgrade")
    await callee.wait("call:modification-in-progress")
    await callee.do("accept_modification")
    await caller.wait("call:media-modification")
    await caller.do("hangup")
    await callee.wait("call:disconnected")


async def modification_rejected(caller: Party, callee: Party) -> None:
    """The caller asks for video; the callee refuses."""
    await connected(caller, callee)
    await caller.do("upgrade")
    await callee.wait("call:modification-in-progress")
    await callee.do("reject_modification")
    await caller.wait("call:media-modification")
    await caller.do("hangup")
    await callee.wait("call:disconnected")


async def terminated(caller: Party, callee: Party) -> None:
    """The callee's session ends (logout) during the call: the caller is told."""
    await connected(caller, callee)
    await callee.do("logout")
    await caller.wait("call:disconnected")


async def transfer(alice: Party, bob: Party, carol: Party) -> None:
    """Alice calls bob, adds a call to carol (bob held) and joins them: she leaves both."""
    await connected(alice, bob)
    await alice.do("add_call", "carol@ivrbot.local")
    await carol.wait("call:incoming")
    await carol.do("answer")
    await alice.wait("call:connected", 2)
    await alice.do("transfer")
    await alice.wait("call:transferred", 2)
    await bob.do("hangup")
    await carol.wait("call:disconnected")


async def conference(alice: Party, bob: Party) -> None:
    """Alice hosts a conference and invites bob; he joins, then leaves; she ends it."""
    await alice.do("start_conference")
    await alice.wait("conference:connected")
    await alice.do("add_participant", "bob@ivrbot.local")
    await bob.wait("conference:invitation-received")
    await bob.do("join_conference")
    await bob.wait("conference:connected")
    await alice.wait("conference:invitation-accepted")
    await bob.do("end_conference")
    await bob.wait("conference:ended")
    await alice.wait("conference:participant-removed")  # the host is told that bob left
    await alice.do("end_conference")
    await alice.wait("conference:ended")


async def quiet(parties: list[Party], still_s: float = 0.3) -> None:
    """Until no session has received anything for ``still_s``."""
    seen = -1
    while seen != (seen := sum(len(p.transport.entries) for p in parties)):
        await asyncio.sleep(still_s)


SCENARIOS: dict[str, Callable[..., Awaitable[None]]] = {
    "answered": answered,
    "rejected": rejected,
    "canceled": canceled,
    "hold_resume": hold_resume,
    "modification_accepted": modification_accepted,
    "modification_rejected": modification_rejected,
    "terminated": terminated,
    "transfer": transfer,
    "conference": conference,
}


async def record(url: str, name: str) -> dict[str, Any]:
    """Play scenario ``name`` on the gateway at ``url``: every party's recording."""
    scenario = SCENARIOS[name]
    who = ("alice", "bob", "carol")[: scenario.__code__.co_argcount]
    parties = [Party(url, n) for n in who]
    try:
        for party in parties:
            await party.login(url)
        await scenario(*parties)
        for party in parties:
            await party.ended()
        await quiet(parties)  # events still on their way are part of the recording
        return {
            "scenario": name,
            "about": (scenario.__doc__ or "").strip(),
            "sessions": {p.name: p.recording() for p in parties},
        }
    finally:
        for party in parties:
            party.transport.recording = False
            await party.phone.close()
