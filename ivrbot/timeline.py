"""A timeline of what happened on a call, from every party's side, in one clock."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    t_ms: int
    party: str
    event: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"t_ms": self.t_ms, "party": self.party, "event": self.event, **self.detail}


class Timeline:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.entries: list[Entry] = []

    def add(self, party: str, event: str, **detail: Any) -> Entry:
        entry = Entry(int((time.monotonic() - self.start) * 1000), party, event, detail)
        self.entries.append(entry)
        return entry

    def of(self, party: str, event: str | None = None) -> list[Entry]:
        return [e for e in self.entries if e.party == party and event in (None, e.event)]
