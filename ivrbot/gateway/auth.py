"""Access tokens: issued per app scope, scoped, expiring, bound to one user id."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum


class AppScope(StrEnum):
    MOBILE_NUMBER = "MOBILE_NUMBER"
    VIRTUAL_NUMBER = "VIRTUAL_NUMBER"
    ACCOUNT_ID = "ACCOUNT_ID"
    E911 = "E911"


SCOPES: dict[AppScope, tuple[str, str]] = {
    AppScope.MOBILE_NUMBER: ("authorization_code", "WEBRTCMOBILE,EMERGENCYSERVICES"),
    AppScope.VIRTUAL_NUMBER: ("client_credentials", "WEBRTC,EMERGENCYSERVICES"),
    AppScope.ACCOUNT_ID: ("client_credentials", "WEBRTC"),
    AppScope.E911: ("client_credentials", "EMERGENCYSERVICES"),
}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Token:
    app_scope: AppScope
    scope: str
    expires_at: float
    user_id: str | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


class AuthError(Exception):
    pass


class TokenService:
    """Issues and checks tokens. Only digests of the secrets are kept."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl_s = ttl_s
        self._tokens: dict[str, Token] = {}

    def issue(self, app_scope: AppScope) -> tuple[str, Token]:
        if app_scope is AppScope.MOBILE_NUMBER:
            raise AuthError("MOBILE_NUMBER tokens need the consent step (not available yet)")
        access = secrets.token_urlsafe(24)
        token = Token(app_scope, SCOPES[app_scope][1], time.time() + self.ttl_s)
        self._tokens[_digest(access)] = token
        return access, token

    def check(self, access: str | None) -> Token:
        if not access:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <access_token>'")
        token = self._tokens.get(_digest(access))
        if token is None:
            raise AuthError("unknown access token: get one from POST /tokens")
        if token.expired:
            raise AuthError("access token expired: refresh it or get a new one from POST /tokens")
        return token
