"""The dashboard's live feed: a WebSocket that sends the board whenever it changes.

``GET /ivrbot/live?access_token=TOKEN`` (the operator's token; a browser's WebSocket cannot
send an ``Authorization`` header): 401 before the upgrade without it. Each message is the
board's snapshot as JSON (``bots``, ``calls``, ``records``, ``version``); a new one goes out
after each change (a step, an input, a call starting or ending), at most ``MIN_GAP_S``
apart, so a burst of changes is one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from ivrbot.web.board import BOARD, Board
from ivrbot.web.dashboard import API, Refused, operator_token, refusal

log = logging.getLogger(__name__)

LIVE_PATH = f"{API}/live"
MIN_GAP_S = 0.2


async def feed(request: web.Request) -> web.StreamResponse:
    try:
        operator_token(request, query=True)
    except Refused as exc:
        return refusal(exc)
    board = request.app[BOARD]
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    board.feeds.add(ws)
    sender = asyncio.ensure_future(_send_changes(ws, board))
    try:
        async for msg in ws:  # the page sends nothing; this notices it going away
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        board.feeds.discard(ws)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return ws


async def _send_changes(ws: web.WebSocketResponse, board: Board) -> None:
    version = -1
    try:
        while not ws.closed:
            if version == board.version:
                await board.changed_since(version)
                await asyncio.sleep(MIN_GAP_S)  # one message for a burst of changes
            version = board.version
            await ws.send_json(await board.snapshot())
    except (ConnectionResetError, RuntimeError) as exc:  # the page went away mid-send
        log.debug("dashboard feed closed: %s", exc)


async def close_feeds(app: web.Application) -> None:
    """The server stops: close the dashboards' feeds (it would wait for them otherwise)."""
    for ws in list(app[BOARD].feeds):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"ivrbot is stopping")
