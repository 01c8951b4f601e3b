"""Recorded wire conversations of one Phone session (tests/contract/sequences/*.json).

A recording is what one session's Phone did and got on the wire API, in order, after its
login: the Phone methods the application called (``do``), the requests the Phone sent
(``send``: method, path, the headers that say what it asks) and the gateway's replies
(``reply``: status, the headers the Phone reads), and the event objects the session received
on its event channel (``event``). Ids are replaced by names (``{session}``, ``{call-1}``,
``{mod-1}``), SDP by ``<offer>`` / ``<answer>``, times dropped, so that a recording of the
real gateway is the same on every run. With it: the Phone-API events the Python Phone
published (``expect.events``: names, the changes of call:state-changed, the messages of
ended calls) and the states its calls ended in (``expect.calls``).

:class:`RecordingTransport` records a real Phone in the gateway's process (the
:class:`~ivrbot.phone.transport_local.LocalTransport` of a bot attached inside it: the wire
app's own routes on in-memory requests, the session's channel read as event objects); what
it records is what the session sends and gets on the wire. tests/contract/replay.py
plays a recording back to a Phone (Python, or phone.js in Chromium) and checks it makes the
same requests and ends the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import EventSource, Response
from ivrbot.phone.transport_local import InProcess, LocalTransport

SEQUENCES = Path(__file__).parent / "sequences"
# the headers that say what a request asks, and those of a reply the Phone reads
ASKS = ("x-calls-action", "x-conference-action", "x-delete-reason", "x-modId",
        "x-transferTargetCallId")  # fmt: skip
READS = ("Location", "x-modId")
OFFERED_IN = ("invitation-received", "mod-received")  # events whose SDP is the far end's offer
SESSION_EVENTS = (  # what the expectations list: every Phone-API event a call makes
    "call:incoming", "call:connecting", "call:connected", "call:disconnecting",
    "call:disconnected", "call:canceled", "call:rejected", "call:held", "call:resumed",
    "call:moved", "call:transferring", "call:transferred", "call:ringback-provided",
    "call:modification-in-progress", "call:media-modification", "call:state-changed",
    "media:established", "dialing", "answering", "notification", "warning", "error",
    "session:call-switched", "conference:connecting", "conference:connected",
    "conference:held", "conference:resumed", "conference:ended", "conference:canceled",
    "conference:invitation-received", "conference:invitation-sending",
    "conference:invitation-sent", "conference:invitation-accepted",
    "conference:invitation-rejected", "conference:participant-removed",
    "conference:disconnecting", "conference:joining",
)  # fmt: skip


class Names:
    """Stable names for the ids of one recording, in the order they are first seen."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def name(self, kind: str, value: str) -> str:
        if value not in self.names:
            count = sum(1 for n in self.names.values() if n.startswith("{" + kind + "-"))
            self.names[value] = f"{{{kind}-{count + 1}}}"
        return self.names[value]

    def path(self, path: str) -> str:
        """``/RTC/v1/sessions/abc/calls/xyz`` -> ``/RTC/v1/sessions/{session}/calls/{call-1}``"""
        path = re.sub(r"^https?://[^/]+", "", path)
        path = re.sub(r"/sessions/[^/]+", "/sessions/{session}", path)
        for resource, kind in (("calls", "call"), ("conferences", "conference")):
            path = re.sub(
                rf"/{resource}/([^/]+)",
                lambda m, r=resource, k=kind: f"/{r}/{self.name(k, m.group(1))}",
                path,
            )
        return path


def _event(obj: dict[str, Any], names: Names) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("timestamp", "timeStamp"):
            continue
        if key == "sdp" and isinstance(value, str):
            out[key] = "<offer>" if obj.get("state") in OFFERED_IN else "<answer>"
        elif key == "resourceURL":
            out[key] = names.path(str(value))
        elif key == "modId":
            out[key] = names.name("mod", str(value))
        elif key == "transferToCallId":
            out[key] = names.name("call", str(value))
        else:
            out[key] = value
    return out


class RecordingTransport(LocalTransport):
    """The in-process transport, keeping every exchange and event once ``start()`` is called
    (after login), normalised."""

    def __init__(self, gateway: InProcess) -> None:
        super().__init__(gateway)
        self.entries: list[dict[str, Any]] = []
        self.names = Names()
        self.recording = False

    def start(self) -> None:
        self.recording = True

    def do(self, method: str, *args: Any) -> None:
        """The application calls ``method`` of the Phone (with ``args``, if any)."""
        if self.recording:
            self.entries.append({"do": method, **({"args": list(args)} if args else {})})

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if not self.recording:
            return await super().request(method, path, body, headers)
        asks = {k: v for k, v in (headers or {}).items() if k in ASKS}
        for key in ("x-transferTargetCallId",):
            if key in asks:
                asks[key] = self.names.name("call", asks[key])
        if "x-modId" in asks:
            asks["x-modId"] = self.names.name("mod", asks["x-modId"])
        send = {"send": [method, self.names.path(path)], **({"headers": asks} if asks else {})}
        if isinstance(body, dict) and body:
            send["body"] = sorted(body)
        self.entries.append(send)
        resp = await super().request(method, path, body, headers)
        reads = {k: v for k, v in resp.headers.items() if k in READS}
        if "Location" in reads:
            reads["Location"] = self.names.path(reads["Location"])
        if "x-modId" in reads:
            reads["x-modId"] = self.names.name("mod", reads["x-modId"])
        self.entries.append({"reply": resp.status, **({"headers": reads} if reads else {})})
        return resp

    async def open_events(self, session_path: str) -> EventSource:
        return _Tap(await super().open_events(session_path), self)


class _Tap:
    def __init__(self, inner: EventSource, recorder: RecordingTransport) -> None:
        self.inner, self.recorder = inner, recorder

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        async for obj in self.inner:
            if self.recorder.recording:
                self.recorder.entries.append({"event": _event(obj, self.recorder.names)})
            yield obj

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def close(self) -> None:
        await self.inner.close()


class Expectation:
    """What a Phone publishes (the Phone-API events of SESSION_EVENTS, as :func:`told`) and
    the last state of each of its calls, in the recording's terms."""

    def __init__(self, phone: Phone) -> None:
        self.events: list[Any] = []
        self.states: dict[int, str] = {}
        for name in SESSION_EVENTS:
            phone.on(name, lambda payload, name=name: self._told(name, payload))

    def _told(self, name: str, payload: Any) -> None:
        self.events.append(told(name, payload))
        if name == "call:state-changed":
            self.states[payload.index] = payload.new_state

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "calls": {str(k): v for k, v in sorted(self.states.items())}}


def told(name: str, payload: Any) -> Any:
    """One published event as a recording keeps it: the name; with the change of a
    call:state-changed, the message of an ended call or a notice."""
    data = payload.to_dict() if hasattr(payload, "to_dict") else payload
    if name == "call:state-changed":
        return [name, data["index"], data["oldState"], data["newState"]]
    if name == "error":
        return [name, data["ErrorCode"]]
    if name == "call:media-modification":
        return [name, data["newMediaType"], data["accepted"]]
    if isinstance(data, dict) and "message" in data:
        return [name, data["message"]]
    return name


def streams(recording: dict[str, Any]) -> dict[str, Any]:
    """What a recording must keep from run to run, per session: the events it received in
    order, its own steps (what it did, sent and was answered) in order, and what it told the
    application. How the two orders interleave is the network's (a reply and an event race)."""
    out: dict[str, Any] = {}
    for name, session in recording["sessions"].items():
        wire = session["wire"]
        out[name] = {
            "events": [e["event"] for e in wire if "event" in e],
            "steps": [e for e in wire if "event" not in e],
            "expect": session["expect"],
        }
    return out


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((SEQUENCES / f"{name}.json").read_text()))


def names() -> list[str]:
    return sorted(p.stem for p in SEQUENCES.glob("*.json"))


def save(name: str, recording: dict[str, Any]) -> None:
    SEQUENCES.mkdir(exist_ok=True)
    (SEQUENCES / f"{name}.json").write_text(dumps(recording))


def dumps(value: Any, indent: str = "") -> str:
    """JSON with one wire entry or one event per line (diffs read as the conversation)."""
    inner = indent + "  "
    if isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
        items = [f"{inner}{json.dumps(k)}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}" + ("\n" if not indent else "")
    if isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        items = [f"{inner}{json.dumps(v, ensure_ascii=False)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value, ensure_ascii=False)
