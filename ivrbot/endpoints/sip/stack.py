"""PJSIP on a thread of its own: the SIP stack (transports, accounts, calls) lives on one
thread that runs ``libHandleEvents`` and the work the event loop hands it; its callbacks
never block and reach the event loop only through ``call_soon_threadsafe``."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from ivrbot.endpoints.sip.calls import CallRef, LogWriter, SipAccount, SipCall, StackEvents
from ivrbot.endpoints.sip.media import RATE, CallPort
from ivrbot.endpoints.sip.settings import Account, SipConfigError, SipSettings, Trunk
from ivrbot.endpoints.sip.transports import SRTP_USE, create_transports

log = logging.getLogger(__name__)

PORT_GRACE_S = 1.0  # a call's PCM port is freed this long after the call ended


class SipStack:
    """The PJSIP endpoint and its thread; ``run`` hands it work from the event loop."""

    alive = False  # a PJSIP endpoint exists in this process (from libCreate to libDestroy)

    def __init__(self, settings: SipSettings, events: StackEvents) -> None:
        self.settings = settings
        self.events = events
        self.port = settings.port  # the bound port, once started (0 picks one)
        self.ports: dict[str, int] = {}  # by transport, once started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._calls: dict[int, SipCall] = {}  # the only holder of each call, until it ends
        self._ended: list[int] = []
        self._graveyard: collections.deque[tuple[float, CallPort]] = collections.deque()
        self.keys = itertools.count(1)
        self.accounts: dict[str, SipAccount] = {}
        self.default: SipAccount | None = None

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
            if self._thread.is_alive():
                log.error("PJSIP did not shut down within 10 s")
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
        """The call's last reference goes, on this thread; its port a while later (see
        ``_bury``)."""
        call = self._calls.pop(key, None)
        if call is not None and call.port is not None:
            self._graveyard.append((time.monotonic() + PORT_GRACE_S, call.port))
            call.port = None

    def _bury(self, everything: bool = False) -> None:
        """Free the ports of calls that ended ``PORT_GRACE_S`` ago, when PJSIP has long
        torn the call's own media (and SRTP) down. Freeing a port at once, a turn after
        its call ended, segfaulted in its destructor once in the tests (an SRTP call over
        TLS); waiting is a mitigation, not a proven cure."""
        now = time.monotonic()
        while self._graveyard and (everything or self._graveyard[0][0] <= now):
            self._graveyard.popleft()

    def _main(self) -> None:
        try:
            endpoint = self._create()
        except BaseException as exc:
            if isinstance(exc, SipConfigError):
                self._error = exc.with_traceback(None)
            else:
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
                self._bury()
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
        for _ in range(5):
            endpoint.libHandleEvents(10)
        self._bury(everything=True)
        self._ended.clear()
        self.accounts.clear()
        self.default = None
        endpoint.libDestroy()
        SipStack.alive = False

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
        """PJSIP started; when it cannot start, it is destroyed again (one PJSIP endpoint
        per process: a second ``pj.Endpoint()`` while one lives aborts the process)."""
        if SipStack.alive:
            raise SipConfigError("PJSIP already runs in this process (one SIP connector each)")
        endpoint = pj.Endpoint()
        endpoint.libCreate()
        SipStack.alive = True
        try:
            self._start(endpoint)
        except BaseException as exc:
            # without its traceback (nor those of the exceptions it came from): their
            # frames hold the endpoint, and PJSIP's instance lives until that is freed
            error = exc.with_traceback(None)
            error.__context__ = error.__cause__ = None
            self.accounts.clear()
            self.default = None
            endpoint.libDestroy()
            del endpoint
            SipStack.alive = False
            raise error from None
        return endpoint

    def _start(self, endpoint: pj.Endpoint) -> None:
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.userAgent = "ivrbot"
        config.uaConfig.maxCalls = self.settings.max_calls
        for server in self.settings.stun_servers:
            config.uaConfig.stunServer.append(server)
        config.logConfig.consoleLevel = 3  # what reaches the writer (it replaces stdout)
        config.logConfig.level = 5 if self.settings.log_file else 3
        config.logConfig.filename = self.settings.log_file
        config.logConfig.msgLogging = bool(self.settings.log_file)
        writer = LogWriter()
        # PJSIP deletes the log writer it was given when it shuts down: it owns it, Python
        # must never free it too (a double free aborts the process)
        writer.__disown__()
        config.logConfig.writer = writer
        config.medConfig.clockRate = RATE
        config.medConfig.sndClockRate = RATE
        config.medConfig.ecTailLen = 0
        endpoint.libInit(config)
        self.ports = create_transports(endpoint, self.settings)
        self.port = next(iter(self.ports.values()))
        endpoint.libStart()
        endpoint.audDevManager().setNullDev()
        here = f"{self.settings.public_address or self.settings.host}:{self.port}"
        self.default = self._account("", f"sip:ivrbot@{here}")
        for trunk in self.settings.trunks.values():  # outbound calls: From the caller id
            if trunk.uri:
                uri = f"sip:{trunk.caller_id or 'ivrbot'}@{here}"
                self._account(f"trunk:{trunk.name}", uri, trunk=trunk)
        for account in self.settings.accounts.values():
            self._account(account.name, account.uri, account)

    def _account(
        self, name: str, uri: str, account: Account | None = None, trunk: Trunk | None = None
    ) -> SipAccount:
        config = pj.AccountConfig()
        config.idUri = uri
        # no re-INVITE after an answer that named several codecs (a phone would restart its
        # audio for it; measured with baresip)
        config.mediaConfig.lockCodecEnabled = False
        media = config.mediaConfig.transportConfig
        media.boundAddress = self.settings.host
        media.publicAddress = self.settings.public_address  # in the SDP's c= line
        media.port, last = self.settings.media_ports
        media.portRange = last - media.port
        srtp = account.srtp if account is not None else self.settings.srtp
        if trunk is not None:
            srtp = trunk.srtp
        config.mediaConfig.srtpUse = SRTP_USE[srtp]
        # 0: SRTP is not tied to TLS signalling. With 1 (PJSIP's default) an account with
        # SRTP on refused every call over UDP or TCP, plain RTP included (406/488,
        # PJSIP_ESESSIONINSECURE; measured). Keys are secret only over TLS (README).
        config.mediaConfig.srtpSecureSignaling = 0
        if account is not None:
            config.regConfig.registrarUri = account.registrar
            config.regConfig.timeoutSec = 300
            config.regConfig.retryIntervalSec = 30
            config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", account.user, 0, account.password)
            )
        created = SipAccount(self, name)
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

    async def refer(self, ref: CallRef, uri: str) -> None:
        """Send a REFER to ``uri`` on the call (its NOTIFYs come as ``transfer_status``);
        pj.Error when PJSIP cannot (a bad URI...), LookupError when the call is gone."""

        def refer() -> None:
            call = self._calls.get(ref.key)
            if call is None:
                raise LookupError("the call has ended")
            call.xfer(uri, pj.CallOpParam(True))

        await self.call(refer)

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
