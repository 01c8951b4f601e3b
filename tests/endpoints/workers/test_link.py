"""The gateway <-> worker link over a real socket pair: replies, events, errors crossing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from ivrbot.core.call_state import CallPhase, CallStateError
from ivrbot.core.endpoints import SdpError
from ivrbot.core.events import Resource, SessionEvent, Topic
from ivrbot.core.merge import NoSuchConference
from ivrbot.core.relayed import RelayedLeg
from ivrbot.endpoints.workers.link import Link, Message, WorkerFailed, WorkerGone
from ivrbot.wire.http import ApiError
from ivrbot.wire.serialise import event_object
from tests.wire.test_serialise import SAMPLES

pytestmark = pytest.mark.unit


@pytest.fixture
async def ends() -> AsyncIterator[tuple[Link, Link]]:
    a, b = socket.socketpair()
    gateway, worker = await Link.over(a, "worker"), await Link.over(b, "gateway")
    reading = [asyncio.ensure_future(gateway.serve()), asyncio.ensure_future(worker.serve())]
    yield gateway, worker
    await gateway.close()
    await worker.close()
    for task in reading:
        task.cancel()


async def test_a_request_gets_its_own_reply(ends: tuple[Link, Link]) -> None:
    gateway, worker = ends

    async def handle(message: Message) -> Message:
        await asyncio.sleep(0.05 if message["n"] == 1 else 0)  # the first answers last
        return {"twice": message["n"] * 2}

    worker.handler = handle
    first, second = await asyncio.gather(
        gateway.request("double", n=1), gateway.request("double", n=2)
    )
    assert (first["twice"], second["twice"]) == (2, 4)


async def test_events_reach_the_handler_in_order(ends: tuple[Link, Link]) -> None:
    gateway, worker = ends
    seen: list[int] = []
    done = asyncio.Event()

    def on_event(message: Message) -> None:
        seen.append(message["n"])
        if len(seen) == 50:
            done.set()

    gateway.handler = on_event
    for n in range(50):
        worker.send({"op": "event", "n": n})
    await asyncio.wait_for(done.wait(), 5)
    assert seen == list(range(50))


@pytest.mark.parametrize(
    ("raised", "kind", "text"),
    [
        (CallStateError("initiate-call-hold", CallPhase.RINGING), CallStateError, "ringing"),
        (SdpError("the SDP offer has no audio section (m=audio)"), SdpError, "m=audio"),
        (ApiError("SVC0002", "x-modId", status=400), ApiError, "SVC0002"),
        (web.HTTPNotFound(text="no call 12 in this session"), web.HTTPNotFound, ""),
        (NoSuchConference("no conference c1 hosted by this identity"), NoSuchConference, "c1"),
        (RuntimeError("boom"), WorkerFailed, "RuntimeError: boom"),
    ],
)
async def test_an_error_on_the_worker_is_raised_at_the_gateway(
    ends: tuple[Link, Link], raised: Exception, kind: type[Exception], text: str
) -> None:
    gateway, worker = ends

    def fail(message: Message) -> Message:
        raise raised

    worker.handler = fail
    with pytest.raises(kind) as caught:
        await gateway.request("act")
    assert text in str(caught.value)
    if isinstance(raised, ApiError):
        assert isinstance(caught.value, ApiError)
        assert (caught.value.variables, caught.value.status) == (("x-modId",), 400)
    if isinstance(raised, web.HTTPNotFound):
        assert isinstance(caught.value, web.HTTPNotFound)
        assert caught.value.text == "no call 12 in this session"


async def test_requests_waiting_when_the_worker_goes_fail_at_once(
    ends: tuple[Link, Link],
) -> None:
    gateway, worker = ends
    worker.handler = lambda message: asyncio.sleep(60)  # never answers
    waiting = asyncio.ensure_future(gateway.request("place"))
    await asyncio.sleep(0.05)
    await worker.close()  # the worker's end closes (the process died)
    with pytest.raises(WorkerGone):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(WorkerGone):
        await gateway.request("place")


async def test_a_call_that_ends_before_its_place_reply_is_not_kept() -> None:
    """The worker's session-terminated can be read before place() resumes with the reply
    (both are on the link, in that order): the gateway must not keep a call that is over."""
    from types import SimpleNamespace

    from ivrbot.core.sessions import SessionRegistry
    from ivrbot.endpoints.workers.pool import MediaWorker

    sessions = SessionRegistry(3600)
    pool = SimpleNamespace(gateway=SimpleNamespace(sessions=sessions), on_change=lambda: None)
    worker = MediaWorker(pool, 0)  # type: ignore[arg-type]
    session = sessions.create("ann@ivrbot.local", "", None)
    ended = {"type": "calls", "state": "session-terminated", "reason": "User busy",
             "resourceURL": f"{session.path}/calls/c1"}  # fmt: skip

    class EndsFirst:
        closed = asyncio.Event()

        async def request(self, op: str, **fields: object) -> Message:
            worker._relay_event(session.id, ended)  # read before place() resumes
            return {"leg": "c1"}

    worker.link = EndsFirst()  # type: ignore[assignment]
    worker.ready.set()
    leg = await worker.place(session, "tel:+15550002100", "v=0")
    assert leg.id == "c1"
    assert session.calls == {} and worker.legs == {} and worker.load == 0
    batch = await session.channel.next_batch(1.0)
    assert batch is not None and event_object(batch[0])["state"] == "session-terminated"


async def test_a_workers_events_reach_the_callers_session_as_its_switch_published_them(
    ends: tuple[Link, Link],
) -> None:
    """The worker sends each event of a mirrored session as the wire's event object (the
    serialiser); the gateway publishes the same typed event to the caller's own session,
    and forgets the call when it ends."""
    from types import SimpleNamespace

    from ivrbot.core.sessions import SessionRegistry
    from ivrbot.endpoints.workers.host import RelayChannel
    from ivrbot.endpoints.workers.pool import MediaWorker

    gateway, worker_end = ends
    sessions = SessionRegistry(3600)
    pool = SimpleNamespace(gateway=SimpleNamespace(sessions=sessions), on_change=lambda: None)
    worker = MediaWorker(pool, 0)  # type: ignore[arg-type]
    started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    gateway.handler = lambda message: worker._on_message(message, started)
    session = sessions.create("ann@ivrbot.local", "", None)
    forgotten: list[str] = []
    host = SimpleNamespace(forget_if_idle=forgotten.append)
    relay = RelayChannel(worker_end, session.id, host)  # type: ignore[arg-type]
    relayed = RelayedLeg("c411", session, worker)
    session.calls["c411"] = worker.legs[(session.id, "c411")] = relayed
    urls = {Topic.CALL: f"{session.path}/calls/c411", Topic.CONFERENCE: f"{session.path}/conf/c0f"}
    sent = [SessionEvent(Resource(topic, urls[topic]), payload) for topic, payload, _ in SAMPLES]
    for event in sent:
        relay.publish(event)
    got: list[SessionEvent] = []
    while len(got) < len(sent):
        batch = await session.channel.next_batch(5.0)
        assert batch
        got += batch
    assert got == sent
    assert session.calls == {} and worker.legs == {}  # its session-terminated came
    await asyncio.sleep(0)
    assert forgotten and set(forgotten) == {session.id}
