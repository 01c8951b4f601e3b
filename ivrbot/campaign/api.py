"""The campaigns on the HTTP API of ``ivrbot run`` (for the dashboard and the CLI).

- ``GET /ivrbot/campaigns`` -> ``{"campaigns": [summary, ...]}`` (report.summary's keys:
  name, flow, state, total, done, in_progress, outcomes, abandon_ratio; and activity: what
  it does now, or why it is idle and when its next call is due, activity.py)
- ``GET /ivrbot/campaigns/{name}`` -> one summary
- ``GET /ivrbot/campaigns/{name}/report`` -> report.full_report (report --json)
- ``GET /ivrbot/campaigns/{name}/attempts.csv`` -> every attempt (report --csv)
- ``POST /ivrbot/campaigns/{name}/{start|pause|resume|cancel}`` -> the summary after it
  (409 when it does not apply: start or resume of a campaign whose flow is not served)
- ``DELETE /ivrbot/campaigns/{name}[?force=true]`` -> ``{"deleted", "contacts",
  "attempts"}`` (409 while running or paused, unless forced: canceled first)

Only the operator (``gateway.http.check_operator``): an ``X-API-Key`` (one of
``IVRBOT_API_KEYS``), the OAuth client's credentials as HTTP Basic, or a bearer token issued
to them. Anything else is 401/403, and nothing is readable without them.
"""

from __future__ import annotations

from aiohttp import web

from ivrbot.campaign.activity import activity
from ivrbot.campaign.campaign import Campaign, CampaignError, State
from ivrbot.campaign.report import attempts_csv, full_report, summary
from ivrbot.campaign.scheduler import ACTIONS, CampaignService
from ivrbot.wire.http import check_operator

SERVICE = web.AppKey("campaigns", CampaignService)
BASE = "/ivrbot/campaigns"


def _with_activity(service: CampaignService, name: str) -> dict[str, object]:
    store = service.store
    campaign, _ = store.campaign(name)
    now = activity(store, name, service.clock, service.serves(campaign))
    return {**summary(store, name), "activity": now.to_dict()}


async def _summary(service: CampaignService, name: str) -> dict[str, object]:
    try:
        return await service.store.run(_with_activity, service, name)
    except CampaignError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc


async def get_report(request: web.Request) -> web.Response:
    await check_operator(request)
    service, name = request.app[SERVICE], request.match_info["name"]
    campaign = (await _campaign(service, name))[0]
    served = service.serves(campaign)
    report = await service.store.run(full_report, service.store, name, service.clock, served)
    return web.json_response(report)


async def _campaign(service: CampaignService, name: str) -> tuple[Campaign, State]:
    try:
        return await service.store.run(service.store.campaign, name)
    except CampaignError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc


async def delete_campaign(request: web.Request) -> web.Response:
    await check_operator(request)
    service, name = request.app[SERVICE], request.match_info["name"]
    force = request.query.get("force", "").lower() in ("1", "true", "yes")
    await _campaign(service, name)  # 404 for an unknown campaign
    try:
        gone = await service.delete(name, force)
    except CampaignError as exc:
        raise web.HTTPConflict(text=str(exc)) from exc
    return web.json_response({"deleted": name, **gone})


async def list_campaigns(request: web.Request) -> web.Response:
    await check_operator(request)
    service = request.app[SERVICE]
    names = await service.store.run(service.store.names)
    found = []
    for name in names:
        try:
            found.append(await _summary(service, name))
        except web.HTTPNotFound:  # deleted since
            continue
    return web.json_response({"campaigns": found})


async def get_campaign(request: web.Request) -> web.Response:
    await check_operator(request)
    return web.json_response(await _summary(request.app[SERVICE], request.match_info["name"]))


async def get_attempts(request: web.Request) -> web.Response:
    await check_operator(request)
    service, name = request.app[SERVICE], request.match_info["name"]
    await _campaign(service, name)  # 404 for an unknown campaign
    text = await service.store.run(attempts_csv, service.store, name)
    return web.Response(text=text, content_type="text/csv")


async def post_action(request: web.Request) -> web.Response:
    await check_operator(request)
    service, name = request.app[SERVICE], request.match_info["name"]
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound(text=f"unknown action {action!r}: use {', '.join(ACTIONS)}")
    await _campaign(service, name)  # 404 for an unknown campaign
    try:
        await service.control(name, action)
    except CampaignError as exc:
        raise web.HTTPConflict(text=str(exc)) from exc
    return web.json_response(await _summary(service, name))


def add_routes(app: web.Application, service: CampaignService) -> None:
    app[SERVICE] = service
    app.router.add_get(BASE, list_campaigns)
    app.router.add_get(BASE + "/{name}", get_campaign)
    app.router.add_delete(BASE + "/{name}", delete_campaign)
    app.router.add_get(BASE + "/{name}/report", get_report)
    app.router.add_get(BASE + "/{name}/attempts.csv", get_attempts)
    app.router.add_post(BASE + "/{name}/{action}", post_action)
