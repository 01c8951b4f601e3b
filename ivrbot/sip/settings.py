"""SIP settings: the SIP and media ports, trunks (who may send INVITEs, which called numbers
go to which flow numbers, how outbound calls leave) and accounts (registration to a PBX).

Read from a TOML file (``IVRBOT_SIP_CONFIG``); ``IVRBOT_SIP_PORT`` and
``IVRBOT_SIP_MEDIA_PORTS`` (``start-end``) override its ports, ``IVRBOT_SIP_LOG`` names a file
for PJSIP's own log (every SIP message); those three are read in ivrbot.config and passed in
(``Settings.sip_overrides()``)::

    port = 5060
    media_ports = "40000-40999"
    max_calls = 4                          # SIP calls at once (the wheel's limit: 4)

    [trunks.carrier]
    allow = ["192.0.2.10", "192.0.2.11"]   # source addresses whose INVITEs are taken
    routes = { "+15551230000" = "5550001000" }  # called number -> ivrbot number
    uri = "sip:192.0.2.10:5060"            # where outbound calls through it go
    caller_id = "+15551230000"
    prefixes = ["1", "+1"]                 # numbers dialled through it (default: all)

    [accounts.office]
    registrar = "sip:pbx.example.com"
    user = "201"
    password = "secret"
    number = "5550001000"                  # calls to the extension go to this number
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivrbot.config import ConfigError

# The pjsua2-python wheel (2.15.1) is built with PJSUA_MAX_CALLS = 4: a fifth call at once is
# refused by PJSIP (inbound: 486; outbound: PJ_ETOOMANY), whatever maxCalls says (measured).
WHEEL_MAX_CALLS = 4


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
        """'5550002000' through 'sip:192.0.2.10:5060' -> 'sip:5550002000@192.0.2.10:5060'."""
        return f"sip:{number}@{self.uri.removeprefix('sip:')}"


@dataclass(frozen=True)
class Account:
    name: str
    registrar: str
    user: str
    password: str = field(repr=False, default="")
    domain: str = ""
    number: str = ""  # the ivrbot number its calls go to (default: the user part)

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
    return Trunk(name, tuple(allow), {str(k): str(v) for k, v in routes.items()}, uri,
                 str(raw.get("caller_id", "")), tuple(str(p) for p in prefixes))  # fmt: skip


def _account(name: str, raw: dict[str, Any]) -> Account:
    for key in ("registrar", "user"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise SipConfigError(f"accounts.{name}.{key} is missing")
    return Account(name, raw["registrar"], raw["user"], str(raw.get("password", "")),
                   str(raw.get("domain", "")), str(raw.get("number", "")))  # fmt: skip


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
    return SipSettings(host, port, (low, high), trunks, accounts, max_calls, log_file)


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
