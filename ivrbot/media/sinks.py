"""Where a call's received audio goes: the Python Phone's ``remote_media``.

The browser SDK hands ``dial``/``answer`` an HTML media element; the Python Phone takes a
*frame callback*: any callable receiving each received ``av.AudioFrame`` (20 ms), returning
None or an awaitable. ``None`` (or :class:`Silence`) discards the audio. This module adds a
recorder to a WAV file (and :class:`FileWriter`, the writer thread every recording file
uses), a fan-out to several sinks, and reading audio files to play (``call.play()`` sends
audio through the call's own :class:`~ivrbot.media.tracks.OutboundAudio`).
"""

from __future__ import annotations

import asyncio
import threading
import wave
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np

from ivrbot.media.frames import LISTEN_RATE, WIRE_RATE, Downsampler
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


class FileWriter:
    """An audio file written by one worker thread: the event loop never waits on the disk.

    :meth:`write` takes int16 PCM at ``input_rate`` (shape ``(n,)`` for mono, ``(n,
    channels)`` interleaved) and keeps it in memory; every ``chunk_s`` of audio goes to the
    writer thread, which resamples it to ``rate`` when the rates differ and encodes it. The
    file is opened when the writer is made (a bad path fails there and then). :meth:`close`
    (or ``await`` :meth:`aclose`) writes the rest and finalises the file. A write error (disk
    full) stops the writing and is raised by ``close`` as OSError. Subclasses give
    :meth:`_open`, and on the writer thread :meth:`_encode` and :meth:`_close_file`.
    """

    def __init__(
        self,
        path: str | Path,
        rate: int,
        channels: int = 1,
        chunk_s: float = 0.5,
        input_rate: int | None = None,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"{path}: 1 or 2 channels, not {channels}")
        self.path = Path(path)
        self.rate = rate
        self.channels = channels
        self.input_rate = input_rate or rate
        self.samples = 0  # samples (per channel) handed in so far, written or not
        self._chunk = max(1, int(self.input_rate * chunk_s))
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._closed = False
        self._error: Exception | None = None
        self._resampler: av.AudioResampler | None = None  # the writer thread's
        self._open()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivrbot-rec")

    @property
    def duration_s(self) -> float:
        return self.samples / self.input_rate

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def layout(self) -> str:
        return "mono" if self.channels == 1 else "stereo"

    def write(self, pcm: np.ndarray) -> None:
        """Audio to write (int16 at ``input_rate``); ignored after close or an error."""
        if self._closed or self._error is not None or pcm.size == 0:
            return
        self._pending.append(pcm)
        self._pending_samples += len(pcm)
        self.samples += len(pcm)
        if self._pending_samples >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = np.concatenate(self._pending)
        self._pending, self._pending_samples = [], 0
        self._writer.submit(self._write, data)

    # the writer thread ----------------------------------------------------------------------
    def _write(self, data: np.ndarray) -> None:
        """On the writer thread only: one chunk."""
        if self._error is not None:
            return
        try:
            self._encode(self._convert(data))
        except Exception as exc:  # OSError, or the encoder's own errors
            self._error = exc

    def _convert(self, data: np.ndarray | None) -> np.ndarray:
        """Resampled to ``rate`` (None: what the resampler still holds)."""
        if self.input_rate == self.rate:
            return data if data is not None else np.zeros(0, np.int16)
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout=self.layout, rate=self.rate)
        frame = None
        if data is not None:
            flat = np.ascontiguousarray(data, dtype=np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(flat, format="s16", layout=self.layout)
            frame.sample_rate = self.input_rate
        parts = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        out = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        return out.reshape(-1, self.channels) if self.channels > 1 else out

    def _finish(self) -> None:
        """On the writer thread only: after the last chunk."""
        try:
            if self._error is None and self._resampler is not None:
                self._encode(self._convert(None))
        except Exception as exc:
            self._error = exc
        try:
            self._close_file()
        except Exception as exc:
            self._error = self._error or exc

    def _open(self) -> None:
        raise NotImplementedError

    def _encode(self, pcm: np.ndarray) -> None:
        raise NotImplementedError

    def _close_file(self) -> None:
        raise NotImplementedError

    # closing --------------------------------------------------------------------------------
    def _stop(self) -> bool:
        if self._closed:
            return False
        self._closed = True
        self._flush()
        return True

    def close(self) -> None:
        """Write what is left and finalise the file; waits for the writer. Idempotent."""
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
            error = self._error
            raise OSError(f"recording to {self.path} failed: {error}") from error


class WavWriter(FileWriter):
    """16-bit PCM WAV; the header is kept valid after every chunk (readable while written)."""

    def _open(self) -> None:
        self._file = open(self.path, "wb")  # closed by _close_file()
        try:
            self._wav = wave.open(self._file, "wb")
            self._wav.setnchannels(self.channels)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.rate)
        except BaseException:
            self._file.close()
            raise

    def _encode(self, pcm: np.ndarray) -> None:
        self._wav.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())

    def _close_file(self) -> None:
        try:
            self._wav.close()
        finally:
            self._file.close()


class WavRecorder(WavWriter):
    """Records what a call hears to a mono 16-bit WAV file at ``rate`` Hz.

    Use it as ``remote_media``. Frames are resampled as they arrive and written by a
    :class:`WavWriter` (off the event loop). For recording a leg, a whole call (both
    directions) or a conference, see :mod:`ivrbot.media.recorder`.
    """

    def __init__(self, path: str | Path, rate: int = LISTEN_RATE, chunk_s: float = 0.5) -> None:
        super().__init__(path, rate, 1, chunk_s)
        self._down = Downsampler(rate)

    def __call__(self, frame: av.AudioFrame) -> None:
        if self._closed or self._error is not None:
            return
        self.write(self._down.convert(frame))


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


# (path, rate) -> (mtime, size, decoded PCM). Process-wide: a cache of decoded files, each
# entry checked against the file, whichever part of the process asks.
_DECODED: dict[tuple[str, int], tuple[int, int, np.ndarray]] = {}
_DECODED_LOCK = threading.Lock()


def read_audio(path: str | Path, rate: int = WIRE_RATE) -> np.ndarray:
    """Any audio file PyAV (FFmpeg) reads, decoded to mono int16 PCM at ``rate``.

    Decoded once per file: the result is cached per path, rate and modification time (a
    changed file is decoded again). Takes a while for long files: call it off the event
    loop (``asyncio.to_thread``). Raises FileNotFoundError when there is no such file,
    ValueError when it cannot be decoded or holds no audio.
    """
    file = Path(path).resolve()
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if not file.is_file():
        raise ValueError(f"{path} is not a file")
    key = (str(file), rate)
    with _DECODED_LOCK:
        cached = _DECODED.get(key)
    if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
        return cached[2]
    pcm = _decode(file, rate)
    with _DECODED_LOCK:
        _DECODED[key] = (stat.st_mtime_ns, stat.st_size, pcm)
    return pcm


def _decode(path: Path, rate: int) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    parts: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"{path} holds no audio stream")
            for frame in container.decode(audio=0):
                frame.pts = None
                parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path} cannot be decoded as audio ({exc})") from exc
    pcm = np.concatenate(parts).astype(np.int16, copy=False) if parts else np.zeros(0, np.int16)
    if pcm.size == 0:
        raise ValueError(f"{path} holds no audio")
    return pcm
