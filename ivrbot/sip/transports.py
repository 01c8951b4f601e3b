"""The SIP transports PJSIP listens on (UDP and TCP on the SIP port, TLS on the TLS port)
and the SRTP modes of accounts. Called on the stack's thread."""

from __future__ import annotations

import pjsua2 as pj

from ivrbot.sip.settings import SipSettings

KINDS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP,
         "tls": pj.PJSIP_TRANSPORT_TLS}  # fmt: skip
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}  # fmt: skip
TLS_HANDSHAKE_MS = 5000  # a peer that does not finish its TLS handshake is dropped


def create_transports(endpoint: pj.Endpoint, settings: SipSettings) -> dict[str, int]:
    """Create the transports of ``settings``; their bound ports by name. UDP and TCP share
    the SIP port (port 0: the first picks one, the other takes the same); TLS listens on
    ``tls_port`` (default: the SIP port + 1, or any free port when the SIP port is 0)."""
    ports: dict[str, int] = {}
    for name in settings.transports:
        config = pj.TransportConfig()
        config.boundAddress = settings.host
        if name == "tls":
            config.port = _tls_port(settings)
            tls = config.tlsConfig
            tls.certFile = settings.tls_cert_file
            tls.privKeyFile = settings.tls_key_file
            tls.CaListFile = settings.tls_cert_file  # none given: PJSIP logs an error
            tls.msecTimeout = TLS_HANDSHAKE_MS
        else:
            config.port = ports.get("udp", ports.get("tcp", settings.port))
        tid = endpoint.transportCreate(KINDS[name], config)
        ports[name] = int(endpoint.transportGetInfo(tid).localName.rsplit(":", 1)[1])
    return ports


def _tls_port(settings: SipSettings) -> int:
    if settings.tls_port is not None:
        return settings.tls_port
    return settings.port + 1 if settings.port else 0
