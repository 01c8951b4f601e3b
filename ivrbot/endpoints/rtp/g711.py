"""G.711 (ITU-T) A-law and µ-law by numpy lookup tables: encoding indexes a 65536-entry
table by the int16 sample (as uint16), decoding a 256-entry one. The tables are built once
from the recommendation's segment rules (as in the classic Sun ``g711.c``), so no stdlib
``audioop`` (removed in Python 3.13) is needed."""

from __future__ import annotations

import numpy as np

_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _all_int16() -> np.ndarray:
    """Every int16 value, ordered by its uint16 bit pattern (the encode table's index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _alaw_encode_table() -> np.ndarray:
    pcm = _all_int16() >> 3  # 13-bit magnitude range
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    pcm = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_ALAW_SEG_END, pcm)  # first segment whose end >= pcm
    shift = np.where(seg < 2, 1, seg)
    aval = (seg << 4) | ((pcm >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return (aval ^ mask).astype(np.uint8)


def _alaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(code & 0x80, t, -t).astype(np.int16)


def _ulaw_encode_table() -> np.ndarray:
    pcm = _all_int16() >> 2  # 14-bit magnitude range
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    pcm = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, pcm)
    uval = (seg << 4) | ((pcm >> (np.minimum(seg, 7) + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)
    return (uval ^ mask).astype(np.uint8)


def _ulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


_ENCODE = {"PCMA": _alaw_encode_table(), "PCMU": _ulaw_encode_table()}
_DECODE = {"PCMA": _alaw_decode_table(), "PCMU": _ulaw_decode_table()}

PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
"""The static RTP payload types (RFC 3551) of the two laws."""
LAWS = tuple(PAYLOAD_TYPES)


def encode(pcm: np.ndarray, law: str) -> bytes:
    """int16 samples to G.711 bytes (``law`` is 'PCMA' or 'PCMU'), one byte a sample."""
    table = _ENCODE[law]
    return table[np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)].tobytes()


def decode(payload: bytes, law: str) -> np.ndarray:
    """G.711 bytes to int16 samples."""
    return _DECODE[law][np.frombuffer(payload, dtype=np.uint8)]


def silence(law: str, samples: int = 160) -> bytes:
    """``samples`` of digital silence, encoded."""
    return encode(np.zeros(samples, np.int16), law)
