"""The integrators' part of the OpenAPI document (ivrbot/wire/openapi.py puts it in):
``/ivrbot/calls``, ``/ivrbot/calls/{id}``, ``/ivrbot/webhooks`` and, as OpenAPI 3.1
``webhooks``, every event ivrbot POSTs (ivrbot/integrations/events.py)."""

from __future__ import annotations

from typing import Any

from ivrbot.integrations.calls import MAX_RING_S
from ivrbot.integrations.events import WebhookEvent
from ivrbot.integrations.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

JSON = "application/json"
STR = {"type": "string"}
NULL_STR = {"type": ["string", "null"]}
ERROR = {"$ref": "#/components/schemas/RequestError"}
OPERATOR: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {"basic": []}]
STATES = ["dialing", "ringing", "answered", "completed", "in-progress"]
E164 = {"type": "string", "description": "E.164 (+15550001050); sip:user@domain for a user"}


def _error(text: str) -> dict[str, Any]:
    return {"description": text, "content": {JSON: {"schema": ERROR}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


AUTH_ERRORS = {
    "401": _error("no credentials, or wrong ones (POL0001)"),
    "403": _error("credentials that are not the operator's (POL0001)"),
}


def paths() -> dict[str, Any]:
    request = _obj(
        ["flow", "to"],
        flow={"type": "string", "description": "the name of a flow this gateway serves"},
        to={"type": "string", "description": "the number to call (E.164: +15550001050)"},
        vars={"type": "object", "description": "the call's variables (call.vars)"},
        webhook={"type": "string", "format": "uri", "description": "this call's events go here"},
        webhook_steps={"type": "boolean", "description": "also an event for each step"},
        ring_timeout_s={"type": "number", "minimum": 1, "maximum": MAX_RING_S},
    )
    request["additionalProperties"] = False
    return {
        "/ivrbot/calls": {
            "post": {
                "summary": "Place one outbound call from a flow to a number (the operator's "
                "credentials or an X-API-Key)",
                "security": OPERATOR,
                "requestBody": {"required": True, "content": {JSON: {"schema": request}}},
                "responses": {
                    "201": {
                        "description": "placed: its id and state (Location: /ivrbot/calls/{id})",
                        "content": {JSON: {"schema": _ref("Call")}},
                    },
                    "400": _error("a bad body: the field to fix (SVC0002)"),
                    **AUTH_ERRORS,
                    "404": _error("no such flow here (SVC0404)"),
                    "409": _error("the flow is not served, or the call could not be placed"),
                    "429": _error("the flow is at capacity (SVC8520): try again later"),
                },
            }
        },
        "/ivrbot/calls/{id}": {
            "get": {
                "summary": "A call's state and outcome (any flow record's id)",
                "security": OPERATOR,
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": STR}],
                "responses": {
                    "200": {"description": "the call", "content": {JSON: {"schema": _ref("Call")}}},
                    **AUTH_ERRORS,
                    "404": _error("no call has that id (SVC0404)"),
                },
            }
        },
        "/ivrbot/webhooks": {
            "get": {
                "summary": "Webhook deliveries: counts and the latest failures",
                "security": OPERATOR,
                "responses": {
                    "200": {
                        "description": "deliveries",
                        "content": {JSON: {"schema": _ref("WebhookStatus")}},
                    },
                    **AUTH_ERRORS,
                },
            }
        },
    }


def schemas() -> dict[str, Any]:
    call = _obj(
        ["id", "flow", "state"],
        id={"type": "string", "description": "the flow record's id (ivrbot calls show ID)"},
        flow=STR,
        to=E164,
        **{"from": E164},
        state={"type": "string", "enum": STATES},
        outcome={"type": ["string", "null"], "description": "as in the call's record"},
        error=NULL_STR,
        started_at=NULL_STR,
        answered_at=NULL_STR,
        ended_at=NULL_STR,
        duration_s={"type": "number", "description": "from the answer to the end"},
        path={"type": "array", "items": STR},
        recordings={"type": "array", "items": STR},
        webhook={"type": "boolean"},
    )
    failure = _obj(["at", "event", "url", "problem", "tries"], at=STR, event=STR, url=STR,
                   problem=STR, tries={"type": "integer"})  # fmt: skip
    status = _obj(
        ["signed", "delivered", "failed", "retried", "pending", "failures"],
        signed={"type": "boolean"},
        delivered={"type": "integer"},
        failed={"type": "integer"},
        retried={"type": "integer"},
        pending={"type": "integer"},
        failures={"type": "array", "items": failure},
    )
    return {"Call": call, "WebhookStatus": status, **event_schemas()}


def _event(kind: WebhookEvent, required: list[str], **props: Any) -> dict[str, Any]:
    base = {
        "id": {"type": "string", "description": "the same on each retry of this event"},
        "type": {"const": str(kind)},
        "created_at": {"type": "string", "format": "date-time"},
    }
    schema = _obj(["id", "type", "created_at", *required], **base, **props)
    schema["additionalProperties"] = False  # every field an event has is named here
    return schema


def event_schemas() -> dict[str, Any]:
    party = _obj(
        ["id", "flow", "direction", "from", "to"],
        id={"type": "string", "description": "the record id (GET /ivrbot/calls/{id})"},
        flow=STR,
        direction={"type": "string", "enum": ["outbound", "inbound"]},
        **{"from": E164, "to": E164},
    )
    party["additionalProperties"] = False
    seq = {"type": "integer", "minimum": 1, "description": "the call's events counted from 1"}
    call = {"call": party, "sequence": seq}
    recording = _obj(["index", "file", "url"], index={"type": "integer"}, file=STR,
                     url=STR, seconds={"type": ["number", "null"]})  # fmt: skip
    campaign = _obj(["name", "flow"], name=STR, flow=STR)
    E = WebhookEvent
    return {
        "CallInitiated": _event(E.CALL_INITIATED, ["call", "sequence"], **call),
        "CallRinging": _event(E.CALL_RINGING, ["call", "sequence"], **call),
        "CallAnswered": _event(E.CALL_ANSWERED, ["call", "sequence"], **call),
        "CallStep": _event(E.CALL_STEP, ["call", "sequence", "step"], **call, step=STR),
        "CallRecording": _event(
            E.CALL_RECORDING, ["call", "sequence", "recording"], **call, recording=recording
        ),
        "CallCompleted": _event(
            E.CALL_COMPLETED,
            ["call", "sequence", "outcome", "duration_s"],
            **call,
            outcome={"type": "string", "description": "as in the call's record"},
            duration_s={"type": "number", "description": "from the answer (0: never answered)"},
            error=NULL_STR,
            path={"type": "array", "items": STR},
        ),
        "CampaignAttempt": _event(
            E.CAMPAIGN_ATTEMPT,
            ["campaign", "number", "attempt", "outcome", "final"],
            campaign=campaign,
            number=E164,
            contact_name=STR,
            attempt={"type": "integer"},
            outcome=STR,
            final={"type": "boolean", "description": "no more attempts to this contact"},
            retry_at=NULL_STR,
            call=NULL_STR,
        ),
        "CampaignFinished": _event(
            E.CAMPAIGN_FINISHED,
            ["campaign", "outcomes"],
            campaign=campaign,
            outcomes={"type": "object", "additionalProperties": {"type": "integer"}},
        ),
    }


SIGNED = (
    f"Signed: {SIGNATURE_HEADER} is v1= and the hex HMAC-SHA256 of '<{TIMESTAMP_HEADER}>.<raw "
    "body>' keyed with IVRBOT_WEBHOOK_SECRET. Answer 2xx; a 5xx, timeout or connection error "
    "is retried with backoff, a 4xx is not."
)


def webhooks() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: one POST per event type."""
    headers = [
        {"name": TIMESTAMP_HEADER, "in": "header", "required": True, "schema": STR},
        {"name": SIGNATURE_HEADER, "in": "header", "required": False, "schema": STR},
        {"name": "X-Ivrbot-Event", "in": "header", "required": True, "schema": STR},
    ]
    out = {}
    for name, schema in event_schemas().items():
        kind = schema["properties"]["type"]["const"]
        out[kind] = {
            "post": {
                "summary": f"{kind}. {SIGNED}",
                "parameters": headers,
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref(name)}}},
                "responses": {"200": {"description": "taken (any 2xx)"}},
            }
        }
    return out


SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "basic": {"type": "http", "scheme": "basic"},
}
