"""The PJSIP objects of the SIP stack: a call (its callbacks), an account (incoming calls,
registration) and the log writer. All live on the stack's thread; their callbacks never
block and reach the event loop only through ``SipStack.tell``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pjsua2 as pj

from ivrbot.endpoints.sip.media import CallAudio, CallPort, guarded

if TYPE_CHECKING:
    from ivrbot.endpoints.sip.stack import SipStack

log = logging.getLogger("ivrbot.endpoints.sip.stack")


class StackEvents(Protocol):
    """What the stack tells the event loop (each called on the loop)."""

    def incoming(self, call: CallRef, invite: Invite) -> None: ...

    def call_state(self, call: CallRef, state: str, code: int, reason: str) -> None: ...

    def media_up(self, call: CallRef, srtp: bool) -> None: ...

    def transfer_status(self, call: CallRef, code: int, reason: str, final: bool) -> None: ...

    def digit(self, call: CallRef, digit: str) -> None: ...

    def held(self, call: CallRef, held: bool) -> None: ...

    def registration(self, account: str, code: int, reason: str, active: bool) -> None: ...


def uri_user(uri: str) -> str:
    """'"Bob" <sip:+1555@host;x=y>' -> '+1555'."""
    inner = uri.split("<", 1)[-1].split(">", 1)[0]
    inner = inner.split(":", 1)[-1] if ":" in inner else inner
    return inner.split("@", 1)[0].split(";", 1)[0]


@dataclass(frozen=True)
class Invite:
    """What an incoming INVITE says, as the connector needs it."""

    account: str  # the PJSIP account it reached ('': the default one)
    source: str  # the address it came from
    called: str  # the user part of the request URI
    caller: str  # the From URI
    transport: str  # 'udp' | 'tcp' | 'tls' (of its top Via)
    srtp: bool  # its offer has SDES keys (a=crypto)


def invite_of(account: str, source: str, local_uri: str, caller: str, message: str) -> Invite:
    """The Invite of an INVITE's text (``message``)."""
    head, _, body = message.partition("\r\n\r\n")
    lines = head.split("\r\n")
    called = uri_user(local_uri)
    if lines[0].startswith("INVITE "):  # INVITE sip:NUMBER@host SIP/2.0
        called = uri_user(lines[0].split(" ")[1])
    transport = "udp"
    via = next((ln for ln in lines if ln.lower().startswith(("via:", "v:"))), "")
    if "/" in via:  # Via: SIP/2.0/TLS 127.0.0.1:5061;branch=...
        transport = via.split(":", 1)[1].strip().split(" ", 1)[0].rsplit("/", 1)[-1].lower()
    return Invite(account, source, called, caller, transport, "a=crypto:" in body)


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
                proto = self.getStreamInfo(media.index).proto
                srtp = bool(proto & pj.PJMEDIA_TP_PROFILE_SRTP)
                self.stack.tell("media_up", self.ref, srtp)

    @guarded
    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        # a REFER from the far end: declined (the gateway transfers calls itself)
        log.warning("SIP REFER to %s declined (603): transfers are made in ivrbot", prm.dstUri)
        prm.statusCode = 603

    @guarded
    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        # the NOTIFYs of a REFER we sent: how the far end's call to the target goes
        prm.cont = True
        code, final = int(prm.statusCode), bool(prm.finalNotify)
        self.stack.tell("transfer_status", self.ref, code, str(prm.reason), final)

    @guarded
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.stack.tell("digit", self.ref, prm.digit)


class SipAccount(pj.Account):
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
        invite = invite_of(self.name, call.source, info.localUri, info.remoteUri,
                           prm.rdata.wholeMsg)  # fmt: skip
        self.stack.tell("incoming", call.ref, invite)

    @guarded
    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        active = bool(self.getInfo().regIsActive)
        self.stack.tell("registration", self.name, prm.code, prm.reason, active)


class LogWriter(pj.LogWriter):
    """PJSIP's errors and failures (a transport error, an INVITE it turned away itself, like
    an offer with no common codec: 488) into our log, as warnings."""

    def write(self, entry: pj.LogEntry) -> None:
        if entry.level <= 2 or "failed" in entry.msg:
            text = " ".join(entry.msg.split()[2:]).lstrip(".")  # after the time and file
            log.warning("PJSIP: %s", text or entry.msg.strip())
