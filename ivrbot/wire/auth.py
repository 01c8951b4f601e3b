"""Access tokens and the OAuth provider's logic: clients, consent codes, grants.

Tokens are issued per app scope (docs/spec/rtc-api.md), expire, are refreshed (the old pair is
revoked: refresh tokens rotate) and revoked. Only SHA-256 digests of access tokens, refresh
tokens and authorization codes reach the store; the client secret is kept as a salted PBKDF2
hash. Checking a bearer token is synchronous and uses the in-memory table (filled from the
store at start-up, written through on every change), so a request never waits on the
database to authenticate.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.config import DEV_CLIENT_SECRET, Settings
from ivrbot.store.base import AuthCode, Store, TokenRecord

log = logging.getLogger(__name__)


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
RTC_SCOPES = ("WEBRTC", "WEBRTCMOBILE")
E911_SCOPE = "EMERGENCYSERVICES"
PBKDF2_ROUNDS = 120_000
PRUNE_AFTER_S = 600.0
# The client a token is issued to (TokenRecord.client_id) is who asked for it: the OAuth
# client's id (the operator: bots), "apikey:<digest prefix>" (an app server's API key) or
# ANONYMOUS (POST /tokens without credentials, development mode only).
ANONYMOUS = "anonymous"
API_KEY_PREFIX = "apikey:"
OPERATOR_SCOPES = ("VIRTUAL_NUMBER", "ACCOUNT_ID")


def api_key_client(key: str) -> str:
    """The client name of the tokens issued to an API key (never the key itself)."""
    return API_KEY_PREFIX + digest(key)[:12]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_secret(secret: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    dk = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${PBKDF2_ROUNDS}${salt}${dk.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        algo, rounds, salt, hexdigest = stored.split("$")
        dk = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt.encode(), int(rounds))
    except ValueError:
        return False
    return algo == "pbkdf2_sha256" and hmac.compare_digest(dk.hex(), hexdigest)


def app_scope_for(scope: str) -> AppScope:
    """The app scope an OAuth ``scope`` parameter names ('WEBRTC,EMERGENCYSERVICES' or
    'VIRTUAL_NUMBER'); ValueError when it names none."""
    if scope.strip() in AppScope.__members__:
        return AppScope(scope.strip())
    wanted = {s for s in re.split(r"[\s,]+", scope.strip()) if s}
    for app_scope, (_, names) in SCOPES.items():
        if wanted == set(names.split(",")):
            return app_scope
    if "WEBRTCMOBILE" in wanted:
        return AppScope.MOBILE_NUMBER
    valid = "; ".join(v for _, v in SCOPES.values())
    raise ValueError(f"unknown scope {scope!r}: one of {valid}")


def mobile_user_id(number: str) -> str:
    """A mobile number as a user id: 10 digits, a leading 1 stripped. ValueError if not one."""
    digits = re.sub(r"[\s().+-]", "", number)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10 or not digits.isdigit() or digits[0] in "01":
        raise ValueError(f"a mobile number has 10 digits (area code first), got {number!r}")
    return digits


@dataclass
class Token:
    app_scope: AppScope
    scope: str
    expires_at: float
    user_id: str | None = None
    created_at: float = field(default_factory=time.time)
    access_digest: str = ""
    revoked: bool = False
    client_id: str = ""

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def has_scope(self, *names: str) -> bool:
        mine = self.scope.split(",")
        return any(name in mine for name in names)


class AuthError(Exception):
    """A missing, unknown, expired or revoked token: 401 POL0001."""


class GrantError(Exception):
    """An OAuth 2 error (RFC 6749 section 5.2): an error code and a description."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description = error, description


@dataclass(frozen=True)
class Issued:
    """A freshly issued pair: the only time the secrets exist outside the client."""

    access_token: str
    refresh_token: str
    token: Token
    expires_in: int
    refresh_expires_in: int
    replaces: str = ""  # after a refresh: the digest of the access token it replaces

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "refresh_token_expires_in": self.refresh_expires_in,
            "token_type": "Bearer",
            "scope": self.token.scope,
        }


class TokenService:
    """Issues, checks, refreshes and revokes tokens; verifies clients; consent codes."""

    def __init__(self, store: Store, settings: Settings, clock: Clock = REAL_CLOCK) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock  # tokens, refresh tokens and consent codes expire on it
        self._tokens: dict[str, Token] = {}
        self._verified: set[tuple[str, str]] = set()  # (client_id, sha256(secret)) seen good
        self._client_ready = False
        for record in store.startup_tokens(clock.time()):
            self._tokens[record.access_digest] = self._token(record)

    @staticmethod
    def _token(record: TokenRecord) -> Token:
        return Token(
            AppScope(record.app_scope),
            record.scope,
            record.expires_at,
            record.user_id,
            record.created_at,
            record.access_digest,
            record.revoked,
            record.client_id,
        )

    def __len__(self) -> int:
        return len(self._tokens)

    # who holds what ----------------------------------------------------------------------
    def is_operator(self, token: Token) -> bool:
        """Issued to the OAuth client's own credentials (bots), for a number or account."""
        return token.client_id == self.settings.client_id and token.app_scope in OPERATOR_SCOPES

    def token_for(self, access_digest: str) -> Token | None:
        return self._tokens.get(access_digest)

    def holders(self, user_id: str) -> set[str]:
        """The clients whose live tokens are associated with ``user_id``."""
        wanted = user_id.casefold()
        return {
            t.client_id
            for t in self._tokens.values()
            if t.user_id is not None
            and t.user_id.casefold() == wanted
            and not t.revoked
            and not t.expired(self.clock.time())
        }

    async def startup(self) -> None:
        """Revoke the tokens this deployment no longer allows: tokens issued without
        credentials (outside development mode), to API keys no longer configured, or to the
        OAuth client before its secret changed."""
        s = self.settings
        keys = {api_key_client(k) for k in s.api_keys}
        stored = await self.store.client_secret_hash(s.client_id)
        rotated = stored is not None and not await asyncio.to_thread(
            verify_secret, s.client_secret, stored
        )
        await self._ensure_client()

        def stale(t: Token) -> bool:
            if t.client_id == ANONYMOUS:
                return not s.development
            if t.client_id.startswith(API_KEY_PREFIX):
                return t.client_id not in keys
            return rotated and t.client_id == s.client_id

        dead = [d for d, t in self._tokens.items() if not t.revoked and stale(t)]
        for access_digest in dead:
            await self.store.revoke_token(access_digest)
            self._forget(access_digest)
        if dead:
            log.warning("revoked %d tokens this configuration no longer allows", len(dead))

    # checking ----------------------------------------------------------------------------
    def check(self, access: str | None) -> Token:
        if not access:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <access_token>'")
        token = self._tokens.get(digest(access))
        if token is None:
            raise AuthError("unknown access token: get one from POST /tokens")
        if token.revoked:
            raise AuthError("access token revoked: get a new one from POST /tokens")
        if token.expired(self.clock.time()):
            raise AuthError("access token expired: refresh it or get a new one from POST /tokens")
        return token

    def prune(self, now: float | None = None) -> int:
        """Forget tokens expired for a while (until then a check says "expired", not
        "unknown"); the store keeps them until their refresh token expires."""
        now = self.clock.time() if now is None else now
        dead = [d for d, t in self._tokens.items() if t.expires_at <= now - PRUNE_AFTER_S]
        for d in dead:
            del self._tokens[d]
        return len(dead)

    # issuing -----------------------------------------------------------------------------
    def _new_record(
        self, app_scope: AppScope, client_id: str, user_id: str | None
    ) -> tuple[str, str, TokenRecord]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.time()
        record = TokenRecord(
            access_digest=digest(access),
            refresh_digest=digest(refresh),
            app_scope=app_scope.value,
            scope=SCOPES[app_scope][1],
            client_id=client_id,
            created_at=now,
            expires_at=now + self.settings.token_ttl_s,
            refresh_expires_at=now + self.settings.refresh_ttl_s,
            user_id=user_id,
        )
        return access, refresh, record

    def _issued(self, access: str, refresh: str, record: TokenRecord, replaces: str = "") -> Issued:
        token = self._token(record)
        self._tokens[record.access_digest] = token
        s = self.settings
        return Issued(access, refresh, token, s.token_ttl_s, s.refresh_ttl_s, replaces)

    async def issue(
        self, app_scope: AppScope, client_id: str, user_id: str | None = None
    ) -> Issued:
        access, refresh, record = self._new_record(app_scope, client_id, user_id)
        await self.store.add_token(record)
        log.info("issued a %s token (user %s)", app_scope.value, user_id or "-")
        return self._issued(access, refresh, record)

    async def refresh(self, refresh_token: str, client_id: str | None = None) -> Issued:
        """A new pair for a valid refresh token; the old pair stops working."""
        old = await self.store.token_by_refresh(digest(refresh_token))
        if old is None or old.revoked:
            raise GrantError("invalid_grant", "unknown or revoked refresh token")
        if old.refresh_expires_at <= self.clock.time():
            raise GrantError("invalid_grant", "refresh token expired: get a new token")
        if client_id is not None and client_id != old.client_id:
            raise GrantError("invalid_grant", "the refresh token was issued to another client")
        if old.client_id == ANONYMOUS and not self.settings.development:
            raise GrantError("invalid_grant", "issued in development mode: get a new token")
        access, refresh, record = self._new_record(
            AppScope(old.app_scope), old.client_id, old.user_id
        )
        if not await self.store.replace_token(old.access_digest, record):
            raise GrantError("invalid_grant", "unknown or revoked refresh token")
        self._forget(old.access_digest)
        return self._issued(access, refresh, record, replaces=old.access_digest)

    def _forget(self, access_digest: str) -> None:
        token = self._tokens.get(access_digest)
        if token is not None:
            token.revoked = True

    async def revoke(self, token: str, client_id: str | None = None) -> bool:
        """Revoke the pair that ``token`` (access or refresh) belongs to; False if unknown
        (or, with ``client_id``, issued to another client)."""
        d = digest(token)
        if client_id is not None:
            found = await self.store.token_by_access(d) or await self.store.token_by_refresh(d)
            if found is None or found.client_id != client_id:
                return False
        record = await self.store.revoke_token(d)
        if record is None:
            return False
        self._forget(record.access_digest)
        log.info("revoked a %s token (user %s)", record.app_scope, record.user_id or "-")
        return True

    async def associate(self, token: Token, user_id: str) -> None:
        token.user_id = user_id
        await self.store.set_token_user(token.access_digest, user_id)

    # clients -----------------------------------------------------------------------------
    async def _ensure_client(self) -> None:
        """Store the configured client (hashed) unless the stored hash already matches."""
        if self._client_ready:
            return
        s = self.settings
        stored = await self.store.client_secret_hash(s.client_id)
        if stored is None or not await asyncio.to_thread(verify_secret, s.client_secret, stored):
            await self.store.put_client(
                s.client_id, await asyncio.to_thread(hash_secret, s.client_secret)
            )
        self._verified.add((s.client_id, digest(s.client_secret)))
        self._client_ready = True

    async def verify_client(self, client_id: str | None, secret: str | None) -> str:
        """The client id, if the id and secret are right; GrantError invalid_client if not."""
        if not client_id or not secret:
            raise GrantError("invalid_client", "client_id and client_secret are required")
        if not self.settings.development and hmac.compare_digest(
            secret.encode(), DEV_CLIENT_SECRET.encode()
        ):
            raise GrantError(
                "invalid_client", "the development secret works in development mode only"
            )
        await self._ensure_client()
        if (client_id, digest(secret)) in self._verified:
            return client_id
        stored = await self.store.client_secret_hash(client_id)
        if stored is None or not await asyncio.to_thread(verify_secret, secret, stored):
            raise GrantError("invalid_client", "unknown client or wrong client secret")
        self._verified.add((client_id, digest(secret)))
        return client_id

    # consent codes -----------------------------------------------------------------------
    async def new_auth_code(
        self, client_id: str, mobile_number: str, redirect_uri: str, scope: str
    ) -> str:
        code = secrets.token_urlsafe(24)
        await self.store.add_auth_code(
            AuthCode(
                digest(code),
                client_id,
                mobile_user_id(mobile_number),
                redirect_uri,
                scope,
                self.clock.time() + self.settings.auth_code_ttl_s,
            )
        )
        return code

    # grants ------------------------------------------------------------------------------
    async def grant_client_credentials(self, client_id: str, app_scope: AppScope) -> Issued:
        if SCOPES[app_scope][0] != "client_credentials":
            raise GrantError(
                "invalid_scope",
                f"{app_scope.value} tokens need the consent step (authorization_code grant)",
            )
        return await self.issue(app_scope, client_id)

    async def grant_authorization_code(
        self, client_id: str, code: str, redirect_uri: str | None = None
    ) -> Issued:
        """A MOBILE_NUMBER token for a one-time consent code; its user is the bound number."""
        bound = await self.store.use_auth_code(digest(code), self.clock.time())
        if bound is None:
            raise GrantError("invalid_grant", "authorization code unknown, expired or used")
        if bound.client_id != client_id:
            raise GrantError("invalid_grant", "the authorization code was issued to another client")
        if redirect_uri is not None and redirect_uri != bound.redirect_uri:
            raise GrantError("invalid_grant", "redirect_uri differs from the authorization request")
        await self.store.add_identity(bound.mobile_number, "mobile")
        return await self.issue(AppScope.MOBILE_NUMBER, client_id, bound.mobile_number)
