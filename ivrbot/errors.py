"""ivrbot's exception roots, the Phone API's error object, the gateway's RequestError bodies."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


class IvrbotError(Exception):
    """The root of ivrbot's own exceptions."""


class UserError(IvrbotError):
    """A mistake a user can fix (a flow, a file, a setting): its message names what to fix,
    and the command line prints it as one line, with no traceback."""


class FlowError(UserError, ValueError):
    """A mistake in a flow module; the message names the flow and what to fix."""


# Gateway MessageIds -> (HTTP status, text). The wire API's error body is
# {"RequestError": {"ServiceException" | "PolicyException": {MessageId, Text, Variables}}}.
SERVICE_ERRORS: dict[str, tuple[int, str]] = {
    "SVC0001": (400, "A service error has occurred. Error code is %1"),
    "SVC0002": (400, "Invalid input value for message part %1"),
    "SVC0003": (400, "Invalid input value for message part %1, valid values are %2"),
    "SVC0004": (400, "No valid addresses provided in message part %1"),
    # E911 id creation (the Phone maps SVC0015-0018 to 1015-1018; see ivrbot.wire.e911)
    "SVC0015": (400, "Address is not a valid address for E911 routing: %1"),
    "SVC0016": (400, "Address confirmation required: %1"),
    "SVC0017": (400, "Address state is not valid for E911 routing: %1"),
    "SVC0018": (400, "Address zip code is not valid for E911 routing: %1"),
    "SVC8501": (409, "Call is not in a state that allows %1"),
    "SVC8510": (400, "Session could not be created: %1"),
    "SVC8511": (400, "Valid e911Id is mandatory for %1"),
    "SVC8512": (400, "Unassigned token: associate the token to a user id first (%1)"),
    "SVC8514": (404, "User id %1 is not associated"),
    "SVC8520": (409, "The call cannot be placed: %1"),  # POST /ivrbot/calls (ivrbot's own)
    "SVC0404": (404, "No such resource: %1"),  # a call, a conference, a path (JSON, never text)
    "SVC0405": (405, "Method %1 is not allowed on %2"),
    "SVC5000": (500, "The gateway failed unexpectedly: %1"),
}
POLICY_ERRORS: dict[str, tuple[int, str]] = {
    "POL0001": (401, "A policy error occurred: %1"),
    "POL0002": (403, "Privacy verification failed for address %1"),
    "POL0003": (403, "Too many addresses specified in message part %1"),
    "POL1009": (403, "User has not been provisioned for %1"),
}


def request_error(message_id: str, *variables: str) -> tuple[int, dict[str, Any]]:
    """Status and body of a gateway RequestError."""
    if message_id in SERVICE_ERRORS:
        kind, (status, text) = "ServiceException", SERVICE_ERRORS[message_id]
    else:
        kind, (status, text) = "PolicyException", POLICY_ERRORS[message_id]
    for i, v in enumerate(variables, start=1):
        text = text.replace(f"%{i}", v)
    body = {
        "RequestError": {
            kind: {"MessageId": message_id, "Text": text, "Variables": list(variables)}
        }
    }
    return status, body


# Phone API: gateway (status, MessageId) -> ErrorCode.
_API_CODES: dict[tuple[int, str], str] = {
    (400, "SVC0001"): "1001", (400, "SVC0002"): "1002", (400, "SVC0003"): "1003",
    (400, "SVC0004"): "1004", (400, "SVC0015"): "1015", (400, "SVC0016"): "1016",
    (400, "SVC0017"): "1017", (400, "SVC0018"): "1018", (400, "SVC8510"): "1501",
    (400, "SVC8511"): "1511", (400, "SVC8512"): "1521", (400, "SVC8514"): "1531",
    (404, "SVC8514"): "1541", (401, "POL0001"): "1711", (403, "POL0001"): "1713",
    (403, "POL0002"): "1702", (403, "POL0003"): "1703", (403, "POL1009"): "1809",
    (403, "POL1100"): "1901", (403, "POL1102"): "1921", (409, "SVC8501"): "1401",
}  # fmt: skip


def api_error_code(status: int, message_id: str | None) -> str:
    if message_id and (status, message_id) in _API_CODES:
        return _API_CODES[(status, message_id)]
    if 500 <= status <= 505 and not message_id:
        return str(status)
    return "1000"


@dataclass(frozen=True)
class PhoneError:
    """The error object published with the ``error`` event."""

    error_code: str
    js_method: str
    error_message: str
    js_object: str = "phone"
    cause: str = ""
    resolution: str = ""
    api_error: str = ""
    resource_method: str = ""
    http_status_code: int | None = None
    message_id: str = ""
    additional_information: str = ""
    timestamp: int = field(default_factory=lambda: int(time.time() * 1000))

    def to_dict(self) -> dict[str, Any]:
        return {
            "JSObject": self.js_object,
            "JSMethod": self.js_method,
            "ErrorCode": self.error_code,
            "ErrorMessage": self.error_message,
            "Cause": self.cause,
            "Resolution": self.resolution,
            "APIError": self.api_error,
            "ResourceMethod": self.resource_method,
            "HttpStatusCode": self.http_status_code,
            "MessageId": self.message_id,
            "AdditionalInformation": self.additional_information,
            "timeStamp": self.timestamp,
        }

    def __str__(self) -> str:
        return f"{self.js_method}: {self.error_code} {self.error_message}"


class PhoneException(IvrbotError):
    """Raised by an awaited Phone method after its ``error`` event was published."""

    def __init__(self, error: PhoneError) -> None:
        super().__init__(str(error))
        self.error = error
