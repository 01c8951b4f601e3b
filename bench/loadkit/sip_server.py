"""``ivrbot run`` with a SIP configuration, for the SIP benchmarks (sip.py, sip_secure.py):
the menu flows served, and the server's CPU when no call is up."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import load

from loadkit.flows import write_flows


@contextlib.contextmanager
def sip_server(work: Path, config: Path) -> Iterator[load.Server]:
    """The menu flows served by ``ivrbot run`` (bots inside) with the SIP file ``config``."""
    flows = work / "flows"
    write_flows(flows, 4.0)
    os.environ["IVRBOT_SIP_CONFIG"] = str(config)  # read by the server process
    server = load.Server(flows, work, "local")  # bots inside the gateway
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        os.environ.pop("IVRBOT_SIP_CONFIG", None)


def idle_cpu_per_s(server: load.Server, seconds: float = 3.0) -> float:
    """The server's CPU seconds per second with no call (bots, PJSIP's media clock)."""
    c0 = server.cpu_s()
    time.sleep(seconds)
    return (server.cpu_s() - c0) / seconds
