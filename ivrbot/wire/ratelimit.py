"""Token-bucket rate limits per client address, for the routes that mint things.

Each (bucket name, client address) pair has a bucket of ``burst`` tokens refilled at ``rate``
tokens per second; a request takes one. Over the limit the gateway answers 429 with a
RequestError body (PolicyException POL0001) and ``Retry-After`` (whole seconds). The client
address is the TCP peer: a proxy in front of the gateway makes every client one address, so
raise the limits (or set ``IVRBOT_RATE_LIMIT=0``) there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ivrbot.clock import REAL_CLOCK, Clock


class RateLimited(Exception):
    def __init__(self, bucket: str, retry_after: float) -> None:
        super().__init__(f"too many {bucket} requests")
        self.bucket = bucket
        self.retry_after = retry_after

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.retry_after))


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets per (name, key). ``rate <= 0`` disables limiting."""

    MAX_BUCKETS = 10_000

    def __init__(self, rate: float, burst: int, clock: Clock = REAL_CLOCK) -> None:
        self.rate = rate
        self.clock = clock  # buckets refill on it
        self.burst = max(1, burst)
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, name: str, key: str, now: float | None = None) -> None:
        """Take one token from the bucket, or raise RateLimited with the wait."""
        if not self.enabled:
            return
        now = self.clock.monotonic() if now is None else now
        bucket = self._buckets.get((name, key))
        if bucket is None:
            if len(self._buckets) >= self.MAX_BUCKETS:
                self._drop_full(now)
            bucket = self._buckets[(name, key)] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            raise RateLimited(name, (1.0 - bucket.tokens) / self.rate)
        bucket.tokens -= 1.0

    def _drop_full(self, now: float) -> None:
        """Forget buckets that have refilled (they hold no information)."""
        for k, b in list(self._buckets.items()):
            if b.tokens + (now - b.updated) * self.rate >= self.burst:
                del self._buckets[k]
