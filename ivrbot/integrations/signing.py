"""Webhook signatures: what a receiver checks to know an event came from this ivrbot.

Every webhook is a JSON POST with two headers:

- ``X-Ivrbot-Timestamp``: when it was sent, in whole seconds since the Unix epoch;
- ``X-Ivrbot-Signature``: ``v1=`` and the hex HMAC-SHA256 of ``<timestamp>.<raw body>``
  keyed with the shared secret (``IVRBOT_WEBHOOK_SECRET``).

To verify (README: Starting calls over HTTP, and webhooks): compute the HMAC of the
timestamp header, a full stop and the raw body bytes as received (before any JSON
parsing), compare it with the header's ``v1=`` value in constant time, and refuse a
timestamp more than five minutes from your clock (a replayed event). Each event has an
``id`` too: a retry of it carries the same one, so a receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Ivrbot-Signature"
TIMESTAMP_HEADER = "X-Ivrbot-Timestamp"
EVENT_HEADER = "X-Ivrbot-Event"  # the event's type (call.completed ...), also in the body
SCHEME = "v1"
TOLERANCE_S = 300  # how far from the receiver's clock a timestamp may be


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Ivrbot-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The timestamp header, and the signature header when there is a secret."""
    headers = {TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    return headers


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signed: str,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """Whether ``signed`` (the signature header) is ``body``'s at ``timestamp`` (the
    timestamp header), and that timestamp within ``tolerance_s`` of ``now``."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = signature(secret, int(timestamp), body)
    given = [part.strip() for part in signed.split(",")]  # several while a secret rotates
    return any(hmac.compare_digest(expected.encode(), g.encode()) for g in given)


def url_problem(url: object) -> str:
    """What is wrong with a webhook URL ('' when nothing): an http(s) URL with a host."""
    if not isinstance(url, str) or not url.strip():
        return f"must be an http:// or https:// URL, not {url!r}"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return f"{url!r} is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, not {url!r}"
    return ""
