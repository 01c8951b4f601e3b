"""Recording to files: one leg, a whole call (both directions), or a conference.

A :class:`Recorder` takes audio from one or more *sources* and writes one file, WAV or
Ogg/Opus by the file's suffix (``.wav``; ``.ogg`` / ``.opus``). The event loop only moves
numpy arrays: resampling, encoding and the disk are a writer thread's work
(:class:`~ivrbot.media.sinks.FileWriter`).

Sources (all deliver mono int16 PCM at 48 kHz, 20 ms at a time):

- :func:`leg_source`: what the far end of a call sends (the call's ``remote_media``: the
  recorder joins whatever already hears the call, and leaves it as it was when it stops).
- :func:`outbound_source`: what this side sends (an :class:`OutboundAudio`'s ``taps``).
- :func:`mixer_source`: the full mix of a conference (the gateway mixer's ``add_tap``).

One source gives a mono file. Two sources give a 2-channel file by default, one source
per channel, so both parties stay separable (transcribe each, measure each); ``mix=True``
sums them into mono instead (half the size; what a person listening expects). More than
two sources need ``mix=True``. :func:`record_call` records a call as channel 0 (left) =
the far end, channel 1 (right) = this side.

Sources deliver frames at their own pace; each has a small FIFO and the recorder writes
what all of them have. A source that falls more than ``MAX_LAG_S`` behind (it stopped, a
leg on hold) is taken to be silent and padded with silence, so the channels stay aligned.

``holdback_s`` keeps the newest audio in memory before it goes to the writer, so it can
still be cut: :meth:`Recorder.drop_head` (silence before a voicemail), :meth:`Recorder.stop`
``(drop_last_s=...)`` (the keypad tone that ended it, see :func:`keypad_tone_start`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from ivrbot.media.dtmf import COL_FREQS, KEYPAD, ROW_FREQS
from ivrbot.media.frames import WIRE_RATE, Downsampler, pcm_from_frame
from ivrbot.media.sinks import FileWriter, Tee, WavWriter
from ivrbot.media.tracks import FrameSink, OutboundAudio

log = logging.getLogger(__name__)

PcmFeed = Callable[[np.ndarray], None]
"""Takes mono int16 PCM at the recorder's input rate (48 kHz)."""
Source = Callable[[PcmFeed], Callable[[], None]]
"""Connects a feed to some audio; returns the function that disconnects it."""

SUFFIXES = {".wav": "wav", ".ogg": "opus", ".opus": "opus"}
FORMAT_SUFFIX = {"wav": ".wav", "ogg": ".ogg", "opus": ".opus"}
WAV_RATE = 16000  # wideband speech; a recorder's ``rate`` changes it
OPUS_RATE = 48000  # what every Ogg/Opus file decodes to
MAX_LAG_S = 0.2


def format_of(path: str | os.PathLike[str]) -> str:
    """'wav' or 'opus', from the file's suffix (ValueError for any other)."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        known = ", ".join(SUFFIXES)
        raise ValueError(f"{path}: record to a file ending in one of {known}, not {suffix!r}")
    return SUFFIXES[suffix]


class OggOpusWriter(FileWriter):
    """Ogg/Opus through PyAV (libopus) at 48 kHz; about 32 kbit/s per channel."""

    BITRATE_PER_CHANNEL = 32000

    def _open(self) -> None:
        if self.rate != OPUS_RATE:
            raise ValueError(f"{self.path}: Ogg/Opus is written at {OPUS_RATE} Hz")
        self._file = open(self.path, "wb")  # now, so that a bad path fails now; PyAV is lazy
        try:
            self._container = av.open(self._file, "w", format="ogg")
            self._stream = self._container.add_stream("libopus", rate=self.rate)
            self._stream.layout = self.layout
            self._stream.bit_rate = self.BITRATE_PER_CHANNEL * self.channels
        except BaseException:
            self._file.close()
            raise
        self._pts = 0

    def _encode(self, pcm: np.ndarray) -> None:
        if pcm.size == 0:
            return
        flat = np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(flat, format="s16", layout=self.layout)
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += len(pcm)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def _close_file(self) -> None:
        try:
            if self._error is None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
        finally:
            try:
                self._container.close()
            finally:
                self._file.close()


def open_writer(
    path: str | os.PathLike[str],
    channels: int = 1,
    input_rate: int = WIRE_RATE,
    rate: int | None = None,
    chunk_s: float = 0.5,
) -> FileWriter:
    """A writer for ``path``: WAV (``rate``, default 16 kHz) or Ogg/Opus (48 kHz)."""
    path = Path(path)
    if format_of(path) == "wav":
        return WavWriter(path, rate or WAV_RATE, channels, chunk_s, input_rate)
    return OggOpusWriter(path, OPUS_RATE, channels, chunk_s, input_rate)


# sources -----------------------------------------------------------------------------------
class Receiving(Protocol):
    """Anything with a ``remote_media`` frame callback: a Phone's call."""

    remote_media: FrameSink | None


class TwoWay(Receiving, Protocol):
    """A call that also sends audio: a Phone's call (its ``local_media`` track)."""

    @property
    def local_media(self) -> object: ...


class Tappable(Protocol):
    """Anything with ``add_tap(sink) -> unsubscribe``: the gateway's conference mixer."""

    def add_tap(self, sink: Callable[[np.ndarray], None]) -> Callable[[], None]: ...


class _ToPcm:
    """Received frames (Opus: 48 kHz stereo s16; G.711: 8 kHz) -> mono int16 at 48 kHz."""

    def __init__(self) -> None:
        self._down: Downsampler | None = None

    def __call__(self, frame: av.AudioFrame) -> np.ndarray:
        if frame.sample_rate == WIRE_RATE and frame.format.name == "s16":
            return pcm_from_frame(frame)
        if self._down is None:
            self._down = Downsampler(WIRE_RATE)
        return self._down.convert(frame)


def leg_source(call: Receiving) -> Source:
    """What the far end of ``call`` sends (it keeps going to whatever heard it before)."""

    def attach(feed: PcmFeed) -> Callable[[], None]:
        convert = _ToPcm()

        def hear(frame: av.AudioFrame) -> None:
            feed(convert(frame))

        previous = call.remote_media
        tee = Tee(previous, hear)
        call.remote_media = tee

        def detach() -> None:
            if call.remote_media is tee:
                call.remote_media = previous
            elif hear in tee.sinks:  # something wrapped the tee since: just go quiet
                tee.sinks.remove(hear)

        return detach

    return attach


def outbound_source(track: OutboundAudio) -> Source:
    """What ``track`` sends (prompts, bridged audio), frame by frame."""

    def attach(feed: PcmFeed) -> Callable[[], None]:
        track.taps.append(feed)

        def detach() -> None:
            if feed in track.taps:
                track.taps.remove(feed)

        return detach

    return attach


def mixer_source(mixer: Tappable) -> Source:
    """The full mix of a conference: every member."""
    return mixer.add_tap


def watched(source: Source, watch: PcmFeed) -> Source:
    """``source``, with every chunk also handed to ``watch`` (a voice detector, a meter)."""

    def attach(feed: PcmFeed) -> Callable[[], None]:
        def both(pcm: np.ndarray) -> None:
            feed(pcm)
            watch(pcm)

        return source(both)

    return attach


# the recorder ------------------------------------------------------------------------------
class RecorderState(StrEnum):
    READY = "ready"  # the file is open; nothing is taken in yet
    RECORDING = "recording"
    PAUSED = "paused"  # sources stay connected; their audio is dropped
    STOPPED = "stopped"  # the file is complete


class _Fifo:
    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self.size = 0

    def push(self, pcm: np.ndarray) -> None:
        self._parts.append(pcm)
        self.size += pcm.size

    def take(self, count: int) -> np.ndarray:
        data = self._parts[0] if len(self._parts) == 1 else np.concatenate(self._parts)
        out, rest = data[:count], data[count:]
        self._parts = [rest] if rest.size else []
        self.size = rest.size
        return out

    def clear(self) -> None:
        self._parts, self.size = [], 0


class Recorder:
    """Records ``sources`` to ``path`` (see the module's docs for sources and channels).

    ``start()`` connects the sources, ``pause()`` / ``resume()`` drop audio meanwhile (the
    file simply goes on after the pause), ``await stop()`` disconnects them and completes the
    file. ``rate``: the WAV file's rate (default 16 kHz); Ogg/Opus is always 48 kHz.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sources: Sequence[Source],
        *,
        mix: bool = False,
        rate: int | None = None,
        input_rate: int = WIRE_RATE,
        holdback_s: float = 0.0,
        chunk_s: float = 0.5,
    ) -> None:
        if not sources:
            raise ValueError("a recorder needs a source of audio")
        channels = 1 if mix or len(sources) == 1 else len(sources)
        if channels > 2:
            raise ValueError(f"{len(sources)} sources make too many channels: give mix=True")
        self.path = Path(path)
        self.sources = list(sources)
        self.mix = mix
        self.input_rate = input_rate
        self.holdback_s = holdback_s
        self.writer = open_writer(self.path, channels, input_rate, rate, chunk_s)
        self.state = RecorderState.READY
        self.received = 0  # samples per channel taken in at input_rate (cut ones included)
        self._fifos = [_Fifo() for _ in self.sources]
        self._held: list[np.ndarray] = []
        self._held_samples = 0
        self._detach: list[Callable[[], None]] = []
        self._max_lag = int(MAX_LAG_S * input_rate)

    def __repr__(self) -> str:
        return f"<Recorder {self.path} {self.state}>"

    @property
    def channels(self) -> int:
        return self.writer.channels

    @property
    def duration_s(self) -> float:
        """The length of the file so far (cut audio excluded)."""
        return (self.writer.samples + self._held_samples) / self.input_rate

    @property
    def held_s(self) -> float:
        return self._held_samples / self.input_rate

    def set_state(self, new: RecorderState) -> None:
        """The one place the state changes."""
        old, self.state = self.state, new
        if old != new:
            log.info("recorder %s: %s -> %s", self.path, old, new)

    # running -------------------------------------------------------------------------------
    def start(self) -> Recorder:
        if self.state is not RecorderState.READY:
            raise RuntimeError(f"recorder {self.path} is {self.state}: start it once")
        for index, source in enumerate(self.sources):
            self._detach.append(source(functools.partial(self._feed, index)))
        self.set_state(RecorderState.RECORDING)
        return self

    def pause(self) -> None:
        if self.state is RecorderState.RECORDING:
            self._align(final=True)
            self.set_state(RecorderState.PAUSED)

    def resume(self) -> None:
        if self.state is RecorderState.PAUSED:
            for fifo in self._fifos:
                fifo.clear()
            self.set_state(RecorderState.RECORDING)

    async def stop(self, drop_last_s: float = 0.0) -> Path:
        """Disconnect, cut the last ``drop_last_s`` (held audio only), complete the file.

        Idempotent. Raises OSError when writing failed."""
        if self.state is RecorderState.STOPPED:
            return self.path
        self._end(drop_last_s)
        await self.writer.aclose()
        return self.path

    def close(self) -> None:
        """:meth:`stop` for code without an event loop (waits for the writer thread)."""
        if self.state is not RecorderState.STOPPED:
            self._end(0.0)
            self.writer.close()

    def _end(self, drop_last_s: float) -> None:
        for detach in self._detach:
            try:
                detach()
            except Exception:
                log.exception("recorder %s: a source failed to disconnect", self.path)
        self._detach.clear()
        if self.state is RecorderState.RECORDING:
            self._align(final=True)
        self.drop_tail(drop_last_s)
        self._release(everything=True)
        self.set_state(RecorderState.STOPPED)

    # audio in --------------------------------------------------------------------------------
    def _feed(self, index: int, pcm: np.ndarray) -> None:
        if self.state is not RecorderState.RECORDING or pcm.size == 0:
            return
        self._fifos[index].push(pcm)
        self._align()

    def _align(self, final: bool = False) -> None:
        fifos = self._fifos
        if len(fifos) > 1:
            longest = max(f.size for f in fifos)
            if final or longest > self._max_lag:  # a source stalled: take it as silent
                for fifo in fifos:
                    if fifo.size < longest:
                        fifo.push(np.zeros(longest - fifo.size, np.int16))
        count = min(f.size for f in fifos)
        if count == 0:
            return
        parts = [f.take(count) for f in fifos]
        if len(parts) == 1:
            block = parts[0]
        elif self.mix:
            total = np.sum([p.astype(np.int32) for p in parts], axis=0)
            block = np.clip(total, -32768, 32767).astype(np.int16)
        else:
            block = np.stack(parts, axis=1)
        self.received += count
        self._held.append(block)
        self._held_samples += count
        self._release()

    def _release(self, everything: bool = False) -> None:
        """Hand held audio older than ``holdback_s`` to the writer."""
        keep = 0 if everything else int(self.holdback_s * self.input_rate)
        while self._held and self._held_samples - len(self._held[0]) >= keep:
            block = self._held.pop(0)
            self._held_samples -= len(block)
            self.writer.write(block)

    # cutting held audio --------------------------------------------------------------------
    def recent(self) -> np.ndarray:
        """The held audio (not written yet), oldest first; (n, channels) for 2 channels."""
        if not self._held:
            shape = (0,) if self.channels == 1 else (0, self.channels)
            return np.zeros(shape, np.int16)
        return np.concatenate(self._held)

    def drop_head(self, keep_last_s: float) -> float:
        """Cut held audio except its last ``keep_last_s``; returns the seconds cut."""
        excess = self._held_samples - max(0, int(keep_last_s * self.input_rate))
        if excess <= 0:
            return 0.0
        data = self.recent()[excess:]
        self._held, self._held_samples = ([data] if len(data) else []), len(data)
        return excess / self.input_rate

    def drop_tail(self, seconds: float) -> float:
        """Cut the last ``seconds`` of held audio (at most all of it); returns the seconds cut."""
        cut = min(self._held_samples, max(0, int(seconds * self.input_rate)))
        if cut:
            data = self.recent()[: self._held_samples - cut]
            self._held, self._held_samples = ([data] if len(data) else []), len(data)
        return cut / self.input_rate


def record_leg(call: Receiving, path: str | os.PathLike[str], rate: int | None = None) -> Recorder:
    """Start recording what the far end of ``call`` sends (mono)."""
    return Recorder(path, [leg_source(call)], rate=rate).start()


def call_sources(call: TwoWay) -> list[Source]:
    """A call's two directions: the far end (channel 0), then what this side sends."""
    track = call.local_media
    if not isinstance(track, OutboundAudio):
        raise TypeError("the call sends a custom local_media track: record that track yourself")
    return [leg_source(call), outbound_source(track)]


def record_call(
    call: TwoWay, path: str | os.PathLike[str], mix: bool = False, rate: int | None = None
) -> Recorder:
    """Start recording both directions of ``call``: 2 channels (left: the far end, right:
    this side), or ``mix=True`` for one mono mix."""
    return Recorder(path, call_sources(call), mix=mix, rate=rate).start()


def record_conference(
    mixer: Tappable, path: str | os.PathLike[str], rate: int | None = None
) -> Recorder:
    """Start recording a conference's full mix (every member; mono)."""
    return Recorder(path, [mixer_source(mixer)], rate=rate).start()


# keypad tones at the end of a recording ----------------------------------------------------
_KEY_FREQS = {
    key: (ROW_FREQS[r], COL_FREQS[c]) for r, row in enumerate(KEYPAD) for c, key in enumerate(row)
}


def keypad_tone_start(
    pcm: np.ndarray, rate: int, key: str, within_s: float = 0.5, block_s: float = 0.010
) -> int | None:
    """Where the in-band tone of ``key`` that ends mono ``pcm`` starts (a sample index, a few ms
    early rather than late), or None when no such tone ends within the last ``within_s``.

    Blocks of ``block_s`` every quarter block: a block is tone when the key's two
    frequencies hold most of its power (each a fair share) at an audible level. The start
    is one hop before the first block of the last run of tone blocks: that block was not
    filled enough to count, so the tone cannot have begun more than a hop before it.
    """
    freqs = _KEY_FREQS.get(key.upper())
    block = int(rate * block_s)
    if freqs is None or pcm.size < block:
        return None
    hop = max(1, block // 4)
    x = pcm.astype(np.float64).reshape(-1)
    starts = np.arange(0, x.size - block + 1, hop)
    frames = x[starts[:, None] + np.arange(block)]
    t = np.arange(block) / rate
    basis = np.exp(-2j * np.pi * np.outer(freqs, t))
    each = np.abs(frames @ basis.T) ** 2 * 2 / block  # energy of each tone in each block
    total = np.sum(frames**2, axis=1) + 1e-9
    level_db = 10 * np.log10(total / block / 32768.0**2 + 1e-12)
    is_tone = (each.sum(axis=1) > 0.7 * total) & (each.min(axis=1) > 0.1 * total)
    is_tone &= level_db > -50
    hits = np.flatnonzero(is_tone)
    if hits.size == 0 or starts[hits[-1]] + block < x.size - within_s * rate:
        return None
    first = hits[-1]
    while first > 0 and is_tone[first - 1]:
        first -= 1
    return int(max(0, starts[first] - hop))
