"""Prompts synthesised by pyttsx3 (espeak-ng), cached on disk, never blocking the event loop.

Traps from docs/facts.md handled here:

* pyttsx3's ``runAndWait()`` returns before the WAV file is written (espeak synthesises on its
  own thread). The worker waits for the ``finished-utterance`` callback, which the espeak
  driver sends only after it has written and closed the file.
* pyttsx3 is not thread-safe and keeps one engine per process. One long-lived worker
  *process* owns the engine and serves one request at a time; the asyncio side talks to it
  from a single dedicated thread, so concurrent ``synth()`` calls are serialised.
* pyttsx3 prints "Audio saved to ..." on stdout for every save. The worker is started with
  its stdout on /dev/null and answers over a separate pipe, so nothing it (or espeak) prints
  can reach our stdout, where the CLI writes JSON.

Each prompt is content-addressed (sha256 of text, voice, rate and the engine's versions):
synthesised once, then served from the cache directory and an in-memory LRU.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import select
import subprocess
import sys
import threading
import time
import wave
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ivrbot.config import child_environment, prompt_cache_dir
from ivrbot.errors import IvrbotError, UserError

__all__ = [
    "DEFAULT_RATE",
    "Prompt",
    "SynthStats",
    "SynthesisError",
    "Synthesizer",
    "TtsUnavailable",
    "check_tts",
    "default_cache_dir",
]

DEFAULT_RATE = 200  # words per minute; pyttsx3's default for the espeak driver
SAMPLE_RATE = 22050  # what pyttsx3's espeak driver writes (mono, s16)
_REQUEST_TIMEOUT_S = 30.0
_WORKER_START_TIMEOUT_S = 20.0
_INSTALL_HINT = (
    "espeak-ng is not installed: run 'apt-get install espeak-ng' "
    "(or 'make demo', which installs it)"
)
# Names tried, in order, to find the espeak-ng shared library (then ctypes.util.find_library).
_ESPEAK_LIBRARY_NAMES: tuple[str, ...] = (
    "libespeak-ng.so.1",
    "/usr/local/lib/libespeak-ng.so.1",
    "/opt/homebrew/lib/libespeak-ng.1.dylib",
    "/usr/local/lib/libespeak-ng.1.dylib",
)


class TtsUnavailable(UserError, RuntimeError):
    """The speech engine cannot run here; ``str(e)`` is one line that names the fix."""


class _VoiceError(Exception):
    """Internal: the worker could not select the requested voice."""


class SynthesisError(IvrbotError, RuntimeError):
    """The engine is installed but one synthesis failed (worker crash, timeout, bad audio)."""


@dataclass(frozen=True, eq=False)
class Prompt:
    """A synthesised prompt: int16 mono PCM (read-only) and the cached WAV file it came from."""

    text: str
    voice: str | None
    rate: int | None
    pcm: np.ndarray
    sample_rate: int
    path: Path

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate


@dataclass
class SynthStats:
    """Counters for tests and benchmarks."""

    synth_count: int = 0  # prompts synthesised by the engine
    cache_hits: int = 0  # prompts served without synthesis (memory + disk + joined in-flight)
    memory_hits: int = 0
    disk_hits: int = 0
    worker_starts: int = 0


def default_cache_dir() -> Path:
    """The prompt cache of the settings (``Settings.cache_dir``: ``IVRBOT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/ivrbot/prompts``)."""
    return prompt_cache_dir()


# ---------------------------------------------------------------------------------------------
# Availability check and engine identity


def _load_espeak_library() -> ctypes.CDLL:
    candidates = list(_ESPEAK_LIBRARY_NAMES)
    found = ctypes.util.find_library("espeak-ng")
    if found:
        candidates.append(found)
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise TtsUnavailable(_INSTALL_HINT)


def check_tts() -> None:
    """Raise :class:`TtsUnavailable` (fast, no synthesis) when the engine cannot run here."""
    if importlib.util.find_spec("pyttsx3") is None:
        raise TtsUnavailable("pyttsx3 is not installed: run 'pip install pyttsx3'")
    lib = _load_espeak_library()
    if not hasattr(lib, "espeak_Info"):
        raise TtsUnavailable(f"the espeak-ng library found is unusable: {_INSTALL_HINT}")


# Process-wide: the installed engine's versions, read once (they do not change in a run).
_engine_id_lock = threading.Lock()
_engine_id_value: str | None = None


def _engine_id() -> str:
    """Versions that decide what a prompt sounds like (part of the cache key)."""
    global _engine_id_value
    with _engine_id_lock:
        if _engine_id_value is None:
            check_tts()
            lib = _load_espeak_library()
            info = lib.espeak_Info
            info.restype = ctypes.c_char_p
            info.argtypes = [ctypes.c_void_p]
            raw = info(None)
            espeak_version = raw.decode("utf-8", "replace") if raw else "unknown"
            try:
                pyttsx3_version = importlib.metadata.version("pyttsx3")
            except importlib.metadata.PackageNotFoundError:
                pyttsx3_version = "unknown"
            _engine_id_value = f"pyttsx3-{pyttsx3_version}/espeak-ng-{espeak_version}/{SAMPLE_RATE}"
        return _engine_id_value


def _cache_key(engine_id: str, text: str, voice: str | None, rate: int | None) -> str:
    material = json.dumps(
        {"engine": engine_id, "text": text, "voice": voice, "rate": rate},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    """int16 mono PCM and its rate; raises ValueError for anything else or an empty file."""
    with wave.open(str(path), "rb") as f:
        if f.getnchannels() != 1 or f.getsampwidth() != 2:
            raise ValueError(f"{path}: not a mono 16-bit WAV")
        rate = f.getframerate()
        data = f.readframes(f.getnframes())
    pcm = np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)
    if pcm.size == 0:
        raise ValueError(f"{path}: empty WAV")
    pcm.flags.writeable = False
    return pcm, rate


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


# ---------------------------------------------------------------------------------------------
# The worker process (runs _worker_main) and its client (used from one thread only)


def _worker_main(reply_fd: int) -> int:
    """Entry point of the TTS worker process: one pyttsx3 engine, one request at a time.

    Requests arrive as JSON lines on stdin; replies go as JSON lines to ``reply_fd``.
    stdout is /dev/null (pyttsx3 prints there); it is pointed there again here in case the
    worker was started some other way.
    """
    reply = os.fdopen(reply_fd, "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdout = open(os.devnull, "w")  # kept open for the life of the process

    def send(message: dict[str, Any]) -> None:
        reply.write(json.dumps(message) + "\n")
        reply.flush()

    try:
        import pyttsx3
        from pyttsx3.drivers import _espeak
        from pyttsx3.drivers.espeak import EspeakDriver

        engine = pyttsx3.init("espeak")
        default_voice = EspeakDriver._defaultVoice or "en"
    except Exception as exc:
        send({"ready": False, "error": _one_line(exc)})
        return 1

    finished = threading.Event()
    outcome: dict[str, Any] = {}
    errors: list[str] = []

    def on_finished(name: object = None, completed: bool = True, **_: object) -> None:
        outcome["completed"] = completed
        finished.set()

    def on_error(name: object = None, exception: BaseException | None = None, **_: object) -> None:
        errors.append(_one_line(exception) if exception else "unknown error")

    def wait_idle(timeout: float) -> bool:
        """Wait until espeak's command thread has nothing queued or running."""
        deadline = time.monotonic() + timeout
        while _espeak.IsPlaying():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return True

    engine.connect("finished-utterance", on_finished)
    engine.connect("error", on_error)
    # pyttsx3's driver proxy starts "busy": commands given now would be queued and run just
    # before runAndWait's own end-of-loop command, whose stop() cancels whatever espeak is
    # still processing (a rate change, say). One empty run leaves the proxy idle, so
    # setProperty() and save_to_file() run at once, in order, on this thread.
    wait_idle(_REQUEST_TIMEOUT_S)
    engine.runAndWait()
    send({"ready": True, "pid": os.getpid(), "default_voice": default_voice})

    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        request = json.loads(raw.decode("utf-8"))
        if request.get("op") == "quit":
            break
        finished.clear()
        outcome.clear()
        errors.clear()
        path = request["path"]
        voice = request.get("voice") or default_voice
        started = time.perf_counter()
        engine.setProperty("voice", voice)  # synchronous in espeak
        engine.setProperty("rate", int(request.get("rate") or DEFAULT_RATE))  # queued in espeak
        # Let espeak apply the rate first: runAndWait's end-of-loop stop() cancels any command
        # espeak is still processing, and the rate change would be lost.
        idle = wait_idle(_REQUEST_TIMEOUT_S)
        if idle:
            engine.save_to_file(request["text"], path)
            engine.runAndWait()  # may return before the file is written: wait for the callback
            # The callback fires on espeak's thread while it is still busy with the utterance;
            # wait until espeak is idle too, so the next request cannot race its tail.
            idle = finished.wait(_REQUEST_TIMEOUT_S) and wait_idle(_REQUEST_TIMEOUT_S)
        if not idle:
            send({"id": request["id"], "ok": False, "error": "timed out waiting for espeak"})
            return 2  # the engine's state is unknown: let the client start a fresh worker
        reply_message: dict[str, Any] = {"id": request["id"], "ok": True}
        if errors:
            reply_message = {"id": request["id"], "ok": False, "error": "; ".join(errors)}
            if any("SetVoiceByName" in e for e in errors):
                reply_message["bad_voice"] = True
        elif not outcome.get("completed", False):
            reply_message = {"id": request["id"], "ok": False, "error": "synthesis cancelled"}
        reply_message["elapsed_s"] = time.perf_counter() - started
        send(reply_message)
    return 0


_WORKER_CODE = (
    "import sys\n"
    "from ivrbot.speech.tts import _worker_main\n"
    "sys.exit(_worker_main(int(sys.argv[1])))\n"
)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(Exception):
            proc.wait(timeout=2)


class _WorkerClient:
    """The parent's handle on one worker process. Not thread-safe: use from one thread."""

    def __init__(self) -> None:
        reply_r, reply_w = os.pipe()
        env = child_environment()
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE, str(reply_w)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # pyttsx3 prints "Audio saved to ..." there
                stderr=None,
                pass_fds=(reply_w,),
                env=env,
            )
        except BaseException:
            os.close(reply_r)
            raise
        finally:
            os.close(reply_w)
        self._reply_fd = reply_r
        self._buffer = b""
        self._ids = itertools.count(1)
        self._finalizer = weakref.finalize(self, _WorkerClient._cleanup, self._proc, reply_r)
        hello = self._read_message(_WORKER_START_TIMEOUT_S)
        if hello is None or not hello.get("ready"):
            detail = hello.get("error", "") if hello else "the worker exited"
            self.close()
            raise TtsUnavailable(f"the speech engine failed to start ({detail}): {_INSTALL_HINT}")

    @staticmethod
    def _cleanup(proc: subprocess.Popen[bytes], reply_fd: int) -> None:
        _kill(proc)
        with contextlib.suppress(OSError):
            os.close(reply_fd)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self._proc.poll() is None

    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._reply_fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._reply_fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def synth(self, text: str, voice: str | None, rate: int | None, path: Path) -> None:
        """Synthesise into ``path``; returns once the file is completely written."""
        request_id = next(self._ids)
        request = {"id": request_id, "text": text, "voice": voice, "rate": rate, "path": str(path)}
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write((json.dumps(request) + "\n").encode("ascii"))
            self._proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise SynthesisError(f"the speech worker died: {exc}") from exc
        reply = self._read_message(_REQUEST_TIMEOUT_S + 5)
        if reply is None or reply.get("id") != request_id:
            self.close()
            raise SynthesisError("the speech worker died or timed out")
        if not reply.get("ok"):
            if reply.get("bad_voice"):
                raise _VoiceError(f"unknown espeak voice {voice!r} (try 'en', 'en-us', 'ko')")
            raise SynthesisError(f"synthesis failed: {reply.get('error')}")

    def close(self, timeout: float = 2.0) -> None:
        if not self._finalizer.alive:
            return
        if self._proc.poll() is None and self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.write(b'{"op": "quit"}\n')
                self._proc.stdin.flush()
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=timeout)
        self._finalizer()


# ---------------------------------------------------------------------------------------------
# The asyncio side


class Synthesizer:
    """Turns text into :class:`Prompt` objects without blocking the event loop.

    Cache misses go, one at a time, to a single long-lived worker process that owns the
    pyttsx3 engine. Hits are served from an in-memory LRU, then from ``cache_dir``.
    Concurrent requests for the same prompt are synthesised once.
    """

    def __init__(self, cache_dir: Path | None = None, *, memory_bytes: int = 32 << 20) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.stats = SynthStats()
        self._memory_bytes = memory_bytes
        self._lru: OrderedDict[str, Prompt] = OrderedDict()
        self._lru_size = 0
        self._inflight: dict[str, asyncio.Future[Prompt]] = {}
        # One thread owns the worker client: requests are serialised there.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivrbot-tts")
        self._worker: _WorkerClient | None = None
        self._tmp_ids = itertools.count(1)
        self._closed = False

    async def __aenter__(self) -> Synthesizer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def path_for(self, key: str) -> Path:
        return self.cache_dir / f"{key}.wav"

    async def cache_key(self, text: str, voice: str | None = None, rate: int | None = None) -> str:
        engine_id = _engine_id_value
        if engine_id is None:
            engine_id = await asyncio.to_thread(_engine_id)
        return _cache_key(engine_id, text, voice, rate)

    async def synth(self, text: str, voice: str | None = None, rate: int | None = None) -> Prompt:
        """The prompt for ``text`` in espeak ``voice`` (e.g. "en", "en-us", "ko") at ``rate``
        words per minute (None: engine defaults). Synthesised at most once per cache dir."""
        if self._closed:
            raise RuntimeError("Synthesizer is closed")
        if not text or not text.strip():
            raise ValueError("text to synthesise is empty")
        if voice is not None and (not voice.strip() or "\n" in voice):
            raise ValueError(f"invalid voice name {voice!r}")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0):
            raise ValueError(f"rate must be a positive int (words per minute), not {rate!r}")

        key = await self.cache_key(text, voice, rate)
        cached = self._lru.get(key)
        if cached is not None:
            self._lru.move_to_end(key)
            self.stats.cache_hits += 1
            self.stats.memory_hits += 1
            return cached
        task = self._inflight.get(key)
        joined = task is not None
        if task is None:
            # The work runs in its own task: a caller that is cancelled does not cancel the
            # synthesis that other callers of the same prompt are waiting for.
            task = asyncio.ensure_future(self._load_or_synth(key, text, voice, rate))
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._on_done, key))
        prompt = await asyncio.shield(task)
        if joined:
            self.stats.cache_hits += 1
        return prompt

    def _on_done(self, key: str, task: asyncio.Future[Prompt]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if task.cancelled():
            return
        if task.exception() is None:  # also marks an exception as retrieved
            self._remember(key, task.result())

    async def _load_or_synth(
        self, key: str, text: str, voice: str | None, rate: int | None
    ) -> Prompt:
        path = self.path_for(key)
        loaded = await asyncio.to_thread(self._load_cached, path)
        if loaded is not None:
            pcm, sample_rate = loaded
            self.stats.cache_hits += 1
            self.stats.disk_hits += 1
            return Prompt(text, voice, rate, pcm, sample_rate, path)
        loop = asyncio.get_running_loop()
        pcm, sample_rate = await loop.run_in_executor(
            self._executor, self._synth_blocking, text, voice, rate, path
        )
        self.stats.synth_count += 1
        return Prompt(text, voice, rate, pcm, sample_rate, path)

    @staticmethod
    def _load_cached(path: Path) -> tuple[np.ndarray, int] | None:
        try:
            return _read_wav(path)
        except FileNotFoundError:
            return None
        except (ValueError, EOFError, wave.Error):
            with contextlib.suppress(OSError):
                path.unlink()  # a damaged cache entry: synthesise it again
            return None

    def _synth_blocking(
        self, text: str, voice: str | None, rate: int | None, path: Path
    ) -> tuple[np.ndarray, int]:
        """Runs on the Synthesizer's own thread only."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / f".{path.stem}.{os.getpid()}.{next(self._tmp_ids)}.tmp.wav"
        try:
            for attempt in range(2):
                if self._worker is None or not self._worker.alive:
                    check_tts()
                    self._worker = _WorkerClient()
                    self.stats.worker_starts += 1
                try:
                    self._worker.synth(text, voice, rate, tmp)  # ValueError: unknown voice
                    pcm, sample_rate = _read_wav(tmp)
                except _VoiceError as exc:
                    raise ValueError(str(exc)) from None
                except (SynthesisError, ValueError, EOFError, wave.Error, OSError) as exc:
                    if attempt == 0:
                        continue  # one retry, on a fresh worker if the old one died
                    if isinstance(exc, SynthesisError):
                        raise
                    raise SynthesisError(f"synthesis produced no usable audio: {exc}") from exc
                os.replace(tmp, path)  # atomic: readers see a complete file or none
                return pcm, sample_rate
            raise AssertionError("unreachable")
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _remember(self, key: str, prompt: Prompt) -> None:
        size = prompt.pcm.nbytes
        if size > self._memory_bytes:
            return
        if key in self._lru:
            return
        self._lru[key] = prompt
        self._lru_size += size
        while self._lru_size > self._memory_bytes:
            _, old = self._lru.popitem(last=False)
            self._lru_size -= old.pcm.nbytes

    def _close_blocking(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    async def close(self) -> None:
        """Stop the worker process (pending requests finish first). Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_blocking)
        self._executor.shutdown(wait=False)
