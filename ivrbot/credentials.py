"""What a client presents to ``POST /tokens`` (README: Access and security).

- The operator's credential, the OAuth client id and secret (``IVRBOT_CLIENT_ID``,
  ``IVRBOT_CLIENT_SECRET``), sent as HTTP Basic: bots use it, and only its tokens may take
  the identities the flows answer (reserved identities).
- An app server's API key (``IVRBOT_API_KEY``, one of the gateway's ``IVRBOT_API_KEYS``),
  sent as ``X-API-Key``: tokens for the app's users.
- Nothing: only a gateway in development mode issues tokens then.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from ivrbot.config import Settings

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
    def from_env(cls) -> Credentials:
        """An app's API key from the settings (``Settings.api_key``: ``IVRBOT_API_KEY``), if
        it is set (else nothing)."""
        return cls(api_key=Settings().api_key)

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {API_KEY_HEADER: self.api_key}
        if self.client_id and self.client_secret:
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}
