"""Dead peers: a caller killed mid-call is detected (ICE consent) and its call ended with a
reason; a gateway killed mid-call ends the Phone's calls; the restart marks the calls the
crash cut as 'interrupted'."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ivrbot.config import Settings
from ivrbot.endpoints.webrtc.peer import DEFAULT_PEER_TIMEOUT_S, set_peer_timeout
from ivrbot.events import Event
from ivrbot.flow import Ask, Flow, Hangup
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.store.sqlite import SqliteStore
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer
from tests.helpers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PATIENT = textwrap.dedent("""\
    from ivrbot.flow import Ask, Flow, Hangup
    flow = Flow("patient", number="5550001040")
    flow.add(Ask("wait", "Take your time.", digits=1, timeout_s=120, next="bye"),
             Hangup("bye", "Bye."))
    """)
CALLER = textwrap.dedent("""\
    import asyncio, sys
    from ivrbot.phone.phone import Phone
    from ivrbot.phone.transport_remote import fetch_token

    async def main() -> None:
        phone = Phone(sys.argv[1], name="doomed")
        connected = asyncio.Event()
        phone.on("call:connected", lambda _: connected.set())
        await phone.login(token=await fetch_token(sys.argv[1], "ACCOUNT_ID"),
                          user_id="doomed@ivrbot.local")
        await phone.dial("5550001040")
        await connected.wait()
        print("connected", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """)


@pytest.fixture
def consent_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """This process's peers give up on a silent peer after ``param`` seconds."""
    set_peer_timeout(request.param)
    yield
    set_peer_timeout(DEFAULT_PEER_TIMEOUT_S)


async def wait_line(stream: asyncio.StreamReader, text: str, timeout_s: float = 60) -> str:
    seen = ""
    async with asyncio.timeout(timeout_s):
        while text not in seen:
            line = await stream.readline()
            assert line, f"the process ended before printing {text!r}: {seen}"
            seen += line.decode()
    return seen


async def test_a_caller_killed_mid_call_is_hung_up_within_the_timeout(
    tmp_path: Path, tts: Synthesizer
) -> None:
    server = GatewayServer(Settings(port=0, db=str(tmp_path / "gw.db"), peer_timeout_s=2.0))
    await server.start()
    flow = Flow("patient", number="5550001040")
    flow.add(Ask("wait", "Take your time.", digits=1, timeout_s=120, next="bye"), Hangup("bye"))
    bot = Bot(flow, server.url, tts, store=server.gateway.store)
    await bot.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CALLER, server.url, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        await wait_line(proc.stdout, "connected")
        await asyncio.sleep(0.5)
        proc.kill()
        killed = time.monotonic()
        (record,) = await bot.wait_records(timeout_s=20)
        took = time.monotonic() - killed
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await bot.stop()
        await server.stop()
    assert record.outcome == "connection-lost" and record.path == ["wait"]  # not a hang-up
    assert took < 15, f"the dead caller's call lasted {took:.1f} s"
    store = SqliteStore(tmp_path / "gw.db")
    try:
        (entry,) = await store.call_log()
    finally:
        await store.close()
    assert entry.call is not None and entry.call.reason == "Connection lost"
    assert entry.flow is not None and entry.flow["id"] == record.id  # joined by call id


@pytest.fixture
async def doomed_server(tmp_path: Path) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``ivrbot run`` serving the patient flow, in a process of its own (to kill)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "patient.py").write_text(PATIENT)
    port = free_port()
    env = {**os.environ, "IVRBOT_DB": str(tmp_path / "ivrbot.db")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivrbot", "run", str(flows), "--port", str(port), cwd=ROOT,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    await wait_line(proc.stdout, "flow patient")
    yield f"http://127.0.0.1:{port}", proc
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


@pytest.mark.parametrize(
    ("consent_after", "grace_s", "message"),
    [(60.0, 3.0, "Gateway unreachable"), (2.0, 60.0, "Connection lost")],
    indirect=["consent_after"],
)
async def test_a_gateway_killed_mid_call_ends_the_phones_call_and_the_restart_settles_it(
    doomed_server: tuple[str, asyncio.subprocess.Process],
    consent_after: None,
    grace_s: float,
    message: str,
    tts: Synthesizer,
    tmp_path: Path,
) -> None:
    url, proc = doomed_server
    caller = SimulatedCaller(url, tts)
    caller.phone.gateway_grace_s = grace_s
    ended: list[str] = []
    caller.phone.on(Event.CALL_DISCONNECTED, lambda data: ended.append(data.get("message")))
    try:
        await caller.dial("5550001040")
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        async with asyncio.timeout(20):
            await caller.disconnected.wait()
        took = time.monotonic() - killed
        assert ended == [message] and not caller.phone.calls
        assert took < 15, f"the call outlived its gateway by {took:.1f} s"
    finally:
        await caller.close()
    await proc.wait()

    # the next start of the server settles the calls the crash cut
    restarted = GatewayServer(Settings(port=0, db=str(tmp_path / "ivrbot.db")))
    await restarted.start()
    try:
        (entry,) = await restarted.gateway.store.call_log()
    finally:
        await restarted.stop()
    assert entry.outcome == "interrupted"
    assert entry.call is not None and entry.call.reason == "interrupted"
    assert entry.flow is not None and entry.flow["flow"] == "patient"
