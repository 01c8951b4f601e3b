"""One call, one outcome name: the gateway's call-end line, the flow's flow-end line, the
stored flow record, the dashboard's records API, the /metrics labels and the campaign
attempt say the same word (README "Outcomes"). Real calls through an in-process gateway:
a campaign of the reminder flow to callees who answer as a person, as a machine, hang up
mid-question, turn the call down, never answer, or do not exist; and inbound callers of
small flows who listen to the end, hang up mid-prompt, or give up while the bot rings."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from ivrbot.campaign.campaign import Campaign
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.store import CampaignStore
from ivrbot.compose import Parts
from ivrbot.config import Settings
from ivrbot.credentials import Credentials
from ivrbot.flow import Flow, Hangup, Say
from ivrbot.flow.runner import Bot
from ivrbot.media.frames import WIRE_RATE
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.callees import Callee
from ivrbot.testing.caller import SimulatedCaller
from tests.campaign.test_real_calls import MONDAY_10AM_NEW_YORK, run_to_end

pytestmark = pytest.mark.e2e

CONTACTS = {  # number -> (how the callee behaves, the outcome everywhere)
    "+13125550101": ("person", "completed"),
    "+13125550102": ("machine", "machine"),
    "+13125550103": ("hangs-up", "caller-hangup"),
    "+13125550104": ("reject", "busy"),
    "+13125550105": ("silent", "no-answer"),
    "+13125550106": ("nobody", "not-found"),  # nobody is logged in as this number
}
INBOUND = {  # the caller's name -> the outcome everywhere
    "listener": "completed",
    "leaver": "caller-hangup",
    "quitter": "abandoned",
}


class HangsUp(Callee):
    """A person who answers, says hello and hangs up as soon as the bot starts to talk."""

    def __init__(self, url: str, number: str) -> None:
        super().__init__(url, number, "person")

    async def _connected(self, _: Any) -> None:
        assert self.call is not None
        await asyncio.sleep(0.3)
        await self.call.play(self.greeting, WIRE_RATE, "greeting")
        await self.ear.speech(timeout_s=40)  # the reminder's question begins
        await self.phone.hangup()


def samples() -> dict[tuple[str, str], float]:
    """The outcome counters now: {(metric, outcome label): value}."""
    out: dict[tuple[str, str], float] = {}
    for family in REGISTRY.collect():
        for s in family.samples:
            if s.name in ("ivrbot_calls_total", "ivrbot_flow_calls_total"):
                key = (s.name, s.labels["outcome"])
                out[key] = out.get(key, 0.0) + s.value
    return out


async def dashboard_records(url: str) -> list[dict[str, Any]]:
    s = Settings()
    token = await fetch_token(url, "ACCOUNT_ID", Credentials.operator(s.client_id, s.client_secret))
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{url}/ivrbot/records?limit=50", headers=headers) as resp:
            assert resp.status == 200
            records: list[dict[str, Any]] = (await resp.json())["records"]
    return records


def inbound_flows() -> list[Flow]:
    talk = Flow("talk", number="5550001021")
    talk.add(
        Say("hello", "Hello. This is a short message from the outcomes test.", next="bye"),
        Hangup("bye", "Goodbye."),
    )
    rings = Flow("ringing", number="5550001022", rings=3)
    rings.ring_s = 1.0
    rings.add(Hangup("bye", "Hello and goodbye."))
    return [talk, rings]


async def inbound_calls(url: str, tts: Synthesizer) -> None:
    listener = SimulatedCaller(url, tts, user="listener")
    leaver = SimulatedCaller(url, tts, user="leaver")
    quitter = SimulatedCaller(url, tts, user="quitter")
    try:
        await listener.dial("5550001021")
        async with asyncio.timeout(30):
            await listener.disconnected.wait()  # the bot said goodbye and hung up
        await leaver.dial("5550001021")
        await leaver.ear.speech(timeout_s=20)
        await leaver.hangup()  # mid-prompt
        with pytest.raises(TimeoutError):
            await quitter.dial("5550001022", timeout_s=1.0)  # gives up while it rings
        await quitter.phone.cancel()
    finally:
        for caller in (listener, leaver, quitter):
            await caller.close()


async def test_every_place_gives_a_call_the_same_outcome(
    campaign_parts: Parts,
    reminder_bot: Bot,
    tts: Synthesizer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ivrbot.calls")
    url = campaign_parts.url
    for flow in inbound_flows():
        await campaign_parts.serve(flow)
    before = samples()
    callees: list[Callee] = []
    for number, (kind, _) in CONTACTS.items():
        if kind == "nobody":
            continue
        callee = HangsUp(url, number) if kind == "hangs-up" else Callee(url, number, kind)
        await callee.login(tts)
        callees.append(callee)
    store = CampaignStore(tmp_path / "campaigns.db")
    contacts = read_contacts("number\n" + "\n".join(CONTACTS) + "\n")
    store.create(Campaign("names", "reminder", calls_per_minute=600, max_concurrent=6,
                          ring_timeout_s=4, retries={}), contacts.contacts)  # fmt: skip
    await run_to_end(store, Clock(60, MONDAY_10AM_NEW_YORK), reminder_bot, "names", callees, 120)
    await inbound_calls(url, tts)
    await asyncio.sleep(4.0)  # the abandoned call's bot notices after its rings; lines settle
    after = samples()

    # the campaign attempt
    attempts = {str(r["number"]): str(r["outcome"]) for r in store.attempt_rows("names")}
    assert attempts == {n: outcome for n, (_, outcome) in CONTACTS.items()}
    store.close()

    # the stored flow record, as the dashboard's API gives it (numbers in E.164)
    records = await dashboard_records(url)
    by_party = {r["caller"]: r for r in records}
    for number, (_, outcome) in CONTACTS.items():
        assert by_party[number]["outcome"] == outcome, number
    for user, outcome in INBOUND.items():
        assert by_party[f"{user}@ivrbot.local"]["outcome"] == outcome, user

    # the log lines: flow-end (by record id) and call-end (by the gateway's call id)
    lines = [r.__dict__["fields"] for r in caplog.records if r.name == "ivrbot.calls"]
    flow_ends = {x["record"]: x for x in lines if x["event"] == "flow-end"}
    call_ends = {x["call"]: x for x in lines if x["event"] == "call-end"}
    expected = Counter[str]()
    for record in records:
        party = record["caller"]
        outcome = CONTACTS[party][1] if party in CONTACTS else INBOUND[party.split("@")[0]]
        expected[outcome] += 1
        flow_end = flow_ends[record["id"]]
        assert flow_end["outcome"] == outcome, party
        call_end = call_ends[flow_end["call"]]
        assert call_end["outcome"] == outcome, (party, call_end)
        assert party in (call_end["caller"], call_end["number"])  # E.164 / user@domain

    # /metrics: each outcome counted under the same name, once per call, on both counters
    for name in ("ivrbot_calls_total", "ivrbot_flow_calls_total"):
        grown = {o: n - before.get((m, o), 0.0) for (m, o), n in after.items() if m == name}
        assert {o: n for o, n in grown.items() if n} == dict(expected), name
