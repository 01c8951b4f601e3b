"""The Phone's conference methods (spec/phone-api.md: startConference ... getParticipants)."""

from __future__ import annotations

from typing import Any


class ConferenceMethods:
    """Mixed into :class:`ivrbot.phone.phone.Phone`."""

    async def _on_conference_event(self, obj: dict[str, Any]) -> None:
        """An event object of type 'conferences' from the event channel."""
