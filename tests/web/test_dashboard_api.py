"""The dashboard's API: nothing is readable without the operator's token (the gateway's
OAuth client credentials); with it, the board, records, graphs and the live feed answer."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from ivrbot.config import Settings
from ivrbot.credentials import Credentials
from ivrbot.flow.graph import PROMPT_LIMIT
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.steps import GIVE_UP, Menu
from ivrbot.numbers import shown
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.web.board import flow_graph, parties, record_row
from ivrbot.web.dashboard import ROUTES
from ivrbot.wire.server import GatewayServer

ROOT = Path(__file__).resolve().parents[2]
READABLE = [
    "/ivrbot/dashboard",
    "/ivrbot/records?q=bank",
    "/ivrbot/records/abc/recordings/0",
    "/ivrbot/flows/bank/graph",
]


async def operator(gateway: GatewayServer) -> str:
    s = Settings()
    return await fetch_token(
        gateway.url, "ACCOUNT_ID", Credentials.operator(s.client_id, s.client_secret)
    )


@pytest.mark.unit
def test_every_dashboard_route_is_checked_here() -> None:
    assert {p.split("?")[0].replace("abc", "{id}").replace("/0", "/{n}").replace("bank", "{name}")
            for p in READABLE} == set(ROUTES)  # fmt: skip


@pytest.mark.contract
@pytest.mark.parametrize("who", ["nobody", "a made-up token", "another client"])
async def test_without_the_operators_token_nothing_is_readable(
    gateway: GatewayServer, who: str
) -> None:
    headers = {}
    if who == "a made-up token":
        headers["Authorization"] = "Bearer not-a-token"
    elif who == "another client":  # development mode: anyone gets a token, not the operator's
        headers["Authorization"] = f"Bearer {await fetch_token(gateway.url, 'ACCOUNT_ID')}"
    status = 403 if who == "another client" else 401
    async with aiohttp.ClientSession() as http:
        for path in READABLE:
            async with http.get(f"{gateway.url}{path}", headers=headers) as resp:
                body = await resp.json()
                assert resp.status == status, path
                assert set(body) == {"error"}, path  # one message, no data
        token = headers.get("Authorization", "Bearer x")[7:]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{gateway.url}/ivrbot/live", params={"access_token": token})
        assert refused.value.status == status
        # the page itself is public: it only holds the login form
        async with http.get(f"{gateway.url}/") as resp:
            assert resp.status == 200
            assert 'id="login-form"' in await resp.text()


@pytest.mark.contract
async def test_the_operator_reads_the_board_and_the_live_feed(gateway: GatewayServer) -> None:
    auth = {"Authorization": f"Bearer {await operator(gateway)}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/ivrbot/dashboard", headers=auth) as resp:
            assert resp.status == 200
            board = await resp.json()
        assert (board["bots"], board["calls"], board["records"]) == ([], [], [])
        async with http.get(f"{gateway.url}/ivrbot/flows/nope/graph", headers=auth) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"] == "no flow 'nope' is served here"
        async with http.get(f"{gateway.url}/ivrbot/records?limit=x", headers=auth) as resp:
            assert resp.status == 400
            assert "limit" in (await resp.json())["error"]
        url = f"{gateway.url}/ivrbot/live"
        async with http.ws_connect(url, params={"access_token": auth["Authorization"][7:]}) as ws:
            first = await ws.receive_json(timeout=5)
            assert first["bots"] == [] and first["calls"] == []


@pytest.mark.unit
def test_a_flow_graph_has_every_step_and_edge() -> None:
    flow = load_flow_file(ROOT / "flows" / "bank.py")
    graph = flow_graph(flow)
    ids = [n["id"] for n in graph["nodes"]]
    assert ids == [*flow.steps, GIVE_UP] and graph["start"] == "defaults"
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert (kinds["menu"], kinds["balance"], kinds["voicemail"]) == ("Menu", "Python", "Record")
    edges = {(e["from"], e["to"], e["label"]) for e in graph["edges"]}
    assert ("menu", "account", "option 1") in edges
    assert ("agent", "voicemail", "fallback") in edges
    assert ("account", GIVE_UP, "no match") in edges  # '#' alone, after the retries
    assert all(e["to"] in ids for e in graph["edges"])
    # what the boxes show: the step's colour, prompt (shortened), options, what else it does
    nodes = {n["id"]: n for n in graph["nodes"]}
    menu = nodes["menu"]
    assert menu["colour"] == Menu.colour and menu["start"] is False and nodes["defaults"]["start"]
    assert menu["prompt"].startswith("Welcome to ivrbot bank. For your balance, press 1.")
    assert menu["options"] == [{"key": "1", "to": "account"}, {"key": "2", "to": "agent"}]
    assert (nodes["account"]["detail"], nodes["voicemail"]["detail"]) == ("keys", "<= 60 s, # ends")
    assert nodes["bye"]["prompt"] == "Thank you for calling ivrbot bank. Goodbye."
    assert len(nodes["voicemail"]["prompt"]) <= PROMPT_LIMIT


@pytest.mark.unit
def test_records_show_who_called_whom_and_never_an_unmasked_entry() -> None:
    """Outbound: from the bot's number to the callee. A record kept before inputs were
    masked at the source (no 'masked' key) is shown as the logs show it."""
    outbound = {"flow": "reminder", "caller": "tel:+15550009999", "direction": "outbound",
                "number": "vtn:5550001013", "inputs": []}  # fmt: skip
    assert parties(outbound) == {  # data: E.164 (the page shows +1 (555) 000-1013)
        "direction": "outbound",
        "from": "+15550001013",
        "to": "+15550009999",
    }
    older = {"flow": "bank", "caller": "sip:alice@ivrbot.local", "recordings": [], "inputs": [
        {"step": "account", "outcome": "dtmf", "value": "123456", "text": "", "method": "inband"},
        {"step": "menu", "outcome": "dtmf", "value": "1", "text": "", "method": "rfc4733"},
    ]}  # fmt: skip
    row = record_row(older, {"bank": "vtn:5550001010"})
    assert (row["direction"], row["from"], row["to"]) == (
        "inbound",
        "alice@ivrbot.local",
        "+15550001010",
    )
    assert [i["value"] for i in row["inputs"]] == ["<6 digits>", "1"]


@pytest.mark.unit
def test_parties_are_written_one_way() -> None:
    assert shown("tel:+15550001010") == "+1 (555) 000-1010"
    assert shown("vtn:5550001010") == "+1 (555) 000-1010"
    assert shown("sip:alice@ivrbot.local") == "alice@ivrbot.local"


@pytest.mark.contract
async def test_stopping_the_server_closes_the_live_feed(gateway: GatewayServer) -> None:
    """An open dashboard does not hold ``ivrbot run`` up: its feed is told it is going away."""
    token = await operator(gateway)
    async with aiohttp.ClientSession() as http:
        url = f"{gateway.url}/ivrbot/live"
        async with http.ws_connect(url, params={"access_token": token}) as ws:
            await ws.receive_json(timeout=5)
            await gateway.stop()
            closing = await ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
    assert closing.extra == "ivrbot is stopping"
