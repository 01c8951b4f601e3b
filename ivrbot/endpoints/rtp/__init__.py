"""G.711 RTP endpoints on asyncio (the media brick of SIP at scale, issue 24): the codec
tables (:mod:`.g711`), RTP and RFC 4733 packets (:mod:`.packets`), the receiver's
sequence rule (:mod:`.sequencing`), key sending and receiving (:mod:`.telephone_events`),
the datagram session (:mod:`.session`) and the call-core endpoint (:mod:`.leg`). No SDP
and no SIP here: the SIP part negotiates and makes legs with what was agreed."""

from ivrbot.endpoints.rtp.leg import RtpLeg
from ivrbot.endpoints.rtp.session import RtpCounts, RtpSession

__all__ = ["RtpCounts", "RtpLeg", "RtpSession"]
