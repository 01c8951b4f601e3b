"""``POST /ivrbot/calls`` and webhooks over real parts: the gateway and a flow's bot on
127.0.0.1, a simulated callee (a Python Phone that answers and presses 1), and a webhook
receiver (an aiohttp server in the test) that checks each event's signature by the
README's recipe (hashlib/hmac here, not ivrbot's own code) and answers 500 the first time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
from aiohttp import web

from ivrbot.compose import Parts, assemble
from ivrbot.config import Settings
from ivrbot.errors import FlowError
from ivrbot.flow import Ask, Flow, FlowCall, Hangup
from ivrbot.flow.runner import Bot
from ivrbot.integrations.calls import OutboundCalls, parse_request
from ivrbot.integrations.delivery import WebhookSender
from ivrbot.integrations.events import Webhooks
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.callees import Callee
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.openapi import document

SECRET = "whsec-integration-test-secret"
API_KEY = "integrator-key-0123456789"
CALLEE = "5550001050"
FLOW_NUMBER = "5550001020"


def notify_flow(max_calls: int | None = None) -> Flow:
    """An outbound flow: greets the callee by the ``name`` variable, records the call, asks
    for a key."""
    flow = Flow("notify", number=FLOW_NUMBER, detect_machine=False, max_calls=max_calls)

    @flow.step("greet", goes_to=["confirm"])
    async def greet(call: FlowCall) -> str:
        await call.start_recording()
        await call.say(f"Hello {call.vars['name']}.")
        return "confirm"

    flow.add(
        Ask("confirm", "Press 1 to confirm.", timeout_s=8, next="thanks", no_input="thanks"),
        Hangup("thanks", "Thank you."),
    )
    return flow


@dataclass
class Receiver:
    """A webhook receiver: keeps every request; answers 500 to the first ``fail_first``."""

    fail_first: int = 1
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def hook(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        self.arrived.set()
        if len(self.got) <= self.fail_first:
            return web.Response(status=500, text="not now")
        return web.Response(status=204)

    def events(self) -> list[dict[str, Any]]:
        """The events taken, once each (a retry repeats an event's id), in arrival order."""
        seen: dict[str, dict[str, Any]] = {}
        for _, body in self.got:
            event = json.loads(body)
            seen.setdefault(event["id"], event)
        return list(seen.values())


def check_documented(event: dict[str, Any]) -> None:
    """``event`` is what the OpenAPI document's ``webhooks`` say its type is, field for field."""
    doc = document()
    body = doc["webhooks"][event["type"]]["post"]["requestBody"]["content"]["application/json"]
    schema = {"$ref": body["schema"]["$ref"], "components": doc["components"]}
    jsonschema_rs.Draft202012Validator(schema).validate(event)


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The README's recipe: HMAC-SHA256 of '<timestamp>.<raw body>', compared in constant
    time, and a timestamp within five minutes."""
    timestamp = headers["X-Ivrbot-Timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    expected = "v1=" + mac.hexdigest()
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(expected, headers["X-Ivrbot-Signature"])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/ivrbot", got.hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    got.url = f"http://127.0.0.1:{port}/hooks/ivrbot?token=receiver-own-token"
    yield got
    await runner.cleanup()


@pytest.fixture
async def served(tmp_path: Path, tts: Synthesizer) -> AsyncIterator[tuple[Parts, Bot]]:
    settings = Settings(
        port=0, db=str(tmp_path / "gateway.db"), recordings=tmp_path / "rec",
        dev_mode="on", api_keys=[API_KEY], webhook_secret=SECRET, webhook_backoff_s=0.2,
    )  # fmt: skip
    async with assemble(settings, tts=tts) as parts:
        bot = await parts.serve(notify_flow(max_calls=1))
        yield parts, bot


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def error_text(body: dict[str, Any]) -> str:
    [exception] = body["RequestError"].values()
    return str(exception["Text"])


@pytest.mark.e2e
async def test_a_call_over_http_reports_its_progress_as_signed_webhooks(
    served: tuple[Parts, Bot], receiver: Receiver, http: aiohttp.ClientSession, tts: Synthesizer
) -> None:
    parts, bot = served
    callee = Callee(parts.url, "+1" + CALLEE, "person", key="1")
    await callee.login(tts)
    try:
        body = {"flow": "notify", "to": "+1 (555) 000-1050", "vars": {"name": "Pat"},
                "webhook": receiver.url, "webhook_steps": True}  # fmt: skip
        resp = await http.post(f"{parts.url}/ivrbot/calls", json=body,
                               headers={"X-API-Key": API_KEY})  # fmt: skip
        placed = await resp.json()
        assert resp.status == 201, placed
        call_id = placed["id"]
        assert resp.headers["Location"] == f"/ivrbot/calls/{call_id}"
        assert placed["to"] == "+15550001050" and placed["state"] in ("dialing", "ringing")

        async with asyncio.timeout(60):
            while not any(e["type"] == "call.completed" for e in receiver.events()):
                await asyncio.sleep(0.1)
        state = await (await http.get(f"{parts.url}/ivrbot/calls/{call_id}",
                                      headers={"X-API-Key": API_KEY})).json()  # fmt: skip
    finally:
        await callee.close()

    # every request, the retried one too, is signed by the recipe
    assert all(verified(SECRET, headers, raw) for headers, raw in receiver.got)
    assert not verified("another-secret", *receiver.got[0])
    # the first event was answered 500 and came again (same id) after the backoff
    first, again = json.loads(receiver.got[0][1]), json.loads(receiver.got[1][1])
    assert first == again and first["type"] == "call.initiated"

    events = receiver.events()
    kinds = [e["type"] if e["type"] != "call.step" else f"step:{e['step']}" for e in events]
    assert kinds == [
        "call.initiated", "call.ringing", "call.answered",
        "step:greet", "step:confirm", "step:thanks", "call.recording", "call.completed",
    ]  # fmt: skip
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert {e["call"]["id"] for e in events} == {call_id}
    for event in events:
        check_documented(event)
    assert events[0]["call"] == {"id": call_id, "flow": "notify", "direction": "outbound",
                                 "from": "+15550001020", "to": "+15550001050"}  # fmt: skip

    record = bot.records[-1]
    assert record.id == call_id
    assert "Hello Pat." in record.prompts  # the call's vars reached the flow
    assert record.digits == "1"
    completed = events[-1]
    assert completed["outcome"] == record.outcome == "completed"
    assert 1.0 < completed["duration_s"] < 30
    assert completed["path"] == ["greet", "confirm", "thanks"]
    recording = events[-2]["recording"]
    assert recording["index"] == 0 and recording["file"] == Path(record.recordings[0]).name
    assert recording["url"] == f"/ivrbot/records/{call_id}/recordings/0"

    assert state["state"] == "completed" and state["outcome"] == "completed"
    call_schema = {"$ref": "#/components/schemas/Call", "components": document()["components"]}
    jsonschema_rs.Draft202012Validator(call_schema).validate(state)
    assert state["duration_s"] > 1.0 and state["path"] == ["greet", "confirm", "thanks"]

    status = await (await http.get(f"{parts.url}/ivrbot/webhooks",
                                   headers={"X-API-Key": API_KEY})).json()  # fmt: skip
    assert status["delivered"] == len(events) and status["failed"] == 0
    assert status["retried"] == 1 and status["signed"] is True
    metrics = await (await http.get(f"{parts.url}/metrics")).text()
    assert 'ivrbot_webhooks_delivered_total{event="call.completed"}' in metrics


@pytest.mark.contract  # no call is placed: the HTTP contract alone
async def test_only_the_operator_may_place_calls(
    served: tuple[Parts, Bot], http: aiohttp.ClientSession
) -> None:
    parts, _ = served
    url = f"{parts.url}/ivrbot/calls"
    body = {"flow": "notify", "to": "+15550001050"}
    resp = await http.post(url, json=body)
    assert resp.status == 401
    assert "X-API-Key" in error_text(await resp.json())
    resp = await http.post(url, json=body, headers={"X-API-Key": "not-a-key-of-this-gateway"})
    assert resp.status == 401
    assert "unknown API key" in error_text(await resp.json())
    anyone = await fetch_token(parts.url, "ACCOUNT_ID")  # development mode: anyone's token
    resp = await http.post(url, json=body, headers={"Authorization": f"Bearer {anyone}"})
    assert resp.status == 403
    assert "not the operator's" in error_text(await resp.json())
    resp = await http.get(f"{url}/abc", headers={"Authorization": f"Bearer {anyone}"})
    assert resp.status == 403


@pytest.mark.contract  # no call is placed: the HTTP contract alone
@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("{not json", 400, "body (not valid JSON"),
        ("[1, 2]", 400, "body (a JSON object is required)"),
        ("{}", 400, "send a JSON object"),
        ({"to": "+15550001050"}, 400, "flow (required"),
        ({"flow": "notify"}, 400, "to (required"),
        ({"flow": "notify", "to": "call me"}, 400, "to ('call me' is not a phone number"),
        ({"flow": "notify", "to": "+1555"}, 400, "wrong number of digits"),
        ({"flow": "notify", "to": "+15550001050", "vars": [1]}, 400, "vars (an object"),
        ({"flow": "notify", "to": "+15550001050", "webhook": "ftp://x"}, 400, "webhook (must"),
        ({"flow": "notify", "to": "+15550001050", "ring": 3}, 400, "ring (not a field"),
        ({"flow": "notify", "to": "+15550001050", "ring_timeout_s": 0}, 400, "ring_timeout_s"),
        ({"flow": "nope", "to": "+15550001050"}, 404, "no flow 'nope' is served here (flows "
         "served: notify)"),
    ],
)  # fmt: skip
async def test_bad_requests_get_one_clear_line(
    served: tuple[Parts, Bot], http: aiohttp.ClientSession, body: Any, status: int, says: str
) -> None:
    parts, _ = served
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    data = body if isinstance(body, str) else json.dumps(body)
    resp = await http.post(f"{parts.url}/ivrbot/calls", data=data, headers=headers)
    answer = await resp.json()
    assert resp.status == status, answer
    text = error_text(answer)
    assert says in text and "\n" not in text


@pytest.mark.e2e
async def test_a_flow_at_capacity_refuses_the_next_call(
    served: tuple[Parts, Bot], http: aiohttp.ClientSession, tts: Synthesizer
) -> None:
    """Flow(max_calls=1): while a call rings, a second POST is 429, one line."""
    parts, _ = served
    silent = Callee(parts.url, "+1" + CALLEE, "silent")
    await silent.login(tts)
    try:
        url, headers = f"{parts.url}/ivrbot/calls", {"X-API-Key": API_KEY}
        body = {"flow": "notify", "to": "+15550001050", "vars": {"name": "Pat"}}
        first = await http.post(url, json={**body, "ring_timeout_s": 5}, headers=headers)
        assert first.status == 201
        second = await http.post(url, json=body, headers=headers)
        assert second.status == 429
        assert "flow 'notify' is at capacity: 1 calls in progress" in error_text(
            await second.json()
        )
        missing = await http.get(f"{url}/0123456789ab", headers=headers)
        assert missing.status == 404
    finally:
        await silent.close()


@pytest.mark.unit
def test_a_broken_flow_file_is_not_served() -> None:
    status = {"loaded": ["welcome"], "broken": ["flows/notify.py"]}
    calls = OutboundCalls(lambda _: None, Webhooks(WebhookSender(), lambda _: None),
                          flow_status=lambda: status)  # fmt: skip
    refused = calls._no_flow("notify")
    assert refused.status == 409
    assert str(refused) == (
        "flow 'notify' is not served: its file flows/notify.py does not load "
        "(see GET /health and the log)"
    )
    assert parse_request({"flow": "notify", "to": "(555) 000-1050"}).to == "+15550001050"


@pytest.mark.e2e
async def test_an_inbound_call_tells_its_flows_webhook(
    tmp_path: Path, tts: Synthesizer, receiver: Receiver
) -> None:
    """Flow(webhook=...): a caller's call is answered, each step is told (webhook_steps),
    and it completes with the caller's hang-up as the record has it."""
    receiver.fail_first = 0
    flow = Flow("hello", number="5550001021", webhook=receiver.url, webhook_steps=True)
    flow.add(Ask("menu", "Press a key.", timeout_s=8, next="bye", no_input="bye"),
             Hangup("bye", "Goodbye."))  # fmt: skip
    settings = Settings(port=0, db=str(tmp_path / "g.db"), webhook_secret=SECRET)
    async with assemble(settings, tts=tts) as parts:
        bot = await parts.serve(flow)
        caller = SimulatedCaller(parts.url, tts)
        try:
            await caller.dial("5550001021")
            await caller.hear_prompt()
            await caller.press("5")
            async with asyncio.timeout(30):
                while not any(e["type"] == "call.completed" for e in receiver.events()):
                    await asyncio.sleep(0.1)
        finally:
            await caller.close()
    events = receiver.events()
    kinds = [e["type"] if e["type"] != "call.step" else f"step:{e['step']}" for e in events]
    assert kinds == ["call.answered", "step:menu", "step:bye", "call.completed"]
    record = bot.records[-1]
    assert events[0]["call"] == {"id": record.id, "flow": "hello", "direction": "inbound",
                                 "from": "sip:caller@ivrbot.local", "to": "+15550001021"}  # fmt: skip
    assert events[-1]["outcome"] == record.outcome == "completed"
    assert all(verified(SECRET, headers, raw) for headers, raw in receiver.got)


@pytest.mark.unit
def test_a_flows_webhook_must_be_a_url() -> None:
    with pytest.raises(FlowError) as refused:
        Flow("hello", number="5550001021", webhook="hooks.example.com/ivrbot")
    assert str(refused.value) == (
        "flow 'hello': webhook must be an http:// or https:// URL with a host, not "
        "'hooks.example.com/ivrbot'"
    )
