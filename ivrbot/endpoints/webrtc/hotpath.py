"""The per-packet work of aiortc 1.16 (pinned), made cheaper in one small, tested place.

Measured on a call through the gateway (py-spy, bots inside the gateway): of the server's
busy time, about 9 % went to handing every 20 ms audio frame to a thread pool to be encoded
(``run_in_executor``: a submit, a condition notify and a wake-up of the event loop, for an
Opus encode of ~0.1 ms), and ~2 % to the RFC 6465 audio level computed sample by sample in a
Python loop. Received audio took the same detour the other way: each receiver had its own
decoder thread, and every 20 ms packet crossed to it through a ``queue.Queue`` and came back
through ``run_coroutine_threadsafe`` (a task and a wake-up of the loop per frame), ~10 % of
the busy time for an Opus decode of ~0.05 ms. Here audio frames are encoded and decoded on
the event loop and the level is computed with numpy; video (which ivrbot does not carry)
keeps aiortc's way.

Pre-encoded frames: a sender whose track has ``recv_wire`` (``OutboundAudio``) is given the
frames that are a cached prompt's alone or silence as payloads encoded once
(:mod:`ivrbot.media.wire_prompt`): no encoder, no resampler, no level computed. Such a
sender stamps every frame from the track's own 48 kHz pts (the pacer's), whether encoded
here or not, so RTP timestamps run on across switches (aiortc numbers the packets); the
Opus encoder starts afresh after pre-encoded frames (its state would be of audio from
before them). The receiver skips decoding G.711 silence, and Opus silence packets that
repeat the one just decoded, handing on silent frames instead.

:func:`install` is idempotent; :func:`ivrbot.endpoints.webrtc.rfc4733.install` calls it first (it wraps
the receive path installed here), and every peer connection is made after that.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import threading
from typing import Any

import av
import numpy as np
from aiortc import rtcrtpreceiver, rtcrtpsender, rtp
from aiortc.codecs import get_decoder, get_encoder
from aiortc.jitterbuffer import JitterBuffer
from av import AudioFrame
from av.frame import Frame

from ivrbot.media.frames import WIRE_SAMPLES, frame_from_pcm
from ivrbot.media.wire_prompt import SILENCE, silence_payload, tag_frame

log = logging.getLogger(__name__)
_installed = False  # aiortc's classes patched: once per process
# Process-wide, as the aiortc code it changes (every sender and receiver of the process,
# the Phones' too); set once at start-up by process_setup.configure_media (set_preencode).
PREENCODE = True
"""Send cached prompts and silence pre-encoded, skip decoding repeated silence (default);
``IVRBOT_PREENCODE=0`` (Settings.preencode) encodes and decodes every frame (to compare,
or to rule it out)."""
GATEWAY_PREFETCH = 1
"""The default of the audio frames aiortc's receive buffer waits for before it hands one
on, on the gateway's legs (aiortc's own: 4, 80 ms at 20 ms a frame; each frame waits for
the next packet in any case). The gateway re-paces what it forwards (its outbound tracks)
and its bots only listen, so holding frames back there only delays every key and every
end of speech. A gateway's legs take ``IVRBOT_JITTER_PREFETCH`` (Settings.jitter_prefetch)
from its :class:`~ivrbot.endpoints.kinds.MediaEndpoints`."""


def set_preencode(on: bool) -> None:
    """Pre-encoded prompts and silence on (the default) or off, for the whole process."""
    global PREENCODE
    PREENCODE = on


_MIN_LEVEL = -127
aiortc_audio_level_dbov = rtp.compute_audio_level_dbov  # the original, for comparison


def audio_level_dbov(frame: AudioFrame) -> int:
    """RFC 6465 Appendix A, as aiortc's ``compute_audio_level_dbov``, vectorised."""
    samples = np.frombuffer(bytes(frame.planes[0]), dtype=np.int16)
    if frame.samples == 0 or samples.size == 0:
        return _MIN_LEVEL
    wide = samples.astype(np.float64)
    rms = math.sqrt(float(np.dot(wide, wide)) / (frame.samples * 32767.0 * 32767.0))
    if rms <= 0:
        return _MIN_LEVEL
    return round(min(max(20 * math.log10(rms), _MIN_LEVEL), 0))


async def _next_encoded_frame(self: Any, codec: Any) -> Any:
    """aiortc 1.16's ``RTCRtpSender._next_encoded_frame``, encoding audio inline."""
    track = self._RTCRtpSender__track
    recv_wire = getattr(track, "recv_wire", None) if PREENCODE else None
    if recv_wire is not None:
        return _wire_frame(self, codec, await recv_wire(codec.name))
    data = await track.recv()
    if not self._enabled:
        return None
    if self._RTCRtpSender__encoder is None:
        self._RTCRtpSender__encoder = get_encoder(codec)
    encoder = self._RTCRtpSender__encoder
    audio_level: Any = None
    if isinstance(data, AudioFrame):
        audio_level = rtp.compute_audio_level_dbov(data)
        payloads, timestamp = encoder.encode(data, False)
    elif isinstance(data, Frame):
        force_keyframe = self._RTCRtpSender__force_keyframe
        self._RTCRtpSender__force_keyframe = False
        payloads, timestamp = await self._RTCRtpSender__loop.run_in_executor(
            None, encoder.encode, data, force_keyframe
        )
    else:
        payloads, timestamp = encoder.pack(data)
    if not payloads:
        return None
    return rtcrtpsender.RTCEncodedFrame(payloads, timestamp, audio_level)


_ZEROS = np.zeros(WIRE_SAMPLES, np.int16)


class _WireState:
    """Per sender: whether the last frame went out pre-encoded, and the timestamp stamped."""

    __slots__ = ("last", "offset", "preencoded")

    def __init__(self) -> None:
        self.preencoded = False
        self.last: int | None = None
        self.offset = 0


def _wire_frame(self: Any, codec: Any, data: Any) -> Any:
    """One frame from ``recv_wire`` (a ``WirePacket`` or an ``AudioFrame``) as aiortc's
    ``RTCEncodedFrame``, timestamped from its pts."""
    if not self._enabled:
        return None
    state: _WireState | None = getattr(self, "_ivrbot_wire", None)
    if state is None:
        state = self._ivrbot_wire = _WireState()
    step = codec.clockRate // 50
    timestamp = data.pts * codec.clockRate // 48000 + state.offset
    if state.last is not None and timestamp - state.last not in range(1, 1 << 30):
        state.offset += state.last + step - timestamp  # a new track's pts start again at 0
        timestamp = state.last + step
    state.last = timestamp
    if not isinstance(data, AudioFrame):  # pre-encoded
        state.preencoded = True
        return rtcrtpsender.RTCEncodedFrame([data.payload], timestamp, data.level)
    encoder = self._RTCRtpSender__encoder
    if encoder is None or (state.preencoded and codec.name == "opus"):
        encoder = self._RTCRtpSender__encoder = get_encoder(codec)
        if codec.name != "opus":  # fill its resampler's delay now: a payload every frame
            encoder.encode(frame_from_pcm(_ZEROS, (data.pts or 0) - _ZEROS.size), False)
    state.preencoded = False
    audio_level = rtp.compute_audio_level_dbov(data)
    payloads, _ = encoder.encode(data, False)
    if not payloads:
        return None
    return rtcrtpsender.RTCEncodedFrame(payloads, timestamp, audio_level)


class InlineDecoder:
    """Stands for an audio receiver's decoder queue *and* its decoder thread: ``put`` decodes
    the encoded frame at once, on the event loop, and hands the frames to the track; ``None``
    ends the track (as aiortc's worker does when the receiver stops); ``join`` has no thread
    to wait for."""

    def __init__(self, output: asyncio.Queue[Any], decode_error: threading.Event) -> None:
        self._output = output
        self._decode_error = decode_error
        self._codec_name: str | None = None
        self._decoder: Any = None
        self._silence: bytes | None = None
        self._after_silence = False  # the last packet decoded was the silence payload

    def put(self, task: tuple[Any, Any] | None) -> None:
        if task is None:
            self._output.put_nowait(None)
            self._decoder = None
            return
        codec, encoded_frame = task
        if codec.name != self._codec_name:
            self._decoder = get_decoder(codec)
            self._codec_name = codec.name
            self._silence = silence_payload(codec.name)
        if PREENCODE and encoded_frame.data == self._silence and self._silent_state(codec.name):
            self._output.put_nowait(_silent_frame(codec.name, encoded_frame.timestamp))
            return
        try:
            frames = self._decoder.decode(encoded_frame)
        except av.FFmpegError as exc:  # keep the decoder's state, as aiortc does
            log.warning("failed to decode a %s audio frame: %s", codec.name, exc)
            self._decode_error.set()
            return
        self._after_silence = encoded_frame.data == self._silence
        for frame in frames:
            self._output.put_nowait(frame)

    def _silent_state(self, codec_name: str) -> bool:
        """A silence payload may skip the decoder: G.711 has no state; an Opus decoder that
        has just decoded silence is left as it was (one more silent frame would change it
        no further than a frame of its own silence)."""
        return codec_name != "opus" or self._after_silence

    def join(self) -> None:
        """Nothing runs apart: stopping needs no wait."""


_SILENT = {
    "opus": (np.zeros((1, 1920), np.int16), "stereo", 48000),  # as aiortc's Opus decoder gives
    "PCMU": (np.zeros((1, 160), np.int16), "mono", 8000),
    "PCMA": (np.zeros((1, 160), np.int16), "mono", 8000),
}


def _silent_frame(codec_name: str, timestamp: int) -> AudioFrame:
    samples, layout, rate = _SILENT[codec_name]
    frame = AudioFrame.from_ndarray(samples, format="s16", layout=layout)
    frame.sample_rate = rate
    frame.pts = timestamp
    frame.time_base = fractions.Fraction(1, rate)
    tag_frame(frame, SILENCE)  # bridged on, it goes out as a silence payload again
    return frame


_aiortc_receive = rtcrtpreceiver.RTCRtpReceiver.receive


async def _receive(self: Any, parameters: Any) -> None:
    """aiortc 1.16's ``RTCRtpReceiver.receive``, with an inline decoder for audio."""
    if self._RTCRtpReceiver__kind != "audio" or self._RTCRtpReceiver__started:
        await _aiortc_receive(self, parameters)
        return
    inline = InlineDecoder(self._track._queue, self._RTCRtpReceiver__decoder_error)
    self._RTCRtpReceiver__decoder_queue = inline
    for codec in parameters.codecs:
        self._RTCRtpReceiver__codecs[codec.payloadType] = codec
    for encoding in parameters.encodings:
        if encoding.rtx:
            self._RTCRtpReceiver__rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
    self._RTCRtpReceiver__decoder_thread = inline  # truthy: packets are decoded
    self._RTCRtpReceiver__transport._register_rtp_receiver(self, parameters)
    self._RTCRtpReceiver__rtcp_task = asyncio.ensure_future(self._run_rtcp())
    self._RTCRtpReceiver__started = True


def hold_back(receiver: Any, frames: int) -> None:
    """Make an audio receiver hand on each frame once ``frames`` more have arrived (see
    GATEWAY_PREFETCH); before its first packet (the buffer is replaced)."""
    receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=16, prefetch=frames)


def install() -> None:
    """Patch aiortc's per-packet path (once per process: the patch is to aiortc's classes)."""
    global _installed
    if _installed:
        return
    rtp.compute_audio_level_dbov = audio_level_dbov
    rtcrtpsender.RTCRtpSender._next_encoded_frame = _next_encoded_frame  # type: ignore[method-assign]
    rtcrtpreceiver.RTCRtpReceiver.receive = _receive  # type: ignore[method-assign]
    _installed = True
