"""Who may get tokens and who may use which identity (README: Access and security).

- ``POST /tokens`` issues tokens to the caller the deployment allows: an app server with an
  API key (``X-API-Key``, one of ``IVRBOT_API_KEYS``), the operator with the OAuth client's
  credentials (HTTP Basic ``client_id:client_secret``: bots), or, in development mode only,
  anyone (the token's client is then ``anonymous``).
- Reserved identities (the numbers of the flows this process serves, and
  ``IVRBOT_RESERVED_IDS``) are the operator's: only tokens issued to the OAuth client's
  credentials may associate with them or log in as them.
- Any other identity belongs to the client (API key, operator, anonymous) whose live token
  is associated with it: the token of another client cannot associate with it. An app
  server vouches for its own users.
Refusals are 403 POL1009 ("User has not been provisioned for ..."; the Phone's 1809).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from ivrbot.config import Settings
from ivrbot.credentials import API_KEY_HEADER
from ivrbot.numbers import virtual_number_user_id
from ivrbot.wire.auth import ANONYMOUS, AuthError, Token, TokenService, api_key_client

if TYPE_CHECKING:
    from ivrbot.wire.gateway import Gateway

log = logging.getLogger(__name__)

NEEDS_CREDENTIALS = (
    f"POST /tokens needs the app server's credentials: an {API_KEY_HEADER} header (one of "
    "IVRBOT_API_KEYS) or HTTP Basic client_id:client_secret (this gateway is not in "
    "development mode)"
)


def known_api_key(settings: Settings, key: str) -> bool:
    """Whether ``key`` is one of the gateway's ``IVRBOT_API_KEYS`` (compared in constant time)."""
    return any(hmac.compare_digest(key.encode(), k.encode()) for k in settings.api_keys)


def normalise(user_id: str) -> str:
    """The form reserved identities are compared in: vtn:+digits, lower case."""
    user_id = user_id.strip()
    if "@" not in user_id:
        try:
            return virtual_number_user_id(user_id.removeprefix("vtn:"))
        except ValueError:
            pass
    return user_id.casefold()


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(client_id, secret) from an HTTP Basic Authorization header; None if it is not one.
    AuthError when it is malformed."""
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise AuthError("malformed HTTP Basic credentials") from None
    login, sep, password = decoded.partition(":")
    if not sep:
        raise AuthError("malformed HTTP Basic credentials")
    return unquote_plus(login), unquote_plus(password)


class Access:
    def __init__(self, settings: Settings, tokens: TokenService) -> None:
        self.settings = settings
        self.tokens = tokens
        self.reserved: set[str] = {normalise(u) for u in settings.reserved_ids}

    def reserve(self, user_ids: list[str]) -> None:
        """Identities only the operator's tokens may use (the numbers of the flows served)."""
        self.reserved.update(normalise(u) for u in user_ids)

    def is_reserved(self, user_id: str) -> bool:
        return normalise(user_id) in self.reserved

    async def client_for(self, api_key: str | None, authorization: str) -> str:
        """Who is asking for a token: the client its tokens are issued to. AuthError (401
        POL0001) for wrong credentials, or none outside development mode."""
        if api_key is not None:
            if known_api_key(self.settings, api_key):
                return api_key_client(api_key)
            raise AuthError(f"unknown API key in {API_KEY_HEADER}")
        basic = basic_credentials(authorization)
        if basic is not None:
            return await self.tokens.verify_client(*basic)
        if self.settings.development:
            return ANONYMOUS
        raise AuthError(NEEDS_CREDENTIALS)

    def refusal(self, token: Token, user_id: str, associating: bool = True) -> str | None:
        """Why ``token`` may not use ``user_id`` (None: it may). Logging in checks only the
        reservation; associating also checks that no other client holds the identity."""
        operator = self.tokens.is_operator(token)
        if self.is_reserved(user_id) and not operator:
            return f"{user_id} (reserved for this gateway's bots: they log in with its credentials)"
        # the operator's own tokens hold nothing against others: its bots' numbers are
        # reserved (and tokens of the days before this rule were all the operator's)
        others = self.tokens.holders(user_id) - {token.client_id, self.settings.client_id}
        if associating and not operator and others:
            return f"{user_id} (in use by another application)"
        return None


async def reserve(gateway: Gateway, user_ids: list[str]) -> None:
    """Reserve ``user_ids`` for the operator's bots and end the sessions other clients
    already have as them (e.g. taken while the flow file that answers them did not load)."""
    gateway.access.reserve(user_ids)
    for session in list(gateway.sessions):
        token = gateway.tokens.token_for(session.token_digest)
        if gateway.access.is_reserved(session.user_id) and (
            token is None or not gateway.tokens.is_operator(token)
        ):
            log.warning("ended a session of %s: reserved for a bot", session.user_id)
            await gateway.end_session(session)
