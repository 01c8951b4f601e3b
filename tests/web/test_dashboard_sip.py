"""The dashboard's SIP panel in headless Chromium: ``ivrbot run`` with a SIP configuration
registers to a PBX (kamailio, a Debian package, on 127.0.0.1) and the operator sees the
registration, the trunk and the transports; a gateway without SIP shows no panel."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from ivrbot.config import Settings
from ivrbot.serve import Runner
from tests.endpoints.sip.peers import PBX_PASSWORD as PASSWORD
from tests.endpoints.sip.peers import Kamailio, running_pbx
from tests.web.conftest import ROOT, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker
SIP = """
port = 0
media_ports = "43100-43199"

[trunks.carrier]
allow = ["192.0.2.10"]
uri = "sip:192.0.2.10:5060"

[accounts.office]
registrar = "sip:127.0.0.1:{port}"
user = "201"
password = "{password}"
number = "5550001000"
"""


@pytest.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[Kamailio]:
    async with running_pbx(tmp_path) as kamailio:
        yield kamailio


@pytest.fixture
async def sip_run(tmp_path: Path, pbx: Kamailio) -> AsyncIterator[Runner]:
    """``ivrbot run`` serving the welcome flow, registered to ``pbx`` as extension 201."""
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "welcome.py", flows / "welcome.py")
    config = tmp_path / "sip.toml"
    config.write_text(SIP.format(port=pbx.port, password=PASSWORD))
    settings = Settings(port=0, db=str(tmp_path / "ivrbot.db"), sip_config=str(config))
    runner = Runner(flows, settings)
    await runner.start()
    yield runner
    await runner.stop()


async def test_the_sip_panel_shows_the_registration_and_trunk(
    dashboard: Page, sip_run: Runner
) -> None:
    await log_in(dashboard, sip_run.server.url, Settings().client_secret)
    await dashboard.wait_for_selector("#status:text-is('live')")
    # registered once kamailio answers the digest challenge: the feed brings the change
    await dashboard.wait_for_selector(
        "#sip-registrations tr[data-account=office] td.registered:text-is('yes')"
    )
    row = await dashboard.locator(
        "#sip-registrations tr[data-account=office] td"
    ).all_text_contents()
    assert row[2].startswith("200")
    trunk = await dashboard.locator("#sip-trunks tbody tr").first.locator("td").all_text_contents()
    assert trunk == ["carrier", "192.0.2.10", "sip:192.0.2.10:5060"]
    port = sip_run.sip.port  # type: ignore[union-attr]
    assert f"udp {port}" in (await dashboard.text_content("#sip-transports") or "")
    assert await dashboard.text_content("#sip-calls") == "0"


async def test_no_sip_panel_without_sip(dashboard: Page, bank: Runner) -> None:
    await log_in(dashboard, bank.server.url, Settings().client_secret)
    await dashboard.wait_for_selector("#status:text-is('live')")
    assert await dashboard.is_hidden("#sip-panel")
