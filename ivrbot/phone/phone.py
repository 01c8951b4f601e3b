"""The Python Phone: the client API of spec/phone-api.md in snake_case, over the wire API."""

from __future__ import annotations

from ivrbot.phone.call_control import CallControl
from ivrbot.phone.conference import ConferenceMethods


class Phone(CallControl, ConferenceMethods):
    """One logged-in endpoint. Methods publish the spec's events; handlers subscribe with ``on``.

    Caller mistakes publish ``error`` (with a :class:`~ivrbot.errors.PhoneError`) and then raise
    :class:`~ivrbot.errors.PhoneException`, so a script that awaits a method sees the failure.
    """
