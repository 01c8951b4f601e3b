"""The storage interface: what the gateway keeps across restarts.

Every method is async and never blocks the event loop for long; an implementation runs its
database calls elsewhere (a worker thread for SQLite). Secrets are never stored: tokens and
authorization codes are kept as SHA-256 digests, client secrets as salted PBKDF2 hashes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ivrbot.outcomes import Outcome, of_reason, read


@dataclass(frozen=True)
class TokenRecord:
    """One issued access/refresh token pair (digests only)."""

    access_digest: str
    refresh_digest: str
    app_scope: str
    scope: str
    client_id: str
    created_at: float
    expires_at: float
    refresh_expires_at: float
    user_id: str | None = None
    revoked: bool = False


@dataclass(frozen=True)
class AuthCode:
    """A one-time authorization code from the consent page, bound to a mobile number."""

    digest: str
    client_id: str
    mobile_number: str
    redirect_uri: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass(frozen=True)
class E911Record:
    id: str
    address: dict[str, Any]
    confirmed: bool
    created_by: str | None
    created_at: float


@dataclass(frozen=True)
class Identity:
    user_id: str
    kind: str  # 'mobile' | 'virtual' | 'account'
    created_at: float


@dataclass(frozen=True)
class CallRecord:
    id: str
    from_uri: str
    to_uri: str
    started_at: float
    answered_at: float | None
    ended_at: float | None
    reason: str  # '' while the call is in progress; 'interrupted' when a crash cut it
    duration: float  # seconds from answer to end; 0 for unanswered calls
    caller_leg: str = ""  # the call's id as the caller's session knows it
    callee_leg: str = ""  # ... and as the answering session knows it ('' until answered)
    node: str = ""  # the process that handles the call (host:pid), to settle it after a crash

    @property
    def outcome(self) -> str:
        """What happened, in one word (README "Outcomes"; the call-end line may say more: a
        flow in the gateway's process gives its own word for the calls it ran)."""
        if self.ended_at is None:
            return Outcome.IN_PROGRESS
        return of_reason(self.reason, self.answered_at is not None)


@dataclass(frozen=True)
class CallLogEntry:
    """One call as ``ivrbot calls list`` shows it: the gateway's record of the call (every
    call: busy, rejected and abandoned ones too), the flow's record when a flow ran it, or
    both (joined by the bot's call id)."""

    call: CallRecord | None
    flow: dict[str, Any] | None

    @property
    def started_at(self) -> float:
        return self.call.started_at if self.call else float(self.flow["started_at"])  # type: ignore[index]

    @property
    def outcome(self) -> str:
        """The flow's outcome when a flow ran the call, else the gateway's (README
        "Outcomes"; records of earlier versions read in today's names)."""
        if self.flow is not None:
            return read(str(self.flow["outcome"]), str(self.flow.get("error") or ""))
        assert self.call is not None
        return self.call.outcome


class Store(ABC):
    """Tokens, OAuth clients and codes, E911 ids, identities and call records."""

    # lifecycle ---------------------------------------------------------------------------
    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release the database."""

    @abstractmethod
    def startup_tokens(self, now: float) -> list[TokenRecord]:
        """The unrevoked tokens whose access or refresh token is still valid.

        The one synchronous method: the gateway calls it once while it is being built (before
        it serves anything) to fill its in-memory token table, so that checking a bearer
        token in a request never touches the database. It also drops long-dead tokens.
        """

    # tokens ------------------------------------------------------------------------------
    @abstractmethod
    async def add_token(self, record: TokenRecord) -> None: ...

    @abstractmethod
    async def token_by_access(self, digest: str) -> TokenRecord | None: ...

    @abstractmethod
    async def token_by_refresh(self, digest: str) -> TokenRecord | None: ...

    @abstractmethod
    async def replace_token(self, old_access_digest: str, new: TokenRecord) -> bool:
        """Revoke the old pair and add the new one, atomically; False if the old pair was
        already revoked (or unknown), and then nothing changes."""

    @abstractmethod
    async def revoke_token(self, digest: str) -> TokenRecord | None:
        """Revoke the pair whose access or refresh digest is ``digest``; the pair, if any."""

    @abstractmethod
    async def set_token_user(self, access_digest: str, user_id: str) -> None: ...

    # OAuth clients and authorization codes -----------------------------------------------
    @abstractmethod
    async def put_client(self, client_id: str, secret_hash: str) -> None: ...

    @abstractmethod
    async def client_secret_hash(self, client_id: str) -> str | None: ...

    @abstractmethod
    async def add_auth_code(self, code: AuthCode) -> None: ...

    @abstractmethod
    async def use_auth_code(self, digest: str, now: float) -> AuthCode | None:
        """Mark an unused, unexpired code used and return it (None otherwise): one use only."""

    # E911 ids ----------------------------------------------------------------------------
    @abstractmethod
    async def add_e911(self, record: E911Record) -> None: ...

    @abstractmethod
    async def get_e911(self, e911_id: str) -> E911Record | None: ...

    @abstractmethod
    async def find_e911(self, address: dict[str, Any]) -> E911Record | None:
        """A confirmed record with exactly this address, if one exists."""

    # identities --------------------------------------------------------------------------
    @abstractmethod
    async def add_identity(self, user_id: str, kind: str) -> Identity:
        """Record an identity the first time it is seen; the stored one either way."""

    @abstractmethod
    async def get_identity(self, user_id: str) -> Identity | None: ...

    @abstractmethod
    def settle_interrupted(
        self, now: float, alive: Callable[[str], bool], why: str = "the server stopped"
    ) -> int:
        """Mark the call records still open (and flow call records still 'in-progress') of
        every process that is no longer ``alive`` (its ``node``) as 'interrupted'.

        Synchronous, like ``startup_tokens``: called once when the gateway is built, so the
        calls cut by a crash are on record before anything else runs. Returns how many."""

    # call records ------------------------------------------------------------------------
    @abstractmethod
    async def add_call(self, record: CallRecord) -> None:
        """Insert or update (by id): written when a call starts, again when it is answered
        and when it ends."""

    @abstractmethod
    async def get_call(self, call_id: str) -> CallRecord | None: ...

    @abstractmethod
    async def recent_calls(self, limit: int = 100) -> list[CallRecord]:
        """The latest call records, newest first."""

    # flow call records (path, prompts, inputs, outcome of a call through a flow) --------------
    @abstractmethod
    async def add_flow_call(self, record: dict[str, Any]) -> None:
        """Insert or update (by id): written as 'in-progress' when the flow takes the call
        and completed when it ends."""

    @abstractmethod
    async def flow_calls(self, limit: int = 50, flow: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""

    @abstractmethod
    async def call_log(
        self, limit: int = 50, flow: str | None = None, outcome: str | None = None
    ) -> list[CallLogEntry]:
        """Every call, newest first: gateway records joined with flow records; ``flow`` keeps
        the calls of that flow, ``outcome`` those with that outcome."""

    @abstractmethod
    async def flow_call(self, record_id: str) -> dict[str, Any] | None:
        """One record by id or a unique prefix of it."""
