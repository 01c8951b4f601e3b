"""Who hears whom after every call operation, measured on the audio each party receives.

Every party sends its own sine tone through a real aiortc leg; after each operation the
test measures, per party, the level of every other party's frequency (Goertzel over the
last 0.8 s of received audio) and asserts the exact matrix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from ivrbot.media.tones import HOLD_NOTES_HZ, RINGBACK_HZ
from ivrbot.phone.call import CallState
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.wire.in_process import InProcessWire
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login

HEARD_DB = -32.0  # a party's tone arrives at about -14 dBFS; its absence is below -55
SILENT_DB = -48.0
FREQS = {"alice": 700.0, "bob": 1000.0, "carol": 1300.0, "alice2": 1900.0}


class Speaker(Party):
    """A party that plays its own tone on every call it has."""

    def __init__(self, url: str, name: str, local: InProcessWire | None = None) -> None:
        super().__init__(url, name, local)
        self.tone_name = name
        self.media_kinds: set[str] = set()  # 'webrtc' or 'local', of every call it had
        self.phone.on("call:connected", self._speak)

    def _speak(self, data: Any) -> None:
        call = next((c for c in self.phone.calls if c.index == data.index), None)
        if call is not None:
            assert call.media is not None
            self.media_kinds.add(call.media.kind)
            call.play(sine(FREQS[self.tone_name], 120.0, dbfs=-12.0))


def level(party: Party, freq: float) -> float:
    return tone_dbfs(party.recent_audio(0.8), freq)


async def hears(parties: list[Speaker], settle: float = 1.2) -> dict[str, set[str]]:
    """{listener: {names heard}} with 'music' for hold music and 'ringback'.

    A party that stopped receiving frames (no call left) hears nothing.
    """
    before = {p.tone_name: len(p.heard) for p in parties}
    await asyncio.sleep(settle)
    out: dict[str, set[str]] = {}
    for p in parties:
        heard: set[str] = set()
        if len(p.heard) - before[p.tone_name] < 0.5 * settle / 0.02:
            out[p.tone_name] = heard  # no call carries audio to this party any more
            continue
        sources = {n: (f,) for n, f in FREQS.items() if n != p.tone_name}
        sources["music"] = HOLD_NOTES_HZ[:3]
        sources["ringback"] = (RINGBACK_HZ[1],)
        for name, freqs in sources.items():
            db = max(level(p, f) for f in freqs)
            if name == "music":  # notes alternate: any one of them in the window counts
                db = max(db, *(level(p, f) for f in freqs))
            if db > HEARD_DB:
                heard.add(name)
            elif db > SILENT_DB and name in FREQS:
                raise AssertionError(f"{p.tone_name} hears {name} at an ambiguous {db:.1f} dBFS")
        out[p.tone_name] = heard
    return out


# who is a bot in the gateway's process (local media: frames in process, no WebRTC leg)
IN_PROCESS = {"webrtc": set(), "local bots": {"bob", "alice2"}}


@pytest.fixture(params=list(IN_PROCESS))
async def people(
    gateway: GatewayServer, request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, Speaker]]:
    url = gateway.url
    local = IN_PROCESS[request.param]
    routes = gateway.gateway.in_process
    out = {n: Speaker(url, n, routes if n in local else None) for n in FREQS}
    out["alice2"].tone_name = "alice2"
    for name, party in out.items():
        user = "alice" if name == "alice2" else name
        await login(party, url, "ACCOUNT_ID", f"{user}@ivrbot.local")
    yield out
    for party in out.values():
        await party.phone.close()
    for name, party in out.items():  # a bot in process had local media, everyone else WebRTC
        assert party.media_kinds <= {"local" if name in local else "webrtc"}, name


async def call(frm: Speaker, to: Speaker, address: str | None = None) -> None:
    """``frm`` calls ``to``, who answers; returns once both ends are connected (an
    in-process bot's end is up at once, a WebRTC caller's once its ICE and DTLS are)."""
    connected = {p: len(p.events.get("call:connected", [])) for p in (frm, to)}
    await frm.phone.dial(address or f"{to.tone_name}@ivrbot.local", remote_media=frm.hear)
    await to.wait("call:incoming")
    await to.phone.answer(remote_media=to.hear)
    for party in (frm, to):
        await party.wait("call:connected", connected[party] + 1)


@pytest.mark.e2e
async def test_answer_hold_resume_hangup(
    people: dict[str, Speaker], gateway: GatewayServer
) -> None:
    alice, bob = people["alice"], people["bob"]
    await alice.phone.dial("bob@ivrbot.local", remote_media=alice.hear)
    await bob.wait("call:incoming")
    ringing = await hears([alice, bob])
    assert ringing == {"alice": {"ringback"}, "bob": set()}
    assert alice.events["call:ringback-provided"]
    await bob.phone.answer(remote_media=bob.hear)
    await alice.wait("call:connected")
    assert await hears([alice, bob]) == {"alice": {"bob"}, "bob": {"alice"}}

    await alice.phone.hold()
    assert alice.phone.current_call and alice.phone.current_call.state == CallState.HELD
    assert await hears([alice, bob]) == {"alice": set(), "bob": {"music"}}
    await alice.phone.resume()
    assert await hears([alice, bob]) == {"alice": {"bob"}, "bob": {"alice"}}

    gateway.gateway.switch.hold_audio = "silence"
    await bob.phone.hold()
    assert await hears([alice, bob]) == {"alice": set(), "bob": set()}
    await bob.phone.resume()
    assert await hears([alice, bob]) == {"alice": {"bob"}, "bob": {"alice"}}

    await bob.phone.hangup()
    await alice.wait("call:disconnected")
    frames = len(alice.heard), len(bob.heard)
    await asyncio.sleep(0.5)
    assert (len(alice.heard), len(bob.heard)) == frames, "audio still arrives after hangup"
    assert gateway.gateway.switch.calls == {}


@pytest.mark.e2e
async def test_second_call_switch_and_transfer(people: dict[str, Speaker]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    await call(alice, bob)
    await alice.phone.add_call("carol@ivrbot.local", remote_media=alice.hear)
    await carol.wait("call:incoming")
    await carol.phone.answer(remote_media=carol.hear)
    await alice.wait("call:connected", 2)
    assert await hears([alice, bob, carol]) == {
        "alice": {"carol"}, "bob": {"music"}, "carol": {"alice"},
    }  # fmt: skip

    await alice.phone.switch_call()
    assert len(alice.events["call:held"]) == 2 and len(alice.events["call:resumed"]) == 1
    assert alice.events["session:call-switched"][0]["to"]["to"] == "sip:bob@ivrbot.local"
    assert await hears([alice, bob, carol]) == {
        "alice": {"bob"}, "bob": {"alice"}, "carol": {"music"},
    }  # fmt: skip

    await alice.phone.transfer()
    await alice.wait("call:transferred", 2)
    assert await hears([alice, bob, carol]) == {
        "alice": set(), "bob": {"carol"}, "carol": {"bob"},
    }  # fmt: skip
    assert alice.phone.calls == []


@pytest.mark.e2e
async def test_move_to_another_session_of_the_same_user(people: dict[str, Speaker]) -> None:
    alice, alice2, bob = people["alice"], people["alice2"], people["bob"]
    await bob.phone.dial("alice@ivrbot.local", remote_media=bob.hear)
    await alice.wait("call:incoming")
    await alice2.wait("call:incoming")  # both sessions of alice ring
    await alice.phone.answer(remote_media=alice.hear)
    await bob.wait("call:connected")
    await alice2.wait("call:canceled")  # answered elsewhere
    assert await hears([alice, alice2, bob]) == {
        "alice": {"bob"}, "alice2": set(), "bob": {"alice"},
    }  # fmt: skip

    await alice.phone.move()
    await alice2.wait("call:incoming", 2)
    await alice2.phone.answer(remote_media=alice2.hear)
    await alice.wait("call:moved")
    assert await hears([alice, alice2, bob]) == {
        "alice": set(), "alice2": {"bob"}, "bob": {"alice2"},
    }  # fmt: skip
    assert alice.phone.calls == [] and len(alice2.phone.calls) == 1


@pytest.mark.e2e
async def test_reject_and_cancel(people: dict[str, Speaker]) -> None:
    alice, bob = people["alice"], people["bob"]
    await alice.phone.dial("bob@ivrbot.local", remote_media=alice.hear)
    await bob.wait("call:incoming")
    await bob.phone.reject()
    rejected = await alice.wait("call:rejected")
    assert rejected[0].get("message") == "User busy"

    await alice.phone.dial("bob@ivrbot.local", remote_media=alice.hear)
    await bob.wait("call:incoming", 2)
    await alice.phone.cancel()
    canceled = await bob.wait("call:canceled")
    assert canceled[0].get("message") == "Call canceled"
    assert alice.phone.calls == [] and bob.phone.calls == []


@pytest.mark.unit
def test_tone_levels_are_far_apart() -> None:
    """The thresholds assume a party's tone is clearly above HEARD_DB and others below."""
    tone = sine(700, 1.0, dbfs=-12.0)
    assert tone_dbfs(tone, 700) > HEARD_DB + 10
    assert tone_dbfs(tone, 1000) < SILENT_DB - 20
    assert tone_dbfs(np.zeros(48000, np.int16), 700) < SILENT_DB
