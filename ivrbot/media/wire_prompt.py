"""Cached audio on the wire: a prompt's 48 kHz PCM made once, and its 20 ms RTP payloads
encoded once per codec, kept for as long as the prompt itself is kept.

A prompt from the TTS cache is a read-only int16 array (see ``tts.Prompt``): the same array
object is played on every call. :func:`wire_prompt` maps such an array (any array that is
read-only all the way down, so it cannot change) to one :class:`WirePrompt`, held in a
weak-keyed table: when the cache lets the prompt go, its encodings go too. A leg that plays
the prompt with nothing mixed in sends these payloads instead of encoding (see
:mod:`ivrbot.endpoints.webrtc.hotpath`); G.711 payloads are made for the whole prompt at once with a
lookup table, Opus payloads with aiortc's own encoder, frame by frame as the first playback
reaches them (so the event loop never stalls on a whole prompt).

:func:`silence_payload` is the payload a leg sends when it has nothing to send.
"""

from __future__ import annotations

import fractions
import weakref
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import av
import numpy as np
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from ivrbot.media.frames import WIRE_RATE, WIRE_SAMPLES, frame_from_pcm, resample

G711 = {"PCMU": "pcm_mulaw", "PCMA": "pcm_alaw"}
CODECS = ("opus", *G711)
MIN_LEVEL = -127
SILENCE = "silence"
"""The tag (see :func:`tag_frame`) of a frame that is digital silence: nothing to send."""


class _Held:
    """One frame's tag, in an object of its own (see :func:`tag_frame`)."""

    __slots__ = ("tag",)

    def __init__(self, tag: object) -> None:
        self.tag = tag


def tag_frame(frame: av.AudioFrame, tag: object) -> None:
    """Tag ``frame`` (a cached prompt's frame, silence) in PyAV's ``frame.opaque``, held in a
    fresh object per frame: PyAV 18 keys a frame's opaque by the object's ``id()`` and drops
    that key when any frame holding the object is freed, so one object shared by many frames
    (the ``SILENCE`` string) vanished from the frames still alive (measured: 1 silent frame
    in 150 kept its tag), and silence was resampled, run through the key detector and
    encoded again."""
    frame.opaque = None if tag is None else _Held(tag)


def frame_tag(frame: av.AudioFrame) -> object:
    """The tag :func:`tag_frame` gave ``frame`` (None: untagged)."""
    held = frame.opaque
    return held.tag if isinstance(held, _Held) else None


_OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def frame_levels(pcm: np.ndarray) -> np.ndarray:
    """RFC 6465 level (dBov, -127..0, as ``hotpath.audio_level_dbov``) of every 20 ms frame of
    ``pcm`` (a multiple of 960 samples), in one numpy pass."""
    frames = pcm.reshape(-1, WIRE_SAMPLES).astype(np.float64)
    power = np.einsum("ij,ij->i", frames, frames) / (WIRE_SAMPLES * 32767.0 * 32767.0)
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(power)
    db = np.where(power > 0, np.clip(db, MIN_LEVEL, 0), MIN_LEVEL)
    return np.round(db).astype(np.int64)


@cache
def _g711_table(codec: str) -> np.ndarray:
    """Every int16 value's G.711 byte (index: the sample as uint16), from FFmpeg's codec."""
    context: Any = av.CodecContext.create(G711[codec], "w")
    context.format, context.layout, context.sample_rate = "s16", "mono", 8000
    context.time_base = fractions.Fraction(1, 8000)
    ramp = np.arange(65536, dtype=np.uint16).view(np.int16)
    out = b"".join(bytes(p) for p in context.encode(frame_from_pcm(ramp, 0, 8000)))
    return np.frombuffer(out, np.uint8)


def g711_encode(pcm8k: np.ndarray, codec: str) -> bytes:
    return _g711_table(codec)[pcm8k.astype(np.int16, copy=False).view(np.uint16)].tobytes()


@cache
def silence_payload(codec: str) -> bytes | None:
    """One 20 ms payload of silence in ``codec`` ('opus', 'PCMU', 'PCMA'); None for others."""
    if codec in G711:
        return g711_encode(np.zeros(160, np.int16), codec)
    if codec != "opus":
        return None
    encoder = get_encoder(_OPUS)  # aiortc's settings: what a peer decodes from it anyway
    payload = b""
    for n in range(4):  # past the encoder's start-up: the steady packet for digital zero
        payloads, _ = encoder.encode(frame_from_pcm(np.zeros(WIRE_SAMPLES, np.int16), n * 960))
        payload = payloads[-1] if payloads else payload
    return payload


@dataclass
class Encoded:
    """One prompt's payloads in one codec: ``payloads[k]`` carries frame ``k``."""

    payloads: list[bytes] = field(default_factory=list)
    encoder: Any = None  # Opus: aiortc's encoder, still encoding (None once done)


class WirePrompt:
    """A prompt as legs send it: 48 kHz mono PCM padded to whole 20 ms frames, each frame's
    audio level, and its payloads per codec (made on first use)."""

    def __init__(self, pcm48k: np.ndarray) -> None:
        pad = (-pcm48k.size) % WIRE_SAMPLES
        pcm = np.pad(pcm48k, (0, pad)) if pad else pcm48k.copy()
        pcm.flags.writeable = False
        self.pcm = pcm
        self.frames = pcm.size // WIRE_SAMPLES
        self.levels = frame_levels(pcm) if self.frames else np.zeros(0, np.int64)
        self._encoded: dict[str, Encoded] = {}

    def payload(self, codec: str, k: int) -> bytes | None:
        """Frame ``k`` in ``codec``; None when this codec is not pre-encoded (G.722)."""
        encoded = self._encoded.get(codec)
        if encoded is None:
            if codec not in CODECS:
                return None
            encoded = self._encoded[codec] = self._start(codec)
        while len(encoded.payloads) <= k and encoded.encoder is not None:
            n = len(encoded.payloads)
            chunk = self.pcm[n * WIRE_SAMPLES : (n + 1) * WIRE_SAMPLES]
            payloads, _ = encoded.encoder.encode(frame_from_pcm(chunk, n * WIRE_SAMPLES))
            encoded.payloads.extend(payloads[:1] or [silence_payload(codec) or b""])
            if len(encoded.payloads) >= self.frames:
                encoded.encoder = None
        return encoded.payloads[k] if k < len(encoded.payloads) else None

    def _start(self, codec: str) -> Encoded:
        if codec == "opus":
            return Encoded(encoder=get_encoder(_OPUS))
        pcm8k = resample(self.pcm, WIRE_RATE, 8000)
        pcm8k = np.pad(pcm8k, (0, max(0, self.frames * 160 - pcm8k.size)))
        data = g711_encode(pcm8k[: self.frames * 160], codec)
        return Encoded([data[i : i + 160] for i in range(0, len(data), 160)])


def frozen(pcm: np.ndarray) -> bool:
    """Read-only here and in every array it views, and its memory not a writable buffer:
    its samples can never change, so what is made from them can be kept."""
    base: Any = pcm
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return base is None or isinstance(base, bytes)


# Process-wide: a cache of what immutable (frozen) prompt audio encodes to, each entry
# dropped with its array; any gateway or Phone of the process may share it.
_by_id: dict[tuple[int, int], WirePrompt] = {}


def wire_prompt(pcm: np.ndarray, rate: int) -> WirePrompt | None:
    """The :class:`WirePrompt` of a frozen prompt (made once per array and rate), else None."""
    if pcm.size == 0 or not frozen(pcm):
        return None
    key = (id(pcm), rate)
    prompt = _by_id.get(key)
    if prompt is None:
        prompt = _by_id[key] = WirePrompt(resample(pcm, rate, WIRE_RATE))
        weakref.finalize(pcm, _by_id.pop, key, None)
    return prompt


def cached_prompts() -> int:
    """How many prompts have wire forms (a leak check)."""
    return len(_by_id)
