"""GET /health and GET /metrics of a real gateway on 127.0.0.1."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivrbot import __version__
from ivrbot.wire.health import metrics_allowed
from ivrbot.wire.server import GatewayServer

METRICS = {
    "ivrbot_calls_in_progress", "ivrbot_calls", "ivrbot_flow_calls",
    "ivrbot_answer_to_prompt_seconds", "ivrbot_key_to_prompt_seconds", "ivrbot_asr_seconds",
    "ivrbot_frame_lateness_seconds",
}  # fmt: skip


@pytest.mark.contract
async def test_health_says_what_runs(gateway: GatewayServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/health") as response:
        assert response.status == 200
        body = await response.json()
    assert body["ok"] is True and body["version"] == __version__
    assert body["calls_in_progress"] == 0 and body["uptime_s"] >= 0
    assert body["flows"] == {"loaded": [], "broken": []}  # a gateway serving no flows


@pytest.mark.contract
async def test_metrics_are_prometheus_text(gateway: GatewayServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert families >= METRICS


@pytest.mark.unit
def test_metrics_answer_this_machine_or_an_operator_key() -> None:
    keys = ["k" * 20]
    assert metrics_allowed("127.0.0.1", "", keys) and metrics_allowed("::1", "", [])
    assert not metrics_allowed("192.0.2.7", "", keys)
    assert not metrics_allowed("192.0.2.7", "wrong", keys)
    assert not metrics_allowed("192.0.2.7", "", [""])
    assert metrics_allowed("192.0.2.7", "k" * 20, keys)
