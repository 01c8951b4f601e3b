"""The endpoints a call's party can be: an aiortc peer connection (browsers, remote Phones)
or an in-process one (a bot in this process, a SIP call: frames and keys, no SDP). Which
follows from the session, never from what a client sends: a session is local only when it
was made in this process (ivrbot.wire.in_process, the SIP connector). The gateway hands
its :class:`MediaEndpoints` (made from its settings) to the switch and the conference service (the core's
:class:`~ivrbot.core.endpoints.EndpointKinds`)."""

from __future__ import annotations

from ivrbot.core.endpoints import Endpoint
from ivrbot.core.sessions import Session
from ivrbot.endpoints.local.local_leg import LocalLeg
from ivrbot.endpoints.webrtc.hotpath import GATEWAY_PREFETCH
from ivrbot.endpoints.webrtc.leg import Leg
from ivrbot.endpoints.webrtc.peer import set_peer_timeout


class MediaEndpoints:
    """The endpoint kinds of a gateway. ``prefetch``: the audio frames a WebRTC leg's receive
    buffer waits for before it hands one on (``Settings.jitter_prefetch``)."""

    def __init__(self, prefetch: int = GATEWAY_PREFETCH) -> None:
        self.prefetch = prefetch

    def for_session(self, name: str, session: Session) -> Endpoint:
        """In-process for a session in this process, else a WebRTC leg."""
        return LocalLeg(name) if session.local else Leg(name, self.prefetch)

    @staticmethod
    def set_peer_timeout(seconds: float) -> None:
        """How long a WebRTC party's peer may stay silent before its leg is lost."""
        set_peer_timeout(seconds)
