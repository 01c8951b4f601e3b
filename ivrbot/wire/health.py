"""``GET /health`` (open to all) and ``GET /metrics`` (Prometheus text format).

``/health`` answers ``{"ok", "version", "uptime_s", "calls_in_progress", "flows": {"loaded",
"broken"}}`` (and ``"workers"``: each media worker's index, pid, alive, calls, starts, when
there are some): 200 when ok, 503 when a flow file does not load (the others are served).
With media workers, ``/metrics`` also carries each worker's samples, labelled ``worker``.
``/metrics`` is open to clients on this machine (loopback: a Prometheus beside the gateway
or a reverse proxy on the same host); from elsewhere it needs ``X-API-Key`` with one of
``IVRBOT_API_KEYS`` (403 otherwise), as call counts and numbers are the operator's business.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ivrbot import __version__
from ivrbot.config import is_loopback
from ivrbot.credentials import API_KEY_HEADER
from ivrbot.metrics import with_workers
from ivrbot.wire.http import GATEWAY

FlowStatus = Callable[[], dict[str, list[str]]]
# set by whoever serves flows (ivrbot run): the names of the flows served and the files
# that do not load
FLOWS: web.AppKey[FlowStatus] = web.AppKey("ivrbot.flows")
STARTED = web.AppKey("ivrbot.started", float)


def add_routes(app: web.Application, rtc: str) -> None:
    app[STARTED] = time.monotonic()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)


async def health(request: web.Request) -> web.Response:
    app = request.app
    status = app.get(FLOWS)
    flows = status() if status is not None else {"loaded": [], "broken": []}
    ok = not flows["broken"]
    gateway = app[GATEWAY]
    workers = gateway.workers.status() if gateway.workers is not None else []
    body: dict[str, object] = {
        "ok": ok,
        "version": __version__,
        "uptime_s": round(time.monotonic() - app[STARTED], 1),
        "calls_in_progress": len(gateway.switch.calls) + sum(w["calls"] for w in workers),
        "flows": flows,
    }
    if workers:
        body["workers"] = workers
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    given = request.headers.get(API_KEY_HEADER, "")
    if not metrics_allowed(request.remote or "", given, request.app[GATEWAY].settings.api_keys):
        raise web.HTTPForbidden(
            text=f"/metrics: only from this machine, or with {API_KEY_HEADER} (IVRBOT_API_KEYS)"
        )
    workers = request.app[GATEWAY].workers
    body = with_workers(await workers.metrics()) if workers is not None else generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def metrics_allowed(remote: str, api_key: str, keys: Sequence[str]) -> bool:
    """A client on this machine, or one giving one of the operator's API keys."""
    if is_loopback(remote):
        return True
    given = api_key.encode()
    return bool(given) and any(hmac.compare_digest(given, k.encode()) for k in keys)
