"""``ivrbot sip check`` and ``ivrbot sip status``: what an operator sees."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivrbot.cli import main
from ivrbot.config import ConfigError, Settings
from ivrbot.endpoints.sip.connector import sip_connector
from ivrbot.serve import Runner
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.peers import Baresip, self_signed

CONFIG = """
port = 0
media_ports = "43000-43099"

[trunks.carrier]
allow = ["192.0.2.10"]
routes = {{ "+15551230000" = "5550001000" }}

[accounts.office]
registrar = "sip:127.0.0.1:{registrar_port}"
user = "201"
password = "secret"
"""


@pytest.mark.unit
def test_check_names_what_to_fix(tmp_path: Path) -> None:
    bad = tmp_path / "sip.toml"
    bad.write_text('[trunks.carrier]\nallow = ["not-an-address"]\n')
    result = CliRunner().invoke(main, ["sip", "check", str(bad)])
    assert result.exit_code == 1
    assert "trunks.carrier.allow: 'not-an-address' is not an address" in result.output
    assert "Traceback" not in result.output

    bad.write_text("max_calls = 50")
    result = CliRunner().invoke(main, ["sip", "check", str(bad)])
    assert "max_calls=50: 1 to 4" in result.output and result.exit_code == 1

    bad.write_text("port = [")
    result = CliRunner().invoke(main, ["sip", "check", str(bad)])
    assert "is not valid TOML" in result.output and result.exit_code == 1

    good = tmp_path / "good.toml"
    good.write_text(CONFIG.format(registrar_port=9))
    result = CliRunner().invoke(main, ["sip", "check", str(good)])
    assert result.exit_code == 0
    assert "1 trunk(s), 1 account(s)" in result.output
    assert "transports: UDP on 0" in result.output and "trunk carrier: SRTP off" in result.output


@pytest.mark.contract
def test_check_shows_transports_and_srtp(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = tmp_path / "sip.toml"
    config.write_text(
        f'port = 5070\ntransports = ["udp", "tcp", "tls"]\ntls_cert_file = "{cert}"\n'
        f'tls_key_file = "{key}"\n[trunks.pbx]\nuri = "sip:192.0.2.1"\ntransport = "tls"\n'
        'srtp = "mandatory"\nrefer = true\n'
    )
    result = CliRunner().invoke(main, ["sip", "check", str(config)])
    assert result.exit_code == 0, result.output
    assert f"transports: UDP on 5070, TCP on 5070, TLS on 5071 (certificate {cert})" in (
        result.output
    )
    assert "trunk pbx: SRTP mandatory, calls out over TLS, transfers to its numbers by REFER" in (
        result.output
    )
    config.write_text('transports = ["udp", "tls"]\ntls_cert_file = "/nonexistent.crt"\n'
                      'tls_key_file = "/nonexistent.key"\n')  # fmt: skip
    result = CliRunner().invoke(main, ["sip", "check", str(config)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "tls_cert_file='/nonexistent.crt': cannot read it (No such file or directory)" in (
        result.output
    )


@pytest.mark.contract
async def test_status_of_a_running_gateway(gateway: GatewayServer, tmp_path: Path) -> None:
    config = tmp_path / "sip.toml"
    config.write_text(CONFIG.format(registrar_port=9))  # nothing answers there
    settings = gateway.settings.__class__(port=0, db=str(tmp_path / "g.db"), sip_config=str(config))
    server = GatewayServer(settings)
    connector = sip_connector(server, settings)
    await server.start()
    await connector.start()
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, main, ["sip", "status", "--url", server.url, "--json"]
        )
        assert result.exit_code == 0, result.output
        status = json.loads(result.output)
        assert status["port"] == connector.port > 0
        assert [t["name"] for t in status["trunks"]] == ["carrier"]
        assert status["registrations"][0]["account"] == "office"
        assert status["registrations"][0]["active"] is False  # nobody registers it at port 9
        table = await asyncio.to_thread(
            CliRunner().invoke, main, ["sip", "status", "--url", server.url]
        )
        assert "carrier" in table.output and "office" in table.output
        assert f"SIP on UDP {connector.port};" in table.output
        plain = await asyncio.to_thread(
            CliRunner().invoke, main, ["sip", "status", "--url", gateway.url]
        )
        assert plain.exit_code == 1 and "runs no SIP connector" in plain.output
    finally:
        await connector.stop()
        await server.stop()


HELLO_FLOW = """
from ivrbot.flow import Flow, Hangup, Say

flow = Flow("hello", number="5550001020")
flow.add(Say("hello", "Hello from ivrbot.", next="bye"), Hangup("bye", "Goodbye."))
"""


@pytest.mark.e2e
@pytest.mark.xdist_group("sip")  # PJSIP media ports: one worker
async def test_ivrbot_run_answers_sip_with_its_config(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.py").write_text(HELLO_FLOW)
    config = tmp_path / "sip.toml"
    config.write_text(
        'port = 0\nmedia_ports = "43100-43199"\n[trunks.lan]\nallow = ["127.0.0.1"]\n'
    )
    settings = Settings(port=0, db=str(tmp_path / "run.db"), sip_config=str(config))
    runner = Runner(flows, settings)
    phone = Baresip(tmp_path)
    await runner.start()
    try:
        assert runner.sip is not None
        await phone.start()
        await phone.command("dial", f"sip:5550001020@127.0.0.1:{runner.sip.port}")
        await phone.wait_for_log("audio: destroyed")  # the flow said its piece and hung up
        result = await asyncio.to_thread(
            CliRunner().invoke, main, ["sip", "status", "--url", runner.server.url, "--json"]
        )
    finally:
        await phone.stop()
        await runner.stop()
    assert phone.speech_s() > 1.0  # it heard the flow speak
    assert json.loads(result.output)["trunks"][0]["name"] == "lan"


@pytest.mark.unit
async def test_ivrbot_run_with_a_broken_sip_config_says_what_to_fix(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.py").write_text(HELLO_FLOW)
    config = tmp_path / "sip.toml"
    config.write_text('media_ports = "9-8"\n')
    settings = Settings(port=0, db=str(tmp_path / "run.db"), sip_config=str(config))
    runner = Runner(flows, settings)
    with pytest.raises(ConfigError, match="media_ports='9-8'"):
        await runner.start()
    await runner.stop()
