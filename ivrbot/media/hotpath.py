"""The per-packet work of aiortc 1.16 (pinned), made cheaper in one small, tested place.

Measured on a call through the gateway (py-spy, bots inside the gateway): of the server's
busy time, about 9 % went to handing every 20 ms audio frame to a thread pool to be encoded
(``run_in_executor``: a submit, a condition notify and a wake-up of the event loop, for an
Opus encode of ~0.1 ms), and ~2 % to the RFC 6465 audio level computed sample by sample in a
Python loop. Here audio frames are encoded on the event loop and the level is computed with
numpy; video (which ivrbot does not carry) keeps aiortc's way.

:func:`install` is idempotent; :func:`ivrbot.media.peer.new_peer_connection` calls it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from aiortc import rtcrtpsender, rtp
from aiortc.codecs import get_encoder
from av import AudioFrame
from av.frame import Frame

_installed = False
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
    data = await self._RTCRtpSender__track.recv()
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


def install() -> None:
    global _installed
    if _installed:
        return
    rtp.compute_audio_level_dbov = audio_level_dbov
    rtcrtpsender.RTCRtpSender._next_encoded_frame = _next_encoded_frame  # type: ignore[method-assign]
    _installed = True
