"""One home for settings and one composition root: settings are read from the environment
only in ivrbot/config.py; the production path does not import the test harness; scenarios
pass settings instead of changing the environment; the parts stop in reverse order."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivrbot.compose import assemble
from ivrbot.config import ConfigError, Settings
from ivrbot.flow import Flow, Hangup
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.scenario import ScenarioRunner
from ivrbot.testing.scenario_file import Scenario

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ivrbot"


def environment_reads(path: Path) -> list[str]:
    """Where ``path`` reads the environment: os.environ, os.getenv, os.putenv, environ
    imported from os (line numbers)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {a.name for a in node.names} & {"environ", "getenv", "putenv"}
            found += [f"{path.relative_to(ROOT)}:{node.lineno} from os import {n}" for n in names]
    return found


@pytest.mark.unit
def test_only_config_reads_the_environment() -> None:
    reads = [
        read
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "config.py"
        for read in environment_reads(path)
    ]
    assert reads == [], "read the setting in ivrbot/config.py and pass it down:\n" + "\n".join(
        reads
    )


@pytest.mark.unit
def test_the_check_sees_a_read() -> None:
    assert environment_reads(PACKAGE / "config.py")  # the one module that reads


@pytest.mark.contract
def test_the_production_path_does_not_import_the_harness() -> None:
    code = (
        "import sys, ivrbot.serve, ivrbot.cli.main, ivrbot.compose; "
        "print(sorted(m for m in sys.modules if m.startswith('ivrbot.testing')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.unit
def test_a_scenario_env_is_settings_not_the_environment(tmp_path: Path) -> None:
    scenario = Scenario(file=tmp_path / "x.y.toml", flow="x")
    scenario.env = {"IVRBOT_NOW": "2025-01-04T10:30", "IVRBOT_RING_TIMEOUT": "7"}
    before = dict(os.environ)
    settings = ScenarioRunner.settings(scenario, tmp_path)
    assert dict(os.environ) == before
    assert settings.flow_env["IVRBOT_NOW"] == "2025-01-04T10:30"  # call.env of the flow
    assert settings.ring_timeout_s == 7.0  # an IVRBOT_ setting of the scenario
    assert settings.recordings == tmp_path / "recordings"
    assert (settings.host, settings.port) == ("127.0.0.1", 0)
    assert "IVRBOT_NOW" not in Settings().flow_env or os.environ.get("IVRBOT_NOW")


@pytest.mark.e2e
async def test_the_parts_start_in_order_and_stop_in_reverse(
    tmp_path: Path, tts: Synthesizer
) -> None:
    flow = Flow("bye", number="5550001077")
    flow.add(Hangup("bye", "Goodbye."))
    settings = Settings(port=0, db=str(tmp_path / "g.db"))
    seen: dict[str, bool] = {}
    async with assemble(settings, tts=tts, campaigns=True) as parts:
        assert parts.server is not None and parts.campaigns is not None
        server, gateway = parts.server, parts.gateway
        assert gateway._reaper is not None and not gateway._reaper.done()  # at start-up
        bot = await parts.serve(flow)
        assert bot.gateway is gateway  # attached inside, as ivrbot run
        await parts.start_campaigns()
        campaigns = parts.campaigns
        assert campaigns.scheduler.running
        assert gateway.access.is_reserved(flow.user_ids[0])
        stop_bot = bot.stop

        async def stop() -> None:
            seen["gateway listening while the bot stops"] = server._runner is not None
            # (the scheduler's own shutdown is deferred to the loop: its service is gone)
            seen["campaigns stopped before the bots"] = not campaigns.running
            await stop_bot()

        bot.stop = stop  # type: ignore[method-assign]
    assert seen == {
        "gateway listening while the bot stops": True,
        "campaigns stopped before the bots": True,
    }
    assert server._runner is None and gateway._reaper.done()


@pytest.mark.contract
async def test_a_port_in_use_is_one_line(tmp_path: Path, tts: Synthesizer) -> None:
    async with assemble(Settings(port=0, db=str(tmp_path / "a.db")), tts=tts) as first:
        port = first.settings.port  # port 0: the free port taken, named before it started
        assert (
            port != 0 and first.url == f"http://127.0.0.1:{port}" == first.gateway.settings.base_url
        )
        clash = Settings(port=first.settings.port, db=str(tmp_path / "b.db"))
        with pytest.raises(ConfigError, match="already in use"):
            async with assemble(clash, tts=tts):
                pass
