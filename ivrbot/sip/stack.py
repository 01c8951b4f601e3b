"""PJSIP on a thread of its own: the SIP stack (transports, accounts, calls) lives on one
thread that runs ``libHandleEvents`` and the work the event loop hands it; its callbacks
never block and reach the event loop only through ``call_soon_threadsafe``."""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pjsua2 as pj

from ivrbot.sip.media import RATE, CallAudio, CallPort, guarded
from ivrbot.sip.settings import Account, SipConfigError, SipSettings

log = logging.getLogger(__name__)


class StackEvents(Protocol):
    """What the stack tells the event loop (each called on the loop)."""

    def incoming(
        self, call: CallRef, account: str, source: str, called: str, caller: str
    ) -> None: ...

    def call_state(self, call: CallRef, state: str, code: int, reason: str) -> None: ...

    def media_up(self, call: CallRef) -> None: ...

    def digit(self, call: CallRef, digit: str) -> None: ...

    def held(self, call: CallRef, held: bool) -> None: ...

    def registration(self, account: str, code: int, reason: str, active: bool) -> None: ...


def uri_user(uri: str) -> str:
    """'"Bob" <sip:+1555@host;x=y>' -> '+1555'."""
    inner = uri.split("<", 1)[-1].split(">", 1)[0]
    inner = inner.split(":", 1)[-1] if ":" in inner else inner
    return inner.split("@", 1)[0].split(";", 1)[0]


@dataclass(frozen=True, eq=False)
class CallRef:
    """What the event loop holds of a SIP call: a key and its audio queues, never the
    PJSIP object (that one lives and dies on the stack's thread, while PJSIP lives)."""

    key: int
    audio: CallAudio


class SipCall(pj.Call):
    """One SIP dialog; its callbacks run on the stack's thread."""

    def __init__(self, stack: SipStack, account: pj.Account, call_id: int = -1) -> None:
        super().__init__(account, call_id)
        self.stack = stack
        self.audio = CallAudio()  # what the event loop reads and writes
        self.ref = CallRef(next(stack.keys), self.audio)
        self.port: CallPort | None = CallPort(self.audio)  # made and dropped on this thread
        self.port.create(f"call{id(self)}")
        self.connected_media = False
        self.held = False  # the SIP side put the call on hold (re-INVITE a=sendonly)
        self.source = ""

    @guarded
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        state = {
            pj.PJSIP_INV_STATE_EARLY: "early",
            pj.PJSIP_INV_STATE_CONNECTING: "connecting",
            pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
            pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
        }.get(info.state, "")
        if state:
            self.stack.tell("call_state", self.ref, state, info.lastStatusCode, info.lastReason)
        if state == "disconnected":
            self.stack.forget(self.ref.key)

    @guarded
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            held = media.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
            if held != self.held and (held or media.status == pj.PJSUA_CALL_MEDIA_ACTIVE):
                self.held = held
                self.stack.tell("held", self.ref, held)
            if media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(media.index)
            if self.port is None:
                continue
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)
            if not self.connected_media:
                self.connected_media = True
                self.stack.tell("media_up", self.ref)

    @guarded
    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        # a REFER from the far end: declined (the gateway transfers calls itself)
        log.warning("SIP REFER to %s declined (603): transfers are made in ivrbot", prm.dstUri)
        prm.statusCode = 603

    @guarded
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.stack.tell("digit", self.ref, prm.digit)


class _Account(pj.Account):
    def __init__(self, stack: SipStack, name: str) -> None:
        super().__init__()
        self.stack = stack
        self.name = name

    @guarded
    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = SipCall(self.stack, self, prm.callId)
        self.stack.keep(call)
        info = call.getInfo()
        call.source = prm.rdata.srcAddress.rsplit(":", 1)[0].strip("[]")
        called = uri_user(info.localUri)
        first_line = prm.rdata.wholeMsg.split("\r\n", 1)[0]  # INVITE sip:NUMBER@host SIP/2.0
        if first_line.startswith("INVITE "):
            called = uri_user(first_line.split(" ")[1])
        self.stack.tell("incoming", call.ref, self.name, call.source, called, info.remoteUri)

    @guarded
    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        active = bool(self.getInfo().regIsActive)
        self.stack.tell("registration", self.name, prm.code, prm.reason, active)


class _LogWriter(pj.LogWriter):
    """PJSIP's errors and failures (a transport error, an INVITE it turned away itself, like
    an offer with no common codec: 488) into our log, as warnings."""

    def write(self, entry: pj.LogEntry) -> None:
        if entry.level <= 2 or "failed" in entry.msg:
            text = " ".join(entry.msg.split()[2:]).lstrip(".")  # after the time and file
            log.warning("PJSIP: %s", text or entry.msg.strip())


class SipStack:
    """The PJSIP endpoint and its thread; ``run`` hands it work from the event loop."""

    def __init__(self, settings: SipSettings, events: StackEvents) -> None:
        self.settings = settings
        self.events = events
        self.port = settings.port  # the bound port, once started (0 picks one)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._calls: dict[int, SipCall] = {}  # the only holder of each call, until it ends
        self._ended: list[int] = []
        self.keys = itertools.count(1)
        self.accounts: dict[str, _Account] = {}
        self.default: _Account | None = None

    # the event loop's side ------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._main, name="pjsip", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error
        # the loop's thread may drop the last reference to a call (its destructor is pjlib)
        if not pj.Endpoint.instance().libIsThreadRegistered():
            pj.Endpoint.instance().libRegisterThread("ivrbot-loop")

    def run(self, work: Callable[[], None]) -> None:
        """Do ``work`` on the stack's thread (soon; errors are logged there)."""
        self._work.put(work)

    async def call(self, work: Callable[[], Any]) -> Any:
        """Do ``work`` on the stack's thread and wait for its result."""
        assert self._loop is not None
        future: asyncio.Future[Any] = self._loop.create_future()

        def job() -> None:
            try:
                result = work()
            except BaseException as exc:
                # without its traceback: its frames hold PJSIP objects, which must not be
                # freed anywhere but on this thread
                bare = exc.with_traceback(None)
                self._loop.call_soon_threadsafe(_settle, future, None, bare)  # type: ignore[union-attr]
            else:
                self._loop.call_soon_threadsafe(_settle, future, result, None)  # type: ignore[union-attr]

        self.run(job)
        return await future

    async def stop(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None

    # the stack's thread ---------------------------------------------------------------------
    def tell(self, event: str, *args: Any) -> None:
        """Hand an event to the loop (from the stack's thread; never waits)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._deliver, event, args)

    def _deliver(self, event: str, args: tuple[Any, ...]) -> None:
        try:
            getattr(self.events, event)(*args)
        except Exception:
            log.exception("SIP event %s failed", event)

    def keep(self, call: SipCall) -> None:
        self._calls[call.ref.key] = call

    def forget(self, key: int) -> None:
        # dropped a turn later: PJSIP is still inside the call's callback
        self._ended.append(key)

    def _drop(self, key: int) -> None:
        """The call's last reference goes (its port first), on this thread."""
        call = self._calls.pop(key, None)
        if call is not None:
            call.port = None

    def _main(self) -> None:
        try:
            endpoint = self._create()
        except BaseException as exc:
            why = exc.info() if isinstance(exc, pj.Error) else str(exc)
            self._error = SipConfigError(
                f"SIP did not start on {self.settings.host}:{self.settings.port} "
                f"(IVRBOT_SIP_PORT): {why.strip()}"
            )
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                endpoint.libHandleEvents(10)
                while self._ended:
                    self._drop(self._ended.pop())
                if not self._drain():
                    break
        finally:
            self._shut_down(endpoint)

    def _shut_down(self, endpoint: pj.Endpoint) -> None:
        """Hang up, let the calls end, drop every PJSIP object on this thread, then PJSIP:
        an object the event loop still holds must not reach PJSIP once it is gone."""
        if self._calls:
            endpoint.hangupAllCalls()
            for _ in range(20):
                endpoint.libHandleEvents(10)
        for key in list(self._calls):
            self._drop(key)
        self._ended.clear()
        self.accounts.clear()
        self.default = None
        endpoint.libDestroy()

    def _drain(self) -> bool:
        while True:
            try:
                work = self._work.get_nowait()
            except queue.Empty:
                return True
            if work is None:
                return False
            try:
                work()
            except Exception:
                log.exception("SIP work failed")

    def _create(self) -> pj.Endpoint:
        endpoint = pj.Endpoint()
        endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.userAgent = "ivrbot"
        config.uaConfig.maxCalls = self.settings.max_calls
        config.logConfig.consoleLevel = 3  # what reaches the writer (it replaces stdout)
        config.logConfig.level = 5 if self.settings.log_file else 3
        config.logConfig.filename = self.settings.log_file
        config.logConfig.msgLogging = bool(self.settings.log_file)
        writer = _LogWriter()
        # PJSIP deletes the log writer it was given when it shuts down: it owns it, Python
        # must never free it too (a double free aborts the process)
        writer.__disown__()
        config.logConfig.writer = writer
        config.medConfig.clockRate = RATE
        config.medConfig.sndClockRate = RATE
        config.medConfig.ecTailLen = 0
        endpoint.libInit(config)
        transport = pj.TransportConfig()
        transport.port = self.settings.port
        transport.boundAddress = self.settings.host
        tid = endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.port = int(endpoint.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        endpoint.libStart()
        endpoint.audDevManager().setNullDev()
        here = f"{self.settings.host}:{self.port}"
        self.default = self._account("", f"sip:ivrbot@{here}")
        for trunk in self.settings.trunks.values():  # outbound calls: From the caller id
            if trunk.uri:
                self._account(f"trunk:{trunk.name}", f"sip:{trunk.caller_id or 'ivrbot'}@{here}")
        for account in self.settings.accounts.values():
            self._account(account.name, account.uri, account)
        return endpoint

    def _account(self, name: str, uri: str, account: Account | None = None) -> _Account:
        config = pj.AccountConfig()
        config.idUri = uri
        # no re-INVITE after an answer that named several codecs (a phone would restart its
        # audio for it; measured with baresip)
        config.mediaConfig.lockCodecEnabled = False
        media = config.mediaConfig.transportConfig
        media.boundAddress = self.settings.host
        media.port, last = self.settings.media_ports
        media.portRange = last - media.port
        if account is not None:
            config.regConfig.registrarUri = account.registrar
            config.regConfig.timeoutSec = 300
            config.regConfig.retryIntervalSec = 30
            config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", account.user, 0, account.password)
            )
        created = _Account(self, name)
        created.create(config, True)
        self.accounts[name] = created
        return created

    # call control, from the event loop (done on the stack's thread) ---------------------------
    async def new_call(self, account: str) -> CallRef:
        """A call to be placed from ``account`` (see :meth:`invite`)."""

        def make() -> CallRef:
            call = SipCall(self, self.accounts.get(account) or self.default)
            self.keep(call)
            return call.ref

        ref: CallRef = await self.call(make)
        return ref

    async def invite(self, ref: CallRef, uri: str) -> None:
        """INVITE ``uri``; pj.Error when PJSIP cannot (too many calls, a bad URI...)."""

        def invite() -> None:
            call = self._calls[ref.key]
            try:
                call.makeCall(uri, pj.CallOpParam(True))
            except pj.Error:
                self._drop(ref.key)
                raise

        await self.call(invite)

    def answer(self, ref: CallRef, code: int) -> None:
        self.run(lambda: self._op(ref.key, "answer", code))

    def hangup(self, ref: CallRef, code: int) -> None:
        self.run(lambda: self._op(ref.key, "hangup", code))

    def send_dtmf(self, ref: CallRef, digits: str) -> None:
        self.run(lambda: self._op(ref.key, "dtmf", digits))

    def _op(self, key: int, what: str, arg: Any) -> None:
        call = self._calls.get(key)
        if call is None:
            return  # it ended meanwhile
        try:
            if what == "dtmf":
                call.dialDtmf(arg)
                return
            param = pj.CallOpParam()
            param.statusCode = arg
            (call.answer if what == "answer" else call.hangup)(param)
        except pj.Error as exc:  # the call moved on (ended, already answered)
            log.debug("SIP %s on call %d: %s", what, key, exc.info().strip())


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
