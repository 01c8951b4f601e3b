"""Conferences and their participants (docs/spec/rtc-api.md); the outcomes go out as events.

- ``POST /sessions/{sid}/conferences {conference:{sdp}}`` -> 201, ``Location`` (a path),
  ``x-state: created``. The gateway's answer follows on the host's event channel as
  ``session-open`` with ``sdp``, like the answer to a call (the historical client takes
  every answer from its channel; see conferences.py for every event object).
- ``PUT .../conferences/{cid}`` with ``x-conference-action``: ``call-answer`` (an invitee
  joins, ``{conferenceModifications:{sdp}}``), ``initiate-hold`` / ``initiate-resume``
  (leave / rejoin the mix; an offer in ``conferenceModifications.sdp`` is answered in
  ``mod-terminated``) -> 204 with ``x-modId``.
- ``DELETE .../conferences/{cid}`` (``x-delete-reason``): the host ends the conference for
  everyone; a participant leaves it; an invitee declines (``reject``) -> 204.
- ``PUT`` / ``DELETE .../conferences/{cid}/participants/{sip:user@dom | tel:+digits}`` (host
  only) -> 202 with ``x-state: add-pending`` / ``remove-pending`` and ``x-modId``.
- ``GET .../conferences/{cid}/participants`` (any member) -> 200
  ``{participants: {uri: {participant, status}}}``, status ``invited``, ``connecting``,
  ``joined`` or ``held`` (the shape of the Phone's ``get_participants()``).

A conference id of another session is 404, as is an unknown one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from ivrbot.core.call_state import Reason
from ivrbot.core.conferences import (
    ConferenceError,
    ConferenceLeg,
    LegState,
    NotFound,
    valid_participant_id,
)
from ivrbot.wire.http import ApiError, gw, json_body, own_session

ACTIONS = ("call-answer", "initiate-hold", "initiate-resume", "accept-media-mod")
DELETE_REASONS = ("terminate", "cancel", "reject")
PARTICIPANT_FORM = "participant (sip:<user>@<domain> or tel:+<digits>)"


@contextmanager
def conference_errors() -> Iterator[None]:
    try:
        yield
    except ConferenceError as exc:
        raise ApiError("SVC8501", f"{exc.action} ({exc.why})") from None
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


def own_conference(request: web.Request) -> ConferenceLeg:
    """The conference resource in the path, if it is one of the caller's session (else 404)."""
    session = own_session(request)
    cleg = gw(request).conferences.leg_of(session, request.match_info["cid"])
    if cleg is None:
        raise web.HTTPNotFound(text=f"no conference {request.match_info['cid']} in this session")
    return cleg


def participant_id(request: web.Request) -> str:
    pid = request.match_info["pid"]
    if not valid_participant_id(pid):
        raise ApiError("SVC0004", PARTICIPANT_FORM)
    return pid


async def post_conference(request: web.Request) -> web.Response:
    session = own_session(request)
    body = await json_body(request)
    conference = body.get("conference")
    if not isinstance(conference, dict):
        raise ApiError("SVC0002", "conference")
    sdp = conference.get("sdp")
    if not isinstance(sdp, str):
        raise ApiError("SVC0002", "conference.sdp")
    host = await gw(request).conferences.create(session, sdp)
    return web.Response(status=201, headers={"Location": host.resource_url, "x-state": "created"})


async def put_conference(request: web.Request) -> web.Response:
    cleg = own_conference(request)
    action = request.headers.get("x-conference-action", "")
    body = await json_body(request)
    if action not in ACTIONS:
        raise ApiError("SVC0003", "x-conference-action", ", ".join(ACTIONS))
    conferences = gw(request).conferences
    with conference_errors():
        if action == "call-answer":
            mods = body.get("conferenceModifications")
            if not isinstance(mods, dict) or not isinstance(mods.get("sdp"), str):
                raise ApiError("SVC0002", "conferenceModifications.sdp")
            await conferences.answer(cleg, mods["sdp"])
        elif action in ("initiate-hold", "initiate-resume"):
            mods = body.get("conferenceModifications")
            sdp = mods.get("sdp") if isinstance(mods, dict) else None
            hold = action == "initiate-hold"
            mod_id = await conferences.change_hold(
                cleg, hold, sdp if isinstance(sdp, str) else None
            )
            return web.Response(status=204, headers={"x-modId": mod_id})
        else:
            raise ConferenceError(action, "no media modification is pending")
    return web.Response(status=204)


async def delete_conference(request: web.Request) -> web.Response:
    cleg = own_conference(request)
    raw = request.headers.get("x-delete-reason", "terminate")
    if raw not in DELETE_REASONS:
        raise ApiError("SVC0003", "x-delete-reason", ", ".join(DELETE_REASONS))
    conferences = gw(request).conferences
    with conference_errors():
        if raw == "reject" and cleg.state is not LegState.INVITED:
            raise ConferenceError("reject", "there is no invitation to reject")
        await conferences.leave(cleg, Reason.HANGUP)
    return web.Response(status=204)


async def put_participant(request: web.Request) -> web.Response:
    host = own_conference(request)
    pid = participant_id(request)
    with conference_errors():
        participant = await gw(request).conferences.invite(host, pid)
    return web.Response(
        status=202, headers={"x-state": "add-pending", "x-modId": participant.mod_id}
    )


async def delete_participant(request: web.Request) -> web.Response:
    host = own_conference(request)
    pid = participant_id(request)
    with conference_errors():
        mod_id = await gw(request).conferences.remove(host, pid)
    return web.Response(status=202, headers={"x-state": "remove-pending", "x-modId": mod_id})


async def get_participants(request: web.Request) -> web.Response:
    cleg = own_conference(request)
    participants = {
        uri: {"participant": uri, "status": p.status}
        for uri, p in cleg.conference.participants.items()
    }
    return web.json_response({"participants": participants})


def add_routes(app: web.Application, rtc: str) -> None:
    base = rtc + "/sessions/{sid}/conferences"
    app.router.add_post(base, post_conference)
    app.router.add_put(base + "/{cid}", put_conference)
    app.router.add_delete(base + "/{cid}", delete_conference)
    app.router.add_get(base + "/{cid}/participants", get_participants)
    app.router.add_put(base + "/{cid}/participants/{pid}", put_participant)
    app.router.add_delete(base + "/{cid}/participants/{pid}", delete_participant)
