"""What a bot tells as it works: its notes (a step ran, a key came, a call ended ...) to the
timeline (``ivrbot demo``, scenarios) and to the observers (the dashboard's live feed), and
each call's events to the call watchers (webhooks: ivrbot/integrations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ivrbot import call_events
from ivrbot.timeline import Timeline


class Feed:
    """A bot's notes and call events, and who is told of them."""

    def __init__(self, timeline: Timeline | None = None) -> None:
        self.timeline = timeline
        # told of every note (step, input, call ended ...): the dashboard's live feed
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        # told of each call's events with the call (webhooks: ivrbot/integrations)
        self.call_watchers: list[call_events.CallWatcher] = []

    def note(self, event: str, **detail: Any) -> None:
        if self.timeline is not None:
            self.timeline.add("bot", event, **detail)
        for observer in self.observers:
            observer(event, detail)
