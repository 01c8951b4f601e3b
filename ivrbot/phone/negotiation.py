"""Media negotiation of a Phone's calls: every SDP offer and answer the Phone sends or
takes goes through here (the rest of the Phone never reads or writes SDP).

Which media a call gets follows from the Phone's transport: a Phone in the gateway's process
(its transport hands over the gateway's media links, :class:`~ivrbot.phone.transport.
LinkSource`) has in-process media on every call (frames in process,
:mod:`ivrbot.endpoints.local.local_link`); any other has an aiortc peer connection with the
ICE settings of this Phone (:mod:`ivrbot.phone.media` holds both kinds). Requests carry SDP as
``{"sdp": ...}`` parts of their bodies (docs/spec/rtc-api.md); these are made here too.
"""

from __future__ import annotations

from typing import Any

from aiortc import RTCIceServer

from ivrbot.phone.call import Call
from ivrbot.phone.media import CallMedia, LocalMedia, RtcMedia
from ivrbot.phone.publisher import Publisher
from ivrbot.phone.transport import LinkSource

Sdp = dict[str, str]  # the SDP part of a request body: {"sdp": ...}


class Negotiation:
    """Offers, answers and the media they make, for every call of one Phone."""

    def __init__(self, publisher: Publisher, links: LinkSource | None = None) -> None:
        self.publisher = publisher
        self.links = links  # the gateway's media links, for a Phone in its process
        self.ice_servers: list[RTCIceServer] = []  # none: no STUN/TURN (loopback, one host)
        self.ice_transport = "all"

    # settings for the next calls (spec: setIceServers, setIceTransport) ---------------------
    def set_ice_servers(self, servers: Any) -> None:
        """STUN/TURN servers for the next calls: [{'urls': 'turn:...', 'username', 'credential'}]
        or URL strings. None are used by default (one machine needs none)."""
        parsed: list[RTCIceServer] = []
        ok = isinstance(servers, list)
        for server in servers if ok else []:
            if isinstance(server, str):
                server = {"urls": server}
            urls = server.get("urls") if isinstance(server, dict) else None
            if isinstance(urls, str):
                urls = [urls]
            if (
                not isinstance(urls, list)
                or not urls
                or not all(
                    isinstance(u, str) and u.startswith(("stun:", "turn:", "turns:")) for u in urls
                )
            ):
                ok = False
                break
            parsed.append(RTCIceServer(urls, server.get("username"), server.get("credential")))
        if not ok:
            self.publisher.fail(
                "set_ice_servers", "4811",
                "ice servers must be a list of {'urls': 'stun:...'|'turn:...', ...} or URL strings",
            )  # fmt: skip
        self.ice_servers = parsed

    def set_ice_transport(self, policy: Any) -> None:
        """'all' (default), 'relay' (TURN only) or 'none' (no candidates) for the next calls."""
        if policy not in ("all", "relay", "none"):
            self.publisher.fail(
                "set_ice_transport", "4821", "ice transport must be 'all', 'relay' or 'none'"
            )
        self.ice_transport = policy

    # the media a call gets -------------------------------------------------------------------
    def _media(self, call: Call) -> CallMedia:
        if call.media is None:
            links = self.links
            if links is not None:
                resource = f"{call.phone.session_path}/{call.kind.resource}"
                call.media = LocalMedia(
                    call, call.local_media, lambda: links.link_for(f"{resource}/{call.id}")
                )
            else:
                call.media = RtcMedia(call, call.local_media, self.ice_servers, self.ice_transport)
        return call.media

    # this side offers ------------------------------------------------------------------------
    async def offer(self, call: Call) -> Sdp:
        """The first offer of ``call`` (dial, starting a conference)."""
        return {"sdp": await self._media(call).offer()}

    async def reoffer(self, call: Call, direction: str) -> Sdp:
        """A new offer of the call's media with ``direction`` (sendonly to hold, sendrecv);
        :meth:`revert` undoes it when the request carrying it fails."""
        return {"sdp": await self._media(call).reoffer(direction)}

    def revert(self, call: Call) -> None:
        if call.media is not None:
            call.media.revert()

    async def take_answer(self, call: Call, obj: dict[str, Any]) -> None:
        """Apply the answer a channel event (session-open, mod-terminated) carries to this
        side's last offer; none, or no offer waiting for one, changes nothing."""
        sdp = obj.get("sdp")
        if isinstance(sdp, str) and call.media is not None:
            await call.media.accept_answer(sdp)

    def negotiated(self, call: Call) -> bool:
        """An offer and its answer have been exchanged once."""
        return call.media is not None and call.media.negotiated

    # the far end offers ----------------------------------------------------------------------
    def take_offer(self, call: Call, obj: dict[str, Any]) -> None:
        """Keep the offer a channel event (invitation-received, mod-received) carries until
        this side answers it (none: nothing to answer)."""
        sdp = obj.get("sdp")
        call.far_offer = sdp if isinstance(sdp, str) else None

    def has_offer(self, call: Call) -> bool:
        return call.far_offer is not None

    async def answer(self, call: Call) -> Sdp:
        """Answer the far end's kept offer."""
        offer, call.far_offer = call.far_offer, None
        if offer is None:
            raise ValueError("the far end made no offer to answer")
        media = self._media(call)
        return {"sdp": await media.answer(offer)}
