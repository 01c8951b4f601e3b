"""Settings, from defaults and ``IVRBOT_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(f"IVRBOT_{name}", default)


def _env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in _env(name, default).split(",") if part.strip()]


def _env_bool(name: str, default: str) -> bool:
    return _env(name, default).strip().lower() in ("1", "true", "yes", "on")


def _default_pool() -> list[str]:
    raw = _env("VIRTUAL_NUMBERS", "5550001000-5550001099")
    numbers: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            numbers += [str(n) for n in range(int(lo), int(hi) + 1)]
        elif part:
            numbers.append(part)
    return numbers


# Development defaults for the embedded app server's OAuth client. Set IVRBOT_CLIENT_ID and
# IVRBOT_CLIENT_SECRET on any machine reachable by others.
DEV_CLIENT_ID = "ivrbot-dev-client"
DEV_CLIENT_SECRET = "ivrbot-dev-secret-change-me"


@dataclass
class Settings:
    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", "8890")))
    domain: str = field(default_factory=lambda: _env("DOMAIN", "ivrbot.local"))
    rtc_uri: str = "/RTC/v1"
    virtual_numbers: list[str] = field(default_factory=_default_pool)
    token_ttl_s: int = field(default_factory=lambda: int(_env("TOKEN_TTL", "3600")))
    session_ttl_s: int = field(default_factory=lambda: int(_env("SESSION_TTL", "3600")))
    long_poll_s: float = field(default_factory=lambda: float(_env("LONG_POLL", "40")))
    ring_timeout_s: float = field(default_factory=lambda: float(_env("RING_TIMEOUT", "60")))
    # a peer that stops answering ICE consent checks this long is gone: its calls end
    peer_timeout_s: float = field(default_factory=lambda: float(_env("PEER_TIMEOUT", "8")))
    # storage: one SQLite file (":memory:" keeps nothing across restarts)
    db: str = field(default_factory=lambda: _env("DB", "ivrbot.db"))
    # OAuth: the app server's client, refresh tokens, consent codes, allowed redirect URIs
    client_id: str = field(default_factory=lambda: _env("CLIENT_ID", DEV_CLIENT_ID))
    client_secret: str = field(
        default_factory=lambda: _env("CLIENT_SECRET", DEV_CLIENT_SECRET), repr=False
    )
    refresh_ttl_s: int = field(default_factory=lambda: int(_env("REFRESH_TTL", "2592000")))
    auth_code_ttl_s: int = field(default_factory=lambda: int(_env("AUTH_CODE_TTL", "600")))
    redirect_uris: list[str] = field(
        default_factory=lambda: _env_list("REDIRECT_URIS", "http://127.0.0.1,http://localhost")
    )
    # rate limits per client address: tokens per second (0 disables) and burst size
    rate_limit: float = field(default_factory=lambda: float(_env("RATE_LIMIT", "5")))
    rate_burst: int = field(default_factory=lambda: int(_env("RATE_BURST", "30")))
    # whether mobile-number and virtual-number users must log in with an x-e911Id
    e911_required: bool = field(default_factory=lambda: _env_bool("E911_REQUIRED", "0"))

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
