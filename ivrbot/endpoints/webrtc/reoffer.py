"""A new offer on a live aiortc peer connection that keeps what was negotiated.

RFC 3264 section 8: a re-offer changes only what it means to change. aiortc's
``createOffer`` on a live connection starts again from its own defaults instead: its payload
types (opus 96) and RTP header extension ids (mid 1, audio level 2), a new ``o=`` session id
and ``a=setup:actpass``. When the endpoint made the first offer (a browser: opus 111, mid
extension 4), that renumbers the call. Chromium refuses a negotiated extension under another
id, and once the new numbers are agreed both sides send with them while aiortc's RTP sender
and receiver, started once with the first numbers, never change: the gateway drops the
endpoint's packets (an unknown payload type) and the endpoint drops the gateway's.

:func:`stable_offer` makes aiortc's offer and puts the negotiated numbering back in it: per
mid, the codecs with their payload types and the header extensions with their ids; the
session id with its version raised by one; and the DTLS role that was settled (ICE
credentials, the fingerprints and mids are aiortc's current ones, which do not change).
The transceivers keep their negotiated codecs while the offer waits for its answer (RFC 4733
sending reads them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription, sdp
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters


@dataclass(frozen=True)
class Numbering:
    """What one media section negotiated: codecs (payload types) and header extension ids."""

    codecs: list[RTCRtpCodecParameters]
    extensions: list[RTCRtpHeaderExtensionParameters]
    role: str  # the settled DTLS role ('client' or 'server'), or 'auto' before it is


def negotiated(transceiver: RTCRtpTransceiver) -> Numbering | None:
    """The numbering ``transceiver`` negotiated (None before it took part in one)."""
    codecs = transceiver._codecs  # aiortc keeps the negotiated codecs here (private)
    if transceiver.mid is None or not codecs:
        return None
    role = transceiver.receiver.transport._role
    return Numbering(list(codecs), list(transceiver._headerExtensions), role)


def next_origin(previous: str | None, fresh: str | None) -> str | None:
    """The ``o=`` value of a re-offer: the previous one with its version raised by one."""
    fields = (previous or "").split()
    if len(fields) != 6 or not fields[2].isdigit():
        return fresh
    fields[2] = str(int(fields[2]) + 1)
    return " ".join(fields)


def keep_numbering(offer: str, previous_origin: str | None, kept: dict[str, Numbering]) -> str:
    """``offer`` (aiortc's) with the numbering of every media section in ``kept`` (by mid)."""
    description = sdp.SessionDescription.parse(offer)
    description.origin = next_origin(previous_origin, description.origin)
    for media in description.media:
        numbering = kept.get(media.rtp.muxId or "")
        if media.kind not in ("audio", "video") or numbering is None:
            continue
        media.rtp.codecs = copy.deepcopy(numbering.codecs)
        media.fmt = [codec.payloadType for codec in numbering.codecs]
        media.rtp.headerExtensions = copy.deepcopy(numbering.extensions)
        if media.dtls is not None and numbering.role in ("client", "server"):
            media.dtls.role = numbering.role
    return str(description)


async def stable_offer(pc: RTCPeerConnection) -> str:
    """Make and set a new local offer on the live ``pc`` that keeps its negotiated numbering;
    returns its SDP."""
    kept: dict[str, Numbering] = {}
    transceivers = pc.getTransceivers()
    for transceiver in transceivers:
        numbering = negotiated(transceiver)
        if numbering is not None and transceiver.mid is not None:
            kept[transceiver.mid] = numbering
    previous = pc.localDescription
    previous_origin = sdp.SessionDescription.parse(previous.sdp).origin if previous else None
    offer = await pc.createOffer()  # resets every transceiver's codecs to aiortc's defaults
    for transceiver in transceivers:
        numbering = kept.get(transceiver.mid or "")
        if numbering is not None:
            transceiver._codecs = list(numbering.codecs)
            transceiver._headerExtensions = list(numbering.extensions)
    text = keep_numbering(offer.sdp, previous_origin, kept)
    await pc.setLocalDescription(RTCSessionDescription(sdp=text, type="offer"))
    return pc.localDescription.sdp
