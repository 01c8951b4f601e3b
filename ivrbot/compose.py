"""The composition root: speech synthesiser, gateway (store, sessions, switch), SIP
connector, bots and campaigns, assembled in one place and torn down in reverse order.

``ivrbot run``, ``ivrbot demo``, ``ivrbot dial``, scenarios, the soak and the tests'
fixtures all build their parts here::

    async with assemble(settings) as parts:
        bot = await parts.serve(flow)       # a bot for a flow, attached inside the gateway
        ...

:func:`assemble` enters each part into one :class:`contextlib.AsyncExitStack` as it starts
it, so the parts stop in the reverse order (campaigns, bots, SIP, gateway and its store,
synthesiser) when the block ends, also when starting failed half way. The campaigns start
last (:meth:`Parts.start_campaigns`), once the bots they dial with are served.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivrbot.clock import Clock, RealClock
from ivrbot.config import Settings
from ivrbot.credentials import Credentials
from ivrbot.flow.admission import Admission
from ivrbot.flow.flow import Flow
from ivrbot.flow.runner import Bot
from ivrbot.integrations import routes as integrations
from ivrbot.integrations.calls import OutboundCalls
from ivrbot.integrations.delivery import WebhookSender
from ivrbot.integrations.events import Webhooks
from ivrbot.process_setup import configure_media
from ivrbot.speech.models import load_flow_model
from ivrbot.speech.tts import Synthesizer, check_tts
from ivrbot.timeline import Timeline
from ivrbot.web.board import BOARD
from ivrbot.wire.access import reserve
from ivrbot.wire.health import FLOWS
from ivrbot.wire.server import GatewayServer

if TYPE_CHECKING:
    from ivrbot.campaign.scheduler import CampaignService
    from ivrbot.endpoints.sip.connector import SipConnector
    from ivrbot.wire.gateway import Gateway

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """What :func:`assemble` built. ``server`` is None for bots of a gateway that runs
    elsewhere (``remote``: its URL)."""

    settings: Settings
    tts: Synthesizer
    server: GatewayServer | None = None
    remote: str = ""
    sip: SipConnector | None = None
    campaigns: CampaignService | None = None
    bots: list[Bot] = field(default_factory=list)
    timeline: Timeline | None = None  # what the bots note (the demo, scenarios)
    webhooks: Webhooks | None = None  # the bots' and campaigns' events, POSTed signed
    calls: OutboundCalls | None = None  # POST /ivrbot/calls
    # the one clock of the gateway (sessions, switch, conferences) and the campaigns
    clock: Clock = field(default_factory=RealClock)

    def __post_init__(self) -> None:
        self._stack: contextlib.AsyncExitStack | None = None  # set by assemble()
        self.admission = Admission(self.settings.max_calls)  # every bot of this process
        self.credentials = Credentials.operator(
            self.settings.client_id, self.settings.client_secret
        )

    @property
    def url(self) -> str:
        return self.server.url if self.server is not None else self.remote

    @property
    def gateway(self) -> Gateway:
        """The gateway in this process (ValueError for the bots of a remote one)."""
        if self.server is None:
            raise ValueError(f"the gateway runs elsewhere ({self.remote})")
        return self.server.gateway

    def bot_named(self, flow_name: str) -> Bot | None:
        """The bot that serves the flow of that name (the campaigns' dialers ask)."""
        return next((b for b in reversed(self.bots) if b.flow.name == flow_name), None)

    async def serve(self, flow: Flow, *, inbound: bool = True) -> Bot:
        """Start a bot for ``flow`` (its speech model loaded, its numbers reserved for the
        operator's bots); it stops with the other bots when the parts are torn down. With
        the gateway in this process (and ``local_bots``) it attaches inside the gateway."""
        model = await load_flow_model(flow)  # one vosk.Model per folder
        s, server = self.settings, self.server
        local = server is not None and s.local_bots
        if server is not None:
            pool = server.gateway.virtual_numbers
            pool += [n for n in flow.numbers if n not in pool]
            await reserve(server.gateway, flow.user_ids)  # only the operator's bots take them
        bot = Bot(
            flow, self.url, self.tts, model, self.timeline, inbound=inbound,
            store=server.gateway.store if server is not None else None,
            credentials=self.credentials, admission=self.admission, queue_s=s.queue_s,
            gateway=server.gateway if local and server is not None else None,
            max_calls=(flow.max_calls or s.flow_max_calls) if local else 4,
            recordings=s.recordings, env=s.flow_env,
        )  # fmt: skip
        if self.webhooks is not None:
            self.webhooks.watch(bot)
        await bot.start()
        self.bots.append(bot)
        return bot

    async def stop_bots(self) -> None:
        while self.bots:
            await self.bots.pop().stop()

    async def start_campaigns(self) -> None:
        """Start the campaign service (built by ``assemble(campaigns=True)``) once the bots
        it dials with are served; it stops first when the parts are torn down."""
        if self.campaigns is None or self._stack is None:
            return
        await self.campaigns.start()
        self._stack.push_async_callback(self.campaigns.stop)


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    reserved: Iterable[Flow] = (),
    tts: Synthesizer | None = None,
    campaigns: bool = False,
    remote: str = "",
    timeline: Timeline | None = None,
    prepare: Callable[[Parts], None] | None = None,
) -> AsyncIterator[Parts]:
    """The parts of an ivrbot process, started in order and stopped in reverse.

    - ``reserved``: flows whose identities are reserved before the gateway listens (the
      flows ``ivrbot run`` is about to serve: nobody else can take their numbers first);
    - ``tts``: a synthesiser to share (the tests' one); default: one of this process,
      caching in ``settings.cache_dir``;
    - ``campaigns``: the campaign service (scheduler and HTTP API) of the database, its
      routes added; :meth:`Parts.start_campaigns` starts it once the bots are served;
    - ``remote``: no gateway here: the bots log in to the gateway at that URL;
    - ``timeline``: what the bots do is noted there;
    - ``prepare``: called with the parts once the gateway is built, before it listens (to
      add what its routes show).

    A SIP connector starts when ``settings.sip_config`` names a SIP file (not with
    ``remote``). Bots are added with :meth:`Parts.serve`."""
    configure_media(settings)  # ICE addresses, consent checks, speech model, vosk log
    async with contextlib.AsyncExitStack() as stack:
        if tts is None:
            check_tts()
            tts = await stack.enter_async_context(Synthesizer(settings.cache_dir))
        parts = Parts(settings, tts, remote=remote.rstrip("/"), timeline=timeline)
        parts._stack = stack
        if not remote:
            await _start_gateway(stack, parts, reserved, campaigns, prepare)
        stack.push_async_callback(parts.stop_bots)
        yield parts


async def _start_gateway(
    stack: contextlib.AsyncExitStack,
    parts: Parts,
    reserved: Iterable[Flow],
    campaigns: bool,
    prepare: Callable[[Parts], None] | None,
) -> None:
    """The gateway server (its store, sessions, switch; routes of campaigns and SIP added
    before it listens), listening, then the SIP connector."""
    server = parts.server = GatewayServer(parts.settings, parts.clock)
    settings = parts.settings = server.settings  # port 0: the free port it took
    if campaigns:
        from ivrbot.campaign.service import campaign_service

        parts.campaigns = campaign_service(server.app, settings, parts.bot_named, parts.clock)
    sender = _integrations(parts, server)
    for flow in reserved:  # reserved before anyone can reach the gateway
        server.gateway.access.reserve(flow.user_ids)
    if settings.sip_config:
        from ivrbot.endpoints.sip.connector import sip_connector

        parts.sip = sip_connector(server, settings)  # SipConfigError
    if prepare is not None:
        prepare(parts)
    await server.start()
    stack.push_async_callback(server.stop)
    stack.push_async_callback(sender.close)  # after the bots: their last events go out
    assert parts.calls is not None
    stack.callback(parts.calls.close)
    if parts.sip is not None:
        await parts.sip.start()
        stack.push_async_callback(parts.sip.stop)
        board = server.app[BOARD]  # the dashboard's SIP panel, live on registrations
        parts.sip.on_change = board.poke
        board.show_sip(parts.sip.status)


def _integrations(parts: Parts, server: GatewayServer) -> WebhookSender:
    """Webhooks for the bots' calls and the campaigns, and ``POST /ivrbot/calls``."""
    s = parts.settings
    sender = WebhookSender(s.webhook_secret, s.webhook_tries, s.webhook_backoff_s,
                           s.webhook_timeout_s)  # fmt: skip
    parts.webhooks = Webhooks(sender, parts.bot_named)
    app = server.app

    def flow_status() -> dict[str, list[str]]:  # set by ivrbot run (serve.py)
        status = app.get(FLOWS)
        if status is not None:
            return status()
        return {"loaded": sorted({b.flow.name for b in parts.bots}), "broken": []}

    parts.calls = OutboundCalls(parts.bot_named, parts.webhooks, s.ring_timeout_s, flow_status)
    app[integrations.CALLS], app[integrations.SENDER] = parts.calls, sender
    if parts.campaigns is not None:
        parts.campaigns.notify = parts.webhooks.campaign_event
    return sender
