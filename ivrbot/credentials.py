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
import os
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from ivrbot.config import DEV_CLIENT_ID, DEV_CLIENT_SECRET

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
        """The OAuth client's credentials: given, or from the environment (the development
        ones when it sets none, as the gateway does)."""
        return cls(
            client_id=client_id or os.environ.get("IVRBOT_CLIENT_ID", DEV_CLIENT_ID),
            client_secret=client_secret
            or os.environ.get("IVRBOT_CLIENT_SECRET", DEV_CLIENT_SECRET),
        )

    @classmethod
    def from_env(cls) -> Credentials:
        """An app's API key from ``IVRBOT_API_KEY``, if it is set (else nothing)."""
        return cls(api_key=os.environ.get("IVRBOT_API_KEY", "").strip())

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {API_KEY_HEADER: self.api_key}
        if self.client_id and self.client_secret:
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}
