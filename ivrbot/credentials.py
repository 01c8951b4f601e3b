"""What a client presents to ``POST /tokens`` (README: Access and security).

- The operator's credential, the OAuth client id and secret (``IVRBOT_CLIENT_ID``,
  ``IVRBOT_CLIENT_SECRET``), sent as HTTP Basic: bots use it, and only its tokens may take
  the identities the flows answer (reserved identities).
- An app server's API key (``IVRBOT_API_KEY``, one of the gateway's ``IVRBOT_API_KEYS``),
  sent as ``X-API-Key``: tokens for the app's users.
- Nothing: only a gateway in development mode issues tokens then.

The ivrbot commands that talk to a gateway (``ivrbot call``, ``ivrbot dial``) take the API
key as ``--api-key`` (else ``IVRBOT_API_KEY``); :func:`refused` is their one line when the
gateway refuses what they presented. :func:`dashboard_login` and :func:`leaving_development`
are what ``ivrbot run`` prints about logging in.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from ivrbot.config import DEV_CLIENT_SECRET, Settings

API_KEY_HEADER = "X-API-Key"


@dataclass(frozen=True)
class Credentials:
    api_key: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)

    @classmethod
    def operator(
        cls, client_id: str | None = None, client_secret: str | None = None
    ) -> Credentials:
        """The OAuth client's credentials: given, or those of the settings
        (``Settings.client_id``/``client_secret``: the development ones unless set)."""
        if client_id and client_secret:
            return cls(client_id=client_id, client_secret=client_secret)
        settings = Settings()
        return cls(
            client_id=client_id or settings.client_id,
            client_secret=client_secret or settings.client_secret,
        )

    @classmethod
    def from_env(cls, api_key: str | None = None) -> Credentials:
        """An app's API key: ``api_key`` when given (``--api-key``), else the settings'
        (``Settings.api_key``: ``IVRBOT_API_KEY``), if it is set (else nothing)."""
        return cls(api_key=(api_key or "").strip() or Settings().api_key)

    @classmethod
    def for_bots(cls, api_key: str | None = None, settings: Settings | None = None) -> Credentials:
        """What a bot of this process presents: an API key given (``--api-key``), else the
        operator's credentials when this environment has a client secret of its own, else
        ``IVRBOT_API_KEY`` when set, else the (development) operator credentials."""
        settings = settings or Settings()
        operator = cls.operator(settings.client_id, settings.client_secret)
        if api_key and api_key.strip():
            return cls(api_key=api_key.strip())
        if settings.client_secret != DEV_CLIENT_SECRET or not settings.api_key:
            return operator
        return cls(api_key=settings.api_key)

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {API_KEY_HEADER: self.api_key}
        if self.client_id and self.client_secret:
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}


NEEDS_API_KEY = "this gateway needs an API key: pass --api-key or set IVRBOT_API_KEY"


def refused(status: int, reason: str, presented: Credentials | None) -> str:
    """One line for a gateway that refused ``presented`` at ``POST /tokens`` (401/403): what
    to pass, never "no gateway" (it answered). ``reason``: the gateway's own words, shown
    when credentials were presented (without any, what is missing is known)."""
    why = f" ({reason})" if reason else ""
    presented = presented or Credentials()
    if presented.api_key:
        return (
            f"{status}: this gateway refused the API key{why}: pass one of its IVRBOT_API_KEYS "
            "with --api-key or IVRBOT_API_KEY"
        )
    if presented.client_secret and presented.client_secret != DEV_CLIENT_SECRET:
        return (
            f"{status}: this gateway refused the operator's credentials{why}: set "
            "IVRBOT_CLIENT_ID and IVRBOT_CLIENT_SECRET as the gateway has them, or pass "
            "--api-key (IVRBOT_API_KEY)"
        )
    return f"{status}: {NEEDS_API_KEY} (one of the gateway's IVRBOT_API_KEYS)"


def dashboard_login(settings: Settings) -> str:
    """How the operator logs in to the dashboard (``ivrbot run``'s banner): the development
    client id and secret themselves, or which settings hold them (a real secret is never
    printed)."""
    if settings.client_secret == DEV_CLIENT_SECRET:
        return (
            f"log in: client id {settings.client_id}, secret {DEV_CLIENT_SECRET} (development mode)"
        )
    return (
        f"log in: client id {settings.client_id} (IVRBOT_CLIENT_ID), the secret set in "
        "IVRBOT_CLIENT_SECRET"
    )


def leaving_development(settings: Settings) -> str:
    """In development mode: what to set to leave it, and what then needs an API key; outside
    it: the API keys the clients need."""
    clients = "ivrbot call, ivrbot dial and the softphone"
    how = "(--api-key or IVRBOT_API_KEY; the softphone's API key field)"
    if settings.development:
        return (
            "to leave development mode set IVRBOT_CLIENT_SECRET (16+ characters: the "
            f"dashboard's secret) and IVRBOT_API_KEYS; {clients} then need one of those keys " + how
        )
    if not settings.api_keys:
        return f"no API keys: {clients} cannot get tokens here until IVRBOT_API_KEYS has some"
    count = len(settings.api_keys)
    keys = "1 API key" if count == 1 else f"{count} API keys"
    return f"{keys} in IVRBOT_API_KEYS: {clients} need one {how}"
