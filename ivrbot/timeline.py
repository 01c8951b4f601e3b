"""A timeline of what happened on a call, from every party's side, in one clock."""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field, replace
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

    def add_at(self, at: float, party: str, event: str, **detail: Any) -> Entry:
        """An entry for what happened at ``at`` (``time.monotonic()``), noted afterwards: it
        goes where its time puts it."""
        entry = Entry(int((at - self.start) * 1000), party, event, detail)
        index = bisect.bisect_right([e.t_ms for e in self.entries], entry.t_ms)
        self.entries.insert(index, entry)
        return entry

    def amend(self, entry: Entry, **detail: Any) -> Entry:
        """``entry`` with ``detail`` added (learnt after it was noted), in its place."""
        index = next(i for i, e in enumerate(self.entries) if e is entry)
        self.entries[index] = replace(entry, detail={**entry.detail, **detail})
        return self.entries[index]

    def of(self, party: str, event: str | None = None) -> list[Entry]:
        return [e for e in self.entries if e.party == party and event in (None, e.event)]
