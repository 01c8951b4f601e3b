"""Settings, from defaults and ``IVRBOT_*`` environment variables."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ivrbot.errors import UserError

BOOLS = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}  # fmt: skip
T = TypeVar("T")
# where settings are read from: the process environment, or a scenario's overlay of it
_SOURCE: ContextVar[Mapping[str, str] | None] = ContextVar("ivrbot_settings_source", default=None)
# the variables read (name -> type) while env_types() records them; None: not recording
_READ: ContextVar[dict[str, str] | None] = ContextVar("ivrbot_settings_read", default=None)


def environment() -> Mapping[str, str]:
    """The variables settings are read from (the process environment unless overlaid)."""
    return _SOURCE.get() or os.environ


@contextmanager
def _reading(values: Mapping[str, str]) -> Iterator[None]:
    token = _SOURCE.set({**os.environ, **values})
    try:
        yield
    finally:
        _SOURCE.reset(token)


def limit_blas_threads() -> None:
    """One BLAS thread per process unless OPENBLAS_NUM_THREADS says otherwise (set in the
    environment before numpy loads, so that it and child processes see it)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a child process (a TTS worker, a verifier command): this
    process's, with ``extra`` set."""
    return {**os.environ, **extra}


def _env(name: str, default: str, kind: str = "str") -> str:
    read = _READ.get()
    if read is not None:
        read.setdefault(name, kind)
    return environment().get(f"IVRBOT_{name}", default)


def prompt_cache_dir() -> Path:
    """``IVRBOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/ivrbot/prompts`` (~/.cache/ivrbot/prompts)."""
    explicit = _env("CACHE_DIR", "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = environment().get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ivrbot" / "prompts"


def _typed(name: str, default: str, kind: str, parse: Callable[[str], T], form: str) -> T:
    raw = _env(name, default, kind)
    try:
        return parse(raw.strip())
    except ValueError:
        raise ConfigError(f"IVRBOT_{name}={raw!r} is not valid: {form}") from None


def _env_int(name: str, default: int, low: int = 0, high: int | None = None) -> int:
    """A whole number from low (to high); ConfigError naming the variable otherwise."""
    form = f"give a whole number from {low}" + (f" to {high}" if high is not None else " up")

    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(text)
        return value

    return _typed(name, str(default), "int", parse, form)


def _env_float(name: str, default: float, low: float = 0.0) -> float:
    """A number of at least ``low`` (seconds, rates); ConfigError naming the variable."""

    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or value < low:
            raise ValueError(text)
        return value

    return _typed(name, str(default), "float", parse, f"give a number from {low:g} up")


def _env_list(name: str, default: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _env(name, default, "list").split(",") if part.strip())


def _env_bool(name: str, default: str) -> bool:
    def parse(text: str) -> bool:
        if text.lower() not in BOOLS:
            raise ValueError(text)
        return BOOLS[text.lower()]

    return _typed(name, default, "bool", parse, "use 1 or 0 (true/false, yes/no, on/off)")


def _default_pool() -> tuple[str, ...]:
    def parse(raw: str) -> tuple[str, ...]:
        numbers: list[str] = []
        for part in raw.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-", 1)
                numbers += [str(n) for n in range(int(lo), int(hi) + 1)]
            elif part:
                numbers.append(str(int(part)))
        return tuple(numbers)

    form = "give numbers and ranges, e.g. 5550001000-5550001099,5550002000"
    return _typed("VIRTUAL_NUMBERS", "5550001000-5550001099", "list", parse, form)


# Development defaults for the embedded app server's OAuth client. Set IVRBOT_CLIENT_ID and
# IVRBOT_CLIENT_SECRET on any machine reachable by others: outside development mode the
# gateway refuses to start with the development secret, and refuses it from clients.
DEV_CLIENT_ID = "ivrbot-dev-client"
DEV_CLIENT_SECRET = "ivrbot-dev-secret-change-me"
MIN_SECRET_LEN = 16
DEV_MODES = {"auto": None, "on": True, "1": True, "true": True, "yes": True,
             "off": False, "0": False, "false": False, "no": False}  # fmt: skip


class ConfigError(UserError, ValueError):
    """Settings the gateway will not run with; the message names the setting to change."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:
        return False


_LISTS = ("virtual_numbers", "redirect_uris", "api_keys", "reserved_ids", "ice_hosts")


@dataclass(frozen=True)
class Settings:
    """Every ``IVRBOT_*`` setting, read once. Frozen: nothing changes a setting while the
    process runs; a command that overrides one makes new settings (``dataclasses.replace``)
    before it builds the gateway."""

    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("PORT", 8890, high=65535))
    domain: str = field(default_factory=lambda: _env("DOMAIN", "ivrbot.local"))
    rtc_uri: str = "/RTC/v1"
    virtual_numbers: tuple[str, ...] = field(default_factory=_default_pool)
    token_ttl_s: int = field(default_factory=lambda: _env_int("TOKEN_TTL", 3600))
    session_ttl_s: int = field(default_factory=lambda: _env_int("SESSION_TTL", 3600))
    long_poll_s: float = field(default_factory=lambda: _env_float("LONG_POLL", 40))
    ring_timeout_s: float = field(default_factory=lambda: _env_float("RING_TIMEOUT", 60))
    # a peer that stops answering ICE consent checks this long is gone: its calls end
    peer_timeout_s: float = field(default_factory=lambda: _env_float("PEER_TIMEOUT", 8))
    # cached prompts and silence sent pre-encoded (0: encode and decode every frame)
    preencode: bool = field(default_factory=lambda: _env_bool("PREENCODE", "1"))
    # audio frames a gateway leg's receive buffer waits for before handing one on (aiortc: 4)
    jitter_prefetch: int = field(default_factory=lambda: _env_int("JITTER_PREFETCH", 1, 0, 8))
    # bots in this process: concurrent calls in all and per flow (Flow(max_calls=N) sets its
    # own); past the limit a caller waits in a queue with ringback this long, then hears busy
    max_calls: int = field(default_factory=lambda: _env_int("MAX_CALLS", 100))
    # bots attach inside the gateway (in-process media, admission); 0: each bot is a remote
    # Phone of its own gateway (the path of bots in other processes; for comparison)
    local_bots: bool = field(default_factory=lambda: _env_bool("LOCAL_BOTS", "1"))
    flow_max_calls: int = field(default_factory=lambda: _env_int("FLOW_MAX_CALLS", 50))
    # ivrbot run: media worker processes taking WebRTC callers' calls to the flows (each
    # call's media and bot in one worker; ivrbot/workers); 0: all in the gateway's process
    media_workers: int = field(default_factory=lambda: _env_int("MEDIA_WORKERS", 0, 0, 64))
    queue_s: float = field(default_factory=lambda: _env_float("QUEUE_TIMEOUT", 30))
    # storage: one SQLite file (":memory:" keeps nothing across restarts)
    db: str = field(default_factory=lambda: _env("DB", "ivrbot.db"))
    # campaigns: '' real time, or SPEED[@ISO-START] (a faster campaign clock for trials)
    campaign_clock: str = field(default_factory=lambda: _env("CAMPAIGN_CLOCK", ""))
    # SIP trunks and accounts (a TOML file, see ivrbot/endpoints/sip/settings.py); empty: no SIP
    sip_config: str = field(default_factory=lambda: _env("SIP_CONFIG", ""))
    # over the SIP file's port, media_ports ("start-end") and log_file (PJSIP's own log)
    sip_port: str = field(default_factory=lambda: _env("SIP_PORT", ""))
    sip_media_ports: str = field(default_factory=lambda: _env("SIP_MEDIA_PORTS", ""))
    sip_log: str = field(default_factory=lambda: _env("SIP_LOG", ""))
    # OAuth: the app server's client, refresh tokens, consent codes, allowed redirect URIs
    client_id: str = field(default_factory=lambda: _env("CLIENT_ID", DEV_CLIENT_ID))
    client_secret: str = field(
        default_factory=lambda: _env("CLIENT_SECRET", DEV_CLIENT_SECRET), repr=False
    )
    refresh_ttl_s: int = field(default_factory=lambda: _env_int("REFRESH_TTL", 2592000))
    auth_code_ttl_s: int = field(default_factory=lambda: _env_int("AUTH_CODE_TTL", 600))
    redirect_uris: tuple[str, ...] = field(
        default_factory=lambda: _env_list("REDIRECT_URIS", "http://127.0.0.1,http://localhost")
    )
    # rate limits per client address: tokens per second (0 disables) and burst size
    rate_limit: float = field(default_factory=lambda: _env_float("RATE_LIMIT", 5))
    rate_burst: int = field(default_factory=lambda: _env_int("RATE_BURST", 30))
    # whether mobile-number and virtual-number users must log in with an x-e911Id
    e911_required: bool = field(default_factory=lambda: _env_bool("E911_REQUIRED", "0"))
    # slow clients: seconds to send a request's head (from its first byte) and its body; idle
    # keep-alive connections are closed after keepalive_timeout_s
    header_timeout_s: float = field(default_factory=lambda: _env_float("HEADER_TIMEOUT", 10))
    body_timeout_s: float = field(default_factory=lambda: _env_float("BODY_TIMEOUT", 10))
    keepalive_timeout_s: float = field(default_factory=lambda: _env_float("KEEPALIVE_TIMEOUT", 75))
    # one INFO line per request on the aiohttp.access logger (tokens redacted)
    access_log: bool = field(default_factory=lambda: _env_bool("ACCESS_LOG", "1"))
    # access (README "Access and security"): development mode is 'auto' (on when listening
    # on loopback with no credentials configured), 'on' or 'off'. Outside it, POST /tokens
    # needs an API key (X-API-Key, one of IVRBOT_API_KEYS) or the OAuth client's secret.
    dev_mode: str = field(default_factory=lambda: _env("DEV_MODE", "auto"))
    api_keys: tuple[str, ...] = field(default_factory=lambda: _env_list("API_KEYS", ""), repr=False)
    # identities only the operator's bots may use, besides the numbers of the flows served
    reserved_ids: tuple[str, ...] = field(default_factory=lambda: _env_list("RESERVED_IDS", ""))
    # how the consent page proves a mobile number: '' (none: mobile binding is off outside
    # development mode), 'dev' (the code is shown on the page; development mode only) or a
    # command run with IVRBOT_VERIFY_NUMBER and IVRBOT_VERIFY_CODE in its environment
    mobile_verifier: str = field(default_factory=lambda: _env("MOBILE_VERIFIER", ""), repr=False)
    # media: the addresses ICE gathers host candidates on (aioice leaves out 127.0.0.1)
    ice_hosts: tuple[str, ...] = field(default_factory=lambda: _env_list("ICE_HOSTS", "127.0.0.1"))
    # the vosk model folder to use ('' : ./models, then installed model packages)
    model: str = field(default_factory=lambda: _env("MODEL", ""))
    # vosk's own log lines on stderr (off: it logs every model and recogniser)
    vosk_log: bool = field(default_factory=lambda: _env_bool("VOSK_LOG", "0"))
    # the prompt cache (synthesised prompts, by content)
    cache_dir: Path = field(default_factory=prompt_cache_dir)
    # where calls' recordings go: <recordings>/<flow>/<record id>.wav
    recordings: Path = field(default_factory=lambda: Path(_env("RECORDINGS", "recordings")))
    # a client's API key (ivrbot call, app servers' Phones): one of the gateway's API_KEYS
    api_key: str = field(default_factory=lambda: _env("API_KEY", "").strip(), repr=False)
    # the log of the ivrbot command: level ('' : info for run, warning otherwise) and format
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "").lower())
    log_format: str = field(default_factory=lambda: _env("LOG_FORMAT", "text").lower())
    # webhooks (ivrbot/integrations): the shared secret their HMAC-SHA256 signatures are
    # keyed with ('': sent unsigned, with a warning), tries per event, the wait before the
    # first retry (doubled for each one after) and each try's timeout
    webhook_secret: str = field(default_factory=lambda: _env("WEBHOOK_SECRET", ""), repr=False)
    webhook_tries: int = field(default_factory=lambda: _env_int("WEBHOOK_TRIES", 5, 1, 20))
    webhook_backoff_s: float = field(default_factory=lambda: _env_float("WEBHOOK_BACKOFF", 1.0))
    webhook_timeout_s: float = field(
        default_factory=lambda: _env_float("WEBHOOK_TIMEOUT", 5.0, 0.1)
    )
    # what flows see as call.env: this environment (a scenario's [env] table over it)
    flow_env: dict[str, str] = field(default_factory=lambda: dict(environment()), repr=False)

    def __post_init__(self) -> None:
        for name in _LISTS:  # lists given (Settings(api_keys=[...])) kept as tuples
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @staticmethod
    def env_types() -> dict[str, str]:
        """Every ``IVRBOT_`` variable the settings read, and its type (int, float, bool, str,
        list): each is read through one of the typed helpers above, which name the variable
        when its value is bad (ConfigError), never through int()/float() of ``_env``."""
        read: dict[str, str] = {}
        token = _READ.set(read)
        try:
            Settings()
        finally:
            _READ.reset(token)
        return read

    @classmethod
    def with_env(cls, values: Mapping[str, str], **given: object) -> Settings:
        """Settings read from the environment with ``values`` over it (a scenario's ``[env]``
        table), without changing the environment; ``given`` fields over both."""
        with _reading(values):
            return cls(**given)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def development(self) -> bool:
        """Development mode: /tokens is open to anyone who can reach the gateway."""
        explicit = DEV_MODES.get(self.dev_mode.strip().lower())
        if explicit is not None:
            return explicit
        configured = self.client_secret != DEV_CLIENT_SECRET or bool(self.api_keys)
        return is_loopback(self.host) and not configured

    @property
    def verifier(self) -> str:
        """The mobile verifier in effect: 'dev' by default in development mode."""
        chosen = self.mobile_verifier.strip()
        return chosen or ("dev" if self.development else "")

    def sip_overrides(self) -> dict[str, str]:
        """The SIP settings given here over those of the SIP file (IVRBOT_SIP_CONFIG)."""
        given = {"port": self.sip_port, "media_ports": self.sip_media_ports,
                 "log_file": self.sip_log}  # fmt: skip
        return {key: value for key, value in given.items() if value}

    def check_access(self) -> list[str]:
        """The warnings to print at start-up; ConfigError (one line naming the setting to
        set) when the gateway must not start with these settings."""
        if self.dev_mode.strip().lower() not in DEV_MODES:
            raise ConfigError(f"IVRBOT_DEV_MODE={self.dev_mode!r}: use auto, on or off")
        if self.development:
            where = "this machine" if is_loopback(self.host) else f"ANYONE who reaches {self.host}"
            return [
                f"DEVELOPMENT MODE: {where} can get tokens without credentials and bind mobile "
                "numbers with codes shown on the page. To serve in public set "
                "IVRBOT_CLIENT_SECRET and IVRBOT_API_KEYS (README: Access and security)."
            ]
        if self.client_secret == DEV_CLIENT_SECRET:
            why = (
                "IVRBOT_DEV_MODE is off"
                if DEV_MODES.get(self.dev_mode.strip().lower()) is False
                else f"{self.host} is not a loopback address"
            )
            raise ConfigError(
                f"{why} and IVRBOT_CLIENT_SECRET is the development default: set "
                "IVRBOT_CLIENT_SECRET (and IVRBOT_API_KEYS for app servers), or "
                "IVRBOT_DEV_MODE=on to serve without credentials on purpose"
            )
        if len(self.client_secret) < MIN_SECRET_LEN:
            raise ConfigError(
                f"IVRBOT_CLIENT_SECRET is too short: use {MIN_SECRET_LEN}+ characters"
            )
        if any(len(key) < MIN_SECRET_LEN for key in self.api_keys):
            raise ConfigError(f"IVRBOT_API_KEYS: every key needs {MIN_SECRET_LEN}+ characters")
        if self.verifier == "dev":
            raise ConfigError(
                "IVRBOT_MOBILE_VERIFIER=dev shows codes on the consent page: development mode "
                "only (set a verifier command, or leave it empty to turn mobile binding off)"
            )
        return []
