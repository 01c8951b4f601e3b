"""Storage: tokens, OAuth clients and codes, E911 ids, identities, call records."""

from ivrbot.store.base import (
    AuthCode,
    CallLogEntry,
    CallRecord,
    E911Record,
    Identity,
    Store,
    TokenRecord,
)
from ivrbot.store.sqlite import SqliteStore

__all__ = [
    "AuthCode",
    "CallLogEntry",
    "CallRecord",
    "E911Record",
    "Identity",
    "SqliteStore",
    "Store",
    "TokenRecord",
]
