"""The SIP transports PJSIP listens on (UDP and TCP on the SIP port, TLS on the TLS port)
and the SRTP modes of accounts. Called on the stack's thread."""

from __future__ import annotations

import pjsua2 as pj

from ivrbot.endpoints.sip.settings import SipConfigError, SipSettings

KINDS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP,
         "tls": pj.PJSIP_TRANSPORT_TLS}  # fmt: skip
SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}  # fmt: skip
TLS_HANDSHAKE_MS = 5000  # a peer that does not finish its TLS handshake is dropped
TRIES = 10  # SIP port 0: ports picked for UDP until TCP is free on the same one


def create_transports(endpoint: pj.Endpoint, settings: SipSettings) -> dict[str, int]:
    """Create the transports of ``settings``; their bound ports by name. UDP and TCP share
    the SIP port (port 0: the first picks one, the other takes the same, tried again when
    that one is taken); TLS listens on ``tls_port`` (default: the SIP port + 1, or any free
    port when the SIP port is 0). SipConfigError names the transport that failed."""
    for attempt in range(TRIES):
        ports: dict[str, int] = {}
        made: list[int] = []
        try:
            for name in settings.transports:
                tid = endpoint.transportCreate(KINDS[name], _config(name, settings, ports))
                made.append(tid)
                ports[name] = int(endpoint.transportGetInfo(tid).localName.rsplit(":", 1)[1])
            return ports
        except pj.Error as exc:
            for tid in made:
                endpoint.transportClose(tid)
            shared = settings.port == 0 and len(ports) == 1 and name in ("udp", "tcp")
            if shared and attempt < TRIES - 1:
                continue  # the port picked for one was taken for the other: another port
            port = _config(name, settings, ports).port
            raise SipConfigError(
                f"SIP {name.upper()} did not start on {settings.host}:{port} "
                f"({'tls_port' if name == 'tls' else 'port, IVRBOT_SIP_PORT'}): "
                f"{exc.info().strip()}"
            ) from None
    raise AssertionError("unreachable")


def _config(name: str, settings: SipSettings, ports: dict[str, int]) -> pj.TransportConfig:
    config = pj.TransportConfig()
    config.boundAddress = settings.host
    config.publicAddress = settings.public_address  # '' : the bound address
    if name == "tls":
        config.port = _tls_port(settings)
        tls = config.tlsConfig
        tls.certFile = settings.tls_cert_file
        tls.privKeyFile = settings.tls_key_file
        tls.CaListFile = settings.tls_cert_file  # none given: PJSIP logs an error
        tls.msecTimeout = TLS_HANDSHAKE_MS
    else:
        config.port = ports.get("udp", ports.get("tcp", settings.port))
    return config


def _tls_port(settings: SipSettings) -> int:
    if settings.tls_port is not None:
        return settings.tls_port
    return settings.port + 1 if settings.port else 0
