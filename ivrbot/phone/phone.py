"""The Python Phone: the client API of docs/spec/phone-api.md in snake_case, over the wire API."""

from __future__ import annotations

from ivrbot import numbers
from ivrbot.phone.call_control import CallControl
from ivrbot.phone.conference import ConferenceMethods


class Phone(CallControl, ConferenceMethods):
    """One logged-in endpoint. Methods publish the spec's events; handlers subscribe with ``on``.

    Caller mistakes publish ``error`` (with a :class:`~ivrbot.errors.PhoneError`) and then raise
    :class:`~ivrbot.errors.PhoneException`, so a script that awaits a method sees the failure.
    """

    # phone-number utilities (spec: cleanPhoneNumber, formatNumber, getCallerInfo) -----------
    def clean_phone_number(self, number: str) -> str:
        """'+1 (123) 123 1234' -> '11231231234'; bad input publishes error 3810."""
        try:
            return numbers.clean_phone_number(number)
        except (TypeError, ValueError) as exc:
            self._fail("clean_phone_number", "3810", str(exc))

    def format_number(self, number: str) -> str:
        """'18002253339' -> '+1 (800) 225-3339'; bad input publishes error 3820."""
        try:
            return numbers.format_number(number)
        except (TypeError, ValueError) as exc:
            self._fail("format_number", "3820", str(exc))

    def get_caller_info(self, uri: str | None) -> dict[str, str] | None:
        """'sip:+1111@host' -> {protocol, port, callerId, domain}; None when there is no URI;
        bad input publishes error 3830."""
        try:
            return numbers.get_caller_info(uri)
        except (TypeError, ValueError) as exc:
            self._fail("get_caller_info", "3830", str(exc))
