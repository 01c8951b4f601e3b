"""The operator's dashboard: the page at ``/`` (and ``/dashboard``) and its API.

Everything but the page itself needs the operator's token: one issued to the gateway's
OAuth client credentials (``POST /tokens`` with HTTP Basic ``client_id:client_secret``, which
the page's login form does), sent as ``Authorization: Bearer``. Without it: 401, and nothing
is readable; another client's token: 403.

- ``GET /ivrbot/dashboard``: bots and their numbers, live calls (flow, step, last input),
  the latest call records;
- ``GET /ivrbot/records?q=WORDS&limit=N``: call records that mention the words;
- ``GET /ivrbot/records/{id}/recordings/{n}``: a record's n-th recording (the file);
- ``GET /ivrbot/flows/{name}/graph``: a flow's steps and edges (the page lays them out);
- ``GET /ivrbot/live``: the WebSocket feed (:mod:`ivrbot.web.live`);
- ``GET /ivrbot/bots``: the bots' numbers, for the softphone (any valid token);
- ``POST /ivrbot/calls/{id}/listen``, ``DELETE /ivrbot/listeners/{id}``: listening in to a
  live call (:mod:`ivrbot.web.listen`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from ivrbot.web.board import BOARD, RECORDS, Board, flow_graph
from ivrbot.wire.auth import AuthError, Token
from ivrbot.wire.http import GATEWAY

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DASHBOARD_PATHS = ("/", "/dashboard")
MAX_RECORDS = 500  # records one request returns at most
API = "/ivrbot"
NOT_OPERATOR = (
    "this token is not the operator's: log in with the gateway's OAuth client credentials "
    "(IVRBOT_CLIENT_ID and IVRBOT_CLIENT_SECRET)"
)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def operator_token(request: web.Request, query: bool = False) -> Token:
    """The request's bearer token, if it is the operator's (Refused 401 / 403 otherwise).
    ``query``: also from ``?access_token=`` (a browser's WebSocket cannot send headers)."""
    header = request.headers.get("Authorization", "")
    access = header[7:].strip() if header.lower().startswith("bearer ") else None
    if access is None and query:
        access = request.query.get("access_token")
    tokens = request.app[GATEWAY].tokens
    try:
        token = tokens.check(access)
    except AuthError as exc:
        raise Refused(401, str(exc)) from None
    if not tokens.is_operator(token):
        raise Refused(403, NOT_OPERATOR)
    return token


def refusal(exc: Refused) -> web.Response:
    return web.json_response({"error": str(exc)}, status=exc.status)


def operator_only(handler: Handler) -> Handler:
    """``handler`` answers the operator's token only (401 / 403 with one message otherwise)."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        try:
            operator_token(request)
        except Refused as exc:
            return refusal(exc)
        return await handler(request)

    return checked


def board_of(request: web.Request) -> Board:
    return request.app[BOARD]


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "dashboard.html", headers={"Cache-Control": "no-cache"})


@operator_only
async def snapshot(request: web.Request) -> web.Response:
    return web.json_response(await board_of(request).snapshot())


@operator_only
async def records(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", RECORDS))
    except ValueError:
        return web.json_response({"error": "limit: give a whole number"}, status=400)
    limit = min(max(1, limit), MAX_RECORDS)
    found = await board_of(request).records(request.query.get("q", "").strip(), limit)
    return web.json_response({"records": found})


@operator_only
async def recording(request: web.Request) -> web.StreamResponse:
    record_id, n = request.match_info["id"], request.match_info["n"]
    record = await request.app[GATEWAY].store.flow_call(record_id)
    files = list(record.get("recordings") or []) if record else []
    if not n.isdigit() or int(n) >= len(files):
        return web.json_response({"error": f"no recording {n} in record {record_id}"}, status=404)
    path = Path(files[int(n)])
    if not await asyncio.to_thread(path.is_file):
        return web.json_response({"error": f"recording {path.name} is gone"}, status=404)
    return web.FileResponse(path, headers={"Cache-Control": "no-store"})


async def bot_numbers(request: web.Request) -> web.Response:
    """The bots' numbers, for a softphone to offer: any valid token may read them."""
    header = request.headers.get("Authorization", "")
    access = header[7:].strip() if header.lower().startswith("bearer ") else None
    try:
        request.app[GATEWAY].tokens.check(access)
    except AuthError as exc:
        return web.json_response({"error": str(exc)}, status=401)
    rows = [
        {"flow": row["flow"], "number": number, "description": row.get("description", "")}
        for row in board_of(request).bot_rows()
        for number in row["numbers"]
    ]
    return web.json_response({"bots": rows})


@operator_only
async def graph(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    flow = board_of(request).flow(name)
    if flow is None:
        return web.json_response({"error": f"no flow {name!r} is served here"}, status=404)
    return web.json_response(flow_graph(flow))


BOTS_PATH = f"{API}/bots"  # the bots' numbers (any token: the softphone lists them)
ROUTES = {
    f"{API}/dashboard": snapshot,
    f"{API}/records": records,
    f"{API}/records/{{id}}/recordings/{{n}}": recording,
    f"{API}/flows/{{name}}/graph": graph,
}


def add_routes(app: web.Application) -> None:
    from ivrbot.web import listen, live  # they need the helpers above

    app[BOARD] = Board(app[GATEWAY])
    for path in DASHBOARD_PATHS:
        app.router.add_get(path, page)
    for path, handler in ROUTES.items():
        app.router.add_get(path, handler)
    app.router.add_get(live.LIVE_PATH, live.feed)
    app.on_shutdown.append(live.close_feeds)
    app.router.add_get(BOTS_PATH, bot_numbers)
    listen.add_routes(app)


# the dashboard's routes: the operator's, not the wire API (the OpenAPI document omits them)
LISTEN_PATHS = (f"{API}/calls/{{id}}/listen", f"{API}/listeners/{{id}}")  # ivrbot.web.listen
PATHS = frozenset({*DASHBOARD_PATHS, *ROUTES, f"{API}/live", BOTS_PATH, *LISTEN_PATHS})
