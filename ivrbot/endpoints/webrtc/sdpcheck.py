"""Limits on the SDP a client may send, checked before aiortc parses it.

The gateway anchors one audio stream per leg (video upgrades are signalled, not carried), so
an offer needs one ``m=audio`` section; a browser offers at most audio, video and a data
channel. Far larger descriptions are refused with a message naming the limit, before aiortc
builds a transceiver for each section.
"""

from __future__ import annotations

MAX_SDP_BYTES = 64 * 1024
MAX_MEDIA_SECTIONS = 4


def sdp_problem(sdp: str, kind: str) -> str | None:
    """Why the ``kind`` ('offer' or 'answer') cannot be used, or None if it is in bounds."""
    if "\x00" in sdp:
        return f"the SDP {kind} contains a NUL character"
    sections = sum(1 for line in sdp.splitlines() if line.startswith("m="))
    if sections > MAX_MEDIA_SECTIONS:
        return (
            f"the SDP {kind} has {sections} media sections (m= lines); at most "
            f"{MAX_MEDIA_SECTIONS} are accepted, one of them m=audio"
        )
    if len(sdp.encode("utf-8", "surrogatepass")) > MAX_SDP_BYTES:
        return f"the SDP {kind} is larger than {MAX_SDP_BYTES} bytes"
    return None
