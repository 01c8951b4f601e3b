"""The call scenarios of the contract lane, played by real Phones in a real gateway's process
(as bots attached inside it are: the wire app's own routes without a socket, in-process
media, no peer, no codec) and recorded one session each (:mod:`tests.contract.recording`).
Every scenario ends with every call ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from ivrbot.credentials import Credentials
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import request_token
from ivrbot.phone.transport_local import InProcess
from tests.contract.recording import SESSION_EVENTS, Expectation, RecordingTransport

WAIT_S = 10.0  # what a party waits for longer than this fails the scenario, named


@asynccontextmanager
async def within(what: str, seconds: float = WAIT_S) -> AsyncIterator[None]:
    """A bound on one wait of a scenario: past ``seconds`` it fails, saying ``what`` it was."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"waited {seconds}s for {what}") from None


class Party:
    """A Phone in the gateway's process whose session is recorded once the scenario starts."""

    def __init__(self, gateway: InProcess, name: str) -> None:
        self.name = name
        self.user = name.rstrip("0123456789")  # alice2: another session of alice
        self.transport = RecordingTransport(gateway)
        self.phone = Phone("http://in-process.invalid", name=name, transport=self.transport)
        self.expect = Expectation(self.phone)
        self.seen: list[str] = []
        for event in SESSION_EVENTS:
            self.phone.on(event, lambda _, event=event: self.seen.append(event))

    async def login(self) -> None:
        async with within(f"{self.name} to log in"):
            token = await request_token(self.transport, "ACCOUNT_ID", Credentials.from_env())
            await self.phone.login(token=token, user_id=f"{self.user}@ivrbot.local")
        self.transport.start()
        self.expect.events.clear()

    async def do(self, method: str, *args: Any) -> Any:
        """Call the Phone's ``method``, as an application would (recorded)."""
        self.transport.do(method, *args)
        result: Awaitable[Any] = getattr(self.phone, method)(*args)
        async with within(f"{self.name}'s {method}{list(args) if args else ''} to return"):
            return await result

    async def wait(self, event: str, count: int = 1) -> None:
        async with within(f"{self.name} to be told {event} ({count})"):
            while self.seen.count(event) < count:
                await asyncio.sleep(0.01)

    async def ended(self) -> None:
        """Until none of its calls is live."""
        async with within(f"{self.name}'s calls to end"):
            while self.phone.calls:
                await asyncio.sleep(0.01)

    def recording(self) -> dict[str, Any]:
        return {
            "wire": self.transport.entries,
            "expect": self.expect.to_dict(),
        }


async def connected(alice: Party, bob: Party) -> None:
    await alice.do("dial", f"{bob.user}@ivrbot.local")
    await bob.wait("call:incoming")
    await bob.do("answer")
    await alice.wait("call:connected")
    await bob.wait("call:connected")


async def answered(alice: Party, bob: Party) -> None:
    """Alice calls bob, he answers; she hangs up."""
    await connected(alice, bob)
    await alice.do("hangup")
    await bob.wait("call:disconnected")


async def rejected(alice: Party, bob: Party) -> None:
    """Alice calls bob; he turns the call down while it rings."""
    await alice.do("dial", f"{bob.user}@ivrbot.local")
    await bob.wait("call:incoming")
    await bob.do("reject")
    await alice.wait("call:rejected")


async def canceled(alice: Party, bob: Party) -> None:
    """Alice calls bob and gives up while it rings."""
    await alice.do("dial", f"{bob.user}@ivrbot.local")
    await bob.wait("call:incoming")
    await alice.do("cancel")
    await bob.wait("call:canceled")


async def hold_resume(alice: Party, bob: Party) -> None:
    """Alice holds her call with bob and resumes it; he hangs up."""
    await connected(alice, bob)
    await alice.do("hold")
    await alice.do("resume")
    await bob.do("hangup")
    await alice.wait("call:disconnected")


async def modification(alice: Party, bob: Party, answer: str) -> None:
    """Alice asks for video; bob answers (``answer``: his method); she hangs up."""
    await connected(alice, bob)
    await alice.do("upgrade")
    await bob.wait("call:modification-in-progress")
    await bob.do(answer)
    await alice.wait("call:media-modification")
    await alice.do("hangup")
    await bob.wait("call:disconnected")


async def modification_accepted(alice: Party, bob: Party) -> None:
    """Alice asks for video; bob accepts; she hangs up."""
    await modification(alice, bob, "accept_modification")


async def modification_rejected(alice: Party, bob: Party) -> None:
    """Alice asks for video; bob refuses; she hangs up."""
    await modification(alice, bob, "reject_modification")


async def terminated(alice: Party, bob: Party) -> None:
    """Bob's session ends (logout) during the call: alice is told."""
    await connected(alice, bob)
    await bob.do("logout")
    await alice.wait("call:disconnected")


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
    async with within("the sessions to go quiet"):
        while seen != (seen := sum(len(p.transport.entries) for p in parties)):
            await asyncio.sleep(still_s)


async def move(bob: Party, alice: Party, alice2: Party) -> None:
    """Bob calls alice, whose two sessions ring; she answers on one (the other is told it
    was answered elsewhere), then moves the call to her other session, which takes it."""
    await bob.do("dial", "alice@ivrbot.local")
    await alice.wait("call:incoming")
    await alice2.wait("call:incoming")
    await alice.do("answer")
    await bob.wait("call:connected")
    await alice2.wait("call:canceled")
    await alice.do("move")
    await alice2.wait("call:incoming", 2)
    await alice2.do("answer")
    await alice.wait("call:moved")
    await alice2.wait("call:connected")
    await bob.do("hangup")
    await alice2.wait("call:disconnected")


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
    "move": move,
}


async def record(gateway: InProcess, name: str) -> dict[str, Any]:
    """Play scenario ``name`` on ``gateway`` (its routes in this process): every party's
    recording."""
    scenario = SCENARIOS[name]
    who = scenario.__code__.co_varnames[: scenario.__code__.co_argcount]
    parties = [Party(gateway, n) for n in who]
    try:
        for party in parties:
            await party.login()
        await scenario(*parties)
        for party in parties:
            await party.ended()
        await quiet(parties)  # events still on their way are part of the recording
        return {
            "scenario": name,
            "about": " ".join((scenario.__doc__ or "").split()),
            "sessions": {p.name: p.recording() for p in parties},
        }
    finally:
        for party in parties:
            party.transport.recording = False
            async with within(f"{party.name}'s Phone to close"):
                await party.phone.close()
