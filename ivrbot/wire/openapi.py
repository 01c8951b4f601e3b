"""The gateway's OpenAPI 3 document, served at ``/openapi.json``.

Written by hand from docs/spec/rtc-api.md (the wire API is a contract, not an accident of the
code); a test checks that it names exactly the routes the app serves. OpenAPI 3.1: the
integrators' API and the webhooks ivrbot sends are in too (ivrbot/integrations/openapi.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ivrbot import __version__
from ivrbot.integrations import openapi as integrations
from ivrbot.media.hold import HOLD_AUDIO, HOLD_AUDIO_HEADER

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/RequestError"}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _op(summary: str, ok: str = "204", **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {
        ok: {"description": "success"},
        "400": {"description": "bad request", "content": {JSON: {"schema": ERROR}}},
        "401": {"description": "missing, unknown or expired token"},
        "404": {
            "description": "no such resource for this token (SVC0404; SVC8514: no such session)",
            "content": {JSON: {"schema": ERROR}},
        },
    }
    return {"summary": summary, "responses": responses, **extra}


def _header(name: str, required: bool = False, enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "header", "required": required, "schema": schema}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


STR = {"type": "string"}
SDP = {"type": "string", "description": "an SDP offer or answer (v=0 ...)"}
SESSION = [_path("sid")]
CALL = [_path("sid"), _path("cid")]
CALL_ACTIONS = [
    "call-answer",
    "initiate-call-hold",
    "initiate-call-resume",
    "initiate-call-move",
    "initiate-call-transfer",
    "initiate-call-mod",
    "accept-call-mod",
    "reject-call-mod",
    "initiate-call-merge",
]


def document(rtc: str = "/RTC/v1") -> dict[str, Any]:
    address = _obj(
        ["first_name", "last_name", "house_number", "street", "city", "state", "zip"],
        first_name=STR,
        last_name=STR,
        house_number=STR,
        street=STR,
        unit=STR,
        city=STR,
        state=STR,
        zip=STR,
    )
    paths: dict[str, Any] = {
        "/config": {"get": _op("Public configuration (no secrets)", "200", security=[])},
        "/openapi.json": {"get": _op("This document", "200", security=[])},
        "/health": {
            "get": _op(
                "Liveness: version, uptime, calls, flows (503: a flow is broken)",
                "200",
                security=[],
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (this machine, or X-API-Key; else 403)", "200", security=[]
            )
        },
        "/tokens": {
            "post": _op(
                "Get a token for an app scope, or refresh one (outside development mode: an "
                "X-API-Key header or HTTP Basic client credentials; see README)",
                "200",
                security=[],
                requestBody=_body(
                    _obj(
                        app_scope={
                            "type": "string",
                            "enum": ["MOBILE_NUMBER", "VIRTUAL_NUMBER", "ACCOUNT_ID", "E911"],
                        },
                        auth_code=STR,
                        refresh_token=STR,
                    )
                ),
            ),
            "put": _op(
                "Refresh a token",
                "200",
                security=[],
                requestBody=_body(_obj(["refresh_token"], refresh_token=STR)),
            ),
            "delete": _op(
                "Revoke a token",
                "200",
                security=[],
                requestBody=_body(_obj(["token"], token=STR, token_type_hint=STR)),
            ),
        },
        "/e911ids": {
            "post": _op(
                "Register an emergency address",
                "200",
                security=[],
                requestBody=_body(
                    _obj(
                        ["token", "address"],
                        token=STR,
                        address=address,
                        is_confirmed={"type": "boolean"},
                    )
                ),
            )
        },
        "/oauth/v4/token": {
            "post": _op(
                "OAuth 2 token endpoint",
                "200",
                security=[],
                requestBody={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": _obj(
                                ["grant_type"],
                                grant_type={
                                    "type": "string",
                                    "enum": [
                                        "client_credentials",
                                        "authorization_code",
                                        "refresh_token",
                                    ],
                                },
                                client_id=STR,
                                client_secret=STR,
                                code=STR,
                                refresh_token=STR,
                                scope=STR,
                                redirect_uri=STR,
                            )
                        }
                    },
                },
            )
        },
        "/oauth/v4/authorize": {
            "get": _op(
                "Consent page (HTML)",
                "200",
                security=[],
                parameters=[
                    {"name": n, "in": "query", "required": False, "schema": STR}
                    for n in ("client_id", "redirect_uri", "scope", "state", "response_type")
                ],
            ),
            "post": _op(
                "Give consent: bind a mobile number to an auth code",
                "302",
                security=[],
                requestBody={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": _obj(
                                client_id=STR, redirect_uri=STR, scope=STR, state=STR, msisdn=STR
                            )
                        }
                    },
                },
            ),
        },
        "/oauth/v4/revoke": {
            "post": _op(
                "Revoke a token (OAuth 2)",
                "200",
                security=[],
                requestBody={
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": _obj(
                                ["token"],
                                token=STR,
                                token_type_hint=STR,
                                client_id=STR,
                                client_secret=STR,
                            )
                        }
                    },
                },
            ),
        },
        rtc + "/userIds/{userId}": {
            "put": _op("Associate the token with a user id", parameters=[_path("userId")])
        },
        rtc + "/sessions": {
            "post": _op(
                "Log in: create a session",
                "201",
                parameters=[
                    _header("x-e911Id"),
                    _header("x-Arg"),
                    # ivrbot's: what it hears while the far end holds (a bot: silence), and
                    # session-modified (reason held / resumed) when the far end holds
                    _header(HOLD_AUDIO_HEADER, enum=list(HOLD_AUDIO)),
                ],
                requestBody=_body(
                    _obj(
                        ["session"],
                        session=_obj(
                            mediaType=STR, ice=STR, services={"type": "array", "items": STR}
                        ),
                    )
                ),
            )
        },
        rtc + "/sessions/{sid}": {
            "put": _op(
                "Refresh the session or re-associate its E911 id",
                parameters=SESSION,
                requestBody=_body(_obj(e911Association=_obj(e911Id=STR)), required=False),
            ),
            "delete": _op("Log out", parameters=SESSION),
        },
        rtc + "/sessions/{sid}/websockets": {
            "post": _op("Open the WebSocket event channel", "201", parameters=SESSION)
        },
        rtc + "/sessions/{sid}/websockets/{wid}": {
            "get": _op("The WebSocket (upgrade)", "101", parameters=[_path("sid"), _path("wid")])
        },
        rtc + "/sessions/{sid}/events": {
            "get": _op("Long-poll the event channel (204 after 40 s)", "200", parameters=SESSION)
        },
        rtc + "/sessions/{sid}/calls": {
            "post": _op(
                "Place a call",
                "201",
                parameters=SESSION,
                requestBody=_body(
                    _obj(["call"], call=_obj(["calledParty", "sdp"], calledParty=STR, sdp=SDP))
                ),
            )
        },
        rtc + "/sessions/{sid}/calls/{cid}": {
            "put": _op(
                "Answer, hold, resume, move, transfer, modify or merge a call into a"
                " conference (initiate-call-merge: an ivrbot extension). Hold, resume and"
                " initiate-call-mod carry the client's new offer; the answer comes in"
                " mod-terminated with the response's x-modId",
                parameters=[
                    *CALL,
                    _header("x-calls-action", True, CALL_ACTIONS),
                    _header("x-modId"),
                    _header("x-transferTargetCallId"),
                    _header("x-conferenceId"),
                    _header("x-merge-mode", False, ["leave", "stay"]),
                ],
                requestBody=_body(
                    _obj(callsMediaModifications=_obj(sdp=SDP, type=STR)), required=False
                ),
            ),
            "delete": _op(
                "End, cancel or reject a call",
                parameters=[
                    *CALL,
                    _header("x-delete-reason", False, ["terminate", "cancel", "reject"]),
                ],
            ),
        },
        rtc + "/sessions/{sid}/conferences": {
            "post": _op(
                "Start a conference",
                "201",
                parameters=SESSION,
                requestBody=_body(_obj(["conference"], conference=_obj(["sdp"], sdp=SDP))),
            )
        },
        rtc + "/sessions/{sid}/conferences/{cid}": {
            "put": _op(
                "Join, hold or resume a conference",
                parameters=[
                    *CALL,
                    _header(
                        "x-conference-action",
                        True,
                        ["call-answer", "initiate-hold", "initiate-resume", "accept-media-mod"],
                    ),
                    _header("x-mod-Id"),
                ],
                requestBody=_body(_obj(conferenceModifications=_obj(sdp=SDP)), required=False),
            ),
            "delete": _op(
                "End (host), leave or reject a conference",
                parameters=[*CALL, _header("x-delete-reason")],
            ),
        },
        rtc + "/sessions/{sid}/conferences/{cid}/participants": {
            "get": _op("List participants", "200", parameters=CALL)
        },
        rtc + "/sessions/{sid}/conferences/{cid}/participants/{participant}": {
            "put": _op(
                "Invite a participant (sip: or tel: id)",
                "202",
                parameters=[*CALL, _path("participant")],
            ),
            "delete": _op("Remove a participant", "202", parameters=[*CALL, _path("participant")]),
        },
    }
    paths.update(integrations.paths())  # POST /ivrbot/calls ...
    return {
        "openapi": "3.1.0",
        "info": {"title": "ivrbot gateway (carrier WebRTC wire API)", "version": __version__},
        "paths": paths,
        "webhooks": integrations.webhooks(),  # what ivrbot POSTs to integrators
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                **integrations.SECURITY_SCHEMES,
            },
            "schemas": {
                **integrations.schemas(),
                "RequestError": _obj(
                    ["RequestError"],
                    RequestError=_obj(
                        ServiceException=_obj(
                            MessageId=STR, Text=STR, Variables={"type": "array", "items": STR}
                        ),
                        PolicyException=_obj(
                            MessageId=STR, Text=STR, Variables={"type": "array", "items": STR}
                        ),
                    ),
                ),
            },
        },
    }


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_routes(app: web.Application, rtc: str) -> None:
    app.router.add_get("/openapi.json", get_openapi)
