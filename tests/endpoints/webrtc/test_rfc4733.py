"""RFC 4733 telephone-event between two real aiortc peers on 127.0.0.1 (ivrbot.endpoints.webrtc.rfc4733)."""

from __future__ import annotations

import asyncio
import fractions
import gc
import itertools
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import av
import numpy as np
import pytest
from aiortc import (
    AudioStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from ivrbot.endpoints.webrtc import rfc4733
from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.endpoints.webrtc.rfc4733 import (
    CODE_TO_TONE,
    TONE_TO_CODE,
    DtmfEvent,
    DtmfSender,
    code_to_tone,
    decode_event,
    encode_event,
    on_telephone_event,
    tone_to_code,
)

# --- pure functions ------------------------------------------------------------------------


@pytest.mark.unit
def test_tone_code_map() -> None:
    expected = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13}
    expected |= {"C": 14, "D": 15}
    assert expected == TONE_TO_CODE
    assert {v: k for k, v in expected.items()} == CODE_TO_TONE
    for tone, code in expected.items():
        assert tone_to_code(tone) == code
        assert tone_to_code(tone.lower()) == code
        assert code_to_tone(code) == tone
    for bad in ("E", "", "12", ",", " "):
        with pytest.raises(ValueError):
            tone_to_code(bad)
    with pytest.raises(ValueError):
        code_to_tone(16)


@pytest.mark.unit
def test_encode_event_layout() -> None:
    # RFC 4733 figure 1: event(8) | E R volume(6) | duration(16)
    assert encode_event(5, True, 10, 800) == bytes([0x05, 0x8A, 0x03, 0x20])
    assert encode_event(11, False, 63, 0xFFFF) == bytes([0x0B, 0x3F, 0xFF, 0xFF])
    assert encode_event(0, False, 0, 0) == bytes(4)


@pytest.mark.unit
def test_decode_event_roundtrip() -> None:
    for code in range(17):
        for end in (False, True):
            for volume in (0, 10, 63):
                for duration in (0, 160, 4800, 0xFFFF):
                    payload = encode_event(code, end, volume, duration)
                    assert decode_event(payload) == (code, end, volume, duration)
    # the reserved bit is ignored, extra bytes (a second event) are not read
    assert decode_event(bytes([3, 0xCA, 0, 160, 9, 9, 9, 9])) == (3, True, 10, 160)


@pytest.mark.unit
def test_encode_decode_reject_bad_values() -> None:
    for args in ((256, False, 0, 0), (-1, False, 0, 0), (1, False, 64, 0), (1, False, 0, 0x10000)):
        with pytest.raises(ValueError):
            encode_event(*args)
    with pytest.raises(ValueError):
        decode_event(b"\x01\x8a\x03")


# --- receive-side bookkeeping --------------------------------------------------------------


@pytest.mark.unit
async def test_tracker_reports_each_press_once() -> None:
    events: list[DtmfEvent] = []
    tracker = rfc4733._EventTracker(events.append)
    for duration in (160, 320, 480, 640):
        tracker.packet(1, 1000, 8000, encode_event(1, False, 10, duration))
    assert events == []
    for _ in range(3):  # the end packet goes three times
        tracker.packet(1, 1000, 8000, encode_event(1, True, 10, 800))
    assert events == [DtmfEvent("1", 100, 10)]
    tracker.packet(1, 1000, 8000, encode_event(1, False, 10, 640))  # late packet
    await asyncio.sleep(rfc4733.LOST_END_TIMEOUT + 0.05)
    assert events == [DtmfEvent("1", 100, 10)]


@pytest.mark.unit
async def test_tracker_tells_of_a_press_at_its_first_packet() -> None:
    ended: list[DtmfEvent] = []
    began: list[DtmfEvent] = []
    tracker = rfc4733._EventTracker(ended.append, began.append)
    tracker.packet(1, 1000, 8000, encode_event(5, False, 10, 160))
    assert began == [DtmfEvent("5", 0, 10)] and ended == []  # before its end
    for duration in (320, 480):
        tracker.packet(1, 1000, 8000, encode_event(5, False, 10, duration))
    for _ in range(3):
        tracker.packet(1, 1000, 8000, encode_event(5, True, 10, 640))
    tracker.packet(1, 2000, 8000, encode_event(11, True, 10, 640))  # '#': begin and end at once
    assert began == [DtmfEvent("5", 0, 10), DtmfEvent("#", 0, 10)]
    assert ended == [DtmfEvent("5", 80, 10), DtmfEvent("#", 80, 10)]
    tracker.packet(1, 3000, 8000, encode_event(16, True, 10, 640))  # flash: not a key
    assert len(began) == 2


@pytest.mark.unit
async def test_tracker_reports_event_whose_end_was_lost() -> None:
    events: list[DtmfEvent] = []
    tracker = rfc4733._EventTracker(events.append)
    # event '4' loses all its end packets; the next event's timestamp reports it
    for duration in (960, 1920, 2880):
        tracker.packet(7, 48000, 48000, encode_event(4, False, 12, duration))
    tracker.packet(7, 60000, 48000, encode_event(4, False, 12, 960))
    assert events == [DtmfEvent("4", 60, 12)]
    # the second '4' also loses its end: reported ~200 ms after its last packet
    tracker.packet(7, 60000, 48000, encode_event(4, False, 12, 1920))
    await asyncio.sleep(rfc4733.LOST_END_TIMEOUT / 2)
    assert len(events) == 1
    await asyncio.sleep(rfc4733.LOST_END_TIMEOUT)
    assert events == [DtmfEvent("4", 60, 12), DtmfEvent("4", 40, 12)]
    # non-DTMF events (16 = flash) are not reported
    tracker.packet(7, 90000, 48000, encode_event(16, True, 10, 4800))
    assert len(events) == 2


class _Owner:
    """What a leg or a Phone call is to its receiver: owns the peer connection, hears keys."""

    def __init__(self) -> None:
        self.pc = new_peer_connection()
        self.pc.addTransceiver("audio")
        self.events: list[DtmfEvent] = []
        on_telephone_event(self.pc.getTransceivers()[0].receiver, self.on_event)

    def on_event(self, event: DtmfEvent) -> None:
        self.events.append(event)


@pytest.mark.e2e
async def test_a_receivers_callback_does_not_keep_its_owner_alive() -> None:
    # The state table is module-wide; a strong bound method in it kept the owner, its peer
    # connection and so the receiver (the table's own key) alive for ever: one per call.
    gc.disable()  # freed by reference counting alone, not by a collection
    try:
        owner = _Owner()
        pc = owner.pc
        alive = weakref.ref(owner)
        del owner
        assert alive() is None
    finally:
        gc.enable()
        await pc.close()
        rfc4733.release_peer(pc)


@pytest.mark.e2e
async def test_release_forgets_the_receiver_and_its_pending_event() -> None:
    before = rfc4733.tracked()
    owner = _Owner()
    receiver = owner.pc.getTransceivers()[0].receiver
    assert rfc4733.tracked()[0] == before[0] + 1
    # a press whose end has not come yet: its lost-end timer is armed
    rfc4733._receivers[receiver].tracker.packet(1, 1000, 8000, encode_event(5, False, 10, 160))
    await owner.pc.close()
    rfc4733.release_peer(owner.pc)
    rfc4733.release_peer(owner.pc)  # idempotent
    assert rfc4733.tracked() == before
    await asyncio.sleep(rfc4733.LOST_END_TIMEOUT + 0.05)
    assert owner.events == []  # the timer was cancelled with the receiver's state


@pytest.mark.unit
def test_sequence_compactor_closes_holes() -> None:
    compactor = rfc4733._SequenceCompactor()
    assert [compactor.renumber(s) for s in (65533, 65534)] == [65533, 65534]
    for seq in (65535, 0, 1):  # three event packets across the wrap
        compactor.remove(seq)
    assert [compactor.renumber(s) for s in (2, 3, 4)] == [65535, 0, 1]
    # a late audio packet from before the event keeps its number
    assert compactor.renumber(65534) == 65534
    compactor.remove(5)
    assert [compactor.renumber(s) for s in (6, 7, 2000, 2001)] == [2, 3, 1996, 1997]


# --- real peers ----------------------------------------------------------------------------


class SineTrack(AudioStreamTrack):
    """A 20 ms-framed sine at 48 kHz, paced in real time."""

    def __init__(self, freq: float, amplitude: int = 3000) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = amplitude
        self.samples = 0
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        rate, n = 48000, 960
        if self.start is None:
            self.start = time.time()
        else:
            await asyncio.sleep(max(0.0, self.start + self.samples / rate - time.time()))
        t = (np.arange(n) + self.samples) / rate
        pcm = (self.amplitude * np.sin(2 * np.pi * self.freq * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, rate)
        self.samples += n
        return frame


@dataclass
class Received:
    """What one side receives: packets as they arrive, decoded frames, DTMF events."""

    receiver: RTCRtpReceiver
    packets: list[RtpPacket] = field(default_factory=list)
    frames: list[tuple[float, int, float]] = field(default_factory=list)  # time, pts, rms
    events: list[tuple[float, DtmfEvent]] = field(default_factory=list)
    consumer: asyncio.Future[None] | None = None


def watch(pc: RTCPeerConnection) -> asyncio.Future[Received]:
    """On the remote track: record raw RTP (ahead of the rfc4733 hook), frames and events."""
    result: asyncio.Future[Received] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        got = Received(receiver)
        on_telephone_event(receiver, lambda e: got.events.append((time.time(), e)))
        patched = receiver._handle_rtp_packet

        async def spy(packet: RtpPacket, arrival_time_ms: int) -> None:
            copy = RtpPacket(
                packet.payload_type,
                packet.marker,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
                packet.payload,
            )
            got.packets.append(copy)
            await patched(packet, arrival_time_ms)

        receiver._handle_rtp_packet = spy  # type: ignore[method-assign]

        async def consume() -> None:
            try:
                while True:
                    frame = await track.recv()
                    assert isinstance(frame, av.AudioFrame)
                    pcm = frame.to_ndarray().astype(np.float64)
                    rms = float(np.sqrt(np.mean(pcm**2)))
                    got.frames.append((time.time(), int(frame.pts or 0), rms))
            except MediaStreamError:
                pass

        got.consumer = asyncio.ensure_future(consume())
        result.set_result(got)

    return result


async def negotiate(
    offerer: RTCPeerConnection,
    answerer: RTCPeerConnection,
    edit_offer: Callable[[str], str] = lambda sdp: sdp,
) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    offer = RTCSessionDescription(sdp=edit_offer(offerer.localDescription.sdp), type="offer")
    await answerer.setRemoteDescription(offer)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def keep_codecs(*wanted: str) -> Callable[[str], str]:
    """An SDP edit keeping only the audio codecs ``wanted`` ("PCMU/8000", ...), like a peer
    that offers just those."""

    def edit(sdp: str) -> str:
        lines = sdp.splitlines()
        keep = {
            line.split()[0].split(":")[1]
            for line in lines
            if line.startswith("a=rtpmap:") and line.split()[1] in wanted
        }
        out = []
        for line in lines:
            if line.startswith("m=audio"):
                head = line.split()[:3]
                line = " ".join(head + [pt for pt in line.split()[3:] if pt in keep])
            elif line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
                if line.split()[0].split(":")[1] not in keep:
                    continue
            out.append(line)
        return "\r\n".join(out) + "\r\n"

    return edit


@dataclass
class Call:
    pc1: RTCPeerConnection
    pc2: RTCPeerConnection
    sender1: RTCRtpSender
    sender2: RTCRtpSender
    at2: asyncio.Future[Received]  # what pc2 receives from pc1
    at1: asyncio.Future[Received]


@pytest.fixture
async def call_factory() -> AsyncIterator[Callable[..., Awaitable[Call]]]:
    pcs: list[RTCPeerConnection] = []

    async def make(
        prefer: list[str] | None = None, edit_offer: Callable[[str], str] = lambda sdp: sdp
    ) -> Call:
        pc1, pc2 = new_peer_connection(), new_peer_connection()
        pcs.extend([pc1, pc2])
        sender1 = pc1.addTrack(SineTrack(440.0))
        sender2 = pc2.addTrack(SineTrack(660.0))
        if prefer is not None:
            capabilities = RTCRtpSender.getCapabilities("audio").codecs
            wanted = [c for m in prefer for c in capabilities if c.mimeType.lower() == m.lower()]
            pc1.getTransceivers()[0].setCodecPreferences(wanted)
        at2, at1 = watch(pc2), watch(pc1)
        await negotiate(pc1, pc2, edit_offer)
        return Call(pc1, pc2, sender1, sender2, at2, at1)

    yield make
    for pc in pcs:
        await pc.close()


def te_lines(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if "telephone-event" in line]


@pytest.mark.e2e
async def test_dtmf_between_two_peers(
    call_factory: Callable[..., Awaitable[Call]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    call = await call_factory()
    answer = call.pc2.localDescription.sdp
    assert "a=rtpmap:110 telephone-event/48000" in answer
    assert "a=rtpmap:126 telephone-event/8000" in answer
    dtmf = DtmfSender(call.sender1)
    assert dtmf.can_insert_dtmf
    assert DtmfSender(call.sender2).can_insert_dtmf

    got = await asyncio.wait_for(call.at2, 10)
    back = await asyncio.wait_for(call.at1, 10)
    deadline = time.time() + 10
    while len(got.frames) < 25 and time.time() < deadline:  # audio flows, jitter buffer primed
        await asyncio.sleep(0.05)
    assert len(got.frames) >= 25

    t0 = time.time()
    await asyncio.wait_for(dtmf.send("123#*0", duration_ms=100, gap_ms=70), 10)
    t1 = time.time()
    sent_at = len(got.packets)
    await asyncio.sleep(0.6)

    # exactly the tones, in order, once each, with the duration sent
    assert [e.tone for _, e in got.events] == list("123#*0")
    assert all(e.duration_ms == 100 and e.volume == 10 for _, e in got.events)
    assert back.events == []  # nothing echoed the other way
    assert 6 * 0.15 < t1 - t0 < 2.0

    # on the wire: one sequence-number space with the audio, no holes or repeats
    seqs = [p.sequence_number for p in got.packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    audio_ssrc = {p.ssrc for p in got.packets if p.payload_type == 96}
    event_packets = [p for p in got.packets[:sent_at] if p.payload_type == 110]
    assert {p.ssrc for p in event_packets} == audio_ssrc
    by_event: dict[int, list[RtpPacket]] = {}
    for p in event_packets:
        by_event.setdefault(p.timestamp, []).append(p)
    assert len(by_event) == 6
    for (timestamp, packets), tone in zip(by_event.items(), "123#*0", strict=True):
        fields = [decode_event(p.payload) for p in packets]
        # 100 ms = 5 packets of 20 ms (the 5th has the end bit), then 2 repeats of the end
        assert [f[0] for f in fields] == [TONE_TO_CODE[tone]] * 7
        assert [p.marker for p in packets] == [1, 0, 0, 0, 0, 0, 0]
        assert [f[1] for f in fields] == [False] * 4 + [True] * 3
        assert [f[3] for f in fields] == [960, 1920, 2880, 3840, 4800, 4800, 4800]
        # consecutive on the wire, and the event starts on the audio timeline: it takes
        # the place of the audio packet that follows the previous one
        first = got.packets.index(packets[0])
        assert got.packets[first : first + 7] == packets
        previous = got.packets[first - 1]
        assert previous.payload_type == 96
        assert (timestamp - previous.timestamp) & 0xFFFFFFFF == 960

    # audio decodes during (in the gaps) and after the DTMF, no decoder errors
    during = [f for f in got.frames if t0 <= f[0] <= t1]
    after = [f for f in got.frames if f[0] > t1 + 0.2]
    assert len(during) >= 5
    assert len(after) >= 10
    sine_rms = 3000 / np.sqrt(2) / np.sqrt(2)  # Opus decodes to stereo at -3 dB per channel
    assert all(0.8 * sine_rms < rms < 1.2 * sine_rms for _, _, rms in after[2:])
    pts = [p for _, p, _ in got.frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert not [r for r in caplog.records if r.name.startswith("aiortc")]

    # the other direction works too (answerer sends)
    await asyncio.wait_for(DtmfSender(call.sender2).send("9D", duration_ms=60), 10)
    await asyncio.sleep(0.4)
    assert [e.tone for _, e in back.events] == ["9", "D"]
    assert [e.duration_ms for _, e in back.events] == [60, 60]


@pytest.mark.e2e
async def test_pcmu_call_uses_telephone_event_8000(
    call_factory: Callable[..., Awaitable[Call]],
) -> None:
    # a peer offering only PCMU and telephone-event/8000 (typical of a SIP gateway)
    call = await call_factory(edit_offer=keep_codecs("PCMU/8000", "telephone-event/8000"))
    answer = call.pc2.localDescription.sdp
    assert "a=rtpmap:0 PCMU/8000" in answer and "opus" not in answer
    assert te_lines(answer) == ["a=rtpmap:126 telephone-event/8000"]
    assert "a=fmtp:126 0-16" in answer
    got = await asyncio.wait_for(call.at2, 10)
    deadline = time.time() + 10
    while len(got.frames) < 10 and time.time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.wait_for(DtmfSender(call.sender1).send("5A", duration_ms=80, gap_ms=60), 10)
    await asyncio.sleep(0.4)
    assert [(e.tone, e.duration_ms) for _, e in got.events] == [("5", 80), ("A", 80)]
    assert {p.payload_type for p in got.packets} == {0, 126}
    events = [p for p in got.packets if p.payload_type == 126]
    assert [decode_event(p.payload)[3] for p in events[:6]] == [160, 320, 480, 640, 640, 640]


@pytest.mark.e2e
async def test_peer_without_telephone_event(call_factory: Callable[..., Awaitable[Call]]) -> None:
    call = await call_factory(prefer=["audio/opus"])
    assert te_lines(call.pc1.localDescription.sdp) == []
    assert te_lines(call.pc2.localDescription.sdp) == []
    for sender in (call.sender1, call.sender2):
        dtmf = DtmfSender(sender)
        assert not dtmf.can_insert_dtmf
        with pytest.raises(RuntimeError):
            await dtmf.send("1")


@pytest.mark.e2e
async def test_can_insert_dtmf_only_after_remote_description() -> None:
    pc1, pc2 = new_peer_connection(), new_peer_connection()
    try:
        dtmf1 = DtmfSender(pc1.addTrack(SineTrack(440.0)))
        dtmf2 = DtmfSender(pc2.addTrack(SineTrack(660.0)))
        await pc1.setLocalDescription(await pc1.createOffer())
        assert te_lines(pc1.localDescription.sdp)  # offered ...
        assert not dtmf1.can_insert_dtmf  # ... but not negotiated yet
        await pc2.setRemoteDescription(pc1.localDescription)
        assert dtmf2.can_insert_dtmf
        await pc2.setLocalDescription(await pc2.createAnswer())
        await pc1.setRemoteDescription(pc2.localDescription)
        assert dtmf1.can_insert_dtmf
    finally:
        await pc1.close()
        await pc2.close()


@pytest.mark.e2e
async def test_send_validates_arguments() -> None:
    pc = new_peer_connection()
    try:
        dtmf = DtmfSender(pc.addTrack(SineTrack(440.0)))
        for tones, duration, gap in (("1E", 100, 70), ("1,2", 100, 70), ("1", 39, 70)):
            with pytest.raises(ValueError):
                await dtmf.send(tones, duration, gap)
        with pytest.raises(ValueError):
            await dtmf.send("1", 100, 49)
        with pytest.raises(RuntimeError):  # valid, but nothing negotiated
            await dtmf.send("abcd#*")
    finally:
        await pc.close()


CHROMIUM_OFFER = """v=0
o=- 4215775240449105457 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS 5c1b1b1e-7a7c-4d43-9b0a-6f3f0c6a8e11
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Xq3a
a=ice-pwd:8Yx2+fVbJwGQ0m5H1bq4hC9p
a=ice-options:trickle
a=fingerprint:sha-256 4C:4B:5E:0F:36:41:1A:AA:56:6C:79:6E:50:6C:5A:A0:27:10:8D:7E:2E:4F:62:10:A8:34:1D:7B:24:80:96:BC
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:5c1b1b1e-7a7c-4d43-9b0a-6f3f0c6a8e11 0b0ad2c2-55a4-4fd5-8d4b-45c1c3f2e9a1
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3735928559 cname:k3Pz1yQ2oX7aB9cD
a=ssrc:3735928559 msid:5c1b1b1e-7a7c-4d43-9b0a-6f3f0c6a8e11 0b0ad2c2-55a4-4fd5-8d4b-45c1c3f2e9a1
"""


@pytest.mark.e2e
async def test_chromium_offer_keeps_telephone_event() -> None:
    pc = new_peer_connection()
    try:
        dtmf = DtmfSender(pc.addTrack(SineTrack(440.0)))
        offer = CHROMIUM_OFFER.replace("\n", "\r\n")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription.sdp
        m_line = next(line for line in answer.splitlines() if line.startswith("m=audio"))
        payload_types = m_line.split()[3:]
        assert payload_types[0] == "111"  # Opus stays the send codec, at Chromium's PT
        assert {"110", "126"} <= set(payload_types)
        assert "a=rtpmap:110 telephone-event/48000" in answer
        assert "a=rtpmap:126 telephone-event/8000" in answer
        assert "a=fmtp:110 0-16" in answer
        assert dtmf.can_insert_dtmf
        assert "a=sendrecv" in answer
    finally:
        await pc.close()


@pytest.mark.unit
def test_install_is_idempotent() -> None:
    import aiortc.codecs

    rfc4733.install()
    rfc4733.install()
    te = [c for c in aiortc.codecs.CODECS["audio"] if c.mimeType == "audio/telephone-event"]
    assert sorted((c.clockRate, c.payloadType) for c in te) == [(8000, 126), (48000, 110)]
    assert aiortc.codecs.CODECS["audio"][0].mimeType == "audio/opus"
