"""Settings, from defaults and ``IVRBOT_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(f"IVRBOT_{name}", default)


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


@dataclass
class Settings:
    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("PORT", "8890")))
    domain: str = field(default_factory=lambda: _env("DOMAIN", "ivrbot.local"))
    rtc_uri: str = "/RTC/v1"
    virtual_numbers: list[str] = field(default_factory=_default_pool)
    token_ttl_s: int = field(default_factory=lambda: int(_env("TOKEN_TTL", "3600")))
    session_ttl_s: int = field(default_factory=lambda: int(_env("SESSION_TTL", "3600")))
    ring_timeout_s: float = field(default_factory=lambda: float(_env("RING_TIMEOUT", "60")))

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
