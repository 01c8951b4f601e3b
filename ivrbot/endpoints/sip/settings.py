"""SIP settings: the SIP and media ports, trunks (who may send INVITEs, which called numbers
go to which flow numbers, how outbound calls leave) and accounts (registration to a PBX).

Read from a TOML file (``IVRBOT_SIP_CONFIG``); ``IVRBOT_SIP_PORT`` and
``IVRBOT_SIP_MEDIA_PORTS`` (``start-end``) override its ports, ``IVRBOT_SIP_LOG`` names a file
for PJSIP's own log (every SIP message); those three are read in ivrbot.config and passed in
(``Settings.sip_overrides()``)::

    port = 5060                            # UDP and TCP; TLS on tls_port (default port + 1)
    transports = ["udp", "tcp", "tls"]     # default ["udp"]
    tls_cert_file = "/etc/ivrbot/sip.crt"  # PEM; needed with "tls"
    tls_key_file = "/etc/ivrbot/sip.key"
    media_ports = "40000-40999"
    max_calls = 4                          # SIP calls at once (the wheel's limit: 4)
    public_address = "203.0.113.7"         # behind NAT: the address peers reach (Via,
                                           # Contact, SDP); default: the bound address
    stun_servers = []                      # or learn it by STUN (none by default)

    [trunks.carrier]
    allow = ["192.0.2.10", "192.0.2.11"]   # source addresses whose INVITEs are taken
    routes = { "+15551230000" = "5550001000" }  # called number -> ivrbot number
    uri = "sip:192.0.2.10:5060"            # where outbound calls through it go
    caller_id = "+15551230000"
    prefixes = ["1", "+1"]                 # numbers dialled through it (default: all)
    transport = "udp"                      # of calls out: udp | tcp | tls
    srtp = "off"                           # off | optional | mandatory (SDES keys secret over TLS only)
    refer = false                          # transfers of its SIP callers to numbers it
                                           # dials: REFER to it (not bridged in ivrbot)

    [accounts.office]
    registrar = "sip:pbx.example.com"
    user = "201"
    password = "secret"
    number = "5550001000"                  # calls to the extension go to this number
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivrbot.config import ConfigError

# The pjsua2-python wheel (2.15.1) is built with PJSUA_MAX_CALLS = 4: a fifth call at once is
# refused by PJSIP (inbound: 486; outbound: PJ_ETOOMANY), whatever maxCalls says (measured).
WHEEL_MAX_CALLS = 4
TRANSPORTS = ("udp", "tcp", "tls")
SRTP_MODES = ("off", "optional", "mandatory")


class SipConfigError(ConfigError):
    """A SIP setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Trunk:
    name: str
    allow: tuple[str, ...] = ()  # addresses or networks (CIDR)
    routes: dict[str, str] = field(default_factory=dict)
    uri: str = ""
    caller_id: str = ""
    prefixes: tuple[str, ...] = ()  # numbers dialled through it ('' : every number)
    transport: str = "udp"  # of calls out through it
    srtp: str = "off"  # 'off' | 'optional' | 'mandatory' (calls in and out)
    refer: bool = False  # blind transfers of SIP callers to numbers it dials: REFER

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.allow)

    def route(self, called: str) -> str:
        return self.routes.get(called, called)

    def dials(self, number: str) -> bool:
        return bool(self.uri) and any(number.startswith(p) for p in self.prefixes or ("",))

    def dial_uri(self, number: str) -> str:
        """'5550002000' through 'sip:192.0.2.10:5060' -> 'sip:5550002000@192.0.2.10:5060'
        (';transport=tcp' / 'tls' added for a trunk on TCP or TLS)."""
        uri = f"sip:{number}@{self.uri.removeprefix('sip:')}"
        if self.transport != "udp" and ";transport=" not in uri:
            uri += f";transport={self.transport}"
        return uri


@dataclass(frozen=True)
class Account:
    name: str
    registrar: str
    user: str
    password: str = field(repr=False, default="")
    domain: str = ""
    number: str = ""  # the ivrbot number its calls go to (default: the user part)
    srtp: str = "off"  # 'off' | 'optional' | 'mandatory'

    @property
    def registrar_host(self) -> str:
        """'sip:192.0.2.5:5060;transport=udp' -> '192.0.2.5' (its INVITEs come from there)."""
        host = self.registrar.removeprefix("sip:").split(";")[0]
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host.strip("[]")

    @property
    def uri(self) -> str:
        host = self.domain or self.registrar.removeprefix("sip:").split(";")[0]
        return f"sip:{self.user}@{host}"


@dataclass(frozen=True)
class SipSettings:
    host: str = "127.0.0.1"
    port: int = 5060
    media_ports: tuple[int, int] = (40000, 40999)
    trunks: dict[str, Trunk] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    max_calls: int = WHEEL_MAX_CALLS  # SIP calls at once
    log_file: str = ""  # PJSIP's own log (SIP messages, level 5), for troubleshooting
    transports: tuple[str, ...] = ("udp",)  # 'udp' | 'tcp' (on port) | 'tls' (on tls_port)
    tls_port: int | None = None  # default: port + 1 (port 0: any free port)
    tls_cert_file: str = ""  # PEM certificate (chain) and its private key, for 'tls'
    tls_key_file: str = ""
    # behind NAT: the address peers must reach (in Via, Contact and the SDP), and STUN
    # servers to learn it from (none by default: no network beyond what is configured)
    public_address: str = ""
    stun_servers: tuple[str, ...] = ()

    @property
    def srtp(self) -> str:
        """What the stack takes in calls in before it knows the trunk: 'optional' when any
        trunk or account uses SRTP (the connector then holds each call to its trunk's
        mode, and names the trunk when it refuses one), else 'off'."""
        modes = [t.srtp for t in self.trunks.values()] + [a.srtp for a in self.accounts.values()]
        return "optional" if any(mode != "off" for mode in modes) else "off"

    def trunk_for(self, address: str) -> Trunk | None:
        return next((t for t in self.trunks.values() if t.allows(address)), None)

    def trunk_dialling(self, number: str) -> Trunk | None:
        return next((t for t in self.trunks.values() if t.dials(number)), None)


def _port_range(text: str, what: str) -> tuple[int, int]:
    try:
        start, end = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise SipConfigError(f"{what}={text!r}: write a port range like 40000-40999") from None
    if not 0 < start <= end < 65536:
        raise SipConfigError(f"{what}={text!r}: ports must be 1-65535, start <= end")
    return start, end


def _table(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    value = data.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise SipConfigError(f"[{key}.NAME] sections expected in the SIP configuration")
    return value


def _trunk(name: str, raw: dict[str, Any]) -> Trunk:
    allow = raw.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        raise SipConfigError(f"trunks.{name}.allow: a list of addresses expected")
    for net in allow:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise SipConfigError(f"trunks.{name}.allow: {net!r} is not an address") from None
    routes = raw.get("routes", {})
    if not isinstance(routes, dict):
        raise SipConfigError(f"trunks.{name}.routes: a table of number = number expected")
    prefixes = raw.get("prefixes", [])
    if not isinstance(prefixes, list):
        raise SipConfigError(f"trunks.{name}.prefixes: a list of number prefixes expected")
    uri = str(raw.get("uri", ""))
    if uri and not uri.startswith("sip:"):
        raise SipConfigError(f"trunks.{name}.uri={uri!r}: write it as sip:HOST[:PORT]")
    transport = _choice(raw, "transport", TRANSPORTS, f"trunks.{name}")
    refer = raw.get("refer", False)
    if not isinstance(refer, bool):
        raise SipConfigError(f"trunks.{name}.refer={refer!r}: true or false")
    return Trunk(name, tuple(allow), {str(k): str(v) for k, v in routes.items()}, uri,
                 str(raw.get("caller_id", "")), tuple(str(p) for p in prefixes), transport,
                 _choice(raw, "srtp", SRTP_MODES, f"trunks.{name}"), refer)  # fmt: skip


def _choice(raw: dict[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    value = raw.get(key, allowed[0])
    if value not in allowed:
        raise SipConfigError(f"{where}.{key}={value!r}: use one of {', '.join(allowed)}")
    return str(value)


def _account(name: str, raw: dict[str, Any]) -> Account:
    for key in ("registrar", "user"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise SipConfigError(f"accounts.{name}.{key} is missing")
    return Account(name, raw["registrar"], raw["user"], str(raw.get("password", "")),
                   str(raw.get("domain", "")), str(raw.get("number", "")),
                   _choice(raw, "srtp", SRTP_MODES, f"accounts.{name}"))  # fmt: skip


def _transports(data: dict[str, Any]) -> tuple[str, ...]:
    names = data.get("transports", ["udp"])
    if isinstance(names, str):  # IVRBOT_SIP_TRANSPORTS="udp,tls"
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not names:
        raise SipConfigError('transports: a list like ["udp", "tcp", "tls"] expected')
    for name in names:
        if name not in TRANSPORTS:
            raise SipConfigError(f"transports: {name!r} is not a SIP transport; use "
                                 f"{', '.join(TRANSPORTS)}")  # fmt: skip
    return tuple(dict.fromkeys(str(n) for n in names))


def _check_tls(cert: str, key: str) -> None:
    """The certificate and key load (and match): SipConfigError naming the file otherwise."""
    for setting, path in (("tls_cert_file", cert), ("tls_key_file", key)):
        if not path:
            raise SipConfigError(f'transports has "tls": set {setting} (a PEM file)')
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise SipConfigError(f"{setting}={path!r}: cannot read it ({exc.strerror})") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise SipConfigError(f"tls_cert_file={cert!r} / tls_key_file={key!r}: not a PEM "
                             f"certificate and its private key ({exc.reason})") from None  # fmt: skip


def parse_sip_settings(data: dict[str, Any]) -> SipSettings:
    """The SIP settings of a parsed TOML table (with Settings.sip_overrides() merged in)."""
    port_text = str(data.get("port", 5060))
    try:
        port = int(port_text)
    except ValueError:
        raise SipConfigError(
            f"SIP port {port_text!r} (port, IVRBOT_SIP_PORT): a number expected"
        ) from None
    if not 0 <= port < 65536:
        raise SipConfigError(f"SIP port {port}: use 0-65535 (0: any free port)")
    media = str(data.get("media_ports", "40000-40999"))
    trunks = {n: _trunk(n, raw) for n, raw in _table(data, "trunks").items()}
    accounts = {n: _account(n, raw) for n, raw in _table(data, "accounts").items()}
    host = str(data.get("host", "127.0.0.1"))
    log_file = str(data.get("log_file", ""))
    max_calls = data.get("max_calls", WHEEL_MAX_CALLS)
    if not isinstance(max_calls, int) or not 1 <= max_calls <= WHEEL_MAX_CALLS:
        raise SipConfigError(f"max_calls={max_calls!r}: 1 to {WHEEL_MAX_CALLS} (the pjsua2-python "
                             "wheel's limit of SIP calls at once per process)")  # fmt: skip
    low, high = _port_range(media, "media_ports")
    if high - low + 1 < 2 * max_calls:
        raise SipConfigError(f"media_ports={media!r}: {max_calls} calls need {2 * max_calls} "
                             "ports (RTP and RTCP each)")  # fmt: skip
    transports = _transports(data)
    tls_port = data.get("tls_port")
    if tls_port is not None and (not isinstance(tls_port, int) or not 0 <= tls_port < 65536):
        raise SipConfigError(f"tls_port={tls_port!r}: use 0-65535 (0: any free port)")
    cert, key = str(data.get("tls_cert_file", "")), str(data.get("tls_key_file", ""))
    if "tls" in transports:
        _check_tls(cert, key)
    for trunk in trunks.values():
        if trunk.transport not in transports:
            raise SipConfigError(f"trunks.{trunk.name}.transport={trunk.transport!r}: add "
                                 f"{trunk.transport!r} to transports")  # fmt: skip
    public, stun = _nat(data)
    return SipSettings(host, port, (low, high), trunks, accounts, max_calls, log_file,
                       transports, tls_port, cert, key, public, stun)  # fmt: skip


def _nat(data: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    public = str(data.get("public_address", ""))
    if public:
        try:
            ipaddress.ip_address(public)
        except ValueError:
            raise SipConfigError(f"public_address={public!r}: an IP address expected (the one "
                                 "peers reach this machine at, behind NAT)") from None  # fmt: skip
    stun = data.get("stun_servers", [])
    if not isinstance(stun, list) or not all(
        isinstance(x, str) and re.fullmatch(r"[\w.-]+(:\d{1,5})?", x) for x in stun
    ):
        raise SipConfigError('stun_servers: a list like ["stun.example.net:3478"] expected')
    return public, tuple(stun)


def load_sip_settings(path: str | Path, overrides: Mapping[str, str] | None = None) -> SipSettings:
    """The SIP settings of a TOML file, ``overrides`` (Settings.sip_overrides(): port,
    media_ports, log_file) over it; SipConfigError names what to fix."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise SipConfigError(f"cannot read the SIP configuration {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SipConfigError(f"the SIP configuration {path} is not valid TOML: {exc}") from None
    return parse_sip_settings({**data, **(overrides or {})})
