"""The campaign service of ``ivrbot run``: store, clock, scheduler and HTTP API, made from
the settings in one call (serve.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from ivrbot.campaign import api
from ivrbot.campaign.campaign import CampaignError
from ivrbot.campaign.scheduler import CampaignService, clock_for
from ivrbot.campaign.store import CampaignStore
from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.config import ConfigError, Settings

if TYPE_CHECKING:
    from ivrbot.flow.runner import Bot

log = logging.getLogger(__name__)


def campaign_service(
    app: web.Application,
    settings: Settings,
    bot_for: Callable[[str], Bot | None],
    clock: Clock = REAL_CLOCK,
) -> CampaignService | None:
    """A campaign service on the gateway's database (its campaign clock on ``clock``), its
    routes added to ``app``; None (campaigns off, said in the log) when the database is
    ``:memory:``."""
    if settings.db == ":memory:":
        log.warning("campaigns are off: they need a database file (IVRBOT_DB), not :memory:")
        return None
    try:
        store = CampaignStore(settings.db)
        campaign_clock = clock_for(store, settings.campaign_clock, clock)
        service = CampaignService(store, campaign_clock, bot_for)
    except CampaignError as exc:  # a setting to fix: one line from ivrbot run
        raise ConfigError(str(exc)) from exc
    api.add_routes(app, service)
    return service
