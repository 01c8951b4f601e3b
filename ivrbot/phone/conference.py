"""The Phone's conference methods (spec/phone-api.md: startConference ... getParticipants)."""

from __future__ import annotations

from typing import Any

from ivrbot.phone.core import PhoneCore


class ConferenceMethods(PhoneCore):
    """Part of :class:`ivrbot.phone.phone.Phone` (builds on PhoneCore's primitives)."""

    async def _on_conference_event(self, obj: dict[str, Any]) -> None:
        """An event object of type 'conferences' from the event channel."""
