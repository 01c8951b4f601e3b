"""An RTP leg's sending on virtual time: one packet per 20 ms of the leg's clock, keys in
place of audio on the same sequence numbering, and what it receives handed on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ivrbot.endpoints.rtp import RtpLeg, RtpSession, g711
from ivrbot.endpoints.rtp.packets import RtpPacket, TelephoneEvent
from ivrbot.media.frames import pcm_from_frame
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.testing.clock import VirtualClock

pytestmark = pytest.mark.unit

PEER = ("127.0.0.1", 40000)


class CapturingTransport:
    """A datagram transport that keeps what is sent (no socket)."""

    def __init__(self) -> None:
        self.sent: list[RtpPacket] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        assert addr == PEER
        self.sent.append(RtpPacket.unpack(data))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40002)

    def close(self) -> None:
        pass


def make_leg(clock: VirtualClock, law: str = "PCMU") -> tuple[RtpLeg, CapturingTransport]:
    session = RtpSession(law, remote=PEER)
    transport = CapturingTransport()
    session.connection_made(transport)  # type: ignore[arg-type]
    return RtpLeg("rtp", session, clock), transport


async def test_one_packet_per_20_ms_of_the_legs_clock() -> None:
    clock = VirtualClock()
    leg, transport = make_leg(clock)
    leg.out.play(sine(1000, 1.0, dbfs=-12))
    await clock.advance(1.0)
    sent = transport.sent
    assert 49 <= len(sent) <= 51  # the resampler's delay may hold back the first
    assert {p.payload_type for p in sent} == {0}
    assert all(len(p.payload) == 160 for p in sent)
    assert np.all(np.diff([p.sequence for p in sent]) % 65536 == 1)
    assert np.all(np.diff([p.timestamp for p in sent]) % 2**32 == 160)
    pcm = np.concatenate([g711.decode(p.payload, "PCMU") for p in sent[5:]])
    assert tone_dbfs(pcm, 1000, 8000) > -14  # the 48 kHz tone went out at 8 kHz
    await leg.close()


async def test_a_key_replaces_audio_packets_on_the_same_numbering() -> None:
    clock = VirtualClock()
    leg, transport = make_leg(clock)
    await clock.advance(0.2)
    before = len(transport.sent)
    sending = clock.run(leg.send_dtmf("9"))
    await sending
    events = [p for p in transport.sent[before:] if p.payload_type == 101]
    assert [TelephoneEvent.unpack(p.payload).end for p in events] == [False] * 5 + [True] * 3
    assert len({p.timestamp for p in events}) == 1 and events[0].marker
    assert np.all(np.diff([p.sequence for p in transport.sent]) % 65536 == 1)
    assert clock.elapsed >= 0.2 + 0.16  # the key took its 8 packets' time on the clock
    await leg.close()


async def test_received_packets_become_8_khz_frames_and_keys() -> None:
    clock = VirtualClock()
    leg, _ = make_leg(clock, "PCMA")
    frames: list[np.ndarray] = []
    keys: list[str] = []
    leg.on_frame = lambda frame: frames.append(pcm_from_frame(frame))
    leg.on_dtmf = keys.append
    payload = g711.encode(sine(1000, 0.02, 8000), "PCMA")
    for n in (1, 2, 2, 4):  # a duplicate, and packet 3 lost
        leg.session.datagram_received(RtpPacket(8, n, 160 * n, 7, payload).pack(), PEER)
    event = TelephoneEvent("4", True, 10, 800).pack()
    for n in (5, 6):
        leg.session.datagram_received(RtpPacket(101, n, 800, 7, event).pack(), PEER)
    assert leg.connected.is_set()
    assert [f.size for f in frames] == [160, 160, 160]
    assert keys == ["4"]
    counts = leg.session.counts
    assert (counts.received, counts.lost, counts.duplicates) == (6, 1, 1)
    restarted = RtpPacket(8, 40000, 0, 8, payload).pack()  # a new SSRC, numbers far off
    leg.session.datagram_received(restarted, PEER)
    assert len(frames) == 4 and leg.session.counts.late == 0
    await leg.close()
