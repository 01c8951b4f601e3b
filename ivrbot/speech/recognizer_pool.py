"""Warm free-form recognisers, made ahead of need (see :class:`RecognizerPool`)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

import vosk

log = logging.getLogger(__name__)


_WARM_UP_S = 0.6  # vosk's first costly computation comes with the first ~0.6 s of audio
_MAX_REUSE_AUDIO_S = 120.0  # a recogniser that has decoded this much is dropped, not reused


@dataclass
class PoolStats:
    """What a :class:`RecognizerPool` has done (counters, and seconds per warm-up)."""

    created: int = 0  # recognisers made (warm and cold)
    warm_takes: int = 0  # turns that got a warm recogniser
    cold_takes: int = 0  # turns that had to make their own
    reused: int = 0  # recognisers given back, reset and kept
    create_s: list[float] = field(default_factory=list)  # making one (wall time)
    warm_s: list[float] = field(default_factory=list)  # its first 0.6 s of silence + Reset()


class RecognizerPool:
    """Free-form recognisers made and warmed ahead of need, so a turn starts with a warm one.

    The pool owns ``size`` recognisers, each ready or lent to a turn: up to ``size`` turns
    at once start warm. A background thread makes a new one whenever fewer than ``size`` are
    ready or lent (at start, or when a lent one was dropped): it makes it (70-190 ms), feeds
    it 0.6 s of silence (the first ``AcceptWaveform`` of that length is what blocks for
    0.5-1.6 s) and calls ``Reset()``; it runs at a lower CPU priority (nice +5) so it does
    not delay media. A turn gives its recogniser back when it ends: it is reset and ready
    again (until it has decoded ``_MAX_REUSE_AUDIO_S``), so a steady load makes no new ones.
    A turn that finds none ready makes its own (cold); given back, it is kept if the pool
    has room. A reset recogniser keeps its feature adaptation (CMVN, i-vector) from the last
    caller, as vosk does across utterances of one stream.

    Memory (Korean model, heap measured by bench/media.py): a new recogniser holds about
    4 MiB, a warm one 12-16 MiB, and one that has decoded a few seconds of speech 45-52 MiB
    (its feature pipeline keeps what it has seen; ``Reset()`` does not free it, and it then
    grows by well under 1 MiB a minute). So an idle pool of 2 costs 25-100 MiB on top of the
    shared model (~500 MB), and each free-form turn in progress up to ~50 MiB.
    """

    def __init__(
        self, model: vosk.Model, sample_rate: int = 16000, size: int = 2, start: bool = True
    ) -> None:
        if size < 0:
            raise ValueError(f"pool size must be 0 or more, not {size}")
        self.model = model
        self.sample_rate = sample_rate
        self.size = size
        self.stats = PoolStats()
        self._ready: deque[vosk.KaldiRecognizer] = deque()
        self._dirty: deque[vosk.KaldiRecognizer] = deque()  # given back, to be reset
        self._lent: weakref.WeakSet[vosk.KaldiRecognizer] = weakref.WeakSet()  # in turns
        self._decoded: weakref.WeakKeyDictionary[vosk.KaldiRecognizer, float] = (
            weakref.WeakKeyDictionary()
        )
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    @property
    def warm(self) -> int:
        """Recognisers ready now."""
        with self._cond:
            return len(self._ready)

    def start(self) -> None:
        """Start the filling thread (once)."""
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._fill, name="ivrbot-asr-pool", daemon=True)
            self._thread.start()

    def take(self) -> tuple[vosk.KaldiRecognizer, bool]:
        """A recogniser and whether it is warm. Blocks (makes one) when none is ready: call
        it from a worker thread, not the event loop."""
        with self._cond:
            if self._ready:
                self.stats.warm_takes += 1
                rec = self._ready.popleft()
                self._lent.add(rec)
                return rec, True
            self.stats.cold_takes += 1
        rec = self._create()
        with self._cond:
            self._lent.add(rec)
        return rec, False

    def give_back(self, rec: vosk.KaldiRecognizer, audio_s: float = 0.0) -> None:
        """A turn is done with ``rec`` (which decoded ``audio_s`` of audio): reuse or drop."""
        with self._cond:
            self._lent.discard(rec)
            decoded = self._decoded.get(rec, 0.0) + audio_s
            if not self._closed and decoded < _MAX_REUSE_AUDIO_S and self._owned() < self.size:
                self._decoded[rec] = decoded
                self._dirty.append(rec)
            self._cond.notify_all()  # kept, or dropped: then the thread makes a new one

    def _owned(self) -> int:
        return len(self._ready) + len(self._dirty) + len(self._lent)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the pool is full (``size`` recognisers ready or lent, none being reset);
        False on timeout or when closed."""

        def full() -> bool:
            return not self._dirty and len(self._ready) + len(self._lent) >= self.size

        with self._cond:
            self._cond.wait_for(lambda: self._closed or full(), timeout)
            return not self._closed and full()

    async def ready(self, timeout: float | None = 30.0) -> bool:
        """:meth:`wait_ready` without blocking the event loop."""
        self.start()
        return await asyncio.to_thread(self.wait_ready, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and drop every recogniser."""
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._dirty.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> RecognizerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the filling thread ---------------------------------------------------------------------

    def _create(self) -> vosk.KaldiRecognizer:
        t0 = time.perf_counter()
        rec = vosk.KaldiRecognizer(self.model, float(self.sample_rate))
        rec.SetWords(True)
        with self._cond:
            self.stats.created += 1
            self.stats.create_s.append(time.perf_counter() - t0)
        return rec

    def _warm_up(self, rec: vosk.KaldiRecognizer) -> None:
        t0 = time.perf_counter()
        rec.AcceptWaveform(bytes(2 * round(self.sample_rate * _WARM_UP_S)))
        rec.Reset()
        with self._cond:
            self.stats.warm_s.append(time.perf_counter() - t0)

    def _fill(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)  # this thread only
        except (AttributeError, OSError):
            pass
        while True:
            with self._cond:
                # Timed: a lent recogniser whose turn was dropped leaves _lent unannounced.
                while not (self._closed or self._dirty or self._owned() < self.size):
                    self._cond.wait(1.0)
                if self._closed:
                    return
                used = self._dirty.popleft() if self._dirty else None
            try:
                if used is not None:
                    used.Reset()
                    rec = used
                else:
                    rec = self._create()
                    self._warm_up(rec)
            except Exception:
                log.exception("could not prepare a free-form recogniser")
                time.sleep(1.0)
                continue
            with self._cond:
                if not self._closed:
                    self._ready.append(rec)
                    if used is not None:
                        self.stats.reused += 1
                    self._cond.notify_all()


# Process-wide, as the models they belong to (speech_model): warm recognisers of one loaded
# model, handed to whichever bot of the process listens next; closed at exit.
_pools: dict[tuple[int, int], tuple[vosk.Model, RecognizerPool]] = {}
_pools_lock = threading.Lock()


def shared_pool(model: vosk.Model, sample_rate: int = 16000, size: int = 2) -> RecognizerPool:
    """The process's :class:`RecognizerPool` for ``model`` at ``sample_rate`` (made, and
    started filling, on first use; ``size`` only counts then). Closed at exit."""
    key = (id(model), sample_rate)
    with _pools_lock:
        entry = _pools.get(key)
        if entry is None or entry[0] is not model:
            pool = RecognizerPool(model, sample_rate, size)
            _pools[key] = (model, pool)
            return pool
        return entry[1]


def _close_pools() -> None:
    with _pools_lock:
        pools = [pool for _, pool in _pools.values()]
        _pools.clear()
    for pool in pools:
        pool.close()


atexit.register(_close_pools)
