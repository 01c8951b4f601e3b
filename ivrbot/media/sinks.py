"""Where a call's received audio goes: the Python Phone's ``remote_media``.

The browser SDK hands ``dial``/``answer`` an HTML media element; the Python Phone takes a
*frame callback*: any callable receiving each received ``av.AudioFrame`` (20 ms), returning
None or an awaitable. ``None`` (or :class:`Silence`) discards the audio. This module adds a
recorder to a WAV file, a fan-out to several sinks, and reading WAV files to play
(``call.play()`` sends audio through the call's own :class:`~ivrbot.media.tracks.OutboundAudio`).
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np

from ivrbot.media.frames import LISTEN_RATE, Downsampler
from ivrbot.media.tracks import FrameSink

FrameCallback = FrameSink
"""Any callable taking an ``av.AudioFrame`` and returning None or an awaitable."""


class Silence:
    """Discards what the call hears (the same as ``remote_media=None``)."""

    def __call__(self, frame: av.AudioFrame) -> None:
        return None


class Tee:
    """Hands every frame to several sinks in turn (a recorder and a listener, say)."""

    def __init__(self, *sinks: FrameCallback | None) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def __call__(self, frame: av.AudioFrame) -> Awaitable[None] | None:
        pending = [r for r in (sink(frame) for sink in self.sinks) if r is not None]
        return _all(pending) if pending else None


async def _all(pending: list[Awaitable[None]]) -> None:
    for awaitable in pending:
        await awaitable


class WavRecorder:
    """Records what a call hears to a mono 16-bit WAV file at ``rate`` Hz.

    Use it as ``remote_media``. Frames are resampled as they arrive and kept in memory;
    every ``chunk_s`` of audio goes to a writer thread, so the event loop never waits on the
    disk (the file is opened, once, when the recorder is made: a bad path fails there and
    then). The header is kept valid after every chunk; :meth:`close` (or ``await``
    :meth:`aclose`) writes the rest and finalises it. A write error (disk full) stops the
    recording and is raised by ``close``.
    """

    def __init__(self, path: str | Path, rate: int = LISTEN_RATE, chunk_s: float = 0.5) -> None:
        self.path = Path(path)
        self.rate = rate
        self.samples = 0  # samples received so far, written or not
        self._down = Downsampler(rate)
        self._chunk = max(1, int(rate * chunk_s))
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._closed = False
        self._error: OSError | None = None
        self._file = open(self.path, "wb")  # closed by _finish()
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivrbot-wav")

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate

    @property
    def closed(self) -> bool:
        return self._closed

    def __call__(self, frame: av.AudioFrame) -> None:
        if self._closed or self._error is not None:
            return
        pcm = self._down.convert(frame)
        if pcm.size == 0:
            return
        self._pending.append(pcm)
        self._pending_samples += pcm.size
        self.samples += pcm.size
        if self._pending_samples >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = np.concatenate(self._pending).astype("<i2", copy=False).tobytes()
        self._pending, self._pending_samples = [], 0
        self._writer.submit(self._write, data)

    def _write(self, data: bytes) -> None:
        """On the writer thread only."""
        if self._error is not None:
            return
        try:
            self._wav.writeframes(data)
        except OSError as exc:
            self._error = exc

    def _finish(self) -> None:
        """On the writer thread only: after the last chunk."""
        try:
            self._wav.close()
        except OSError as exc:
            self._error = self._error or exc
        finally:
            self._file.close()

    def _stop(self) -> bool:
        if self._closed:
            return False
        self._closed = True
        self._flush()
        return True

    def close(self) -> None:
        """Write what is left and finalise the header; waits for the writer. Idempotent."""
        if self._stop():
            self._writer.submit(self._finish)
            self._writer.shutdown(wait=True)
            self._raise()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        if self._stop():
            await asyncio.get_running_loop().run_in_executor(self._writer, self._finish)
            self._writer.shutdown(wait=False)
            self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise OSError(f"recording to {self.path} failed: {self._error}") from self._error


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono int16 PCM and its rate from a 16-bit PCM WAV file (channels are averaged).

    Raises OSError when the file cannot be read, ValueError when it is not 16-bit PCM WAV or
    holds no audio.
    """
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            data = f.readframes(f.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path} is not a PCM WAV file ({exc})") from exc
    if width != 2:
        raise ValueError(f"{path} has {8 * width}-bit samples; 16-bit PCM is needed")
    pcm = np.frombuffer(data, dtype="<i2")
    if channels > 1:
        pcm = pcm[: pcm.size - pcm.size % channels].reshape(-1, channels).mean(axis=1)
    if pcm.size == 0:
        raise ValueError(f"{path} holds no audio")
    return pcm.astype(np.int16), rate
