"""Two real RTP legs on 127.0.0.1: a 1 kHz tone and keys across, in both G.711 laws."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest

from ivrbot.endpoints.rtp import RtpLeg
from ivrbot.media.frames import pcm_from_frame
from ivrbot.testing.audio import sine, tone_dbfs

pytestmark = pytest.mark.e2e


class Heard:
    """What a leg hands the bridge: its frames' samples (and their rate) and keys."""

    def __init__(self, leg: RtpLeg) -> None:
        self.chunks: list[np.ndarray] = []
        self.rates: set[int] = set()
        self.keys: list[str] = []
        leg.on_frame = self._frame
        leg.on_dtmf = self.keys.append

    def _frame(self, frame: av.AudioFrame) -> None:
        self.rates.add(frame.sample_rate)
        self.chunks.append(pcm_from_frame(frame))

    @property
    def pcm(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


async def pair(law: str, symmetric: bool = False) -> tuple[RtpLeg, RtpLeg]:
    a = await RtpLeg.open("a", law=law)
    b = await RtpLeg.open("b", law=law, symmetric=symmetric)
    a.session.remote = b.session.local_address
    if not symmetric:
        b.session.remote = a.session.local_address
    return a, b


@pytest.fixture
async def closing() -> AsyncIterator[list[RtpLeg]]:
    legs: list[RtpLeg] = []
    yield legs
    for leg in legs:
        await leg.close()


@pytest.mark.parametrize("law", ["PCMA", "PCMU"])
async def test_a_tone_and_keys_cross_between_two_rtp_legs(law: str, closing: list[RtpLeg]) -> None:
    a, b = await pair(law)
    closing += [a, b]
    heard = Heard(b)
    await asyncio.wait_for(b.connected.wait(), 2)
    a.out.play(sine(1000, 1.0, dbfs=-12))
    await asyncio.sleep(1.2)
    tone = heard.pcm[-8000:]  # the last second at 8 kHz: the tone (and a little silence)
    assert heard.rates == {8000}
    assert tone_dbfs(tone, 1000, 8000) > -16  # sent at -12 dBFS (a bit of it is silence)
    assert tone_dbfs(tone, 1000, 8000) - tone_dbfs(tone, 1700, 8000) > 30
    await asyncio.wait_for(a.send_dtmf("1#"), 3)
    await asyncio.sleep(0.1)
    assert heard.keys == ["1", "#"]
    counts = b.session.counts
    assert counts.received >= 60 and counts.lost == 0 and counts.invalid == 0
    assert a.session.counts.sent >= counts.received


async def test_symmetric_rtp_answers_where_the_packets_come_from(closing: list[RtpLeg]) -> None:
    a, b = await pair("PCMU", symmetric=True)  # b knows no address: it learns a's
    closing += [a, b]
    heard = Heard(a)
    await asyncio.wait_for(b.connected.wait(), 2)
    b.out.play(sine(1000, 0.5, dbfs=-12))
    await b.send_dtmf("7")
    await asyncio.sleep(0.6)
    assert b.session.remote == a.session.local_address
    assert tone_dbfs(heard.pcm, 1000, 8000) > -30
    assert heard.keys == ["7"]


async def test_a_leg_without_a_peer_stays_unconnected_and_closes(closing: list[RtpLeg]) -> None:
    leg = await RtpLeg.open("alone", law="PCMA")
    await asyncio.sleep(0.1)
    assert not leg.connected.is_set() and leg.session.counts.sent == 0
    with pytest.raises(NotImplementedError, match="issue 24"):
        await leg.make_offer()
    await leg.close()
    assert leg.closed
