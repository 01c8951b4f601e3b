"""What a bot hears on a call: keypad presses (both ways, de-duplicated) and speech audio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import av
import numpy as np

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.media.dtmf import DtmfDetector
from ivrbot.media.frames import LISTEN_RATE, Downsampler
from ivrbot.media.hold import HoldState
from ivrbot.media.wire_prompt import SILENCE, frame_tag

DUPLICATE_WINDOW_S = 0.4  # one press heard as RFC 4733 and as in-band tones counts once


class Listener:
    """Frames in; ``presses`` (digit, method) and ``speech`` (16 kHz PCM chunks) out.

    Speech audio is only queued while ``listening_for_speech`` is set, so a call costs no
    recogniser work outside an Ask. While the call is on hold (``hold``: the bot's side
    holds, or the far end) what arrives is not the caller: it reaches neither the key
    detector, nor the speech queue, nor the taps (the gateway sends a bot silence on hold;
    this also keeps out music on hold from a gateway that sends it anyway, and the frames
    in flight when the hold began).
    """

    def __init__(self, clock: Clock = REAL_CLOCK) -> None:
        self.clock = clock  # the hold's waits; the window within which a press is a twin
        self.hold = HoldState("listener", clock)
        self._down: Downsampler | None = Downsampler(LISTEN_RATE)
        self._detector = DtmfDetector(LISTEN_RATE)
        self.presses: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.speech: asyncio.Queue[np.ndarray] = asyncio.Queue(maxsize=500)
        self.listening_for_speech = False
        self.taps: list[Callable[[np.ndarray], None]] = []  # e.g. answering-machine detection
        self._recent: list[tuple[float, str, str]] = []  # (time, digit, method)
        self._was_silent = False

    def on_frame(self, frame: av.AudioFrame) -> None:
        if self._down is None or self.hold.held:
            return  # closed (the call has ended), or on hold: nothing here is the caller
        silent = frame_tag(frame) == SILENCE
        # Digital silence after digital silence: the resampler's history is all zeros, so it
        # would give zeros; the idle key detector would find nothing in them. Skip both.
        skip = silent and self._was_silent and self._detector.idle
        self._was_silent = silent
        pcm = np.zeros(LISTEN_RATE // 50, np.int16) if skip else self._down.convert(frame)
        if pcm.size == 0:
            return
        for tap in list(self.taps):
            tap(pcm)
        if not skip:
            for digit in self._detector.feed(pcm):
                self.press(digit, "inband")
        if self.listening_for_speech and not self.speech.full():
            self.speech.put_nowait(pcm)

    def press(self, digit: str, method: str) -> None:
        """A keypad press heard by ``method``; the same press heard the other way is dropped."""
        now = self.clock.monotonic()
        self._recent = [r for r in self._recent if now - r[0] < DUPLICATE_WINDOW_S]
        twin = next((r for r in self._recent if r[1] == digit and r[2] != method), None)
        if twin is not None:
            self._recent.remove(twin)
            return
        self._recent.append((now, digit, method))
        self.presses.put_nowait((digit, method))

    def clear(self) -> None:
        """Forget presses and speech heard so far (a new Ask starts clean)."""
        for queue in (self.presses, self.speech):
            while not queue.empty():
                queue.get_nowait()

    def close(self) -> None:
        """The call has ended: free the resampler (its ffmpeg threads) now, not when the
        call's objects are collected; frames that still arrive are ignored."""
        self._down = None
        self.listening_for_speech = False
        self.hold.clear()
        self.clear()
