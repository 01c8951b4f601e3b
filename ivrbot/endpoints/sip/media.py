"""A SIP call's audio, as PCM frames: PJSIP's conference bridge pulls and pushes 20 ms frames
on its media clock thread (an ``AudioMediaPort``); the event loop reads and writes them as a
paced track. They meet in two bounded deques (appends and pops are thread-safe), so neither
side ever waits for the other."""

from __future__ import annotations

import collections
import ctypes
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import av
import numpy as np
import pjsua2 as pj
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ivrbot.media.frames import Downsampler, frame_from_pcm
from ivrbot.media.tracks import Pacer

log = logging.getLogger(__name__)

RATE = 16000  # the conference bridge's clock (G.722 is 16 kHz; G.711 is resampled by PJSIP)
SAMPLES = RATE // 50
FRAME_BYTES = SAMPLES * 2
MAX_QUEUED = 5  # frames (100 ms): older audio is dropped when a side falls behind
SILENCE = bytes(FRAME_BYTES)


F = TypeVar("F", bound=Callable[..., None])


def guarded(callback: F) -> F:
    """A PJSIP callback that never lets an exception reach PJSIP (it would abort), and logs
    it without its traceback: frames holding PJSIP objects must not outlive the call."""

    @functools.wraps(callback)
    def run(*args: Any) -> None:
        try:
            callback(*args)
        except Exception as exc:
            log.error("SIP %s failed: %s: %s", callback.__name__, type(exc).__name__, exc)

    return run  # type: ignore[return-value]


def vector_bytes(vector: pj.ByteVector) -> bytes:
    """The bytes of a PJSIP ``ByteVector`` (a ``std::vector<unsigned char>``), copied at
    once from its buffer: iterating it element by element costs ~1.6 ms per 20 ms frame."""
    size = int(vector.size())
    if size == 0:
        return b""
    begin = ctypes.c_void_p.from_address(int(vector.this)).value  # the vector's data()
    return ctypes.string_at(begin, size) if begin else b""


class CallAudio:
    """The two queues of a call's audio, 20 ms of 16 kHz PCM each: what the caller says
    (``heard``) and what the caller is sent (``to_say``). The event loop holds these, never
    the PJSIP port itself: a port must die on the stack's thread, before PJSIP does."""

    def __init__(self) -> None:
        self.heard: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)
        self.to_say: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)


class CallPort(pj.AudioMediaPort):
    """The call's end of the bridge, on PJSIP's media clock thread: frames it receives go
    to ``audio.heard``, frames it is asked for come from ``audio.to_say``."""

    def __init__(self, audio: CallAudio) -> None:
        super().__init__()
        self.heard = audio.heard
        self.to_say = audio.to_say

    def create(self, name: str) -> None:
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, 20000, 16)
        self.createPort(name, fmt)

    @guarded
    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        data = self.to_say.popleft() if self.to_say else SILENCE
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(data)
        frame.size = len(data)

    @guarded
    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO:
            data = vector_bytes(frame.buf)
            if len(data) == FRAME_BYTES:
                self.heard.append(data)


class HeardTrack(MediaStreamTrack):
    """What the SIP caller says, as a paced 20 ms track (silence when nothing came)."""

    kind = "audio"

    def __init__(self, audio: CallAudio) -> None:
        super().__init__()
        self.heard = audio.heard
        self._pacer = Pacer(RATE, SAMPLES)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        data = self.heard.popleft() if self.heard else SILENCE
        return frame_from_pcm(np.frombuffer(data, np.int16), pts, RATE)


class SaySink:
    """Frames the gateway sends the SIP caller: to 16 kHz, then queued for the bridge."""

    def __init__(self, audio: CallAudio) -> None:
        self.to_say = audio.to_say
        self._down = Downsampler(RATE)
        self._rest = np.zeros(0, np.int16)

    def __call__(self, frame: av.AudioFrame) -> None:
        pcm = np.concatenate((self._rest, self._down.convert(frame)))
        while pcm.size >= SAMPLES:
            self.to_say.append(pcm[:SAMPLES].tobytes())
            pcm = pcm[SAMPLES:]
        self._rest = pcm
