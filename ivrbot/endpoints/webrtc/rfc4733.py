"""RFC 4733 telephone-event (DTMF in RTP) for aiortc 1.16.

aiortc has no telephone-event support: its answers drop the codec (a browser then reports
``canInsertDTMF == false``), a received telephone-event packet reaches the audio decoder
thread, where ``get_decoder`` raises and ends the thread, and there is no DTMF sender.
:func:`install` (idempotent; :func:`ivrbot.endpoints.webrtc.peer.new_peer_connection` calls it)
patches exactly these places, all here:

1. ``aiortc.codecs.CODECS["audio"]``: telephone-event/48000 (payload type 110) and
   telephone-event/8000 (126), fmtp ``0-16``, appended after the real codecs so they are
   offered and kept in answers (aiortc matches codecs by MIME type and clock rate) but
   never chosen as the send codec.
2. ``RTCRtpReceiver.receive`` (wrapped): notes the receiver's negotiated telephone-event
   payload types.
3. ``RTCRtpReceiver._handle_rtp_packet`` (wrapped): telephone-event packets are decoded
   here and never reach the jitter buffer or the decoder. The diverted packets would
   leave holes in the sequence numbers, which aiortc's audio jitter buffer takes for loss
   (it stalls until its 16 slots overflow, then drops audio), so audio packets after a
   diverted packet are renumbered to close the holes. Such packets are also left out of
   the receiver's RTCP statistics.
4. ``aiortc.rtcrtpsender.RtpPacket``: replaced by a subclass whose ``serialize`` lets an
   active :class:`DtmfSender` turn an outgoing audio packet into a telephone-event
   packet. ``RTCRtpSender._run_rtp`` keeps its sequence number and timestamp counters in
   local variables; rewriting its packets just before serialisation is the one way to
   send DTMF on the audio SSRC with consistent sequence numbers and through its SRTP
   context without copying that method.
5. ``RTCRtpTransceiver.__init__`` (wrapped): remembers each sender's transceiver, so a
   :class:`DtmfSender` sees the negotiated codecs right after ``setRemoteDescription``.

Sending: like Chromium, audio is suppressed while an event is sent. Each audio packet of
the sender (one per 20 ms with aiortc's encoders) is replaced by an event packet: same
SSRC and sequence number, the negotiated telephone-event payload type, the timestamp of
the event's first packet, a duration covering the audio replaced so far, the marker bit
on the first packet; the last packet (end bit) goes three times, 20 ms apart. Audio
resumes during the gap between tones. The event clock is the audio codec's rate when a
telephone-event codec with that rate was negotiated, else 48000, else 8000; durations
are in that clock, timestamps always in the audio clock (the stream's clock).

Receiving: one :class:`DtmfEvent` per key press. Packets with the timestamp of an event
already reported are ignored (the repeated end packets, late packets). An event whose end
packets were all lost is reported when a packet of a newer event arrives or 200 ms after
its last packet, with the longest duration seen.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import struct
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiortc.codecs
import aiortc.rtcrtpsender
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from ivrbot.endpoints.webrtc import hotpath

logger = logging.getLogger(__name__)

MIME_TYPE = "audio/telephone-event"
PAYLOAD_TYPE_48000 = 110
PAYLOAD_TYPE_8000 = 126

TONE_TO_CODE: dict[str, int] = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
CODE_TO_TONE: dict[int, str] = {code: tone for tone, code in TONE_TO_CODE.items()}

DEFAULT_VOLUME = 10  # -10 dBm0, as docs/spec/dtmf.md and WebRTC use
MIN_DURATION_MS = 40
MAX_DURATION_MS = 1300  # fits the 16-bit duration field at 48 kHz
MIN_GAP_MS = 50
LOST_END_TIMEOUT = 0.2  # seconds without packets that end an event whose end was lost
STALL_TIMEOUT = 2.0  # seconds without outgoing audio packets before send() gives up


def tone_to_code(tone: str) -> int:
    """Event code of a DTMF tone (``0-9 * # A-D``, case-insensitive)."""
    try:
        return TONE_TO_CODE[tone.upper()]
    except KeyError:
        raise ValueError(f"not a DTMF tone: {tone!r}") from None


def code_to_tone(code: int) -> str:
    """DTMF tone of an event code 0-15."""
    try:
        return CODE_TO_TONE[code]
    except KeyError:
        raise ValueError(f"not a DTMF event code: {code}") from None


def encode_event(code: int, end: bool, volume: int, duration: int) -> bytes:
    """The 4-byte telephone-event payload (RFC 4733 section 2.3)."""
    if not 0 <= code <= 255:
        raise ValueError(f"event code out of range: {code}")
    if not 0 <= volume <= 63:
        raise ValueError(f"volume out of range: {volume}")
    if not 0 <= duration <= 0xFFFF:
        raise ValueError(f"duration out of range: {duration}")
    return struct.pack("!BBH", code, (0x80 if end else 0) | volume, duration)


def decode_event(payload: bytes) -> tuple[int, bool, int, int]:
    """``(code, end, volume, duration)`` of a telephone-event payload.

    Only the first event of the payload is read; the reserved bit is ignored.
    """
    if len(payload) < 4:
        raise ValueError(f"telephone-event payload too short: {len(payload)} bytes")
    code, flags, duration = struct.unpack_from("!BBH", payload)
    return code, bool(flags & 0x80), flags & 0x3F, duration


@dataclass(frozen=True)
class DtmfEvent:
    tone: str
    duration_ms: int
    volume: int  # power level as sent: 0..63, meaning 0..-63 dBm0


def _is_telephone_event(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower() == MIME_TYPE


# --- receiving -----------------------------------------------------------------------------


class _SequenceCompactor:
    """Renumbers the audio packets so that diverted event packets leave no holes."""

    def __init__(self) -> None:
        self._removed: deque[int] = deque()  # recently removed sequence numbers
        self._base = 0  # removed packets older than everything still expected

    def remove(self, seq: int) -> None:
        self._removed.append(seq)

    def renumber(self, seq: int) -> int:
        removed = self._removed
        while removed and 512 < ((seq - removed[0]) & 0xFFFF) < 0x8000:
            removed.popleft()
            self._base += 1
        shift = self._base + sum(1 for r in removed if 0 < ((seq - r) & 0xFFFF) < 0x8000)
        return (seq - shift) & 0xFFFF


@dataclass
class _PendingEvent:
    timestamp: int
    code: int
    clock_rate: int
    volume: int
    duration: int = 0  # longest duration seen in the current segment
    previous: int = 0  # duration of earlier segments of a long event


class _EventTracker:
    """Turns a stream of telephone-event packets into one :class:`DtmfEvent` per press."""

    def __init__(
        self,
        emit: Callable[[DtmfEvent], None],
        begin: Callable[[DtmfEvent], None] | None = None,
    ) -> None:
        self._emit = emit
        self._begin = begin  # told at a press's first packet (its duration still unknown)
        self._pending: dict[int, _PendingEvent] = {}  # by SSRC
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._reported: dict[int, deque[int]] = {}  # recent event timestamps, by SSRC

    def packet(self, ssrc: int, timestamp: int, clock_rate: int, payload: bytes) -> None:
        try:
            code, end, volume, duration = decode_event(payload)
        except ValueError:
            return
        reported = self._reported.setdefault(ssrc, deque(maxlen=32))
        if timestamp in reported:
            return  # a repeated end packet or a late packet of a finished event
        pending = self._pending.get(ssrc)
        if pending is not None and pending.timestamp != timestamp:
            if pending.code == code and pending.duration >= 0xFF00:
                # RFC 4733 2.5.1.3: a long event continues in a new segment.
                reported.append(pending.timestamp)
                pending.previous += pending.duration
                pending.timestamp, pending.duration = timestamp, 0
            else:
                self._finish(ssrc)  # its end packets were lost
                pending = None
        if pending is None:
            pending = _PendingEvent(timestamp, code, clock_rate, volume)
            self._pending[ssrc] = pending
            tone = CODE_TO_TONE.get(code)
            if tone is not None and self._begin is not None and pending.previous == 0:
                self._begin(DtmfEvent(tone, 0, volume))
        pending.duration = max(pending.duration, duration)
        pending.volume = volume
        if end:
            self._finish(ssrc)
        else:
            self._arm_timer(ssrc)

    def close(self) -> None:
        """Cancel the lost-end timers and drop pending events (the receiver is gone)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
        self._reported.clear()

    def _arm_timer(self, ssrc: int) -> None:
        timer = self._timers.pop(ssrc, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[ssrc] = loop.call_later(LOST_END_TIMEOUT, self._finish, ssrc)

    def _finish(self, ssrc: int) -> None:
        timer = self._timers.pop(ssrc, None)
        if timer is not None:
            timer.cancel()
        pending = self._pending.pop(ssrc, None)
        if pending is None:
            return
        self._reported.setdefault(ssrc, deque(maxlen=32)).append(pending.timestamp)
        tone = CODE_TO_TONE.get(pending.code)
        if tone is None:
            return  # not a DTMF event (e.g. 16, flash)
        total = pending.previous + pending.duration
        self._emit(DtmfEvent(tone, round(total * 1000 / pending.clock_rate), pending.volume))


class _ReceiverState:
    def __init__(self) -> None:
        self.clock_rates: dict[int, int] = {}  # telephone-event payload type -> clock rate
        self.callbacks: list[_Callback] = []  # told when a press ends
        self.begin_callbacks: list[_Callback] = []  # told when a press begins
        self.compactor = _SequenceCompactor()
        self.tracker = _EventTracker(self._emit, self._emit_begin)

    def _emit(self, event: DtmfEvent) -> None:
        self._call(self.callbacks, event)

    def _emit_begin(self, event: DtmfEvent) -> None:
        self._call(self.begin_callbacks, event)

    @staticmethod
    def _call(callbacks: list[_Callback], event: DtmfEvent) -> None:
        for ref in list(callbacks):
            callback = ref()
            if callback is None:
                continue
            try:
                callback(event)
            except Exception:
                logger.exception("telephone-event callback failed")


class _StrongRef:
    """A plain function kept as it is (a lambda or closure would die at once if held weakly)."""

    def __init__(self, callback: Callable[[DtmfEvent], None]) -> None:
        self._callback = callback

    def __call__(self) -> Callable[[DtmfEvent], None]:
        return self._callback


_Callback = weakref.WeakMethod[Callable[[DtmfEvent], None]] | _StrongRef

# Per-receiver state, keyed weakly. A bound-method callback (the leg or call owning the
# receiver) is held weakly too: a strong one would keep the receiver's own owner, and so the
# receiver, alive from this module-level table, and no entry would ever expire. Owners still
# call :func:`release` when they close, so nothing waits for a garbage collection.
_receivers: weakref.WeakKeyDictionary[RTCRtpReceiver, _ReceiverState] = weakref.WeakKeyDictionary()


def _receiver_state(receiver: RTCRtpReceiver) -> _ReceiverState:
    state = _receivers.get(receiver)
    if state is None:
        state = _receivers[receiver] = _ReceiverState()
    return state


def on_telephone_event(
    receiver: RTCRtpReceiver, callback: Callable[[DtmfEvent], None], at_begin: bool = False
) -> None:
    """Call ``callback`` on the event loop once per key press received on ``receiver``: when
    the press ends (with its duration), or with ``at_begin`` at its first packet (duration 0:
    a gateway forwarding keys saves the length of the press).

    A bound method is held weakly (it does not keep its object alive); call :func:`release`
    when the receiver's peer connection closes."""
    install()
    ref: _Callback
    if inspect.ismethod(callback):
        ref = weakref.WeakMethod(callback)
    else:
        ref = _StrongRef(callback)
    state = _receiver_state(receiver)
    (state.begin_callbacks if at_begin else state.callbacks).append(ref)


def release(receiver: RTCRtpReceiver) -> None:
    """Forget ``receiver``: its callbacks, pending events and timers (idempotent)."""
    state = _receivers.pop(receiver, None)
    if state is not None:
        state.callbacks.clear()
        state.begin_callbacks.clear()
        state.tracker.close()


def release_peer(pc: RTCPeerConnection) -> None:
    """Forget every receiver and sender of a closed peer connection (idempotent)."""
    for transceiver in pc.getTransceivers():
        release(transceiver.receiver)
        _transceivers.pop(transceiver.sender, None)


def tracked() -> tuple[int, int]:
    """How many receivers and senders this module knows (to check nothing is kept)."""
    return len(_receivers), len(_transceivers)


# --- sending -------------------------------------------------------------------------------


class _Transmission:
    """One :meth:`DtmfSender.send`: rewrites the sender's audio packets into events."""

    def __init__(
        self,
        codes: list[int],
        duration_ms: int,
        gap_ms: int,
        audio: RTCRtpCodecParameters,
        event: RTCRtpCodecParameters,
        done: asyncio.Future[None],
    ) -> None:
        assert audio.payloadType is not None and event.payloadType is not None
        self._codes = deque(codes)
        self._audio_pt = audio.payloadType
        self._audio_rate = audio.clockRate
        self._event_pt = event.payloadType
        self._event_rate = event.clockRate
        self._duration = duration_ms * audio.clockRate // 1000  # in audio clock units
        self._gap = gap_ms * audio.clockRate // 1000
        self._frame = audio.clockRate // 50  # audio per packet, measured as packets pass
        self._last_ts: int | None = None
        self._next_start: int | None = None  # audio timestamp the next tone may start at
        self._in_tone = False
        self._code = 0
        self._event_ts = 0
        self._end_payload = b""
        self._ends_left = 0
        self.done = done
        self.packets_seen = 0

    def rewrite(self, packet: RtpPacket) -> None:
        if packet.payload_type != self._audio_pt or self.done.done():
            return
        self.packets_seen += 1
        ts = packet.timestamp
        if self._last_ts is not None:
            step = (ts - self._last_ts) & 0xFFFFFFFF
            if 0 < step <= self._audio_rate // 10:
                self._frame = step
        self._last_ts = ts

        if self._ends_left:
            self._send_event(packet, self._end_payload, marker=False)
            self._ends_left -= 1
            if not self._ends_left and not self._codes:
                self.done.set_result(None)
            return
        first = not self._in_tone
        if first:
            if self._next_start is not None and ((ts - self._next_start) & 0xFFFFFFFF) >= 1 << 31:
                return  # still in the gap: the audio packet goes out unchanged
            self._code = self._codes.popleft()
            self._event_ts = ts
            self._in_tone = True
        elapsed = ((ts - self._event_ts) & 0xFFFFFFFF) + self._frame
        end = elapsed >= self._duration
        duration = min(elapsed * self._event_rate // self._audio_rate, 0xFFFF)
        payload = encode_event(self._code, end, DEFAULT_VOLUME, duration)
        self._send_event(packet, payload, marker=first)
        if end:
            self._in_tone = False
            self._end_payload = payload
            self._ends_left = 2
            self._next_start = (self._event_ts + elapsed + self._gap) & 0xFFFFFFFF

    def _send_event(self, packet: RtpPacket, payload: bytes, marker: bool) -> None:
        packet.payload_type = self._event_pt
        packet.timestamp = self._event_ts
        packet.marker = 1 if marker else 0
        packet.payload = payload
        packet.extensions.audio_level = None


# The DTMF sends in progress, by sender SSRC. Process-wide, as the aiortc packet class that
# finds them (the packet knows its SSRC only); an entry lives as long as its send.
_transmissions: dict[int, _Transmission] = {}


class _SenderRtpPacket(RtpPacket):
    """The packet class ``RTCRtpSender._run_rtp`` builds: offers itself to a DTMF send."""

    def serialize(self, extensions_map: HeaderExtensionsMap = HeaderExtensionsMap()) -> bytes:  # noqa: B008
        transmission = _transmissions.get(self.ssrc)
        if transmission is not None:
            transmission.rewrite(self)
        return super().serialize(extensions_map)


# Each sender's transceiver (aiortc gives a sender no way to it), noted by the patched
# RTCRtpTransceiver.__init__: process-wide as that patch, held weakly.
_transceivers: weakref.WeakKeyDictionary[RTCRtpSender, weakref.ref[RTCRtpTransceiver]] = (
    weakref.WeakKeyDictionary()
)


def _parse_tones(tones: str) -> list[int]:
    return [tone_to_code(t) for t in tones]


class DtmfSender:
    """Sends RFC 4733 DTMF on an audio :class:`RTCRtpSender` (see the module docstring)."""

    def __init__(self, sender: RTCRtpSender) -> None:
        if sender.kind != "audio":
            raise ValueError("DTMF needs an audio sender")
        install()
        self._sender = sender
        self._lock = asyncio.Lock()

    def _codecs(self) -> tuple[RTCRtpCodecParameters, RTCRtpCodecParameters] | None:
        """The negotiated (audio, telephone-event) codecs, or None."""
        ref = _transceivers.get(self._sender)
        transceiver = ref() if ref is not None else None
        if transceiver is None or transceiver.stopped or not _may_send(transceiver):
            return None
        codecs = transceiver._codecs
        if not codecs or _is_telephone_event(codecs[0]):
            return None
        audio = codecs[0]
        events = [c for c in codecs if _is_telephone_event(c)]
        for wanted in (audio.clockRate, 48000, 8000):
            for codec in events:
                if codec.clockRate == wanted:
                    return audio, codec
        return (audio, events[0]) if events else None

    @property
    def can_insert_dtmf(self) -> bool:
        """Whether telephone-event was negotiated for this sender (after the remote SDP)."""
        return self._codecs() is not None

    async def send(self, tones: str, duration_ms: int = 100, gap_ms: int = 70) -> None:
        """Send ``tones`` (``0-9 * # A-D``); returns once the last end packet went out.

        Concurrent calls are queued. Raises ValueError for bad arguments, RuntimeError when
        telephone-event was not negotiated or the sender has no track, ConnectionError when
        no audio packets go out for ``STALL_TIMEOUT`` seconds.
        """
        codes = _parse_tones(tones)
        if not MIN_DURATION_MS <= duration_ms <= MAX_DURATION_MS:
            raise ValueError(
                f"duration_ms must be {MIN_DURATION_MS}..{MAX_DURATION_MS}, not {duration_ms}"
            )
        if gap_ms < MIN_GAP_MS:
            raise ValueError(f"gap_ms must be at least {MIN_GAP_MS}, not {gap_ms}")
        if not codes:
            return
        async with self._lock:
            negotiated = self._codecs()
            if negotiated is None:
                raise RuntimeError("telephone-event is not negotiated on this sender")
            if self._sender.track is None:
                raise RuntimeError("the sender has no track, so no RTP goes out")
            audio, event = negotiated
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            transmission = _Transmission(codes, duration_ms, gap_ms, audio, event, done)
            ssrc = self._sender._ssrc
            _transmissions[ssrc] = transmission
            try:
                seen = -1
                while not done.done():
                    if transmission.packets_seen == seen:
                        raise ConnectionError("no audio packets are going out on this sender")
                    seen = transmission.packets_seen
                    await asyncio.wait([done], timeout=STALL_TIMEOUT)
            finally:
                if _transmissions.get(ssrc) is transmission:
                    del _transmissions[ssrc]


def _may_send(transceiver: RTCRtpTransceiver) -> bool:
    """Whether the remote description was applied and lets this transceiver send."""
    sending = ("sendrecv", "sendonly")
    if transceiver.currentDirection is not None:
        return transceiver.currentDirection in sending
    offered = transceiver._offerDirection  # set by setRemoteDescription(offer)
    return offered in sending and transceiver.direction in sending


# --- install -------------------------------------------------------------------------------

_installed = False  # aiortc's classes patched: once per process


def install() -> None:
    """Register telephone-event with aiortc (idempotent); see the module docstring."""
    global _installed
    if _installed:
        return
    _installed = True
    hotpath.install()  # the receive path this module wraps: aiortc's, with inline decoding

    audio_codecs = aiortc.codecs.CODECS["audio"]
    for payload_type, rate in ((PAYLOAD_TYPE_48000, 48000), (PAYLOAD_TYPE_8000, 8000)):
        if not any(_is_telephone_event(c) and c.clockRate == rate for c in audio_codecs):
            audio_codecs.append(
                RTCRtpCodecParameters(
                    mimeType=MIME_TYPE,
                    clockRate=rate,
                    channels=1,
                    payloadType=payload_type,
                    parameters={"0-16": None},
                )
            )

    original_receive = RTCRtpReceiver.receive
    original_handle = RTCRtpReceiver._handle_rtp_packet
    original_transceiver_init = RTCRtpTransceiver.__init__

    @functools.wraps(original_receive)
    async def receive(self: RTCRtpReceiver, parameters: RTCRtpReceiveParameters) -> None:
        rates = {
            c.payloadType: c.clockRate
            for c in parameters.codecs
            if _is_telephone_event(c) and c.payloadType is not None
        }
        if rates:
            _receiver_state(self).clock_rates.update(rates)
        await original_receive(self, parameters)

    @functools.wraps(original_handle)
    async def handle_rtp_packet(
        self: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int
    ) -> None:
        state = _receivers.get(self)
        if state is not None and state.clock_rates:
            rate = state.clock_rates.get(packet.payload_type)
            if rate is not None:
                if self._enabled:
                    state.compactor.remove(packet.sequence_number)
                    state.tracker.packet(packet.ssrc, packet.timestamp, rate, packet.payload)
                return
            packet.sequence_number = state.compactor.renumber(packet.sequence_number)
        await original_handle(self, packet, arrival_time_ms)

    @functools.wraps(original_transceiver_init)
    def transceiver_init(self: RTCRtpTransceiver, *args: Any, **kwargs: Any) -> None:
        original_transceiver_init(self, *args, **kwargs)
        _transceivers[self.sender] = weakref.ref(self)

    RTCRtpReceiver.receive = receive  # type: ignore[method-assign]
    RTCRtpReceiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    RTCRtpTransceiver.__init__ = transceiver_init  # type: ignore[method-assign]
    aiortc.rtcrtpsender.RtpPacket = _SenderRtpPacket  # type: ignore[misc]
