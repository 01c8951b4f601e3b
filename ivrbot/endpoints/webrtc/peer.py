"""Creating aiortc peer connections the way ivrbot needs them.

Two traps from docs/facts.md are handled here, in one place:

* aioice leaves 127.0.0.1 out of its host candidates, so on a loopback-only machine two
  peers never connect. ivrbot gathers host candidates only on the configured addresses
  (``IVRBOT_ICE_HOSTS``, default ``127.0.0.1``), which also keeps test traffic on loopback.
* aiortc's default configuration uses a public STUN server; ivrbot uses none unless told.
"""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from ivrbot.endpoints.webrtc import rfc4733

DEFAULT_ICE_HOSTS = ("127.0.0.1",)
# Process-wide: aioice finds host addresses through one module function for every
# connection of the process (replaced in new_peer_connection); set once at start-up.
_host_addresses: list[str] = []


def ice_host_addresses() -> list[str]:
    """The addresses ICE gathers host candidates on (``Settings.ice_hosts``; 127.0.0.1 until
    :func:`set_ice_host_addresses` is called)."""
    return list(_host_addresses) or list(DEFAULT_ICE_HOSTS)


def set_ice_host_addresses(addresses: Sequence[str]) -> None:
    """Gather host candidates on ``addresses`` (``IVRBOT_ICE_HOSTS``, read in config.py)."""
    _host_addresses[:] = addresses


def _configured_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [
        a for a in ice_host_addresses() if (":" in a and use_ipv6) or (":" not in a and use_ipv4)
    ]


def set_peer_timeout(seconds: float) -> None:
    """A peer that stops answering ICE consent checks (RFC 7675) for about ``seconds`` is
    gone: its peer connection fails, and the gateway and the Phone end its calls.

    aioice checks every 5 s and gives up after 6 misses (30 s); ivrbot checks every
    ``seconds / 4`` (at least 0.5 s) and gives up after 4 misses in a row. aioice keeps
    these numbers per process, so this applies to every peer connection of the process."""
    if seconds <= 0:
        raise ValueError(f"the peer timeout must be more than 0 s: {seconds}")
    aioice.ice.CONSENT_INTERVAL = max(0.5, seconds / 4)  # type: ignore[assignment]
    aioice.ice.CONSENT_FAILURES = 4


DEFAULT_PEER_TIMEOUT_S = 8.0
set_peer_timeout(DEFAULT_PEER_TIMEOUT_S)


def new_peer_connection(
    ice_servers: list[RTCIceServer] | None = None, transport: str = "all"
) -> RTCPeerConnection:
    """A peer connection with telephone-event support and no public STUN server.

    ``transport``: 'all', 'relay' (TURN only) or 'none' (relay with no TURN server: no
    candidates at all, so the call cannot carry media; the historical SDK's meaning).
    """
    aioice.ice.get_host_addresses = _configured_host_addresses
    rfc4733.install()  # over hotpath.install(): the cheaper per-packet path
    servers = [] if transport == "none" else list(ice_servers or [])
    policy = RTCIceTransportPolicy.ALL if transport == "all" else RTCIceTransportPolicy.RELAY
    return RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
